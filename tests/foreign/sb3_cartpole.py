"""PPO on CartPole the way Stable-Baselines3's docs write it (make_vec_env, "MlpPolicy",
learn, save/load, evaluate_policy), with a linear learning-rate schedule, made a trial as the
README's recipe says:

- each segment is one ``learn(segment.length - model.num_timesteps, reset_num_timesteps=False)``:
  SB3 trains every rollout it collects and stops at the segment's end (rungs that are whole
  rollouts, n_steps x n_envs, end exactly there);
- ``OverTrial``: SB3 measures a schedule's progress to the end of each ``learn()`` call, this
  one to the trial's ``max_length``, so the rate decays once over the whole trial;
- a callback stops ``learn()`` when the job is told to stop (a pause, a preemption);
- ``VecNormalize`` as SB3's docs use it: its statistics saved beside the model
  (``env.save``) and loaded into a new environment on restore (``VecNormalize.load``), the
  evaluation environment synced to them and not updating them."""
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.vec_env import VecNormalize, sync_envs_normalization


class OverTrial:
    """A linear rate from ``lr`` to 0 over the trial's timesteps: SB3 passes the progress left
    to the end of the current ``learn()`` call (``end``), this maps it onto ``max_length``."""

    def __init__(self, lr, max_length):
        self.lr, self.max_length, self.end = lr, max_length, max_length

    def __call__(self, progress_remaining):
        done = (1.0 - progress_remaining) * self.end  # timesteps so far
        return self.lr * max(0.0, 1.0 - done / self.max_length)


class StopWhenTold(BaseCallback):
    def __init__(self, trial):
        super().__init__()
        self.trial = trial

    def _on_step(self):
        return not self.trial.should_stop()


def train(trial):
    hp = trial.hparams
    env = make_vec_env("CartPole-v1", n_envs=4, seed=trial.seed)
    eval_env = VecNormalize(make_vec_env("CartPole-v1", n_envs=1, seed=trial.seed + 1),
                            training=False, norm_reward=False)
    schedule = OverTrial(hp["lr"], trial.max_length)
    if trial.latest_checkpoint:
        env = VecNormalize.load(str(trial.latest_checkpoint / "vec_normalize.pkl"), env)
        model = PPO.load(trial.latest_checkpoint / "model.zip", env=env,
                         custom_objects={"learning_rate": schedule})
        lr_used = model.policy.optimizer.param_groups[0]["lr"]  # (what the test reads)
        print(f"resumed at {model.num_timesteps} timesteps, {model._n_updates} updates, "
              f"last lr {lr_used!r}", flush=True)
    else:
        env = VecNormalize(env, norm_obs=True, norm_reward=True, clip_obs=10.0)
        model = PPO("MlpPolicy", env, learning_rate=schedule, n_steps=hp["n_steps"],
                    batch_size=64, n_epochs=hp["n_epochs"], seed=trial.seed)
    for segment in trial.segments():
        schedule.end = segment.length
        model.learn(total_timesteps=segment.length - model.num_timesteps,
                    reset_num_timesteps=False, callback=StopWhenTold(trial))
        with trial.save_checkpoint(length=model.num_timesteps) as path:
            model.save(path / "model.zip")
            env.save(str(path / "vec_normalize.pkl"))
        if trial.should_stop():
            return
        sync_envs_normalization(env, eval_env)
        mean, _ = evaluate_policy(model, eval_env, n_eval_episodes=5, deterministic=True)
        segment.report(mean_reward=mean)

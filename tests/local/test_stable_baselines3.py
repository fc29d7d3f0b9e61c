"""Stable-Baselines3's PPO as its docs write it (tests/foreign/sb3_cartpole.py), made a trial
as the README's recipe says, in a real search with a job per segment (``workers: 0``: the
promoted trial goes on from its checkpoint in a new job). The recipe before this one stopped
``learn()`` with a callback at each rung: SB3 does not train on a rollout its callback stops,
so the last rollout of every segment was collected and thrown away (a trial of 4 rollouts
trained on 2)."""
import re
import sys
from pathlib import Path

import yaml

from conftest import require_module
from helpers import cli, final_state

FOREIGN = Path(__file__).parent.parent / "foreign"
ROLLOUT = 128 * 4  # n_steps x n_envs: rungs at 1024 and 2048 timesteps are whole rollouts
N_EPOCHS = 4  # PPO's passes over each rollout: model._n_updates counts them


def test_a_promoted_ppo_trial_trains_every_rollout_once_with_one_schedule_over_the_trial(
        tmp_path):
    require_module("stable_baselines3", package="stable-baselines3")
    require_module("gymnasium", package="gymnasium")
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import VecNormalize

    lr = {"type": "double", "minval": 1e-4, "maxval": 3e-3, "log": True}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump({
        "name": "sb3", "entrypoint": str(FOREIGN / "sb3_cartpole.py") + ":train",
        "searcher": {"name": "async_halving", "metric": "mean_reward", "smaller_is_better": False,
                     "max_length": {"timesteps": 2 * 2 * ROLLOUT}, "num_rungs": 2, "divisor": 2,
                     "max_trials": 2, "max_concurrent_trials": 2},
        "hyperparameters": {"lr": lr, "n_steps": 128, "n_epochs": N_EPOCHS},
        "reproducibility": {"experiment_seed": 7}, "max_restarts": 0, "poll_interval_s": 0.2,
        "environment_variables": {"OMP_NUM_THREADS": "1"},
        "local": {"gpus": [], "max_parallel": 2, "workers": 0}}))
    exp = tmp_path / "run"
    r = cli("run", tmp_path / "c.yaml", "--exp-dir", exp, timeout=600)
    _, st = final_state(exp)
    assert st.lifecycle == "completed" and st.counts()["failed"] == 0, r.stderr
    (promoted,) = [t for t in st.trials.values() if t.length == 4 * ROLLOUT]
    logs = "".join(p.read_text() for p in (exp / "jobs").glob("*_log.out"))
    (first,) = re.findall(r"resumed at (\d+) timesteps, (\d+) updates, last lr (\S+)", logs)
    # the rate decays once over the trial's 2048 timesteps, not once per segment: the last
    # update of a segment used lr x (1 - timesteps / 2048)
    segments = [(2, int(first[0]), int(first[1]), float(first[2]))]
    sys.path.insert(0, str(FOREIGN))  # as the user loads it, in the script's folder (its
    try:  # schedule, an OverTrial of sb3_cartpole, is in the model file)
        final = PPO.load(Path(promoted.checkpoint) / "model.zip")
    finally:
        sys.path.remove(str(FOREIGN))
    segments.append((4, final.num_timesteps, final._n_updates,
                     final.policy.optimizer.param_groups[0]["lr"]))
    # VecNormalize's running statistics went on from the first segment's: every timestep's
    # observation counted once (and each learn()'s reset), not only the second segment's
    stats = VecNormalize.load(str(Path(promoted.checkpoint) / "vec_normalize.pkl"),
                              make_vec_env("CartPole-v1", n_envs=4))
    assert 4 * ROLLOUT <= stats.obs_rms.count <= 4 * ROLLOUT + 2 * 4 + 1, stats.obs_rms.count
    for rollouts, timesteps, updates, used in segments:
        # every rollout collected was trained on, the segment's last one too
        assert (timesteps, updates) == (rollouts * ROLLOUT, rollouts * N_EPOCHS), segments
        expected = promoted.hparams["lr"] * (1 - rollouts * ROLLOUT / (4 * ROLLOUT))
        assert abs(used - expected) < 1e-12, (segments, expected)

"""Code that trains in whole chunks of its own, as Stable-Baselines3's ``learn()`` does (it
rounds up to ``n_steps x n_envs`` timesteps per rollout): a segment to 2000 timesteps with
``n_steps=512`` ends at 2048, and ``save_checkpoint(length=model.num_timesteps)`` says so.
That stopped the whole search as "trained past the segment". A little past the segment is now
taken, said once by the master, and the trial goes on from where its checkpoint is; a loop that
trains to the end in its first segment (a Ray port's range(MAX_EPOCHS)) still stops it
(tests/local/test_ported_from_ray.py)."""
import json

import yaml

from helpers import cli, final_state

CHUNKED = '''
import json


def train(trial):
    chunk = trial.hparams["n_steps"]
    steps = 0
    if trial.latest_checkpoint:
        steps = json.loads((trial.latest_checkpoint / "model.json").read_text())["num_timesteps"]
    for segment in trial.segments():
        # learn(segment.length - steps, reset_num_timesteps=False): whole rollouts only
        while steps < segment.length:
            steps += chunk
        with trial.save_checkpoint(length=steps) as path:
            (path / "model.json").write_text(json.dumps({"num_timesteps": steps}))
        segment.report(mean_reward=float(steps % 97))
'''


def test_a_library_that_trains_whole_rollouts_overshoots_a_little_and_goes_on(tmp_path):
    (tmp_path / "rl.py").write_text(CHUNKED)
    (tmp_path / "c.yaml").write_text(yaml.safe_dump({
        "name": "rl", "entrypoint": "rl:train",
        "searcher": {"name": "async_halving", "metric": "mean_reward", "smaller_is_better": False,
                     "max_length": 8000, "num_rungs": 2, "divisor": 4, "max_trials": 4,
                     "max_concurrent_trials": 2},
        "hyperparameters": {"n_steps": {"type": "categorical", "vals": [512, 768]}},
        "reproducibility": {"experiment_seed": 2}, "poll_interval_s": 0.2,
        "local": {"gpus": [], "workers": 0}}))
    exp = tmp_path / "e"
    r = cli("run", tmp_path / "c.yaml", "--exp-dir", exp, timeout=300)
    _, st = final_state(exp)
    assert st.lifecycle == "completed" and st.counts()["failed"] == 0
    said = [line for line in r.stderr.splitlines() if "for the segment to length 2000: the " in line]
    assert len(said) == 1, r.stderr  # said once, by the master
    assert "checkpoint of 2048 units" in said[0] or "checkpoint of 2304 units" in said[0]
    promoted = [t for t in st.trials.values() if t.length == 8000]
    assert promoted
    for t in promoted:  # went on from its checkpoint past 2000: never trained twice
        n = t.hparams["n_steps"]
        assert t.metric == float(-(-8000 // n) * n % 97)
        runs = sorted((exp / "trials" / f"{t.id:05d}" / "checkpoints").iterdir())
        assert json.loads((runs[-1] / "model.json").read_text())["num_timesteps"] == -(-8000 // n) * n

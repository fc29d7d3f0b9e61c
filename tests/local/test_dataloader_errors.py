"""A dataset that fails in a DataLoader worker (a truncated image, a missing file): the trial
fails with that error and its job ends. The job's workers ignore their first SIGTERM (so that
Slurm's stop lets the loop checkpoint); at the training process's exit multiprocessing sends
each worker still alive one SIGTERM and waits for it, and an error's traceback keeps the
loader's workers alive until then: the process never exited, and on Slurm held its GPUs until
the time limit (a command's result never came)."""
import os
import subprocess
import sys
import time

import pytest
import yaml

pytest.importorskip("torch")

DATASET = '''
import torch
from torch.utils.data import DataLoader, Dataset


class Images(Dataset):
    def __len__(self):
        return 64

    def __getitem__(self, i):
        if i == 30:
            raise OSError(f"image {i}: truncated file")
        return torch.randn(8), torch.tensor(i % 2)
'''

FUNCTION = DATASET + '''

def train(trial):
    model = torch.nn.Linear(8, 2)
    loader = DataLoader(Images(), batch_size=8, num_workers=2)
    for segment in trial.segments():
        for x, y in loader:
            loss = torch.nn.functional.cross_entropy(model(x), y)
        segment.report(loss=loss.item())
'''

CORE_API = '''
from asha_hpc.compat import determined as det
''' + DATASET + '''

def main(core_context):
    model = torch.nn.Linear(8, 2)
    loader = DataLoader(Images(), batch_size=8, num_workers=2, persistent_workers=True)
    for batch_idx, (x, y) in enumerate(loader):
        loss = torch.nn.functional.cross_entropy(model(x), y)
        core_context.train.report_training_metrics(steps_completed=batch_idx + 1,
                                                   metrics={"loss": loss.item()})


if __name__ == "__main__":
    with det.core.init() as core_context:
        main(core_context)
'''


def _processes_of(exp) -> list[str]:
    out = []
    for pid in os.listdir("/proc"):
        try:
            cmd = open(f"/proc/{pid}/cmdline", "rb").read().replace(b"\0", b" ").decode()
            cwd = os.readlink(f"/proc/{pid}/cwd")
        except OSError:
            continue
        if str(exp) in cmd or cwd.startswith(str(exp)):
            out.append(f"{pid} {cmd}")
    return out


@pytest.mark.parametrize("entrypoint", ["function", "Core API command"])
def test_a_dataset_error_in_a_worker_fails_the_trial_and_its_job_ends(tmp_path, entrypoint):
    if entrypoint == "function":
        (tmp_path / "images.py").write_text(FUNCTION)
        how = {"entrypoint": "images:train", "searcher": {"name": "single", "metric": "loss",
                                                          "max_length": 2}}
    else:
        (tmp_path / "train.py").write_text(CORE_API)
        how = {"entrypoint": "python3 train.py", "searcher": {"name": "single", "metric": "loss"}}
    (tmp_path / "exp.yaml").write_text(yaml.safe_dump(dict(how, **{
        "name": "images", "hyperparameters": {}, "max_restarts": 0, "poll_interval_s": 0.2})))
    exp = tmp_path / "run"
    try:
        r = subprocess.run([sys.executable, "-m", "asha_hpc.cli", "run", str(tmp_path / "exp.yaml"),
                            "--exp-dir", str(exp)], capture_output=True, text=True, timeout=120,
                           cwd=tmp_path)
        assert r.returncode != 0 and "OSError: image 30: truncated file" in r.stdout + r.stderr, \
            (r.stdout + r.stderr)[-3000:]
        deadline = time.time() + 30
        while _processes_of(exp) and time.time() < deadline:
            time.sleep(0.2)
        assert not _processes_of(exp), _processes_of(exp)
    finally:
        subprocess.run([sys.executable, "-m", "asha_hpc.cli", "cancel", str(exp)],
                       capture_output=True, timeout=120)

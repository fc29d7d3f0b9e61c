"""How a job's torch DataLoader starts its workers (job/loader_workers.py), seen from the
processes themselves: a spawned or forkserver worker ignores SIGTERM while it imports torch and
unpickles the dataset, and has a handler of its own (not "ignore") once in torch's loop; any
other process the training code starts, before or after, is left as it was and ends on
``Process.terminate()``'s SIGTERM."""
import json
import subprocess
import sys

import pytest

pytest.importorskip("torch")

SCRIPT = '''
import json, os, signal, sys, time
import multiprocessing as mp

import torch
from torch.utils.data import DataLoader, Dataset

from asha_hpc.job import loader_workers


def ignores_sigterm():
    status = open("/proc/self/status").read()
    ignored = int(next(line.split()[1] for line in status.splitlines()
                       if line.startswith("SigIgn:")), 16)
    return bool(ignored >> (signal.SIGTERM - 1) & 1)


def unpickled(marks):
    """Where the worker unpickles its dataset, before torch's loop runs."""
    return Seen(marks, ignores_sigterm())


class Seen(Dataset):
    def __init__(self, marks, while_starting=False):
        self.marks, self.while_starting = marks, while_starting

    def __reduce__(self):
        return unpickled, (self.marks,)

    def __len__(self):
        return 4

    def __getitem__(self, i):
        handler = signal.getsignal(signal.SIGTERM)
        return torch.tensor([self.while_starting, handler not in (signal.SIG_IGN, None)])


def ends_on_terminate(context):
    p = mp.get_context(context).Process(target=time.sleep, args=(60,))
    p.start()
    p.terminate()
    p.join(10)
    return p.exitcode == -signal.SIGTERM


def main(context):
    loader_workers.keep_through_sigterm()
    out = {"before": ends_on_terminate(context)}
    rows = [row.tolist() for batch in DataLoader(Seen("x"), batch_size=2, num_workers=2,
                                                  multiprocessing_context=context)
            for row in batch]
    out.update(rows=rows, after=ends_on_terminate(context))
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1])
'''


@pytest.mark.parametrize("context", ["spawn", "forkserver", "fork"])
def test_started_loader_workers_ignore_sigterm_until_torchs_loop_and_nothing_else_does(
        tmp_path, context):
    (tmp_path / "starts.py").write_text(SCRIPT)
    r = subprocess.run([sys.executable, str(tmp_path / "starts.py"), context],
                       capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout.splitlines()[-1])
    assert out["before"] and out["after"], out  # the program's own processes: as they were
    if context != "fork":  # unpickled in the worker, and ignoring SIGTERM by then
        assert out["rows"] == [[True, True]] * 4, out
    else:  # forked, with this process's handler
        assert out["rows"] == [[False, True]] * 4, out

"""Small job functions for the Slurm backend tests. They run inside Slurm jobs (pickled by
value, so the job need not import this module) and get the SegmentSpec as their only argument;
they write what they saw into ``<exp_dir>/out/<key>.*``."""
from __future__ import annotations


def record(spec):
    """Write the job's environment to out/<key>.json, sleep hparams['sleep'] seconds, raise if
    hparams['fail']."""
    import json
    import os
    import time
    from pathlib import Path

    out = Path(spec.exp_dir) / "out"
    out.mkdir(exist_ok=True)
    names = ("SLURM_JOB_ID", "SLURM_ARRAY_JOB_ID", "SLURM_ARRAY_TASK_ID", "SLURM_JOB_NAME",
             "SLURM_JOB_PARTITION", "CUDA_VISIBLE_DEVICES", "SLURM_JOB_GPUS", "SUBMITIT_EXECUTOR")
    info = {n: os.environ.get(n) for n in names}
    info["pid"] = os.getpid()
    info["key"] = spec.key
    tmp = out / f".{spec.key}.json.tmp"
    tmp.write_text(json.dumps(info))
    os.replace(tmp, out / f"{spec.key}.json")
    time.sleep(float(spec.hparams.get("sleep", 0)))
    if spec.hparams.get("fail"):
        raise RuntimeError("asked to fail")
    return spec.key


def wait_for_signal(spec):
    """Install SIGUSR2/SIGTERM handlers that append '<name> <seconds since start>' to
    out/<key>.signals, then sleep up to hparams['max_s'] seconds."""
    import os
    import signal
    import time
    from pathlib import Path

    t0 = time.time()
    out = Path(spec.exp_dir) / "out"
    out.mkdir(exist_ok=True)
    path = out / f"{spec.key}.signals"

    def handler(signum, frame):
        with open(path, "a") as f:
            f.write(f"{signal.Signals(signum).name} {time.time() - t0:.1f}\n")

    signal.signal(signal.SIGUSR2, handler)
    signal.signal(signal.SIGTERM, handler)
    (out / f"{spec.key}.started").write_text(f"{t0} {os.getpid()}")
    while time.time() - t0 < float(spec.hparams.get("max_s", 120)):
        time.sleep(0.2)
    return spec.key

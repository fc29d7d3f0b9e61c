"""``python -m asha_hpc.report``: report metrics from a command entrypoint (any language).

    python -m asha_hpc.report val_loss=0.31 accuracy=0.9    # the segment's result
    python -m asha_hpc.report --step 5 loss=0.8             # a learning-curve point
    python -m asha_hpc.report --invalid "batch too large"   # reject these hyperparameters

It appends one JSON line to $ASHA_REPORT_FILE; a script may write those lines itself (the
job reads them back in jobmain.py). ``python -m asha_hpc.job.job_report`` is the same command;
``asha_hpc.report`` is the name users call (README, their shell scripts).
"""
from __future__ import annotations

import argparse
import json
import os
import sys


def _value(s: str):
    try:
        return int(s)
    except ValueError:
        try:
            return float(s)
        except ValueError:
            return s


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m asha_hpc.report", description=__doc__.split("\n")[0])
    ap.add_argument("metrics", nargs="*", metavar="NAME=VALUE")
    ap.add_argument("--step", type=int, help="a learning-curve point at this step")
    ap.add_argument("--invalid", metavar="WHY", help="declare the hyperparameters invalid")
    a = ap.parse_args(argv)
    path = os.environ.get("ASHA_REPORT_FILE")
    if not path:
        print("asha_hpc.report: ASHA_REPORT_FILE is not set: run this from a trial's command",
              file=sys.stderr)
        return 2
    if a.invalid is not None:
        rec = {"invalid_hp": a.invalid}
    else:
        metrics = {}
        for m in a.metrics:
            name, eq, val = m.partition("=")
            if not eq or not name:
                print(f"asha_hpc.report: '{m}' is not NAME=VALUE", file=sys.stderr)
                return 2
            metrics[name] = _value(val)
        rec = {"metrics": metrics} if a.step is None else {"step": a.step, "metrics": metrics}
    with open(path, "a") as f:
        f.write(json.dumps(rec) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

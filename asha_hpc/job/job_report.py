"""``python -m asha_hpc.report``: report metrics from a command entrypoint (any language).

    python -m asha_hpc.report val_loss=0.31 accuracy=0.9    # the segment's result
    python -m asha_hpc.report --step 5 loss=0.8             # a learning-curve point
    python -m asha_hpc.report --invalid "batch too large"   # reject these hyperparameters

It appends one JSON line to $ASHA_REPORT_FILE; a script may write those lines itself. The job
reads them back with ``read_report`` when the command has exited (jobmain.py). ``python -m
asha_hpc.job.job_report`` is the same command; ``asha_hpc.report`` is the name users call
(README, their shell scripts).

Lines: ``{"metrics": {...}}`` the segment's result (the last one counts), ``{"step": 10,
"metrics": {...}}`` a learning-curve point, ``{"invalid_hp": "why"}``, ``{"reached": 37}`` the
length the checkpoint the command left holds, ``{"ended_early": "why"}`` the command ended the
trial's training before the segment's length (it fails, with what it reported, not retried).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..protocol.metrics import plain_metrics


@dataclass
class ReportFile:
    """What a command trial reported for one segment (``read_report``)."""

    metrics: dict[str, Any] | None = None  # the segment's result (its last "metrics" line)
    points: list[tuple[Any, dict[str, Any]]] = field(default_factory=list)  # (step, metrics)
    invalid: str | None = None  # why the hyperparameters are invalid
    reached: int | None = None  # the length the command's checkpoint holds
    ended_early: str | None = None  # why the command ended the trial before the segment's end


def read_report(path: Path) -> ReportFile:
    """Read a command's report file (a missing one reported nothing). A line that is not a
    JSON object, or whose "metrics" is not an object, is ignored with one line on stderr
    naming the file and line; the rest still counts."""
    out = ReportFile()
    if not path.exists():
        return out
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except ValueError:
            print(f"asha_hpc: {path}:{n}: not JSON, ignored", file=sys.stderr)
            continue
        if not isinstance(rec, dict):
            print(f"asha_hpc: {path}:{n}: not a JSON object, ignored", file=sys.stderr)
            continue
        if isinstance(rec.get("reached"), int):  # the length its checkpoint holds
            out.reached = rec["reached"]
        got = rec.get("metrics", {})
        if not isinstance(got, dict):
            print(f"asha_hpc: {path}:{n}: \"metrics\" must be an object of name: value, "
                  f"ignored", file=sys.stderr)
            got = {}
        if "invalid_hp" in rec:
            out.invalid = str(rec["invalid_hp"])
        elif "ended_early" in rec:
            out.ended_early = str(rec["ended_early"])
        elif "step" in rec:
            out.points.append((rec["step"], got))
        elif "metrics" in rec:
            out.metrics = plain_metrics(got)
    return out


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

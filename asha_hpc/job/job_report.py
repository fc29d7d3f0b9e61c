"""``python -m asha_hpc.report``: report metrics from a command entrypoint (any language).

    python -m asha_hpc.report val_loss=0.31 accuracy=0.9    # the segment's result
    python -m asha_hpc.report --step 5 loss=0.8             # a learning-curve point
    python -m asha_hpc.report --invalid "batch too large"   # reject these hyperparameters
    python -m asha_hpc.report --saved ckpt-200 --reached 200   # a complete checkpoint entry
    python -m asha_hpc.report --saved . --reached 200          # the whole folder is complete

It appends one JSON line to $ASHA_REPORT_FILE; a script may write those lines itself. The job
follows the file while the command runs (``ReportReader``, jobmain.py): learning-curve points
reach the trial's curve within seconds; the rest counts when the command has exited. ``python -m
asha_hpc.job.job_report`` is the same command; ``asha_hpc.report`` is the name users call
(README, their shell scripts).

Lines: ``{"metrics": {...}}`` the segment's result (the last one counts), ``{"step": 10,
"metrics": {...}}`` a learning-curve point, ``{"invalid_hp": "why"}``, ``{"reached": 37}`` the
length the checkpoint the command left holds, ``{"ended_early": "why"}`` the command ended the
trial's training before the segment's length (after a "metrics" line the model is final and
its result stands for any promotion; without one the trial fails, not retried; either way
whatever the command's exit status),
``{"saved": "name", "reached": 37}`` the entry ``name`` of the checkpoint folder is complete
(if the command then fails, the trial keeps that entry as its checkpoint; ``"."``: the whole
folder as it is, which ``CommandTrial.save_checkpoint`` says once it has filled it), ``{"fatal": "why"}``
an error every trial would repeat (the search stops at once, as for a function's
FatalTrialError: what the framework callbacks raise when used wrongly).
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

WHOLE_FOLDER = "."  # {"saved": "."}: the checkpoint folder as a whole is complete


@dataclass
class ReportFile:
    """What a command trial reported for one segment (``read_report``)."""

    metrics: dict[str, Any] | None = None  # the segment's result (its last "metrics" line)
    points: list[tuple[Any, dict[str, Any]]] = field(default_factory=list)  # (step, metrics)
    invalid: str | None = None  # why the hyperparameters are invalid
    reached: int | None = None  # the length the command's checkpoint holds
    ended_early: str | None = None  # why the command ended the trial before the segment's end
    fatal: str | None = None  # an error every trial would repeat (a callback used wrongly)
    warnings: list[str] = field(default_factory=list)  # the code's mistakes (job/notes.py)
    # the newest entry of the checkpoint folder the command said is complete (WHOLE_FOLDER: all
    # of it), and the length it holds: the trial keeps it even if the command fails later
    saved: str | None = None
    saved_reached: int | None = None


class ReportReader:
    """Reads a command's report file while the command still writes it: each call takes the
    lines completed since the last one (a line still being written waits for its newline,
    unless ``final``), adds them to ``got`` and returns the learning-curve points among them,
    so the job can pass them on during a long segment. A line that is not a JSON object, or
    whose "metrics" is not an object, is ignored with one line on stderr naming the file and
    line; the rest still counts."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.got = ReportFile()
        self._offset = 0
        self._line = 0

    def read(self, final: bool = False) -> list[tuple[Any, dict[str, Any]]]:
        try:
            with open(self.path, "rb") as f:
                f.seek(self._offset)
                data = f.read()
        except FileNotFoundError:
            return []
        if not final:
            data = data[:data.rfind(b"\n") + 1]  # whole lines only
        self._offset += len(data)
        before = len(self.got.points)
        for line in data.decode(errors="replace").splitlines():
            self._line += 1
            self._add(line)
        return self.got.points[before:]

    def _add(self, line: str) -> None:
        if not line.strip():
            return
        where = f"asha_hpc: {self.path}:{self._line}:"
        try:
            rec = json.loads(line)
        except ValueError:
            print(f"{where} not JSON, ignored", file=sys.stderr)
            return
        if not isinstance(rec, dict):
            print(f"{where} not a JSON object, ignored", file=sys.stderr)
            return
        out = self.got
        if isinstance(rec.get("reached"), int):  # the length its checkpoint holds
            out.reached = rec["reached"]
        if "saved" in rec:
            name = rec["saved"]
            if not _entry_name(name) and name != WHOLE_FOLDER:
                print(f'{where} "saved" must name an entry of ASHA_CHECKPOINT_DIR (or be "." '
                      f'for all of it), ignored',
                      file=sys.stderr)
            else:
                out.saved = name
                out.saved_reached = rec["reached"] if isinstance(rec.get("reached"), int) else None
        got = rec.get("metrics", {})
        if not isinstance(got, dict):
            print(f'{where} "metrics" must be an object of name: value, ignored', file=sys.stderr)
            got = {}
        if "warning" in rec:  # AshaCallback's, in the command's process
            out.warnings.append(str(rec["warning"]))
        elif "invalid_hp" in rec:
            out.invalid = str(rec["invalid_hp"])
        elif "ended_early" in rec:
            out.ended_early = str(rec["ended_early"])
        elif "fatal" in rec:
            out.fatal = str(rec["fatal"])
        elif "step" in rec:
            out.points.append((rec["step"], got))
        elif "metrics" in rec:
            out.metrics = plain_metrics(got)


def append_report(path: Path | str, *records: dict[str, Any]) -> None:
    """Append lines to a command's report file: the one writer of its format (this command,
    the command-side Trial, the Determined shim). Values that are not JSON (numpy, 0-d
    tensors) go as their number, else as text."""
    with open(path, "a") as f:
        for r in records:
            f.write(json.dumps(r, default=json_value) + "\n")


def json_value(v: Any) -> Any:
    """A value JSON has no type for, as a report line or metadata holds it: numpy and 0-d
    tensors as their number, anything else as text."""
    return v.item() if hasattr(v, "item") else str(v)


def _entry_name(name: Any) -> bool:
    """Whether ``name`` names an entry directly in the checkpoint folder (nothing outside it)."""
    return isinstance(name, str) and name not in ("", ".", "..") and "/" not in name


def read_report(path: Path) -> ReportFile:
    """Read a whole report file at once (a missing one reported nothing)."""
    reader = ReportReader(path)
    reader.read(final=True)
    return reader.got


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
    ap.add_argument("--saved", metavar="ENTRY", help="ENTRY of $ASHA_CHECKPOINT_DIR is complete "
                    "('.': the whole folder): the trial keeps it even if the command fails later")
    ap.add_argument("--reached", type=int, metavar="N",
                    help="the length the checkpoint left (with --saved: the entry) holds")
    ap.add_argument("--ended-early", metavar="WHY",
                    help="the code ended the trial's training on purpose (a library's early "
                         "stopping); after the metrics, the model is final: its result stands")
    a = ap.parse_args(argv)
    path = os.environ.get("ASHA_REPORT_FILE")
    if not path:
        print("asha_hpc.report: ASHA_REPORT_FILE is not set: run this from a trial's command",
              file=sys.stderr)
        return 2
    if a.invalid is not None:
        rec: dict[str, Any] = {"invalid_hp": a.invalid}
    elif a.saved is not None:
        if not _entry_name(a.saved) and a.saved != WHOLE_FOLDER:
            print(f"asha_hpc.report: --saved {a.saved!r}: name an entry of $ASHA_CHECKPOINT_DIR "
                  f"(a file or folder directly in it), or '.' for all of it", file=sys.stderr)
            return 2
        folder = os.environ.get("ASHA_CHECKPOINT_DIR")
        if folder and not os.path.lexists(os.path.join(folder, a.saved)):
            there = sorted(os.listdir(folder)) if os.path.isdir(folder) else []
            print(f"asha_hpc.report: --saved {a.saved!r}: there is no such entry in "
                  f"$ASHA_CHECKPOINT_DIR ({folder}"
                  + (f"; it holds {', '.join(map(repr, there[:5]))}" if there else "; it is empty")
                  + "): write the checkpoint there first, then report it", file=sys.stderr)
            return 2
        rec = {"saved": a.saved, **({"reached": a.reached} if a.reached is not None else {})}
    else:
        metrics = {}
        for m in a.metrics:
            name, eq, val = m.partition("=")
            if not eq or not name:
                print(f"asha_hpc.report: '{m}' is not NAME=VALUE", file=sys.stderr)
                return 2
            metrics[name] = _value(val)
        rec = {"metrics": metrics} if a.step is None else {"step": a.step, "metrics": metrics}
        if not metrics and (a.reached is not None or a.ended_early is not None):
            rec = {}  # only the length, or only the end
        if a.reached is not None:
            rec["reached"] = a.reached
    lines = [rec] if rec else []
    if a.ended_early is not None and a.invalid is None and a.saved is None:
        lines.append({"ended_early": a.ended_early})  # after the metrics: a final model's
    append_report(path, *lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())

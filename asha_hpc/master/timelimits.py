"""Time limits that fit each segment (``slurm.timeout_min: auto``).

Pure: no I/O, no clock, no scheduler calls. ``SegmentTimes`` is fed from the journal by the
state (``on_intent`` / ``on_result`` / ``on_job_dead``), so ``replay(journal)`` rebuilds it and
``status`` shows the same numbers the master planned with. ``plan_limit`` turns it into the
time limit of one segment attempt:

    estimate  = overhead + seconds_per_unit x units left (target - length its checkpoint holds)
    limit_min = ceil((estimate x safety + signal_delay_s + SIGNAL_EARLY_S) / 60), at least 1,
                capped by the partition's MaxTime, or a shorter QOS or association MaxWall
                (backends/slurm_limits.py): a segment that does not fit is split.

- **seconds per unit**: the median of ``(run time - overhead) / units trained`` over the
  segments that completed at the same target length (rung), or over all of them while that rung
  has none; an attempt stopped by its time limit (USR2, or TIMEOUT without a result) is a lower
  bound for its rung, and the trial's own slowest rate there is never undercut;
- **overhead** (job start-up, loading, checkpointing): the intercept of run time against units
  trained (Theil-Sen: the median of pairwise slopes, then the median residual), or the median
  measured start-up (job start to trial code) while the units trained are all equal;
- **run time**: job start (``ASHA_JOB_T0``, set first thing in the batch script) to the result;
- the job must finish before Slurm's warning signal, which comes ``signal_delay_s`` before the
  limit and up to ``SIGNAL_EARLY_S`` earlier than that (``sbatch --signal``).

Before any measurement the limit is ``first_guess_min``. A fixed ``timeout_min`` (or an entry of
``timeout_min_per_rung``) is used as given, capped by MaxTime. The model is deliberately simple:
one rate per rung, not per hyperparameter; a trial slower than its rung's median is protected by
its own lower bound after its first time-limit stop.

``rung`` below is a *rung level*: the position of a target length among all rung lengths of the
search, sorted (``rung_levels``); ``timeout_min_per_rung`` and ``slurm.per_rung`` are indexed by
it, the last entry applying to deeper rungs.
"""
from __future__ import annotations

import math
import re
import statistics
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from ..protocol import signals
from ..protocol.metrics import finite_float

#: Slurm may send the ``--signal`` warning up to this much before it was asked for
SIGNAL_EARLY_S = 60.0
#: at most this many recent measurements feed the overhead fit (pairs grow quadratically)
FIT_WINDOW = 60
#: rates are medians over this many recent runs (per rung, and over all)
RATE_WINDOW = 500
#: a stop by the time limit: the warning signal (``--signal=USR2@...``)
TIME_LIMIT_SIGNALS = (signals.TIME_LIMIT,)


@dataclass
class Run:
    """One finished attempt of one segment, as the model sees it."""

    trial: int
    target: int  # the segment's target length (its rung)
    planned_units: float | None  # units the attempt was asked to train (None: unknown)
    units: float | None  # units it trained (None: unknown)
    duration_s: float  # job start to result (or the time limit, for a TIMEOUT)
    status: str  # completed | interrupted | timeout
    time_limited: bool  # stopped by its time limit (warning signal or TIMEOUT)
    asked_min: int | None = None
    startup_s: float | None = None  # job start -> trial code
    split: bool = False


@dataclass
class Limit:
    """The time limit planned for one segment attempt."""

    minutes: int | None  # None: the backend's default
    split: bool = False  # the estimate does not fit MaxTime: the job gets MaxTime and stops there
    estimate_s: float | None = None  # expected run time, before the safety factor
    basis: str = ""  # how it was chosen (journal, status)

    def record(self) -> dict[str, Any]:
        """Fields for the journal's intent record."""
        d: dict[str, Any] = {"timeout_min": self.minutes, "split": self.split, "basis": self.basis}
        if self.estimate_s is not None:
            d["estimate_s"] = round(self.estimate_s, 1)
        return d


class SegmentTimes:
    """Measured run times and asked time limits of an experiment, rebuilt from its journal."""

    def __init__(self) -> None:
        self.runs: list[Run] = []
        self.asked: dict[int, list[int]] = defaultdict(list)  # target -> minutes asked
        self.splits: dict[int, int] = defaultdict(int)  # target -> attempts planned as splits
        self._reached: dict[int, int | None] = {}  # trial -> length its checkpoint holds
        self._from: dict[int, int | None] = {}  # trial -> length the live attempt starts at
        self._plan: dict[int, tuple[int | None, bool]] = {}  # trial -> (minutes, split)
        self._checkpoint: dict[int, str | None] = {}
        self._cache: tuple[int, float] | None = None  # (len(runs), overhead)
        self._by_target: dict[int, list[Run]] = defaultdict(list)
        self._by_trial: dict[tuple[int, int], list[Run]] = defaultdict(list)
        self._rate_cache: tuple[int, dict[int, tuple[float, int]], tuple[float, int] | None] | None = None

    # ------------------------------------------------------------------ feeding (state)
    def on_intent(self, trial: int, target: int, rec: dict[str, Any]) -> None:
        self._from[trial] = self._reached.get(trial, 0)
        asked = finite_float(rec.get("timeout_min"))
        minutes = int(asked) if asked is not None else None
        split = bool(rec.get("split"))
        self._plan[trial] = (minutes, split)
        if minutes is not None:
            self.asked[target].append(minutes)
            if split:
                self.splits[target] += 1

    def planned(self, trial: int) -> tuple[int | None, bool]:
        """(minutes, split) of the trial's latest intent."""
        return self._plan.get(trial, (None, False))

    def units_left(self, trial: int, target: int, length: int) -> int:
        """Units the next attempt must train: target - the length its checkpoint holds (the
        last completed length when that is unknown)."""
        start = self._reached.get(trial)
        if start is None:
            start = length
        return max(target - start, 0)

    def made_progress(self, trial: int, rec: dict[str, Any]) -> bool:
        """True if an interrupted attempt left a newer checkpoint (or said it got further)."""
        ckpt = rec.get("checkpoint")
        reached, start = finite_float(rec.get("reached")), self._from.get(trial)
        if reached is not None and start is not None:
            return reached > start
        return bool(ckpt) and ckpt != self._checkpoint.get(trial)

    def on_result(self, trial: int, target: int, rec: dict[str, Any]) -> None:
        status = rec.get("status")
        start = self._from.get(trial, self._reached.get(trial, 0))
        ended, started = finite_float(rec.get("ended")), finite_float(rec.get("started"))
        t0 = finite_float(rec.get("job_started"))
        if t0 is None or started is None or t0 > started:
            t0 = started
        minutes, split = self._plan.get(trial, (None, False))
        planned = target - start if start is not None else None
        progressed = self.made_progress(trial, rec)
        if rec.get("checkpoint"):
            self._checkpoint[trial] = rec["checkpoint"]
        if status == "completed":
            self._reached[trial] = target
            units: float | None = planned
            limited = False
        elif status == "interrupted":
            reached = finite_float(rec.get("reached"))
            if reached is not None:
                self._reached[trial] = int(reached)
            elif progressed:
                self._reached[trial] = None  # it checkpointed somewhere in between
            units = reached - start if reached is not None and start is not None else None
            limited = rec.get("stop_reason") in TIME_LIMIT_SIGNALS
        else:  # error / invalid_hp: nothing about speed; where it stands is unknown
            if progressed:
                self._reached[trial] = None
            return
        if ended is None or t0 is None:
            return
        self.add(Run(trial=trial, target=target, planned_units=planned, units=units,
                             duration_s=max(ended - t0, 0.0), status=status,
                             time_limited=limited, asked_min=minutes,
                             startup_s=(started - t0) if started is not None else None,
                             split=split))

    def on_job_dead(self, trial: int, target: int, rec: dict[str, Any]) -> None:
        """A job without a result: its checkpoint is unknown; a TIMEOUT ran for its limit."""
        start = self._from.get(trial, self._reached.get(trial, 0))
        self._reached[trial] = None
        minutes, split = self._plan.get(trial, (None, False))
        if rec.get("state") == "timeout" and minutes:
            self.add(Run(trial=trial, target=target,
                         planned_units=target - start if start is not None else None,
                         units=None, duration_s=60.0 * minutes, status="timeout",
                         time_limited=True, asked_min=minutes, split=split))

    def add(self, run: Run) -> None:
        """One measured attempt (``on_result`` / ``on_job_dead`` call this; tests may too)."""
        self.runs.append(run)
        self._by_target[run.target].append(run)
        self._by_trial[(run.trial, run.target)].append(run)

    # ------------------------------------------------------------------ model
    def _samples(self) -> list[Run]:
        recent = self.runs[-4 * FIT_WINDOW:]
        return [r for r in recent if r.units is not None and r.units > 0 and r.duration_s > 0]

    def overhead_s(self) -> float:
        """Start-up + loading + checkpointing per job (see module doc)."""
        if self._cache is not None and self._cache[0] == len(self.runs):
            return self._cache[1]
        samples = self._samples()[-FIT_WINDOW:]
        startups = [r.startup_s for r in self.runs[-FIT_WINDOW:] if r.startup_s is not None]
        measured = statistics.median(startups) if startups else 0.0
        fit = theil_sen_intercept([(float(r.units), r.duration_s) for r in samples])  # type: ignore[arg-type]
        ovh = measured if fit is None else max(fit, measured)
        if samples:
            ovh = min(ovh, min(r.duration_s for r in samples))
        ovh = max(ovh, 0.0)
        self._cache = (len(self.runs), ovh)
        return ovh

    def _rate_of(self, r: Run, ovh: float) -> float | None:
        if r.units is not None and r.units > 0:
            return max(r.duration_s - ovh, 0.0) / r.units
        if r.time_limited and r.planned_units:  # did not finish them in that time
            return max(r.duration_s - ovh, 0.0) / r.planned_units
        return None

    def _rates(self) -> tuple[dict[int, tuple[float, int]], tuple[float, int] | None]:
        """({target: (median rate, n)}, (median over all, n)) over the recent runs, cached
        until the next run."""
        if self._rate_cache is not None and self._rate_cache[0] == len(self.runs):
            return self._rate_cache[1], self._rate_cache[2]
        ovh = self.overhead_s()
        by: dict[int, list[float]] = {}
        for tgt, runs in self._by_target.items():
            xs = [x for r in runs[-RATE_WINDOW:] for x in [self._rate_of(r, ovh)] if x is not None]
            if xs:
                by[tgt] = xs
        every = [x for r in self.runs[-RATE_WINDOW:] for x in [self._rate_of(r, ovh)] if x is not None]
        per = {t: (statistics.median(xs), len(xs)) for t, xs in by.items()}
        overall = (statistics.median(every), len(every)) if every else None
        self._rate_cache = (len(self.runs), per, overall)
        return per, overall

    def rate(self, target: int, trial: int | None = None) -> tuple[float, str] | None:
        """(seconds per unit, basis) for a segment to ``target``, or None before any
        measurement."""
        per, overall = self._rates()
        if target in per:
            rate, n = per[target]
            basis = f"rung {target} ({n} runs)"
        elif overall is not None:
            rate, n = overall
            basis = f"all rungs ({n} runs)"
        else:
            return None
        if trial is not None:  # never below the trial's own measured or lower-bound rate here
            ovh = self.overhead_s()
            own = [x for r in self._by_trial.get((trial, target), ())
                   for x in [self._rate_of(r, ovh)] if x is not None]
            if own and max(own) > rate:
                rate, basis = max(own), f"trial {trial}'s own runs to {target}"
        return rate, basis

    def estimate_s(self, target: int, units: float, trial: int | None = None
                   ) -> tuple[float, str] | None:
        """(expected seconds for a job training ``units`` toward ``target``, basis) or None."""
        r = self.rate(target, trial)
        if r is None:
            return None
        return self.overhead_s() + r[0] * max(units, 0.0), r[1]

    # ------------------------------------------------------------------ status
    def table(self, levels: Sequence[int] = ()) -> list[dict[str, Any]]:
        """Per target length: time limits asked and run times seen (``status``'s
        ``time_limits``)."""
        if not self.asked:  # the backend took no time limits
            return []
        targets = sorted(set(self.asked) | set(self._by_target))
        out = []
        for tgt in targets:
            asked = self.asked.get(tgt, [])
            runs = self._by_target.get(tgt, [])
            done = [r.duration_s for r in runs if r.status == "completed"]
            seen = [r.duration_s for r in runs if r.status != "timeout"]
            out.append({
                "rung": levels.index(tgt) if tgt in levels else None,
                "length": tgt,
                "asked": len(asked),
                "asked_min": sorted(set(asked)),
                "asked_min_median": statistics.median(asked) if asked else None,
                "asked_min_last": asked[-1] if asked else None,
                "run_s_median": round(statistics.median(done), 1) if done else None,
                "run_s_max": round(max(seen), 1) if seen else None,
                "completed": len(done),
                "time_limited": sum(1 for r in runs if r.time_limited),
                "splits": self.splits.get(tgt, 0),
            })
        return out


def theil_sen_intercept(points: Sequence[tuple[float, float]]) -> float | None:
    """Intercept of the Theil-Sen line through ``(units, seconds)`` points, or None when the
    units do not vary (fewer than two distinct values) or there are fewer than three points."""
    if len(points) < 3 or len({u for u, _ in points}) < 2:
        return None
    slopes = [(d2 - d1) / (u2 - u1) for i, (u1, d1) in enumerate(points)
              for u2, d2 in points[i + 1:] if u2 != u1]
    slope = max(statistics.median(slopes), 0.0)
    return statistics.median(d - slope * u for u, d in points)


# ----------------------------------------------------------------------------- planning
def rung_levels(rung_lengths: Iterable[Iterable[int]]) -> list[int]:
    """All rung lengths of the search (over brackets), sorted: a rung level is an index here."""
    return sorted({int(x) for b in rung_lengths for x in b})


def rung_level(levels: Sequence[int], target: int) -> int:
    """The rung level of a target length (the first level at or above it)."""
    for i, x in enumerate(levels):
        if target <= x:
            return i
    return max(len(levels) - 1, 0)


def per_rung(values: Sequence[Any] | None, level: int) -> Any:
    """``values[level]``, the last entry for deeper rungs, None without a list."""
    if not values:
        return None
    return values[min(level, len(values) - 1)]


def limit_minutes(seconds: float) -> int:
    return max(1, int(math.ceil(seconds / 60.0 - 1e-9)))


def plan_limit(times: SegmentTimes, slurm: Any, *, trial: int, target: int, units: float,
               level: int, max_time_min: int | None, cap_source: str = "MaxTime") -> Limit:
    """The time limit of the next attempt of ``trial``'s segment to ``target`` (``units`` left
    to train). ``slurm``: a SlurmConfig (timeout_min, timeout_min_per_rung, first_guess_min,
    time_safety_factor, signal_delay_s). ``max_time_min``: the longest limit a job may ask for
    (the partition's MaxTime, or a QOS's MaxWall: ``cap_source``), None for no limit."""
    fixed = per_rung(getattr(slurm, "timeout_min_per_rung", None), level)
    if fixed is None:
        fixed = slurm.timeout_min
    if fixed == "auto":
        fixed = None
    est: float | None = None
    if fixed is not None:
        minutes, basis = int(fixed), "fixed"
    else:
        e = times.estimate_s(target, units, trial)
        if e is None:
            minutes, basis = int(slurm.first_guess_min), "first guess"
        else:
            est, basis = e
            need = est * float(slurm.time_safety_factor) + float(slurm.signal_delay_s) + SIGNAL_EARLY_S
            minutes = limit_minutes(need)
    split = False
    if max_time_min is not None and minutes > max_time_min:
        split = est is not None or fixed is not None  # known not to fit: planned
        minutes, basis = max_time_min, f"{basis}; capped at {cap_source} {max_time_min} min"
    return Limit(minutes=minutes, split=split, estimate_s=est, basis=basis)


_DUR = re.compile(r"^(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?$")


def parse_slurm_minutes(text: str) -> int | None:
    """A Slurm time limit as ``sinfo %l`` / ``scontrol`` print it -> whole minutes; None for
    INFINITE / UNLIMITED (no limit). Forms: ``MM``, ``MM:SS``, ``HH:MM:SS``, ``D-HH``,
    ``D-HH:MM``, ``D-HH:MM:SS``. Raises ValueError for anything else."""
    s = text.strip()
    if s.lower() in ("infinite", "unlimited", "none", "n/a"):
        return None
    m = _DUR.match(s)
    if m is None:
        raise ValueError(f"not a Slurm time limit: {text!r}")
    days, a, b, c = m.groups()
    if days is not None:  # D-HH[:MM[:SS]]
        h, mi, sec = int(a), int(b or 0), int(c or 0)
        total_s = ((int(days) * 24 + h) * 60 + mi) * 60 + sec
    elif c is not None:  # HH:MM:SS
        total_s = (int(a) * 60 + int(b)) * 60 + int(c)
    elif b is not None:  # MM:SS
        total_s = int(a) * 60 + int(b)
    else:  # MM
        total_s = int(a) * 60
    return total_s // 60  # MaxTime: round down (never ask for more than allowed)


def parse_partition_limits(sinfo_out: str) -> tuple[dict[str, int | None], str | None]:
    """``sinfo -h -o '%P %l'`` -> ({partition: MaxTime minutes or None}, default partition)."""
    limits: dict[str, int | None] = {}
    default = None
    for line in sinfo_out.splitlines():
        parts = line.split()
        if len(parts) < 2:
            continue
        name, lim = parts[0], parts[1]
        if name.endswith("*"):
            name = name[:-1]
            default = name
        try:
            limits[name] = parse_slurm_minutes(lim)
        except ValueError:
            limits[name] = None
    return limits, default


__all__ = ["SegmentTimes", "Run", "Limit", "plan_limit", "rung_levels", "rung_level",
           "per_rung", "parse_slurm_minutes", "parse_partition_limits", "theil_sen_intercept",
           "SIGNAL_EARLY_S"]

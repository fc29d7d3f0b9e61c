"""ASHA brackets (spec section 2) and the searcher that runs several of them side by side.

``BracketSearcher`` is the one state machine behind every searcher: ``adaptive_asha`` is several
brackets (section 1), ``async_halving`` one, and ``random``/``grid``/``single`` one bracket with a
single rung at ``max_length`` (simple.py). Pure and deterministic: no I/O, no clock, no global
random state; hyperparameters come from a private numpy Generator seeded with the experiment
seed, one draw per created trial in creation order.

Rung order: internally lower is better (the metric is negated when ``smaller_is_better`` is
false); NaN, and a trial that failed for good, are the worst results and are never promoted;
ties go to the earlier arrival (``arrival`` is a searcher-wide counter). A result is one Python
int, ``key = (ordered(metric) << 80) | (arrival << 40) | trial``, where ``ordered`` maps floats
to ints in the same order (-0.0 == 0.0) and a worst result gets ``2**64``, above every float
including inf. Comparing two keys is then one int comparison, which keeps the sorted rungs fast.

Whose decisions (``rule``, the config's ``searcher.asha_rule``): ``paper`` is the above;
``determined_0.37`` takes Determined 0.37's ``promotionsAsync`` (a result promotes itself or
the entry at the rung's old boundary index, at most one per result, only when it arrives; a
failed trial chosen so enters the next rung as a worst result); ``determined_0.38`` is the
stopping variant with Determined 0.38's ties (a later arrival ranks before equal results).

Compute cap (``searcher.max_compute``, optional): the units of every segment started are
counted; a promotion or a new trial whose segment would pass the cap is not made, and a new
trial is made only while ``_Bracket.expected_units`` of every bracket (the others taken to the
same share of their trials) fits. Without a cap, or while it does not bind, the decisions are
exactly those above.

Cost per event: O(R log n) for R rungs and n trials -- each rung keeps its keys in a
``SortedKeys`` (insert and rank in O(log n)) and, in the promotion variant, a heap of its
unpromoted entries (lazy deletion) whose best is checked against the top ``floor(k/d)``; a
rung whose check said "nothing" is not asked again until its results change.
"""
from __future__ import annotations

import heapq
import importlib
import math
import struct
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from .base import (
    Action,
    BracketInfo,
    CreateTrial,
    Event,
    FinishTrial,
    ResumeTrial,
    RungInfo,
    SearchDone,
    SegmentCompleted,
    TrialFailed,
    TrialInvalid,
    TrialRetried,
)
from .brackets import bracket_plan
from .sortedlist import SortedKeys

if TYPE_CHECKING:  # the model samplers are imported only when a config asks for one
    from .model_sampler import ModelSampler

# trial statuses inside the searcher
RUNNING = "running"  # in flight: training toward ``target`` (holds a slot)
PAUSED = "paused"  # completed a rung below the top, waiting for a promotion (promotion variant)
TOP = "top"  # completed the top rung
STOPPED = "stopped"  # ended early (stop_once, or never promoted when its bracket finished)
FAILED = "failed"  # failed for good / cancelled
INVALID = "invalid"  # its hyperparameters were rejected

_D = struct.Struct("<d")
_Q = struct.Struct("<q")
_U = struct.Struct("<Q")
_SIGN = 1 << 63
_LOW63 = _SIGN - 1
_WORST = 1 << 64  # the ordered value of a worst result: above every float
_MASK40 = (1 << 40) - 1
_PROMOTABLE_BELOW = _WORST << 80

# whose decisions a bracket takes (``searcher.asha_rule``)
PAPER = "paper"  # the ASHA paper: any unpromoted entry in a rung's top floor(k/d) goes up
DETERMINED_037 = "determined_0.37"  # Determined <= 0.37: at most one promotion per result
DETERMINED_038 = "determined_0.38"  # Determined 0.38: stopping-based, later arrivals win ties
RULES = (PAPER, DETERMINED_037, DETERMINED_038)


def make_key(metric: float, arrival: int, trial: int) -> int:
    """The rung key of a result (``metric`` internal: lower is better; NaN: worst)."""
    if arrival > _MASK40 or trial > _MASK40:
        raise OverflowError("more than 2**40 results or trials")
    if metric != metric:  # NaN
        o = _WORST
    else:
        b = _Q.unpack(_D.pack(metric + 0.0))[0]  # + 0.0: -0.0 becomes 0.0
        o = (b if b >= 0 else -(b & _LOW63) - 1) + _SIGN
    return (o << 80) | (arrival << 40) | trial


def worst_key(arrival: int, trial: int) -> int:
    return (_WORST << 80) | (arrival << 40) | trial


def key_metric(key: int) -> float | None:
    """The internal metric of a key; None for a worst result."""
    o = key >> 80
    if o == _WORST:
        return None
    o -= _SIGN
    bits = o if o >= 0 else (-(o + 1)) | _SIGN
    return _D.unpack(_U.pack(bits))[0]


def key_arrival(key: int) -> int:
    return (key >> 40) & _MASK40


def key_trial(key: int) -> int:
    return key & _MASK40


def _jnum(x: float | None) -> Any:
    """A float as canonical JSON (inf as a string, None stays None)."""
    if x is not None and math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return x


class _Rung:
    __slots__ = ("length", "keys", "entry", "promoted", "heap", "idle", "failed")

    def __init__(self, length: int) -> None:
        self.length = length
        self.keys = SortedKeys()  # every result's key, sorted
        self.entry: dict[int, int] = {}  # trial -> its key
        self.promoted: set[int] = set()  # trials that went on from here
        self.heap: list[int] = []  # keys of unpromoted promotable entries (lazy deletion)
        self.idle = False  # True: nothing promotable, and nothing changed since we looked
        self.failed: set[int] = set()  # trials whose entry is their failure here, not a result

    def add(self, trial: int, key: int) -> None:
        self.entry[trial] = key
        self.keys.add(key)
        self.idle = False

    def remove(self, trial: int) -> None:
        key = self.entry.pop(trial, None)
        if key is not None:
            self.keys.remove(key)
            self.promoted.discard(trial)
            self.failed.discard(trial)
            self.idle = False


class _Bracket:
    """One ASHA bracket's bookkeeping. The logic lives in BracketSearcher."""

    __slots__ = ("index", "num_rungs", "max_trials", "concurrency", "units", "rungs", "running",
                 "paused", "created", "done", "seg")

    def __init__(self, index: int, info: BracketInfo) -> None:
        self.index = index
        self.num_rungs = info.num_rungs
        self.max_trials = info.max_trials
        self.concurrency = info.max_concurrent_trials
        self.units = list(info.rung_lengths)
        self.rungs = [_Rung(u) for u in self.units]
        self.running: dict[int, int] = {}  # trial -> rung index it trains toward
        self.paused: set[int] = set()
        self.created = 0  # trials created, not counting invalid ones (when they are replaced)
        self.done = False
        # the units of the segment toward rung r (``max_compute``)
        self.seg = [u - (self.units[r - 1] if r else 0) for r, u in enumerate(self.units)]

    def expected_units(self, divisor: float, extra: int) -> int:
        """The units this bracket is expected to train in all if ``extra`` more trials are
        created and no more after them: every trial so far trains its first segment, and from
        each rung go on the trials already promoted or the top 1/d of the rung's final
        results, whichever are more (what the floor rule promotes once a rung is complete)."""
        n = self.created + extra
        total = 0
        for r, seg in enumerate(self.seg):
            total += n * seg
            if r + 1 < self.num_rungs:
                n = max(len(self.rungs[r].promoted), int(n / divisor))
        return total


class BracketSearcher:
    """Independent ASHA brackets sharing one trial-id counter and one hyperparameter stream.

    Query API for the master (besides the Searcher protocol):
        trial_target(trial_id) -> length the in-flight trial trains toward, or None
        is_paused(trial_id)    -> True while it waits for a promotion
        may_be_promoted(trial_id) -> False once a paused trial can never be promoted
        held_by_cap(trial_id)  -> True for a stopped trial max_compute kept from promotion
        trial_status(trial_id) -> running | paused | top | stopped | failed | invalid, or None
        trial_bracket(trial_id) -> its bracket index, or None
    """

    name = "asha"

    def __init__(self, brackets: list[BracketInfo], divisor: float, smaller_is_better: bool,
                 stop_once: bool, next_hparams: Callable[[int], dict[str, Any]],
                 replace_invalid: bool = True, rng: Any = None, model: Any = None,
                 rule: str = PAPER, max_compute: int | None = None) -> None:
        """``next_hparams(i)`` gives the hyperparameters of the i-th created trial (0-based, all
        brackets, invalid ones included); ``rng`` (if any) is part of the snapshot. ``model``
        (a ``TPESampler``, optional) is told every result and then draws the trials itself.
        ``rule`` (see ``RULES``): whose promotion decisions to take. ``max_compute`` (units of
        length summed over every segment started, optional): no segment starts that would take
        the total past it, and no trial is created while the segments started plus the
        promotions the trials so far are expected to earn would not leave room for it."""
        if not brackets:
            raise ValueError("a searcher needs at least one bracket")
        for b in brackets:
            if b.num_rungs < 1 or b.max_trials < 0 or b.max_concurrent_trials < 1:
                raise ValueError(f"bad bracket {b}")
            if len(b.rung_lengths) != b.num_rungs:
                raise ValueError(f"bracket {b}: need one length per rung")
        self._infos = [BracketInfo(b.num_rungs, b.max_trials, b.max_concurrent_trials,
                                   list(b.rung_lengths)) for b in brackets]
        self._b = [_Bracket(i, info) for i, info in enumerate(self._infos)]
        self.divisor = float(divisor)
        self.sign = 1.0 if smaller_is_better else -1.0
        if rule not in RULES:
            raise ValueError(f"unknown rule {rule!r}; one of {', '.join(RULES)}")
        self.rule = rule
        self.stop_once = bool(stop_once) or rule == DETERMINED_038
        if max_compute is not None and max_compute < 1:
            raise ValueError(f"max_compute must be >= 1, got {max_compute}")
        self.max_compute = max_compute
        self._committed = 0  # units of every segment started (a failed one counts whole)
        # of which what ``_Bracket.expected_units`` does not count: retried segments, and what
        # trials trained before they were found invalid
        self._outside = 0
        self.replace_invalid = replace_invalid
        self._next_hparams = next_hparams
        self._rng = rng
        self._model = model
        if model is not None:
            self._next_hparams = lambda i: model.sample(i + 1)
        self._next_id = 1
        self._arrival = 0
        self._status: dict[int, str] = {}
        self._bracket_of: dict[int, int] = {}
        self._started = False
        self._done = False

    # ------------------------------------------------------------------ protocol
    @property
    def done(self) -> bool:
        """True once SearchDone has been emitted."""
        return self._done

    def start(self) -> list[Action]:
        if self._started:
            raise RuntimeError("start() called twice")
        self._started = True
        out: list[Action] = []
        for b in self._b:
            self._fill(b, out)
        for b in self._b:
            self._check_bracket_done(b, out)
        return out

    def on_event(self, event: Event) -> list[Action]:
        if not self._started:
            raise RuntimeError("on_event() before start()")
        tid = event.trial_id
        status = self._status.get(tid)
        if status is None:
            raise ValueError(f"{event}: unknown trial {tid}")
        b = self._b[self._bracket_of[tid]]
        out: list[Action] = []
        if isinstance(event, SegmentCompleted):
            if status != RUNNING:
                raise ValueError(f"{event}: trial {tid} is {status}, not training")
            r = b.running[tid]
            if event.length != b.units[r]:
                raise ValueError(f"{event}: trial {tid} trains toward {b.units[r]}, not {event.length}")
            if not event.trained:
                self._committed -= b.seg[r]
            self._completed(b, tid, r, float(event.metric), out)
        elif isinstance(event, TrialFailed):
            if status == RUNNING:
                r = b.running.pop(tid)
                key = worst_key(self._order(), tid)
                self._status[tid] = FAILED
                if self.rule == DETERMINED_037:  # a failure arrives like a result (worst)
                    self._determined_arrival(b, r, tid, key, out)
                else:
                    b.rungs[r].add(tid, key)
                b.rungs[r].failed.add(tid)
                if self._model is not None:
                    self._model.observe(tid, b.units[r], None)
            elif status == PAUSED:  # cancelled while waiting: keep its result, never promote
                b.paused.discard(tid)
            else:
                raise ValueError(f"{event}: trial {tid} is already {status}")
            self._status[tid] = FAILED
            self._fill(b, out)
        elif isinstance(event, TrialInvalid):
            if status == RUNNING:
                self._committed -= b.seg[b.running.pop(tid)]  # it trained nothing
                if self._model is not None:
                    self._model.reject(tid)
            elif status == PAUSED:
                b.paused.discard(tid)
            else:
                raise ValueError(f"{event}: trial {tid} is already {status}")
            trained = max((rung.length for rung in b.rungs if tid in rung.entry), default=0)
            # a replaced trial leaves the bracket's count; one not replaced still counts its
            # first segment there
            self._outside += trained if self.replace_invalid or not trained else trained - b.seg[0]
            for rung in b.rungs:
                rung.remove(tid)
            self._status[tid] = INVALID
            if self.replace_invalid:
                b.created -= 1
            self._fill(b, out)
        elif isinstance(event, TrialRetried):
            if status != FAILED or event.length not in b.units:
                raise ValueError(f"{event}: trial {tid} is {status}, not failed")
            r = b.units.index(event.length)
            for rung in b.rungs[r:]:  # its failure (a worst result), where it entered
                rung.remove(tid)
            self._committed += b.seg[r]  # a retry is never refused for compute
            self._outside += b.seg[r]
            b.running[tid] = r
            self._status[tid] = RUNNING
            b.done = False
            self._done = False
            out.append(ResumeTrial(tid, b.units[r]))
        else:
            raise TypeError(f"not an event: {event!r}")
        self._check_bracket_done(b, out)
        return out

    # ------------------------------------------------------------------ queries
    def trial_target(self, trial_id: int) -> int | None:
        """The length an in-flight trial trains toward; None if it is not in flight."""
        br = self._bracket_of.get(trial_id)
        if br is None:
            return None
        b = self._b[br]
        r = b.running.get(trial_id)
        return None if r is None else b.units[r]

    def is_paused(self, trial_id: int) -> bool:
        return self._status.get(trial_id) == PAUSED

    def may_be_promoted(self, trial_id: int) -> bool:
        """False once a paused trial can never be promoted, whatever arrives later: its rank in
        its rung can only grow, and no rung ever holds more results than the bracket has
        trials, so a rank of floor(max_trials / d) or worse is hopeless. (Upper rungs are not
        bounded tighter: a promoted entry pushed out of the top by later arrivals lets another
        go up too.) Lets the master free hopeless trials' checkpoints before the search ends."""
        if self._status.get(trial_id) != PAUSED:
            return False
        b = self._b[self._bracket_of[trial_id]]
        bound = math.floor(b.max_trials / self.divisor)
        for rung in b.rungs[:-1]:
            key = rung.entry.get(trial_id)
            if key is not None and trial_id not in rung.promoted:
                return key < _PROMOTABLE_BELOW and rung.keys.rank(key) < bound
        return False

    def held_by_cap(self, trial_id: int) -> bool:
        """True for a trial stopped unpromoted that the paper's rule promotes: ``max_compute``
        refused its next segment. A raised cap (``set_max_compute``) continues it, so its
        checkpoint is worth keeping."""
        if self.max_compute is None or self.rule != PAPER:
            return False
        at = self._stopped_at(trial_id)
        return at is not None and self._in_top(at[0].rungs[at[1]], at[2])

    def _stopped_at(self, trial_id: int) -> tuple[_Bracket, int, int] | None:
        """(bracket, rung, key) of a trial stopped unpromoted below its top rung, with a
        result that may be promoted; None for any other (stop_once stops are decisions)."""
        if self.stop_once or self._status.get(trial_id) != STOPPED:
            return None
        b = self._b[self._bracket_of[trial_id]]
        r = max((i for i, rung in enumerate(b.rungs) if trial_id in rung.entry), default=None)
        if r is None or r == b.num_rungs - 1 or trial_id in b.rungs[r].promoted:
            return None
        key = b.rungs[r].entry[trial_id]
        return (b, r, key) if key < _PROMOTABLE_BELOW else None

    def trial_status(self, trial_id: int) -> str | None:
        return self._status.get(trial_id)

    def trial_bracket(self, trial_id: int) -> int | None:
        return self._bracket_of.get(trial_id)

    def brackets(self) -> list[BracketInfo]:
        return [BracketInfo(b.num_rungs, b.max_trials, b.max_concurrent_trials, list(b.rung_lengths))
                for b in self._infos]

    def rungs(self) -> list[RungInfo]:
        out = []
        for b in self._b:
            for i, rung in enumerate(b.rungs):
                best = None
                if rung.keys:
                    m = key_metric(rung.keys.first())
                    if m is not None:
                        best = self.sign * m + 0.0
                out.append(RungInfo(bracket=b.index, rung=i, length=rung.length,
                                    completed=len(rung.keys), promoted=len(rung.promoted),
                                    best_metric=best, failed=len(rung.failed)))
        return out

    def take_sampled(self) -> dict[int, dict[str, Any]]:
        """Configurations a model drew since the last call, by trial id: the master journals
        them (``sampled`` records) so that replay hands them back instead of fitting again."""
        return self._model.take_fresh() if self._model is not None else {}

    def preload_sampled(self, configs: dict[int, dict[str, Any]]) -> None:
        """Journaled model draws (replay): those trials get these configurations unfitted."""
        if self._model is not None:
            self._model.preload(configs)

    def warm_start(self, trials: list[dict[str, Any]]) -> None:
        """Results of an earlier search (``searcher.warm_start``, a ``warm_start`` record) for
        the model sampler to fit on alongside this search's: ``{"hparams", "losses": [[length,
        loss or None], ...]}`` per trial, lower is better. Before any trial is created."""
        if self._model is not None:
            self._model.prior(trials)

    def model_fit_needs(self) -> tuple[int, int, int | None] | None:
        """The model sampler's ``fit_needs`` (None without one)."""
        return self._model.fit_needs() if self._model is not None else None

    def in_flight(self, bracket: int | None = None) -> int:
        """Trials in flight (in one bracket, or in all)."""
        if bracket is not None:
            return len(self._b[bracket].running)
        return sum(len(b.running) for b in self._b)

    def snapshot(self) -> dict[str, Any]:
        """Canonical JSON-able state (equal states <=> equal snapshots)."""
        rng = None
        if self._rng is not None:
            rng = self._rng.bit_generator.state
        brackets = []
        for b in self._b:
            rungs = []
            for rung in b.rungs:
                rungs.append([[key_trial(k), _jnum(key_metric(k)), key_arrival(k),
                               key_trial(k) in rung.promoted] for k in rung.keys])
            brackets.append({"created": b.created, "done": b.done,
                             "running": sorted([t, r] for t, r in b.running.items()),
                             "paused": sorted(b.paused), "rungs": rungs})
        return {
            "searcher": self.name,
            "started": self._started,
            "done": self._done,
            "next_trial_id": self._next_id,
            "arrival": self._arrival,
            **({"rule": self.rule} if self.rule != PAPER else {}),
            **({"max_compute": self.max_compute, "compute_started": self._committed}
               if self.max_compute is not None else {}),
            "rng": rng,
            "trials": [[t, self._bracket_of[t], self._status[t]] for t in sorted(self._status)],
            "brackets": brackets,
        }

    # ------------------------------------------------------------------ internals
    def _order(self) -> int:
        """The next arrival's place among equal results: after them (the paper, Determined
        0.37), or before them (Determined 0.38, whose rungs insert before equal metrics)."""
        a = self._arrival
        self._arrival += 1
        return _MASK40 - a if self.rule == DETERMINED_038 else a

    def _determined_arrival(self, b: _Bracket, r: int, tid: int, key: int,
                            out: list[Action]) -> None:
        """Determined 0.37's ``promotionsAsync``: a result entering rung ``r`` (below the top)
        with ``n`` results there before it promotes itself if it lands in the top
        ``floor((n+1)/d)``; otherwise, if that count just grew, the entry at index
        ``floor(n/d)`` goes up unless it went already. At most one promotion per result, and
        only when a result arrives. A failed trial chosen so enters the next rung as its worst
        result at once (Determined's early-exit recursion)."""
        rung = b.rungs[r]
        n = len(rung.keys)
        old, new = int(n / self.divisor), int((n + 1) / self.divisor)
        rung.add(tid, key)
        if r == b.num_rungs - 1:
            return
        due: int | None = None
        if rung.keys.rank(key) < new:
            due = tid
        elif new != old:
            other = key_trial(rung.keys[old])
            if other not in rung.promoted:
                due = other
        if due is None:
            return
        lost = self._status[due] in (FAILED, STOPPED)  # enters the next rung untrained
        if not lost and not self._fits(b.seg[r + 1]):
            return
        rung.promoted.add(due)
        if lost:
            self._determined_arrival(b, r + 1, due, worst_key(self._order(), due), out)
            return
        b.paused.discard(due)
        self._start_segment(b, r + 1)
        b.running[due] = r + 1
        self._status[due] = RUNNING
        out.append(ResumeTrial(due, b.units[r + 1]))

    def _completed(self, b: _Bracket, tid: int, r: int, metric: float, out: list[Action]) -> None:
        if self._model is not None:
            self._model.observe(tid, b.units[r], self.sign * metric)
        key = make_key(self.sign * metric, self._order(), tid)
        rung = b.rungs[r]
        if self.rule == DETERMINED_037 and r < b.num_rungs - 1:
            del b.running[tid]
            b.paused.add(tid)
            self._status[tid] = PAUSED
            self._determined_arrival(b, r, tid, key, out)  # may resume tid itself
            self._fill(b, out)
            return
        rung.add(tid, key)
        if r == b.num_rungs - 1:
            del b.running[tid]
            self._status[tid] = TOP
            out.append(FinishTrial(tid, "top"))
            self._fill(b, out)
            return
        if self.stop_once:
            k = len(rung.keys)
            if (key < _PROMOTABLE_BELOW and rung.keys.rank(key) < max(math.floor(k / self.divisor), 1)
                    and self._fits(b.seg[r + 1])):
                rung.promoted.add(tid)
                self._start_segment(b, r + 1)
                b.running[tid] = r + 1
                out.append(ResumeTrial(tid, b.units[r + 1]))
                return
            del b.running[tid]
            self._status[tid] = STOPPED
            out.append(FinishTrial(tid, "stopped"))
            self._fill(b, out)
            return
        del b.running[tid]
        b.paused.add(tid)
        self._status[tid] = PAUSED
        if key < _PROMOTABLE_BELOW:
            heapq.heappush(rung.heap, key)
        self._fill(b, out)

    def _fits(self, units: int) -> bool:
        """Whether a segment of ``units`` may start within ``max_compute``."""
        return self.max_compute is None or self._committed + units <= self.max_compute

    def _in_top(self, rung: _Rung, key: int) -> bool:
        """Whether ``key`` ranks in ``rung``'s top floor(k/d): the paper's promotion rule."""
        return rung.keys.rank(key) < math.floor(len(rung.keys) / self.divisor)

    def _room_for_trial(self, b: _Bracket) -> bool:
        """Whether ``b`` may create a trial now: below its max_trials and within the cap."""
        return b.created < b.max_trials and self._fits(b.seg[0]) and self._may_create(b)

    def _may_create(self, b: _Bracket) -> bool:
        """Whether a new trial of ``b`` fits in ``max_compute`` beside what the trials so far
        are expected to train (``_Bracket.expected_units``). Expected, not certain: a trial
        promoted early can be pushed out of its rung's top 1/d later, so more go on than that;
        ``_fits`` then refuses the last promotions instead of passing the limit."""
        if self.max_compute is None:
            return True
        # the other brackets are taken to the same share of their trials, so that a tight cap
        # keeps the brackets' mix (an expensive bracket would otherwise take what it can while
        # the others are still filling)
        n, of = b.created + 1, b.max_trials
        need = self._outside
        for x in self._b:
            pace = 0 if x.done else min(-(-n * x.max_trials // of), x.max_trials)
            need += x.expected_units(self.divisor, 1 if x is b else max(pace - x.created, 0))
        return need <= self.max_compute

    def _start_segment(self, b: _Bracket, r: int) -> None:
        """Account a segment toward rung ``r`` of ``b`` as started."""
        self._committed += b.seg[r]

    def set_max_compute(self, units: int | None, reopen: list[int] | tuple[int, ...] = ()) -> list[Action]:
        """A new ``max_compute`` from here on (``resume --max-compute``), and the actions it
        allows now. A raised cap lets the brackets go on that it had ended: they create trials
        again up to their ``max_trials``, and the trials of ``reopen`` that were stopped
        unpromoted when their bracket ended wait for a promotion again (the caller names those
        whose checkpoints are still there). A lowered cap only refuses what would pass it."""
        if units is not None and units < 1:
            raise ValueError(f"max_compute must be >= 1, got {units}")
        self.max_compute = units
        out: list[Action] = []
        if not self._started:
            return out
        again: dict[int, list[tuple[int, int]]] = {}  # bracket -> (trial, rung) it may go on from
        for tid in sorted(reopen):
            at = self._stopped_at(tid)
            if at is not None:
                again.setdefault(at[0].index, []).append((tid, at[1]))
        for b in self._b:
            if not b.done:
                continue
            waiting = again.get(b.index, [])
            # it goes on if it may create a trial, or a stopped trial may be promoted now (by
            # the paper's rule; Determined 0.37's promotes only as results arrive)
            if not self._room_for_trial(b) and not (self.rule == PAPER and any(
                    self._in_top(b.rungs[r], b.rungs[r].entry[t]) and self._fits(b.seg[r + 1])
                    for t, r in waiting)):
                continue
            b.done = False
            for tid, r in waiting:
                self._status[tid] = PAUSED
                b.paused.add(tid)
                rung = b.rungs[r]
                if rung.entry[tid] not in rung.heap:  # the heap may still hold it (lazy deletion)
                    heapq.heappush(rung.heap, rung.entry[tid])
                rung.idle = False
        if not all(b.done for b in self._b):
            self._done = False
        for b in self._b:
            if not b.done:
                self._fill(b, out)
        for b in self._b:
            self._check_bracket_done(b, out)
        return out

    def compute_started(self) -> int:
        """Units of every segment started so far (what ``max_compute`` limits)."""
        return self._committed

    def _best_promotable(self, rung: _Rung) -> int | None:
        """The best unpromoted entry of ``rung`` if it is within the top floor(k/d): its trial
        (left on top of the heap), else None."""
        if rung.idle:
            return None
        heap = rung.heap
        status = self._status
        while heap:
            key = heap[0]
            tid = key & _MASK40
            if rung.entry.get(tid) != key or status.get(tid) != PAUSED:
                heapq.heappop(heap)  # removed (invalid) or cancelled while paused
                continue
            if self._in_top(rung, key):
                return tid
            break
        rung.idle = True
        return None

    def _fill(self, b: _Bracket, out: list[Action]) -> None:
        """Section 2a/2b: while a slot is free, promote (second-highest rung down), else create."""
        while len(b.running) < b.concurrency:
            if not self.stop_once and self.rule == PAPER:
                promoted = False
                for r in range(b.num_rungs - 2, -1, -1):
                    rung = b.rungs[r]
                    tid = self._best_promotable(rung)
                    if tid is not None and self._fits(b.seg[r + 1]):
                        heapq.heappop(rung.heap)
                        rung.promoted.add(tid)
                        b.paused.discard(tid)
                        self._start_segment(b, r + 1)
                        b.running[tid] = r + 1
                        self._status[tid] = RUNNING
                        out.append(ResumeTrial(tid, b.units[r + 1]))
                        promoted = True
                        break
                if promoted:
                    continue
            if self._room_for_trial(b):
                tid = self._next_id
                self._next_id += 1
                hp = self._next_hparams(tid - 1)
                b.created += 1
                self._start_segment(b, 0)
                b.running[tid] = 0
                self._status[tid] = RUNNING
                self._bracket_of[tid] = b.index
                out.append(CreateTrial(tid, b.index, hp, b.units[0]))
                continue
            break

    def _check_bracket_done(self, b: _Bracket, out: list[Action]) -> None:
        if b.done or b.running or self._room_for_trial(b):
            return
        # nothing in flight after _fill: nothing is promotable within max_compute either (a
        # slot was free), and no trial may be created
        b.done = True
        for tid in sorted(b.paused):  # never promoted: they train no more
            self._status[tid] = STOPPED
            out.append(FinishTrial(tid, "stopped"))
        b.paused.clear()
        if self.max_compute is not None:  # the others' share of the cap no longer counts b's pace
            for x in self._b:
                if not x.done:
                    self._fill(x, out)
                    self._check_bracket_done(x, out)
        if not self._done and all(x.done for x in self._b):
            self._done = True
            out.append(SearchDone())


# sampler name -> (module, class): imported only when a config names it, so the master of a
# random search never loads a model
MODEL_SAMPLERS = {"tpe": (".tpe", "TPESampler"), "gp": (".gp", "GPSampler")}


def sampling(cfg: Any, space: Any, seed: int) -> tuple[Callable[[int], dict[str, Any]], Any, Any]:
    """(next_hparams, rng, model) for ``cfg.sampler``: random draws from one numpy stream
    seeded with ``seed``; tpe and gp (tpe.py, gp.py, imported only then) draw from the same stream
    until they have a model, and a ``random_fraction`` of the draws after."""
    rng = np.random.default_rng(seed)
    points = given_points(cfg, space)
    model: ModelSampler | None = None
    where = MODEL_SAMPLERS.get(getattr(cfg, "sampler", "random"))
    if where is not None:
        cls = getattr(importlib.import_module(where[0], __package__), where[1])
        model = cls(space, seed, cfg.random_fraction, rng, points=points)
    return (lambda i: space.sample(rng, points[i] if i < len(points) else None)), rng, model


def given_points(cfg: Any, space: Any) -> list[dict[str, Any]]:
    """``searcher.points_to_evaluate`` as the space draws values (checked when the config
    loaded): trial ``i + 1`` takes point ``i``, drawn in full first so that the random stream,
    and every later trial, stays where it would be without them."""
    return [space.check_point(p, "searcher.points_to_evaluate")[0]
            for p in getattr(cfg, "points_to_evaluate", None) or []]


class AdaptiveASHASearcher(BracketSearcher):
    """``adaptive_asha``: the brackets of section 1, each an independent ASHA."""

    name = "adaptive_asha"

    def __init__(self, cfg: Any, space: Any, seed: int) -> None:
        draw, rng, model = sampling(cfg, space, seed)
        super().__init__(bracket_plan(cfg, space), cfg.divisor, cfg.smaller_is_better,
                         cfg.stop_once, draw, replace_invalid=True, rng=rng, model=model,
                         rule=getattr(cfg, "asha_rule", PAPER),
                         max_compute=cfg.max_compute)


class AsyncHalvingSearcher(AdaptiveASHASearcher):
    """``async_halving``: one bracket of ``num_rungs`` (bracket_plan knows the difference)."""

    name = "async_halving"

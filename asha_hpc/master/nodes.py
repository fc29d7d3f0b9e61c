"""Nodes that fail the work sent to them (a broken GPU, a missing mount, a bad driver): judged
from where segments failed and where they then succeeded, so that the master sends no more
work there and gives back the restarts those failures counted.

Such a node ends every job within seconds, so it is free again first and the scheduler keeps
sending it the next job: left alone, it fails trial after trial for good. Two rules:

- **A retry goes elsewhere.** The next attempt of a trial that failed avoids the nodes it
  failed on since it last worked and the nodes whose latest attempt failed, as long as the
  search has seen another node it may use (``avoid``; never on a single node). A node at fault
  then shows itself at once: the trial works on the next node.
- **A node is excluded** when, since its last completed segment, ``FAILURES`` attempts in a row
  failed on it, from at least ``TRIALS`` trials, and at least ``TRIALS`` of those trials have
  since completed a segment on another node: the code and those configurations work, that node
  does not. A configuration that fails everywhere is never evidence against a node, nor is
  running out of memory (a configuration too large for that node's GPU or memory, on a cluster
  of mixed nodes), a node that completes a segment between failures is not judged, and the
  last node not excluded is never excluded.
- **Pool jobs that die before their code runs** say nothing about a trial. A node where
  ``FAILURES`` pool jobs in a row ended so is excluded when, since the first of them, at least
  ``TRIALS`` segments or pool jobs went well on other nodes.
- **Until it is taken back**: ``resume --readmit-node`` (a repaired node) forgets what counted
  against it.

Pure and deterministic: the master's state feeds it journal records in order, so a resumed
master judges the same nodes the same way."""
from __future__ import annotations

from dataclasses import dataclass, field

FAILURES = 3  # failed attempts in a row on one node ...
TRIALS = 2  # ... of this many trials, this many of which then worked on another node


@dataclass
class Excluded:
    host: str
    why: str
    refund: list[int]  # trials whose restarts counted failures there, once per failure


@dataclass
class NodeHealth:
    # host -> trials whose attempts failed there since its last completed segment (in order,
    # once per failure; only failures that counted against the trial)
    streak: dict[str, list[int]] = field(default_factory=dict)
    # host -> trials in its streak that completed a segment on another node since
    cleared: dict[str, set[int]] = field(default_factory=dict)
    # trial -> the nodes it failed on since it last completed a segment
    failed_on: dict[int, set[str]] = field(default_factory=dict)
    seen: set[str] = field(default_factory=set)  # nodes that ran (or waited for) any work
    bad: dict[str, str] = field(default_factory=dict)  # excluded node -> why
    # host -> pool jobs that ended there before their code ran, since one last started there
    dead_jobs: dict[str, list[str]] = field(default_factory=dict)
    # host -> work that went well on other nodes since its first such job (segments completed,
    # pool jobs started): the environment works, that node does not
    fine_elsewhere: dict[str, int] = field(default_factory=dict)
    last_error: dict[str, str] = field(default_factory=dict)  # node -> its last failure's error
    excluded_at: dict[str, float] = field(default_factory=dict)  # excluded node -> since when
    exclusions: dict[str, int] = field(default_factory=dict)  # node -> times excluded, ever

    def failed(self, host: str | None, trial: int, error: str | None = None,
               out_of_memory: bool = False) -> Excluded | None:
        """An attempt of ``trial`` failed on ``host`` (in a way that counts against the trial);
        the node, when this makes it excluded. ``out_of_memory``: its retry avoids the node,
        but this says nothing against the node."""
        if not host or host in self.bad:
            return None
        self.seen.add(host)
        self.failed_on.setdefault(trial, set()).add(host)
        if out_of_memory:
            return None
        self.streak.setdefault(host, []).append(trial)
        if error and error.strip():
            self.last_error[host] = error.strip().splitlines()[-1][:120]
        return self._judge(host)

    def succeeded(self, host: str | None, trial: int) -> list[Excluded]:
        """``trial`` completed a segment on ``host``; the nodes this makes excluded."""
        if not host:
            return []
        self.seen.add(host)
        self.streak.pop(host, None)
        self.cleared.pop(host, None)
        self.failed_on.pop(trial, None)
        out = self._fine(host)
        for other, trials in list(self.streak.items()):
            if other != host and trial in trials:
                self.cleared.setdefault(other, set()).add(trial)
                judged = self._judge(other)
                if judged is not None:
                    out.append(judged)
        return out

    def job_died(self, host: str | None, job_id: str, why: str) -> Excluded | None:
        """A pool job ended on ``host`` before its code ran (a missing mount, a bad driver, a
        setup line that fails there); the node, when this makes it excluded."""
        if not host or host in self.bad:
            return None
        self.seen.add(host)
        self.dead_jobs.setdefault(host, []).append(job_id)
        self.last_error[host] = why
        return self._judge_jobs(host)

    def job_started(self, host: str | None) -> list[Excluded]:
        """A pool job reached its code on ``host``; the nodes this makes excluded."""
        if not host:
            return []
        self.seen.add(host)
        return self._fine(host)

    def _fine(self, host: str) -> list[Excluded]:
        """Work went well on ``host``: its own streak of dead pool jobs ends, and it counts
        for the other nodes' streaks."""
        self.dead_jobs.pop(host, None)
        self.fine_elsewhere.pop(host, None)
        out = []
        for other in list(self.dead_jobs):
            self.fine_elsewhere[other] = self.fine_elsewhere.get(other, 0) + 1
            judged = self._judge_jobs(other)
            if judged is not None:
                out.append(judged)
        return out

    def _judge_jobs(self, host: str) -> Excluded | None:
        dead = self.dead_jobs.get(host, [])
        fine = self.fine_elsewhere.get(host, 0)
        if len(dead) < FAILURES or fine < TRIALS or not self.elsewhere({host}):
            return None
        why = (f"{len(dead)} pool jobs in a row ended there before their code ran (jobs "
               f"{', '.join(dead)}), while {fine} segments or pool jobs went well on other "
               f"nodes; the last: {self.last_error.get(host, '')}")
        self.bad[host] = why
        del self.dead_jobs[host]
        self.fine_elsewhere.pop(host, None)
        return Excluded(host, why, [])

    def _judge(self, host: str) -> Excluded | None:
        streak = self.streak.get(host, [])
        cleared = self.cleared.get(host, set())
        if len(streak) < FAILURES or len(set(streak)) < TRIALS or len(cleared) < TRIALS:
            return None
        if not self.elsewhere({host}):  # the last node left to run on (its witnesses are out)
            return None
        why = (f"{len(streak)} attempts in a row failed there (trials "
               f"{_ids(set(streak))}), and trials {_ids(cleared)} then worked on other nodes"
               + (f"; the last error: {self.last_error[host]}" if host in self.last_error else ""))
        self.bad[host] = why
        del self.streak[host]
        self.cleared.pop(host, None)
        return Excluded(host, why, list(streak))

    def readmit(self, host: str) -> None:
        """``host`` was repaired: it takes work again and is judged afresh, as a node never
        seen fail (its earlier failures no longer steer retries away from it)."""
        self.bad.pop(host, None)
        self.excluded_at.pop(host, None)
        self.streak.pop(host, None)
        self.cleared.pop(host, None)
        self.last_error.pop(host, None)
        self.dead_jobs.pop(host, None)
        self.fine_elsewhere.pop(host, None)
        for hosts in self.failed_on.values():
            hosts.discard(host)

    def excluded(self, host: str, at: float) -> None:
        """``host`` was excluded at time ``at`` (the record's)."""
        self.excluded_at[host] = at
        self.exclusions[host] = self.exclusions.get(host, 0) + 1

    def readmit_at(self, after_h: float) -> dict[str, tuple[float, float]]:
        """When each excluded node is to be taken back, and its wait in hours: ``after_h``
        hours after its exclusion, twice as long for each exclusion before the last (a node
        still broken costs a few failed attempts each time, and less and less often)."""
        out = {}
        for host, at in self.excluded_at.items():
            wait_h = after_h * 2 ** (self.exclusions.get(host, 1) - 1)
            if host in self.bad:
                out[host] = (at + wait_h * 3600, wait_h)
        return out

    def readmit_due(self, now: float, after_h: float) -> dict[str, float]:
        """The excluded nodes whose time is up at ``now``, each with its wait in hours."""
        return {h: wait_h for h, (at, wait_h) in self.readmit_at(after_h).items() if now >= at}

    def saw(self, host: str | None) -> None:
        """A job ran, or waited for work, on ``host``."""
        if host:
            self.seen.add(host)

    def elsewhere(self, hosts: set[str]) -> bool:
        """Whether the search has seen a node outside ``hosts`` that is not excluded."""
        return bool(self.seen - set(self.bad) - hosts)

    def avoid(self, trial: int | None = None) -> set[str]:
        """The nodes the next job (of ``trial``) should not run on: the excluded ones and, for a
        trial that failed since it last worked, the nodes it failed on and those whose latest
        attempt failed, while the search has seen a node outside them."""
        out = set(self.bad)
        failed = self.failed_on.get(trial, set()) if trial is not None else set()
        if failed:
            suspects = failed | {h for h, trials in self.streak.items() if trials}
            if self.elsewhere(suspects):
                out |= suspects
            elif self.elsewhere(failed):
                out |= failed
        return out

    def failed_twice(self, trials: set[int]) -> bool:
        """Whether one of ``trials`` failed on two nodes since it last worked."""
        return any(len(self.failed_on.get(t, ())) >= 2 for t in trials)


_MEMORY = ("out of memory", "outofmemoryerror", "cuda_error_out_of_memory", "oom-kill")


def out_of_memory(error: str | None, state: str | None = None) -> bool:
    """Whether a failure was running out of memory: the scheduler's OUT_OF_MEMORY, or an
    error that says so (torch's ``CUDA out of memory``, ``OutOfMemoryError``)."""
    text = (error or "").lower()
    return state == "out_of_memory" or any(m in text for m in _MEMORY)


def _ids(trials: set[int]) -> str:
    return ", ".join(str(t) for t in sorted(trials))

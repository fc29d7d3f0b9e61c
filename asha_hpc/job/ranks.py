"""Several ranks of one trial (DDP, FSDP): who is who, rendezvous, barriers, dead peers.

A trial with ``tasks_per_node > 1`` or ``nodes > 1`` runs the training function once per rank
(one process per task, as submitit does). Ranks coordinate through the attempt's run folder on
the shared filesystem: each registers its host and pid, rank 0 publishes the torch.distributed
rendezvous (host and a free port), and file barriers wait only as long as every peer is alive —
a peer that died makes the others fail at once instead of hanging, so the segment fails once and
is retried. A rank that ends its attempt (its code returned or raised) says so with a marker:
a peer gone without one died silently (killed, out of memory, its node lost), and the attempt's
failure is that peer's node's, not the node of the rank that reports it.
"""
from __future__ import annotations

import atexit
import hashlib
import os
import socket
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..protocol.expdir import HEARTBEAT, atomic_write_json, read_json
from ..protocol.pids import pid_alive
from .ports import free_port

LOCAL_LOOK_S = 0.5  # how often a wait looks at this host's peers' processes (no shared file)

# The doorbells this process rang (``Group.mark_ended``): removed at its next attempt and at exit.
_RUNG: list[Path] = []


def _ring_off() -> None:
    while _RUNG:
        _RUNG.pop().unlink(missing_ok=True)


atexit.register(_ring_off)


BELL_KEPT_S = 3600.0  # a doorbell left by a process that ended without its exit handlers


def _sweep_bells(folder: Path) -> None:
    """Remove the doorbells of this node older than BELL_KEPT_S: a rank that ends its attempt
    for a dead peer leaves with ``os._exit``, which runs no exit handler."""
    now = time.time()
    try:
        for bell in folder.glob("asha-*.failed"):
            try:
                if now - bell.stat().st_mtime > BELL_KEPT_S:
                    bell.unlink()
            except OSError:  # gone meanwhile, or another user's
                pass
    except OSError:
        pass


def _node_local_dir() -> str:
    """A folder every process of this job on this node sees, off the shared filesystem:
    /dev/shm (memory) where there is one, else the temporary folder."""
    return "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) \
        else tempfile.gettempdir()


@dataclass(frozen=True)
class Ranks:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    local_world_size: int = 1


def current_ranks() -> Ranks:
    """submitit's job environment when the job runs under submitit (Slurm or local tasks), else
    torchrun's variables, else a single rank."""
    if os.environ.get("SUBMITIT_EXECUTOR"):
        import submitit

        env = submitit.JobEnvironment()
        return Ranks(env.global_rank, env.num_tasks, env.local_rank,
                     env.num_tasks // max(env.num_nodes, 1))
    e = os.environ
    if "RANK" in e and "WORLD_SIZE" in e:
        return Ranks(int(e["RANK"]), int(e["WORLD_SIZE"]), int(e.get("LOCAL_RANK", 0)),
                     int(e.get("LOCAL_WORLD_SIZE", e["WORLD_SIZE"])))
    return Ranks()


def job_id() -> str:
    env = os.environ
    if "SLURM_ARRAY_JOB_ID" in env and "SLURM_ARRAY_TASK_ID" in env:
        return f"{env['SLURM_ARRAY_JOB_ID']}_{env['SLURM_ARRAY_TASK_ID']}"
    return env.get("SLURM_JOB_ID") or env.get("SUBMITIT_LOCAL_JOB_ID") or str(os.getpid())


FAILED = "its code failed"  # given_up's word for a peer that raised


def node_name() -> str:
    """Slurm's name for this node where there is one: what `sbatch --exclude` takes (a host
    name may be the fully qualified one); master/nodes.py excludes nodes by it."""
    return os.environ.get("SLURMD_NODENAME") or socket.gethostname()


class PeerGone(RuntimeError):
    """A rank of this attempt died without ending its attempt: this rank cannot go on."""

    def __init__(self, message: str, rank: int, node: str | None, why: str,
                 silent: bool = True) -> None:
        super().__init__(message)
        self.rank, self.node, self.why = rank, node, why
        self.silent = silent  # died without a word (else: its code failed, and said so)


def _incarnation() -> str:
    """This job run: a requeued job (same id) must not read its previous run's files."""
    return f"{job_id()}/{os.environ.get('SLURM_RESTART_COUNT', '0')}"


class Group:
    """The ranks of one attempt, seen from one of them."""

    def __init__(self, run_dir: Path, ranks: Ranks, heartbeat_s: float = 10.0) -> None:
        self.run_dir = Path(run_dir)
        self.ranks = ranks
        self.heartbeat_s = heartbeat_s
        self.incarnation = _incarnation()
        # peer -> (its heartbeat file's mtime, when this process first saw that mtime, by its
        # own monotonic clock): the file's clock (another host's, or the file server's) may
        # differ from this one's, so only a change of mtime counts, never its distance to now
        self._beats: dict[int, tuple[float, float]] = {}
        self._registered: dict[int, dict] = {}  # peers' registrations (fixed for the attempt)
        self.has_ended = False  # this rank's own marker is written
        # the attempt's doorbells (``rang``): every rank of a job gets the same run folder
        # path, so its text names the attempt without a look at the shared filesystem
        self._bells = Path(_node_local_dir())
        self._bell_key = hashlib.sha1(
            f"{self.run_dir}\0{self.incarnation}".encode()).hexdigest()[:20]
        _ring_off()  # a new attempt of this process: its earlier ones' peers were told
        if ranks.world_size > 1:
            _sweep_bells(self._bells)

    def heartbeat_file(self, rank: int | None = None) -> Path:
        r = self.ranks.rank if rank is None else rank
        return self.run_dir / (HEARTBEAT if r == 0 else f"{HEARTBEAT}.rank{r}")

    def register(self) -> None:
        atomic_write_json(self.run_dir / f"rank{self.ranks.rank}.json",
                          {"host": socket.gethostname(), "node": node_name(), "pid": os.getpid(),
                           "incarnation": self.incarnation}, durable=False)

    def _registration(self, rank: int) -> dict | None:
        if rank in self._registered:
            return self._registered[rank]
        info, _ = read_json(self.run_dir / f"rank{rank}.json")
        if not isinstance(info, dict) or info.get("incarnation") != self.incarnation:
            return None  # not registered yet
        self._registered[rank] = info
        return info

    def others(self) -> list[int]:
        return [r for r in range(self.ranks.world_size) if r != self.ranks.rank]

    def on_this_node(self) -> list[int]:
        """The other ranks of this node, by the layout submitit and torchrun share (a node's
        ranks are consecutive)."""
        first = self.ranks.rank - self.ranks.local_rank
        return [r for r in range(first, first + self.ranks.local_world_size)
                if r != self.ranks.rank and 0 <= r < self.ranks.world_size]

    def watched(self) -> list[int]:
        """The peers this rank watches while its code runs: rank 0 watches every rank, the
        others rank 0 and their own node's ranks (a rank that leaves makes rank 0 and its
        node's ranks leave, and rank 0's end makes every rank leave), so that a trial of many
        ranks does not read every other rank's files from every rank."""
        if self.ranks.rank == 0:
            return self.others()
        return sorted({0, *self.on_this_node()} - {self.ranks.rank})

    def node_of(self, rank: int) -> str | None:
        """The node ``rank`` registered from (None: not registered)."""
        info = self._registration(rank)
        if info is None:
            return None
        node = info.get("node") or info.get("host")
        return node if isinstance(node, str) else None

    def _ended_file(self, rank: int) -> Path:
        return self.run_dir / f"ended.rank{rank}"

    def mark_ended(self, error: str | None = None) -> None:
        """This rank's code returned, or raised ``error``: from now on its exit is no silent
        death, and an error tells the peers still waiting for it that it will not come. An
        error also rings this node's doorbell (``rang``): a peer here, blocked in a collective
        that waits for this rank, reads the marker at its next look at this node's processes
        instead of at its next heartbeat's (a warm worker's process lives on after its code
        raised, so its pid says nothing)."""
        self.has_ended = True
        try:
            atomic_write_json(self._ended_file(self.ranks.rank),
                              {"incarnation": self.incarnation, "error": error}, durable=False)
        except OSError:
            pass
        if error is not None and self.on_this_node():
            bell = self._doorbell(self.ranks.rank)
            try:
                bell.touch()
                _RUNG.append(bell)
            except OSError:  # the peers read the marker at their next heartbeat's look
                pass

    def _doorbell(self, rank: int) -> Path:
        return self._bells / f"asha-{self._bell_key}.rank{rank}.failed"

    def rang(self, ranks: list[int]) -> bool:
        """Whether one of ``ranks`` on this host rang its doorbell (its code failed): then a
        full look (``given_up``) is due now. Reads no shared file: a peer not yet registered
        (``dead_peers`` reads its registration) is not looked for."""
        me = socket.gethostname()
        for r in ranks:
            info = self._registered.get(r)
            if info is not None and info.get("host") == me and self._doorbell(r).exists():
                return True
        return False

    def _end_of(self, rank: int) -> dict | None:
        body, _ = read_json(self._ended_file(rank))
        if isinstance(body, dict) and body.get("incarnation") == self.incarnation:
            return body
        return None

    def ended(self, rank: int) -> bool:
        return self._end_of(rank) is not None

    def given_up(self, ranks: list[int] | None = None) -> dict[int, str]:
        """Peers (of ``ranks``; default: all) this attempt cannot go on without: those that
        died silently (``dead_peers``) and those whose code raised (why, with the error's
        last line)."""
        ranks = self.others() if ranks is None else ranks
        out = self.dead_peers(ranks)
        for r in ranks:
            end = self._end_of(r) if r not in out else None
            if end is not None and isinstance(end.get("error"), str):
                last = (end["error"].strip().splitlines() or ["an error"])[-1]
                out[r] = f"{FAILED}: {last[-300:]}"
        return out

    def dead_peers(self, ranks: list[int] | None = None, local_only: bool = False
                   ) -> dict[int, str]:
        """Peers (of ``ranks``; default: all) that died silently: same host and pid gone, or
        a heartbeat that stopped, without having ended their attempt (``mark_ended``: read
        only for a peer that looks gone). ``local_only``: peers on this host only, which
        costs no read of the shared filesystem until one looks gone."""
        dead = {}
        me = socket.gethostname()
        for r in self.others() if ranks is None else ranks:
            info = self._registration(r)
            if info is None:
                continue
            if info.get("host") == me and isinstance(info.get("pid"), int):
                if not pid_alive(info["pid"]) and not self.ended(r):
                    dead[r] = f"process {info['pid']} is gone"
                continue
            if local_only:
                continue
            try:
                mtime = self.heartbeat_file(r).stat().st_mtime
            except OSError:
                continue
            now = time.monotonic()
            seen, since = self._beats.get(r, (None, now))
            if seen != mtime:
                self._beats[r] = (mtime, now)
            elif now - since > 6 * self.heartbeat_s and not self.ended(r):
                dead[r] = f"no heartbeat for {now - since:.0f} s"
        return dead

    def _look(self, ranks: list[int], full: bool) -> dict[int, str]:
        """One look at ``ranks`` for peers this attempt cannot go on without. A ``full`` look
        reads their shared files (heartbeats, end markers: ``given_up``); the others only ask
        whether this host's peers' processes live, which reads no shared file."""
        return self.given_up(ranks) if full else self.dead_peers(ranks, local_only=True)

    def wait(self, ready: Callable[[], bool], what: str, timeout_s: float = 1800.0) -> None:
        """Poll ``ready`` while the watched peers (``watched``) live; raise once one died or
        failed, or time ran out. ``ready`` is polled every 20 ms at first, backing off to every
        ``LOCAL_LOOK_S``. This host's peers are looked at every ``LOCAL_LOOK_S`` (their pids),
        the watched peers' files half a second in and then once a heartbeat (a silent death on
        another host takes 6 beats to show in any case): the ranks of a large trial wait
        together at every checkpoint, and must not flood the shared filesystem's metadata
        server. A peer this rank does not watch is seen by rank 0, which watches every rank:
        rank 0 then fails, and its end marker ends this wait."""
        start = time.monotonic()
        deadline = start + timeout_s
        watched = self.watched()
        local_every = min(LOCAL_LOOK_S, self.heartbeat_s)
        pause = 0.02
        next_local = next_full = start + local_every
        while not ready():
            now = time.monotonic()
            if now >= next_local:
                full = now >= next_full or self.rang(watched)
                gone = self._look(watched, full)
                if gone:
                    r = min(gone)
                    raise self.gone(r, gone[r], f"rank {self.ranks.rank}: ",
                                    f" while waiting for {what}")
                next_local = now + local_every
                if full:
                    next_full = now + max(local_every, self.heartbeat_s)
            if now > deadline:
                raise RuntimeError(f"rank {self.ranks.rank}: timed out waiting for {what}")
            time.sleep(max(0.001, min(pause, next_local - now)))
            pause = min(pause * 1.5, local_every)

    def gone(self, rank: int, why: str, before: str = "", after: str = "") -> PeerGone:
        """The error for peer ``rank`` that died or failed (``why``), naming its node."""
        node = self.node_of(rank)
        silent = not why.startswith(FAILED)
        return PeerGone(f"{before}rank {rank}" + (f" on node {node}" if node else "")
                        + f" {'died' if silent else 'failed'} ({why}){after}", rank, node, why,
                        silent)

    def blame(self, error: BaseException | None, wait_s: float,
              stop: Callable[[], bool] = lambda: False) -> PeerGone | None:
        """Why this rank failed, if a peer's silent death is to blame: the ``PeerGone`` in
        ``error``'s chain, else a peer found dead within ``wait_s`` (a peer on another host is
        judged by its heartbeat, which takes 6 beats; only the watched peers are looked at, as
        in ``wait``). Returns early once every watched peer ended its attempt (then each
        failed, or not, on its own), or once ``stop`` says so: Slurm ends a
        step whose task died (``--kill-on-bad-exit``) with SIGTERM, and SIGKILL follows."""
        seen: set[int] = set()
        e = error
        while e is not None and id(e) not in seen:
            if isinstance(e, PeerGone):
                return e
            seen.add(id(e))
            e = e.__cause__ or e.__context__
        start = time.monotonic()
        deadline = start + wait_s
        watched = self.watched()
        next_full = start
        ended: set[int] = set()
        while True:
            now = time.monotonic()
            full = now >= next_full
            dead = self.dead_peers(watched, local_only=not full)
            if dead:
                r = min(dead)
                return self.gone(r, dead[r])
            if full:
                next_full = now + max(LOCAL_LOOK_S, self.heartbeat_s)
            # one marker read a look, until each watched peer ended
            while len(ended) < len(watched) and self.ended(watched[len(ended)]):
                ended.add(watched[len(ended)])
            if len(ended) == len(watched) or now > deadline or stop():
                return None
            time.sleep(min(LOCAL_LOOK_S, self.heartbeat_s / 4))

    def rendezvous(self) -> dict[str, str]:
        """Set and return the torch.distributed environment (env:// init). Rank 0 takes a
        free port on its node (ports.free_port), so two trials on one node never share one."""
        path = self.run_dir / "rendezvous.json"
        r = self.ranks
        if r.rank == 0:
            atomic_write_json(path, {"addr": socket.gethostname(), "port": free_port(),
                                     "incarnation": self.incarnation})
        body: dict = {}

        def published() -> bool:
            b, _ = read_json(path)
            if isinstance(b, dict) and b.get("incarnation") == self.incarnation:
                body.update(b)
                return True
            return False

        self.wait(published, f"rank 0's rendezvous in {path}")
        env = {"MASTER_ADDR": str(body["addr"]), "MASTER_PORT": str(body["port"]),
               "RANK": str(r.rank), "WORLD_SIZE": str(r.world_size),
               "LOCAL_RANK": str(r.local_rank), "LOCAL_WORLD_SIZE": str(r.local_world_size)}
        os.environ.update(env)
        return env

    def barrier(self, folder: Path, phase: str) -> None:
        """Every rank drops a marker in ``folder`` (shared) and waits for all of them."""
        if self.ranks.world_size <= 1:
            return
        (folder / f".{phase}-rank{self.ranks.rank}").touch()
        n = self.ranks.world_size

        def all_there() -> bool:
            try:
                names = os.listdir(folder)
            except FileNotFoundError:  # rank 0 saw every marker and already moved the folder on
                return True
            return len([x for x in names if x.startswith(f".{phase}-rank")]) >= n

        self.wait(all_there, f"every rank to finish {phase} in {folder}")

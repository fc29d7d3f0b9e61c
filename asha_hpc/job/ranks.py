"""Several ranks of one trial (DDP, FSDP): who is who, rendezvous, barriers, dead peers.

A trial with ``tasks_per_node > 1`` or ``nodes > 1`` runs the training function once per rank
(one process per task, as submitit does). Ranks coordinate through the attempt's run folder on
the shared filesystem: each registers its host and pid, rank 0 publishes the torch.distributed
rendezvous (host and a free port), and file barriers wait only as long as every peer is alive —
a peer that died makes the others fail at once instead of hanging, so the segment fails once and
is retried.
"""
from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..protocol.expdir import atomic_write_json, read_json
from ..protocol.pids import pid_alive


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

    def heartbeat_file(self, rank: int | None = None) -> Path:
        r = self.ranks.rank if rank is None else rank
        return self.run_dir / ("heartbeat" if r == 0 else f"heartbeat.rank{r}")

    def register(self) -> None:
        atomic_write_json(self.run_dir / f"rank{self.ranks.rank}.json",
                          {"host": socket.gethostname(), "pid": os.getpid(),
                           "incarnation": self.incarnation}, durable=False)

    def dead_peers(self) -> dict[int, str]:
        """Peers known to be gone: same host and pid gone, or a heartbeat that stopped."""
        dead = {}
        me = socket.gethostname()
        for r in range(self.ranks.world_size):
            if r == self.ranks.rank:
                continue
            info, _ = read_json(self.run_dir / f"rank{r}.json")
            if not isinstance(info, dict) or info.get("incarnation") != self.incarnation:
                continue  # not registered yet
            if info.get("host") == me and isinstance(info.get("pid"), int):
                if not pid_alive(info["pid"]):
                    dead[r] = f"process {info['pid']} is gone"
                continue
            try:
                mtime = self.heartbeat_file(r).stat().st_mtime
            except OSError:
                continue
            now = time.monotonic()
            seen, since = self._beats.get(r, (None, now))
            if seen != mtime:
                self._beats[r] = (mtime, now)
            elif now - since > 6 * self.heartbeat_s:
                dead[r] = f"no heartbeat for {now - since:.0f} s"
        return dead

    def wait(self, ready: Callable[[], bool], what: str, timeout_s: float = 1800.0) -> None:
        """Poll ``ready`` while every peer lives; raise once one died or time ran out."""
        deadline = time.time() + timeout_s
        checks = 0
        while not ready():
            checks += 1
            if checks % 25 == 0:
                dead = self.dead_peers()
                if dead:
                    r, why = next(iter(dead.items()))
                    raise RuntimeError(f"rank {self.ranks.rank}: rank {r} died ({why}) while "
                                       f"waiting for {what}")
            if time.time() > deadline:
                raise RuntimeError(f"rank {self.ranks.rank}: timed out waiting for {what}")
            time.sleep(0.02)

    def rendezvous(self) -> dict[str, str]:
        """Set and return the torch.distributed environment (env:// init). Rank 0 asks the OS
        for a free port on its node, so two trials on one node never share one."""
        path = self.run_dir / "rendezvous.json"
        r = self.ranks
        if r.rank == 0:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                s.bind(("", 0))
                port = s.getsockname()[1]
            atomic_write_json(path, {"addr": socket.gethostname(), "port": port,
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

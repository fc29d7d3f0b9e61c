"""What the ranks of one trial read on the shared filesystem while they wait for each other.

    python benchmarks/rank_waits.py [--ranks 64] [--per-node 8] [--seconds 20]

At every checkpoint the ranks of a trial wait: for the others to finish writing their part
(a file barrier, when torch.distributed is not initialised) and, every rank but 0, for rank 0
to publish the checkpoint. Each wait also watches for a peer that died (``Group.wait``,
job/ranks.py). This measures one such wait, in process, with the file operations it makes
counted (``os.stat``, ``open``, ``os.listdir``, ``os.scandir``; a file that is not there
counts too: the server still looks it up), for rank 0 (which watches
every rank) and for a rank on another node (which watches rank 0 and its own node). Its peers
are registered as a real trial's would be: those on its node with a live process on this
host, the rest on other hosts with heartbeat files; nobody dies, and the waited-for file never
goes, so each wait runs its whole ``--seconds`` (then times out, as planned).

Columns: the rank, the peers it watches, file operations a second, and the whole trial's
rate (rank 0 plus every other rank at the second row's rate). The shared filesystem's
metadata server serves all of it. Writes nothing.
"""
from __future__ import annotations

import argparse
import builtins
import io
import json
import os
import socket
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from asha_hpc.job.ranks import Group, Ranks  # noqa: E402


class Counted:
    """Counts the file operations made in this process on paths under ``root`` while it is
    entered (a look at /proc for a local pid is not the shared filesystem's load)."""

    # pathlib opens files through io.open: both names are counted, as one builtin
    NAMES = (("os", "stat"), ("os", "listdir"), ("os", "scandir"), ("io", "open"))

    def __init__(self, root: Path) -> None:
        self.root = str(root)
        self.n = 0
        self._saved: list[tuple[object, str, object]] = []

    def __enter__(self) -> Counted:
        for mod_name, name in self.NAMES:
            mod = os if mod_name == "os" else io
            real = getattr(mod, name)

            def counted(*a: object, _real: object = real, **kw: object) -> object:
                if a and str(a[0]).startswith(self.root):
                    self.n += 1
                return _real(*a, **kw)  # type: ignore[operator]

            self._saved.append((mod, name, real))
            setattr(mod, name, counted)
            if mod is io:
                self._saved.append((builtins, name, real))
                builtins.open = counted  # type: ignore[assignment]
        return self

    def __exit__(self, *exc: object) -> None:
        for mod, name, real in self._saved:
            setattr(mod, name, real)


def one_wait(rank: int, ranks: int, per_node: int, seconds: float, beat_s: float) -> tuple[int, float]:
    """(peers watched, file operations a second) of one wait by ``rank``."""
    with tempfile.TemporaryDirectory() as d:
        run = Path(d)
        me = Ranks(rank, ranks, rank % per_node, per_node)
        g = Group(run, me, heartbeat_s=beat_s)
        my_node = rank // per_node
        for r in range(ranks):
            local = r // per_node == my_node
            (run / f"rank{r}.json").write_text(json.dumps({
                "host": socket.gethostname() if local else f"node{r // per_node:02d}",
                "node": f"node{r // per_node:02d}", "pid": os.getpid() if local else 1,
                "incarnation": g.incarnation}))
            g.heartbeat_file(r).write_text("")
        waited = run / ".tmp-checkpoint"
        waited.mkdir()
        with Counted(run) as c:
            t0 = time.monotonic()
            try:
                g.wait(lambda: not waited.exists(), "rank 0 to publish", timeout_s=seconds)
            except RuntimeError:
                pass
            took = time.monotonic() - t0
        return len(g.watched()), c.n / took


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ranks", type=int, default=64)
    ap.add_argument("--per-node", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--heartbeat", type=float, default=10.0, help="heartbeat_s (default 10)")
    args = ap.parse_args()
    other = args.per_node + 1  # the second rank of the second node
    rows = [(r, *one_wait(r, args.ranks, args.per_node, args.seconds, args.heartbeat))
            for r in (0, other)]
    total = rows[0][2] + (args.ranks - 1) * rows[1][2]
    print(f"{args.ranks} ranks, {args.per_node} a node, heartbeat {args.heartbeat:g} s, "
          f"one wait of {args.seconds:g} s each")
    print("| rank | peers watched | file operations / s | the trial's ranks together / s |")
    print("|---:|---:|---:|---:|")
    for r, watched, rate in rows:
        print(f"| {r} | {watched} | {rate:.1f} | {total:.0f} |" if r else
              f"| {r} | {watched} | {rate:.1f} | |")


if __name__ == "__main__":
    main()

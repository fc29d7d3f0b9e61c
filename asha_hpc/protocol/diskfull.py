"""A full filesystem or an exhausted quota: a fault of the machine, never of a trial.

Job side: ``disk_full_in(exc)`` tells a training error caused by ENOSPC/EDQUOT (anywhere in
the exception's chain, or in the text of a library that flattened it, as torch.save does, or
any error at all while the trial's filesystem has no room left) from the trial's own bugs;
the result then carries ``disk_full`` and counts against nothing.
Master side: ``DiskFull`` remembers which filesystem is full and answers whether there is room
again: more free space than when it filled (ENOSPC), or a probe file that can be written
(EDQUOT: a quota does not show in the filesystem's free space).
"""
from __future__ import annotations

import errno
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import DISK_FULL_ERRNOS, shell_word

ROOM_BYTES = 1 << 20  # free space that must appear (or be writable) before work resumes
# how libraries that drop the errno say it: torch.save keeps the C library's text, numpy
# checks the room first ("Not enough free space to write N bytes") or finds a short write
_TEXTS = {errno.ENOSPC: ("no space left on device", "not enough free space"),
          errno.EDQUOT: ("disk quota exceeded",)}
_SHORT_WRITE = re.compile(r"\b\d+ requested and \d+ written\b")


def disk_full_in(exc: BaseException, where: Path) -> dict[str, Any] | None:
    """``{"path", "quota", "free"}`` when ``exc`` (or an exception it came from) is a full
    disk or quota, else None. ``where``: the path to name when the exception does not say;
    ``free``: the filesystem's free bytes now (the master waits for more than that). The path
    named is the real one: a trial's folder behind a link (checkpoint_storage's folder, on
    another filesystem than the experiment's) names the filesystem that is full."""
    where = Path(os.path.realpath(where))
    seen = set()
    e: BaseException | None = exc
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        code = e.errno if isinstance(e, OSError) and e.errno in DISK_FULL_ERRNOS else None
        if code is None:
            text = str(e).lower()
            code = next((c for c, needles in _TEXTS.items() if any(n in text for n in needles)),
                        errno.ENOSPC if _SHORT_WRITE.search(text) else None)
        if code is not None:
            path = str(getattr(e, "filename", None) or where)
            return {"path": path, "quota": code == errno.EDQUOT, "free": free_bytes(Path(path))}
        e = e.__cause__ or e.__context__
    # a library that says neither (numpy: "100000 requested and 37872 written"; an error of
    # its own type): a filesystem with no room left is cause enough
    free = free_bytes(where)
    if free is not None and free < ROOM_BYTES:
        return {"path": str(where), "quota": False, "free": free}
    return None


def mount_point(path: Path) -> Path:
    """The mount point of the filesystem that holds ``path`` (or its nearest existing parent)."""
    p = Path(os.path.realpath(path))  # through links: a linked folder's own filesystem
    while not p.exists() and p != p.parent:
        p = p.parent
    while not os.path.ismount(p) and p != p.parent:
        p = p.parent
    return p


def free_bytes(path: Path) -> int | None:
    try:
        s = os.statvfs(mount_point(path))
    except OSError:
        return None
    return s.f_bavail * s.f_frsize


def short_of_room(paths: list[Path]) -> list[tuple[Path, int]]:
    """The filesystems (mount point, free bytes) among those holding ``paths`` with less than
    ROOM_BYTES free, each once. A quota does not show here (only a write finds it)."""
    out: dict[Path, int] = {}
    for path in paths:
        free = free_bytes(path)
        if free is not None and free < ROOM_BYTES:
            out.setdefault(mount_point(path), free)
    return list(out.items())


@dataclass
class DiskFull:
    """What the master knows about a full filesystem it paused for."""

    path: Path
    quota: bool
    probe_dir: Path  # where a probe file may be written (the experiment folder)
    free_at: int | None = None
    since: float = field(default_factory=time.time)
    # the largest checkpoint a job failed to write, or its trial's last one: a job removes
    # what it had written when the save fails, and that alone would look like room again
    need: int = 0

    def __post_init__(self) -> None:
        self.mount = mount_point(self.path)
        if self.free_at is None:
            self.free_at = free_bytes(self.path)

    def line(self, root: Path) -> str:
        what = "the quota is exhausted on" if self.quota else "no space left on"
        # a quota shows only to a probe; free space has a number a person can aim for
        room = "" if self.quota else f" (at least {self.room_needed() / 2**20:.0f} MiB free)"
        return (f"{self.mount}: {what} this filesystem (writing {self.path}); no new segment "
                f"starts until there is room{room}. Free space"
                f"{' or raise the quota' if self.quota else ''}"
                f" and the search goes on by itself (or stop it now, with Ctrl-C or `asha-hpc "
                f"pause {shell_word(root)}`, and `asha-hpc resume {shell_word(root)}` later); "
                f"running trials lose nothing")

    def needs(self, size: Any) -> None:
        """A job that hit it says how large a checkpoint of its trial is (``disk_full["need"]``)."""
        if isinstance(size, int) and not isinstance(size, bool):
            self.need = max(self.need, size)

    def room_needed(self) -> int:
        """Free bytes before work resumes: more than when it filled, and twice the largest
        checkpoint a job could not write (the one cut short, and one more in flight)."""
        return max((self.free_at or 0) + ROOM_BYTES, 2 * self.need + ROOM_BYTES)

    def has_room(self) -> bool:
        if not self.quota and not self.has_space():
            return False
        return self._probe()

    def has_space(self) -> bool:
        """The free-space half of ``has_room``, which writes nothing (a quota never has it)."""
        if self.quota:
            return False
        free = free_bytes(self.path)
        return free is not None and self.free_at is not None and free >= self.room_needed()

    def _probe(self) -> bool:
        """Write (and remove) ROOM_BYTES where the jobs write: the only test a quota answers
        (not a whole checkpoint's size: the probe is written every few seconds)."""
        probe = self.probe_dir / f".space-probe-{os.getpid()}"
        try:
            with open(probe, "wb") as f:
                f.write(b"\0" * ROOM_BYTES)
                f.flush()
                os.fsync(f.fileno())
            return True
        except OSError:
            return False
        finally:
            try:
                probe.unlink()
            except OSError:
                pass

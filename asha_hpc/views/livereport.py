"""``<exp>/report.html`` kept current while the master runs, so a user opens it from a file
browser (Open OnDemand) or over an SSH tunnel without running anything.

The master stays light: the report (``asha-hpc report DIR --svg``: journal replay, curves,
inline SVG plots; no matplotlib) is rendered by a child process, at most one at a time and at
most every ``every_s`` seconds, and once more when the master ends, after its last journal
record. The child replaces the file by an atomic rename: a browser never sees half a page.
"""
from __future__ import annotations

import logging
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import IO

log = logging.getLogger("asha_hpc")

REPORT_NAME = "report.html"
DEFAULT_EVERY_S = 30.0
FINAL_TIMEOUT_S = 120.0
_STOPS = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}


class LiveReport:
    def __init__(self, exp_root: Path, every_s: float = DEFAULT_EVERY_S) -> None:
        self.root = Path(exp_root)
        self.path = self.root / REPORT_NAME
        self.every_s = every_s
        self._child: subprocess.Popen | None = None
        self._err: IO[bytes] | None = None
        self._last = 0.0
        self._warned = False

    def _reap(self) -> bool:
        """True when no child runs (the last one's failure, if any, logged once)."""
        if self._child is None:
            return True
        rc = self._child.poll()
        if rc is None:
            return False
        # killed by a signal its master got too (a terminal's Ctrl-C, a kernel's restart): not
        # the report's failure, and the master's last render follows
        if rc != 0 and -rc not in _STOPS and not self._warned and self._err is not None:
            self._err.seek(0)
            lines = self._err.read().decode(errors="replace").strip().splitlines()
            log.warning("the live report %s was not updated (exit %s): %s", self.path, rc,
                        lines[-1] if lines else "no message")
            self._warned = True
        if self._err is not None:
            self._err.close()
        self._child, self._err = None, None
        return True

    def _spawn(self) -> None:
        self._err = tempfile.TemporaryFile()
        self._child = subprocess.Popen(
            [sys.executable, "-m", "asha_hpc.cli", "report", str(self.root), "-o",
             str(self.path), "--svg", "--quiet", "--refresh", f"{max(self.every_s, 5.0):g}"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self._err,
            close_fds=True)
        self._last = time.monotonic()

    def poll(self) -> None:
        """Called every master step: start a render when the last one is ``every_s`` old
        and done. Costs a ``poll()`` of the child and a clock read otherwise."""
        if time.monotonic() - self._last < self.every_s or not self._reap():
            return
        self._spawn()

    def final(self, timeout_s: float = FINAL_TIMEOUT_S) -> None:
        """The master ends: render once more, after its last record, and wait for it."""
        try:
            if self._child is not None:
                self._child.wait(timeout=timeout_s)
                self._reap()
            self._spawn()
            assert self._child is not None
            self._child.wait(timeout=timeout_s)
            self._reap()
        except subprocess.TimeoutExpired:
            log.warning("the live report %s took over %.0f s; left to finish on its own",
                        self.path, timeout_s)

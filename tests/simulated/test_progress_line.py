"""The master's progress line: said every ``progress_every_s`` where it changed, and once a
minute where it did not, so a long wait fills no page (a notebook cell, a job's log) with one
line said again."""
import time as real_time

from asha_hpc.master import loop

from helpers import running


class _Clock:
    """time as the master's loop module sees it, at a wall-clock second the test sets."""

    def __init__(self, now: float) -> None:
        self.now = now

    def time(self) -> float:
        return self.now

    def __getattr__(self, name):
        return getattr(real_time, name)


def test_an_unchanged_progress_line_is_said_once_a_minute(tmp_path, monkeypatch):
    lines: list[str] = []
    _, _, master = running(tmp_path, progress=lines.append)
    said = loop.progress_line(master.state, 0.0)
    assert said.startswith("trials ")
    shown = [said]
    monkeypatch.setattr(loop, "progress_line", lambda st, now: shown[0])
    clock = _Clock(real_time.time() + 3600)
    monkeypatch.setattr(loop, "time", clock)
    lines.clear()
    for _ in range(24):  # two minutes of polls every 5 s, nothing changing
        master._show_progress()
        clock.now += 5
    assert lines == [said, said]
    shown[0] = said.replace("failed 0", "failed 1")  # a change is said at the next look
    master._show_progress()
    clock.now += 1
    shown[0] = said.replace("failed 0", "failed 2")
    master._show_progress()  # ... which is progress_every_s later
    assert lines[2:] == [shown[0].replace("failed 2", "failed 1")]
    master._show_progress(force=True)  # the end's line is always said
    assert lines[3:] == [shown[0]]

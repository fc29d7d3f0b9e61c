"""Files in the experiment folder that a person, an older release or a torn write may leave
with any content: queue.json (the master's view of the queue) and cancel.request. Reading them
never raises; what cannot be read is left out, and status still shows the rest."""
from __future__ import annotations

import json
import math
import time

from hypothesis import example, given, settings
from hypothesis import strategies as st

from asha_hpc.protocol.expdir import ExpDir
from asha_hpc.protocol.queue import Queue, QueuedJob, SubmitWait, read_queue, write_queue
from asha_hpc.protocol.requests import cancel_asked_at, write_cancel_request

JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
                    | st.text(max_size=8),
                    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c,
                                                                          max_size=4),
                    max_leaves=20)
FIELDS = st.fixed_dictionaries({}, optional={
    "job": JSON, "trials": JSON, "reason": JSON, "kind": JSON, "means": JSON, "since": JSON})


def _exp(tmp_path_factory) -> ExpDir:
    root = tmp_path_factory.mktemp("exp")
    return ExpDir(root)


@settings(max_examples=300, deadline=None)
@given(body=st.one_of(JSON, st.fixed_dictionaries(
    {"jobs": st.lists(st.one_of(FIELDS, JSON), max_size=4)},
    optional={"submissions_wait": st.one_of(JSON, st.fixed_dictionaries(
        {}, optional={"since": JSON, "error": JSON}))})), raw=st.binary(max_size=40))
@example(body={"jobs": [{"job": None, "trials": [float("inf")]}]}, raw=b"")  # int(inf) overflows
def test_any_queue_file_reads_as_a_queue_or_none(tmp_path_factory, body, raw):
    exp = _exp(tmp_path_factory)
    for data in (json.dumps(body).encode(), raw):
        exp.queue.write_bytes(data)
        q = read_queue(exp)
        assert q is None or isinstance(q, Queue)
        if q is not None:
            assert all(isinstance(j, QueuedJob) and isinstance(j.since, float) for j in q.jobs)
            assert q.submissions_wait is None or isinstance(q.submissions_wait.since, float)


def test_a_queue_written_reads_back(tmp_path):
    exp = ExpDir(tmp_path)
    q = Queue(jobs=[QueuedJob("12_0", [3], "Priority", "waits", "other jobs come first", 5.0)],
              submissions_wait=SubmitWait(since=7.0, error="sbatch: error: ..."))
    write_queue(exp, q)
    assert read_queue(exp) == q


@settings(max_examples=300, deadline=None)
@given(raw=st.binary(max_size=40))
def test_any_cancel_request_reads_as_a_time(tmp_path_factory, raw):
    exp = _exp(tmp_path_factory)
    exp.cancel_request.write_bytes(raw)
    asked = cancel_asked_at(exp)
    assert asked is not None and math.isfinite(asked) and 0 < asked < 1e10
    time.localtime(asked)  # status prints it


def test_a_cancel_request_written_reads_back_its_time(tmp_path):
    exp = ExpDir(tmp_path)
    assert cancel_asked_at(exp) is None
    before = time.time()
    write_cancel_request(exp)
    assert before <= cancel_asked_at(exp) <= time.time()


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=12))
def test_any_format_file_opens_or_is_refused_in_one_line(tmp_path_factory, data):
    """Whatever a folder's format file holds (torn, edited, another tool's), opening the
    folder raises nothing but the one-line refusal, and only for a whole number above ours."""
    from asha_hpc.errors import AshaError
    from asha_hpc.protocol.expdir import CONFIG, FORMAT, FORMAT_FILE, JOURNAL, ExpDir

    root = tmp_path_factory.mktemp("exp")
    (root / CONFIG).write_text("name: x\n")
    (root / JOURNAL).write_text("")
    (root / FORMAT_FILE).write_bytes(data)
    try:
        newer = int(data.decode().strip()) > FORMAT
    except (UnicodeDecodeError, ValueError):
        newer = False
    try:
        ExpDir.open(root, only_read=True)
        assert not newer
    except AshaError as e:
        assert newer and "written by a newer release of asha_hpc" in str(e)

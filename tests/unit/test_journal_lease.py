"""Journal (append-only, checksummed, torn tail tolerated) and master lease."""
import json
import os
import re
import socket
import subprocess
import sys
import time

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from asha_hpc.errors import AshaError, LeaseHeldError
from asha_hpc.master.lease import Lease
from asha_hpc.protocol import journal as journal_mod
from asha_hpc.protocol.journal import Journal, read_journal


def test_append_and_replay(tmp_path):
    p = tmp_path / "journal.jsonl"
    j = Journal(p)
    j.append([{"kind": "a"}, {"kind": "b"}])
    j.append([{"kind": "c"}])
    j.close()
    recs, _, warns = read_journal(p)
    assert [r["kind"] for r in recs] == ["a", "b", "c"]
    assert [r["seq"] for r in recs] == [1, 2, 3]
    assert warns == []


@pytest.mark.parametrize("tail", [b"deadbeef {\"kind\": \"x\"", b"0000", b"\x00\x00\x00",
                                  b"garbage without newline"])
def test_torn_last_line_is_ignored_and_cut_before_append(tmp_path, tail):
    p = tmp_path / "journal.jsonl"
    j = Journal(p)
    j.append([{"kind": "a"}])
    j.close()
    with open(p, "ab") as f:
        f.write(tail)
    recs, _, warns = read_journal(p)
    assert [r["kind"] for r in recs] == ["a"]
    assert len(warns) == 1 and "journal.jsonl" in warns[0] and "line 2" in warns[0]
    j = Journal(p)  # cuts the torn tail, then appends after the last good line
    j.append([{"kind": "b"}])
    j.close()
    recs, _, warns = read_journal(p)
    assert [r["kind"] for r in recs] == ["a", "b"] and warns == []


def test_complete_line_without_newline_counts_as_torn(tmp_path):
    p = tmp_path / "journal.jsonl"
    j = Journal(p)
    j.append([{"kind": "a"}, {"kind": "b"}])
    j.close()
    data = p.read_bytes()
    p.write_bytes(data[:-1])  # drop the final newline
    recs, _, warns = read_journal(p)
    assert [r["kind"] for r in recs] == ["a"] and warns


def test_corrupt_middle_line_is_skipped_and_named_every_other_record_kept(tmp_path):
    p = tmp_path / "journal.jsonl"
    j = Journal(p)
    j.append([{"kind": "a"}, {"kind": "b"}, {"kind": "c"}])
    j.close()
    lines = p.read_bytes().split(b"\n")
    lines[1] = lines[1].replace(b'"b"', b'"X"')  # checksum no longer matches
    p.write_bytes(b"\n".join(lines))
    recs, _, warns = read_journal(p)
    assert [r["kind"] for r in recs] == ["a", "c"]
    assert any("journal.jsonl: skipped line 2 (bad checksum" in w for w in warns)
    assert not any("cut" in w or "delete" in w for w in warns)  # never advises removing records
    j = Journal(p)  # a writer keeps the skipped line where it is and appends after the rest
    j.append([{"kind": "d"}])
    j.close()
    assert [r["kind"] for r in read_journal(p)[0]] == ["a", "c", "d"]


def test_write_failure_leaves_journal_valid(tmp_path, monkeypatch):
    p = tmp_path / "journal.jsonl"
    j = Journal(p)
    j.append([{"kind": "a"}])
    real_write = os.write

    def full_disk(fd, data):
        real_write(fd, bytes(data)[:5])  # a partial write, then the disk is full
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "write", full_disk)
    monkeypatch.setattr(journal_mod, "FULL_WAIT_S", 0.0)  # no waiting for room
    with pytest.raises(AshaError, match="No space left on device.*asha-hpc resume"):
        j.append([{"kind": "b"}])
    monkeypatch.setattr(os, "write", real_write)
    j.append([{"kind": "c"}])
    j.close()
    recs, _, warns = read_journal(p)
    assert [(r["kind"], r["seq"]) for r in recs] == [("a", 1), ("c", 2)] and warns == []


def test_second_master_refused_with_holder_named(tmp_path):
    a = Lease(tmp_path / "master.json")
    a.acquire()
    b = Lease(tmp_path / "master.json")
    with pytest.raises(LeaseHeldError, match=f"host {socket.gethostname()}, pid {os.getpid()}.*--force"):
        b.acquire()
    assert b.acquire(force=True) == "forced"
    with pytest.raises(LeaseHeldError, match="taken over"):
        a.heartbeat()


def test_stale_lease_of_dead_pid_is_taken_over(tmp_path):
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    path = tmp_path / "master.json"
    path.write_text(json.dumps({"host": socket.gethostname(), "pid": proc.pid, "token": "x",
                                "heartbeat": time.time()}))
    note = Lease(path).acquire()
    assert note and "is gone" in note


def test_lease_naming_a_reused_pid_is_taken_over_and_its_live_master_is_not(tmp_path):
    """On this host a pid alive now may belong to another process than the master that wrote
    the lease long ago (a reboot, pids wrapping): that lease is stale. A lease whose process
    started before it was written (its real master) still holds."""
    path = tmp_path / "master.json"
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        time.sleep(0.2)
        old = {"host": socket.gethostname(), "pid": other.pid, "token": "x",
               "started": time.time() - 86400, "heartbeat": time.time() - 86000}
        path.write_text(json.dumps(old))
        assert Lease(path).live_holder() is None
        note = Lease(path).acquire()
        assert note and str(other.pid) in note and "started after the lease" in note
    finally:
        other.kill()
        other.wait()
    path.unlink()
    master = Lease(path)
    master.acquire()
    with pytest.raises(LeaseHeldError, match=f"pid {os.getpid()}"):
        Lease(path).acquire()
    path.write_text(json.dumps({"host": socket.gethostname(), "pid": os.getpid(), "token": "y",
                                "heartbeat": time.time()}))  # a lease without "started": held
    with pytest.raises(LeaseHeldError):
        Lease(path).acquire()


def test_a_clock_step_leaves_a_live_master_holding_its_lease(tmp_path):
    """The wall clock stepped after the master started (NTP, a VM restored: its process now
    seems to have started 10 s after its lease says): its lease names the process by ticks
    since boot, which no clock step changes, so pause, resume and status still see it live.
    A reused pid has other ticks and is taken over."""
    path = tmp_path / "master.json"
    master = Lease(path)
    master.acquire()
    body = json.loads(path.read_text())
    body["started"] -= 10.0  # as the stepped clock now reads the process's start
    path.write_text(json.dumps(body))
    assert Lease(path).live_holder() is not None
    with pytest.raises(LeaseHeldError):
        Lease(path).acquire()
    body["ticks"] = str(int(body["ticks"]) + 1)  # another process with this pid
    path.write_text(json.dumps(body))
    note = Lease(path).acquire()
    assert note and "started after the lease" in note


def _written_ago(path, body, seconds):
    """The lease file as a master that last wrote it ``seconds`` ago left it."""
    path.write_text(json.dumps(body))
    os.utime(path, (time.time() - seconds, time.time() - seconds))


def test_stale_lease_of_other_host_needs_heartbeat_timeout(tmp_path):
    path = tmp_path / "master.json"
    _written_ago(path, {"host": "other-node", "pid": 1, "token": "x", "heartbeat": time.time()}, 0)
    with pytest.raises(LeaseHeldError, match="other-node") as held:
        Lease(path, timeout_s=60).acquire()
    assert "a master on another host takes over once it is 60 s old" in str(held.value)
    _written_ago(path, {"host": "other-node", "pid": 1, "token": "x",
                        "heartbeat": time.time() - 120}, 120)
    assert "no heartbeat" in Lease(path, timeout_s=60).acquire()


@settings(max_examples=60, deadline=None)
@given(skew=st.floats(-7200, 7200), quiet=st.floats(0, 300))
def test_a_clock_difference_between_hosts_never_takes_a_live_lease(tmp_path_factory, skew, quiet):
    """Master A on another host whose clock is ``skew`` s off this one's last wrote the lease
    ``quiet`` s ago (the file system's clock). A new master takes it over exactly when A has
    been quiet past the timeout, whatever the skew; when it refuses because the clocks differ,
    it says so."""
    path = tmp_path_factory.mktemp("lease") / "master.json"
    _written_ago(path, {"host": "login2", "pid": 7, "token": "a",
                        "heartbeat": time.time() - quiet + skew}, quiet)
    lease = Lease(path, timeout_s=60)
    if quiet > 61 and quiet - skew > 61:
        assert "no heartbeat" in lease.acquire()
    elif quiet < 59 or quiet - skew < 59:
        with pytest.raises(LeaseHeldError, match="host login2, pid 7") as e:
            lease.acquire()
        if quiet < 59 and -skew > 61:  # A's heartbeat looks old by this host's clock
            assert "the two hosts' clocks differ by about" in str(e.value)


@settings(max_examples=60, deadline=None)
@given(skew=st.floats(-7200, 7200), quiet=st.floats(0, 300))
def test_status_sees_a_live_master_whatever_its_clock(tmp_path_factory, skew, quiet):
    """The same master seen by `status` and `cancel`, which only read: alive exactly while its
    lease file was written within the timeout, whatever its clock says."""
    path = tmp_path_factory.mktemp("lease") / "master.json"
    _written_ago(path, {"host": "login2", "pid": 7, "token": "a",
                        "heartbeat": time.time() - quiet + skew}, quiet)
    alive = Lease(path, timeout_s=60).live_holder()
    if quiet < 59:
        assert alive is not None and alive["host"] == "login2"
    elif quiet > 61 and quiet - skew > 61:
        assert alive is None


def test_deferred_sync_group_commits_until_someone_acts(tmp_path, monkeypatch):
    """sync=False writes at once (a reader and a crashed-then-restarted master see the
    records) but leaves the fsync to the next synced append: the master's poll of results and
    the hand-over they lead to cost one fsync, not two."""
    p = tmp_path / "journal.jsonl"
    fsyncs = []
    for name in ("fsync", "fdatasync"):  # either makes data durable: count both
        real = getattr(os, name)
        monkeypatch.setattr(os, name, lambda fd, real=real: (fsyncs.append(fd), real(fd))[1])
    j = Journal(p)
    j.append([{"kind": "result"}], sync=False)
    j.append([{"kind": "result"}], sync=False)
    assert fsyncs == []
    assert [r["kind"] for r in read_journal(p)[0]] == ["result", "result"]
    j.append([{"kind": "intent"}])
    assert len(fsyncs) == 1
    j.sync()  # nothing left to make durable
    assert len(fsyncs) == 1
    j.append([{"kind": "result"}], sync=False)
    j.sync()
    assert len(fsyncs) == 2
    j.close()
    assert [r["seq"] for r in read_journal(p)[0]] == [1, 2, 3, 4]


def test_a_full_disk_that_empties_within_the_wait_costs_nothing(tmp_path, monkeypatch):
    """A job's partial checkpoint fills the disk for a moment: the append waits, then goes."""
    p = tmp_path / "journal.jsonl"
    j = Journal(p)
    j.append([{"kind": "a"}])
    real_write, fails = os.write, [2]

    def write(fd, data):
        if fails[0]:
            fails[0] -= 1
            real_write(fd, bytes(data)[:3])
            raise OSError(28, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", write)
    j.append([{"kind": "b"}])
    monkeypatch.setattr(os, "write", real_write)
    assert [(r["kind"], r["seq"]) for r in read_journal(p)[0]] == [("a", 1), ("b", 2)]


@settings(max_examples=40, deadline=None)
@given(theirs=st.lists(st.sampled_from(["lower", "later", "garbage"]), max_size=6))
def test_the_journal_fence_stops_a_writer_only_for_a_later_masters_records(tmp_path_factory, theirs):
    """Whatever follows this writer's last write: records of a later epoch (a master that took
    over) stop it; a superseded master's late records (lower epoch) and torn bytes do not, and
    replay drops or skips them."""
    from asha_hpc.errors import LeaseHeldError

    p = tmp_path_factory.mktemp("fence") / "journal.jsonl"
    Journal(p, epoch=1).append([{"kind": "a"}])
    mine = Journal(p, epoch=2, fence=lambda: None)
    mine.append([{"kind": "b"}])
    for what in theirs:
        if what == "garbage":
            with open(p, "ab") as f:
                f.write(b"\x00torn")
        else:
            Journal(p, epoch=1 if what == "lower" else 3).append([{"kind": what}])
    if "later" in theirs:
        with pytest.raises(LeaseHeldError, match="the journal changed since this master's last write"):
            mine.append([{"kind": "c"}])
    else:
        mine.append([{"kind": "c"}])
        assert [r["kind"] for r in read_journal(p)[0]][-1] == "c"


_SEARCH_JOURNAL: dict[str, object] = {}


def _search_journal(tmp_path_factory):
    """A finished simulated search's config and journal bytes (made once)."""
    if not _SEARCH_JOURNAL:
        from asha_hpc.master.loop import Master
        from asha_hpc.protocol.expdir import ExpDir

        from helpers import sim_cfg

        cfg = sim_cfg(trials=12, concurrent=4, failure_rate=0.0)
        exp = ExpDir.create(tmp_path_factory.mktemp("sim") / "exp")
        Master(exp, cfg, progress=lambda s: None).run()
        _SEARCH_JOURNAL.update(cfg=cfg, data=exp.journal.read_bytes())
    return _SEARCH_JOURNAL["cfg"], _SEARCH_JOURNAL["data"]


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_any_corrupt_line_leaves_the_views_a_state_and_resume_one_message(tmp_path_factory, data):
    """A bad line in the middle of the journal is skipped; the records after it may depend on
    it (a result a later promotion needs). The views then show the state up to the first
    record that cannot be replayed, and say why; a master refuses with one message naming
    the record and what to do. Before, every command died with the searcher's traceback."""
    from asha_hpc.master.state import replay

    cfg, raw = _search_journal(tmp_path_factory)
    lines = raw.split(b"\n")
    i = data.draw(st.integers(0, len(lines) - 3), label="line")  # the last one: a torn tail
    at = data.draw(st.integers(9, max(9, len(lines[i]) - 1)), label="byte")  # past the checksum
    lines[i] = lines[i][:at] + b"#" + lines[i][at + 1:]
    p = tmp_path_factory.mktemp("j") / "journal.jsonl"
    p.write_bytes(b"\n".join(lines))
    recs, _, warns = read_journal(p)
    assert len(recs) == len(lines) - 2 and any("skipped line" in w for w in warns)
    salvaged = replay(cfg, recs, salvage=True)
    try:
        replay(cfg, recs)
    except AshaError as e:
        assert salvaged.damaged == str(e)
        assert re.search(rf"\blost record {i + 1}\b", str(e)), str(e)
        assert "estore journal.jsonl from a backup" in str(e)
    else:
        assert salvaged.damaged is None


def test_a_lost_last_result_is_said_and_resume_refuses(tmp_path_factory):
    """The lost record is a trial's last result, and no later record needs it to replay, but
    the search's end does: it says the search completed while that trial still trains. The
    views say so, and a master refuses, as for any record lost that a later one needs."""
    from asha_hpc.master.state import replay

    cfg, raw = _search_journal(tmp_path_factory)
    lines = raw.split(b"\n")
    i = max(k for k, line in enumerate(lines) if b'"kind":"result"' in line)
    lines[i] = lines[i].replace(b'"status":"completed"', b'"status":"complete#"')
    p = tmp_path_factory.mktemp("j") / "journal.jsonl"
    p.write_bytes(b"\n".join(lines))
    recs = read_journal(p)[0]
    trial = json.loads(raw.split(b"\n")[i].split(b" ", 1)[1])["trial"]
    salvaged = replay(cfg, recs, salvage=True)
    with pytest.raises(AshaError) as e:
        replay(cfg, recs)
    assert salvaged.damaged == str(e.value)
    assert str(e.value).startswith(f"the journal says the search completed, but trial {trial} "
                                   f"never ended in it: it lost record {i + 1} (a corrupt line")
    assert "Restore journal.jsonl from a backup" in str(e.value)


@settings(max_examples=150, deadline=None)
@given(where=st.none() | st.booleans() | st.integers() | st.text(max_size=30)
       | st.sampled_from(["here", "elsewhere", "gone"]))
@example(where="/")
@example(where=".")
def test_a_leases_folder_of_any_kind_leaves_a_live_master_live_unless_it_is_another_folder(
        tmp_path_factory, where):
    """The lease names the folder its master runs: a lease copied with its experiment into
    another folder on this host is not that folder's master. A lease of an earlier release (no
    folder), a foreign value or another host's path changes nothing."""
    base = tmp_path_factory.mktemp("copy")
    here, other = base / "exp", base / "orig"
    here.mkdir()
    other.mkdir()
    folder = {"here": str(here), "elsewhere": str(other), "gone": str(base / "nowhere")}.get(
        where, where) if isinstance(where, str) else where
    path = here / "master.json"
    body = {"host": socket.gethostname(), "pid": os.getpid(), "token": "a", "started": time.time(),
            "heartbeat": time.time(), "dir": folder}
    path.write_text(json.dumps(body))
    alive = Lease(path).live_holder()
    # arbitrary text can name a folder that exists here too ("/", "."): that is another folder
    another = where == "elsewhere" or (
        isinstance(where, str) and where not in ("here", "gone") and "\0" not in where
        and os.path.exists(where) and not os.path.samefile(where, here))
    assert (alive is None) == another, (where, alive)


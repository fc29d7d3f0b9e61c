"""A trial's ranks on other hosts judge each other by heartbeat files (job/ranks.py): a peer is
dead when its file stopped changing for 6 beats by the reader's own clock, whatever the clock
of the host or file server that stamped it says. Hosts' clocks differ by minutes on some
clusters: a peer must not be taken for dead because its stamps look old, nor for alive
because they look new."""
from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

import pytest

from asha_hpc.job.ranks import Group, PeerGone, Ranks

BEAT_S = 0.1  # silence is 0.6 s: far beyond a stall of this test under load


def _group(tmp_path):
    g = Group(tmp_path, Ranks(rank=0, world_size=2), heartbeat_s=BEAT_S)
    (tmp_path / "rank1.json").write_text(json.dumps(
        {"host": "another-host", "pid": 1, "incarnation": g.incarnation}))
    g.heartbeat_file(1).write_text("")
    return g


def _stamp(g, t):
    os.utime(g.heartbeat_file(1), (t, t))


@pytest.mark.parametrize("skew_s", [-3600.0, 0.0, 3600.0], ids=["behind", "same", "ahead"])
def test_a_beating_peer_is_alive_and_a_silent_one_dead_whatever_its_clock(tmp_path, skew_s):
    g = _group(tmp_path)
    # the peer beats: its stamps change, an hour off this host's clock or not
    end = time.monotonic() + 8 * BEAT_S
    while time.monotonic() < end:
        _stamp(g, time.time() + skew_s)
        last = time.monotonic()
        assert g.dead_peers() == {}
        time.sleep(BEAT_S)
    # it stops: dead once 6 beats passed here without a change, not before
    while not g.dead_peers():
        assert time.monotonic() - last < 20 * BEAT_S, "a silent peer was never found dead"
        time.sleep(BEAT_S / 5)
    assert time.monotonic() - last >= 6 * BEAT_S
    [(rank, why)] = g.dead_peers().items()
    assert rank == 1 and why.startswith("no heartbeat for ")


def test_a_peer_not_registered_yet_is_not_judged(tmp_path):
    g = Group(tmp_path, Ranks(rank=0, world_size=2), heartbeat_s=BEAT_S)
    g.heartbeat_file(1).write_text("")
    _stamp(g, time.time() - 3600)
    time.sleep(8 * BEAT_S)
    assert g.dead_peers() == {}


def test_a_silent_peer_on_another_node_is_blamed_by_its_node(tmp_path):
    """The rank whose collective failed names the peer that died first, and that peer's node:
    the master holds the failure against that node, not against the reporting rank's."""
    g = _group(tmp_path)
    (tmp_path / "rank1.json").write_text(json.dumps(
        {"host": "another-host", "node": "gpu17", "pid": 1, "incarnation": g.incarnation}))
    assert g.node_of(1) == "gpu17" and g.node_of(0) is None  # rank 0 (this one) never registered
    start = time.monotonic()
    gone = g.blame(ConnectionError("Connection closed by peer"), wait_s=40 * BEAT_S)
    assert gone is not None and (gone.rank, gone.node) == (1, "gpu17")
    assert time.monotonic() - start >= 6 * BEAT_S  # judged by its silence, not guessed
    assert str(gone).startswith("rank 1 on node gpu17 died (no heartbeat for ")


def test_a_peer_that_ended_its_attempt_is_not_dead_and_nobody_is_blamed(tmp_path):
    g = _group(tmp_path)
    peer = Group(tmp_path, Ranks(rank=1, world_size=2), heartbeat_s=BEAT_S)
    peer.mark_ended()  # its code raised (or returned) and it exited: no silent death
    start = time.monotonic()
    assert g.blame(RuntimeError("boom"), wait_s=40 * BEAT_S) is None
    assert time.monotonic() - start < 6 * BEAT_S  # nothing left to wait for
    time.sleep(8 * BEAT_S)
    assert g.dead_peers() == {}


def test_a_live_peer_is_waited_for_then_nobody_is_blamed(tmp_path):
    g = _group(tmp_path)
    end = time.monotonic() + 4 * BEAT_S
    while time.monotonic() < end:
        _stamp(g, time.time())
        gone = g.blame(RuntimeError("own fault"), wait_s=BEAT_S)
        assert gone is None


def test_a_peer_gone_raised_in_a_wait_is_found_in_the_chain(tmp_path):
    g = _group(tmp_path)
    inner = PeerGone("rank 0: rank 1 on node gpu3 died (x) while waiting for y", 1, "gpu3", "x")
    try:
        try:
            raise inner
        except PeerGone as e:
            raise RuntimeError("while saving a checkpoint") from e
    except RuntimeError as outer:
        assert g.blame(outer, wait_s=0.0) is inner


def test_a_peer_whose_code_failed_ends_a_wait_for_it_at_once(tmp_path):
    """A rank that raised will never reach the barrier its peers wait in: they stop waiting
    at once (its marker says so), naming its node and its error; it is not dead."""
    g = _group(tmp_path)
    (tmp_path / "rank1.json").write_text(json.dumps(
        {"host": "another-host", "node": "gpu05", "pid": 1, "incarnation": g.incarnation}))
    peer = Group(tmp_path, Ranks(rank=1, world_size=2), heartbeat_s=BEAT_S)
    peer.mark_ended("Traceback (most recent call last):\nRuntimeError: CUDA error: out of memory")
    assert g.dead_peers() == {}
    start = time.monotonic()
    with pytest.raises(PeerGone) as e:
        g.wait(lambda: False, "every rank to finish saved")
    assert time.monotonic() - start < 6 * BEAT_S and not e.value.silent
    assert (e.value.rank, e.value.node) == (1, "gpu05")
    assert str(e.value) == ("rank 0: rank 1 on node gpu05 failed (its code failed: RuntimeError: "
                            "CUDA error: out of memory) while waiting for every rank to finish saved")


@pytest.mark.parametrize("rank,local_rank,local_world,watched", [
    (0, 0, 4, [1, 2, 3, 4, 5, 6, 7]),  # rank 0 watches every rank
    (1, 1, 4, [0, 2, 3]),              # the others: rank 0 and their own node's ranks
    (5, 1, 4, [0, 4, 6, 7]),
    (4, 0, 1, [0]),
])
def test_each_rank_watches_rank_0_and_its_own_node(tmp_path, rank, local_rank, local_world, watched):
    g = Group(tmp_path, Ranks(rank, 8, local_rank, local_world), heartbeat_s=BEAT_S)
    assert g.watched() == watched


def test_the_watch_finds_a_silent_peer_on_another_node_by_its_heartbeat(tmp_path):
    """The watch looks at this host's peers often and at the shared files once a beat; a
    peer on another host that stops beating is found after 6 beats, on two looks in a row."""
    from types import SimpleNamespace

    from asha_hpc.job.jobmain import _PeerWatch

    g = _group(tmp_path)
    (tmp_path / "rank1.json").write_text(json.dumps(
        {"host": "another-host", "node": "gpu09", "pid": 1, "incarnation": g.incarnation}))
    found = []
    session = SimpleNamespace(_peer_died=lambda att, gone: found.append((time.monotonic(), gone)))
    watch = _PeerWatch(session, SimpleNamespace(group=g), every=BEAT_S / 4)
    start = time.monotonic()
    watch.start()
    while not found and time.monotonic() - start < 40 * BEAT_S:
        time.sleep(BEAT_S / 10)
    watch.halt.set()
    assert found, "the silent peer was never found"
    at, gone = found[0]
    assert at - start >= 6 * BEAT_S and (gone.rank, gone.node, gone.silent) == (1, "gpu09", True)


def test_a_wait_reads_only_the_watched_peers_files_and_rarely(tmp_path, monkeypatch):
    """Every rank but 0 waits for rank 0 at each checkpoint. In a trial of 64 ranks on 8
    nodes, rank 9's wait reads the files of rank 0 and of its own node only, and looks at
    them half a second in and then once a heartbeat, not at every poll: 63 ranks reading
    every peer every half second load the shared filesystem's metadata server with
    thousands of requests a second (``benchmarks/rank_waits.py``)."""
    import io

    me = Ranks(9, 64, 1, 8)
    g = Group(tmp_path, me, heartbeat_s=10.0)
    for r in range(64):
        (tmp_path / f"rank{r}.json").write_text(json.dumps(
            {"host": f"host{r // 8}", "node": f"gpu{r // 8}", "pid": 1,
             "incarnation": g.incarnation}))
        g.heartbeat_file(r).write_text("")
    waited = tmp_path / ".tmp-ckpt"
    waited.mkdir()
    seen: list[str] = []
    real_stat, real_open = os.stat, io.open

    def stat(p, *a, **kw):
        seen.append(os.path.basename(str(p)))
        return real_stat(p, *a, **kw)

    def open_(p, *a, **kw):
        seen.append(os.path.basename(str(p)))
        return real_open(p, *a, **kw)

    monkeypatch.setattr(os, "stat", stat)
    monkeypatch.setattr(io, "open", open_)
    with pytest.raises(RuntimeError, match="timed out waiting for rank 0 to publish"):
        g.wait(lambda: not waited.exists(), "rank 0 to publish", timeout_s=2.0)
    monkeypatch.undo()
    peers_read = {int(m.group(1)) if (m := re.search(r"rank(\d+)", n)) else 0
                  for n in seen if n.startswith(("heartbeat", "ended", "rank"))}
    assert peers_read <= {0, *range(8, 16)} - {9} and 0 in peers_read
    polls = seen.count(".tmp-ckpt")
    peer_files = len(seen) - polls
    assert polls <= 2.0 / 0.5 + 8  # backs off from 20 ms to every half second
    # one full look in 2 s (the next is a heartbeat later): a peer's registration (read once
    # for the attempt), its heartbeat and its end marker
    assert peer_files <= 3 * len(g.watched())


@pytest.mark.parametrize("host", ["this host", "another host"])
def test_a_failed_peer_on_this_host_is_seen_at_the_next_local_look(tmp_path, host):
    """A warm worker's rank whose code raised lives on, so its pid says nothing; its peer here,
    blocked in a collective, used to read its end marker only at the next heartbeat's look (10 s
    in a real job). The failed rank rings a doorbell off the shared filesystem; a peer on
    another host still reads the marker once a heartbeat."""
    import socket
    from types import SimpleNamespace

    from asha_hpc.job.jobmain import _PeerWatch

    beat_s = 60.0  # no heartbeat's look falls inside this test
    me = Group(tmp_path, Ranks(0, 2, 0, 2), heartbeat_s=beat_s)
    peer = Group(tmp_path, Ranks(1, 2, 1, 2), heartbeat_s=beat_s)
    (tmp_path / "rank1.json").write_text(json.dumps(
        {"host": socket.gethostname() if host == "this host" else "gpu-elsewhere", "node": "n1",
         "pid": os.getpid(), "incarnation": me.incarnation}))  # its process lives on
    found = []
    session = SimpleNamespace(_peer_died=lambda att, gone: found.append(gone))
    watch = _PeerWatch(session, SimpleNamespace(group=me), every=0.05)
    watch.start()
    try:
        time.sleep(0.3)
        assert not found  # alive and not ended
        peer.mark_ended("Traceback (most recent call last):\nRuntimeError: CUDA error")
        start = time.monotonic()
        while not found and time.monotonic() - start < 3.0:
            time.sleep(0.02)
    finally:
        watch.halt.set()
    if host == "another host":
        assert not found  # its marker is read at the next heartbeat's look
        return
    assert found, "the failed peer on this host was not seen before the next heartbeat"
    assert (found[0].rank, found[0].silent) == (1, False)
    assert str(found[0]).endswith("failed (its code failed: RuntimeError: CUDA error)")
    # the wait at a checkpoint sees it as soon
    start = time.monotonic()
    with pytest.raises(PeerGone):
        me.wait(lambda: False, "every rank to finish saved", timeout_s=30.0)
    assert time.monotonic() - start < 3.0
    # the doorbell is the failed process's: its next attempt takes it down
    rung = list(Path(peer._doorbell(1).parent).glob(peer._doorbell(1).name))
    assert rung
    Group(tmp_path / "next", Ranks(1, 2, 1, 2))
    assert not peer._doorbell(1).exists()


def test_doorbells_left_behind_are_swept_after_an_hour(tmp_path, monkeypatch):
    """A rank that ends for a dead peer leaves with os._exit: no exit handler removes its
    doorbell, so the next attempt on the node removes those older than an hour."""
    import asha_hpc.job.ranks as ranks

    monkeypatch.setattr(ranks, "_node_local_dir", lambda: str(tmp_path))
    old, new, other = (tmp_path / "asha-old.rank0.failed", tmp_path / "asha-new.rank0.failed",
                       tmp_path / "someone-elses.failed")
    for p in (old, new, other):
        p.touch()
    two_hours_ago = time.time() - 7200
    for p in (old, other):
        os.utime(p, (two_hours_ago, two_hours_ago))
    Group(tmp_path / "run", Ranks(0, 1))  # one rank: no doorbells, no sweep
    assert old.exists()
    Group(tmp_path / "run", Ranks(0, 2, 0, 2))
    assert not old.exists() and new.exists() and other.exists()

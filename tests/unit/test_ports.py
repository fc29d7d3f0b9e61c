"""The rendezvous port of a trial (job/ports.py): free, and out of the range the kernel gives
outgoing connections, which could take a port between the check and the training code's bind."""
import random
import socket

from asha_hpc.job.ports import TORCH_DEFAULTS, ephemeral_range, free_port


def test_a_free_port_is_bindable_and_below_the_ephemeral_range():
    lo, hi = ephemeral_range()
    seen = set()
    for _ in range(100):
        port = free_port()
        assert 20000 <= port < lo and port not in TORCH_DEFAULTS
        with socket.socket() as s:
            s.bind(("", port))
            s.listen()
        seen.add(port)
    assert len(seen) > 90  # drawn at random: two trials on a node rarely try the same one


def test_outgoing_connections_never_take_it():
    port = free_port()
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(512)
        clients = []
        try:
            for _ in range(300):
                c = socket.create_connection(listener.getsockname())
                clients.append(c)
            used = {c.getsockname()[1] for c in clients}
        finally:
            for c in clients:
                c.close()
    lo, hi = ephemeral_range()
    assert all(lo <= p <= hi for p in used) and port not in used
    with socket.socket() as s:  # still the training code's to bind
        s.bind(("", port))


def test_without_room_below_the_range_or_a_range_to_read_the_kernel_picks(tmp_path):
    narrow = tmp_path / "range"
    narrow.write_text("20500\t60999\n")
    assert ephemeral_range(narrow) == (20500, 60999)
    for path in (narrow, tmp_path / "missing", tmp_path):
        port = free_port(path)
        lo, hi = ephemeral_range()
        assert lo <= port <= hi


def test_when_every_try_is_taken_the_kernel_picks():
    with socket.socket() as held:
        held.bind(("", 0))
        held.listen()
        taken = held.getsockname()[1]
        lo, hi = ephemeral_range()

        class Busy(random.Random):
            def sample(self, population, k, **kw):  # type: ignore[override]
                return [taken] * k

        port = free_port(rng=Busy())
        assert port != taken and lo <= port <= hi

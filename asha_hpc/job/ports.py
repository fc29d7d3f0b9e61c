"""A TCP port for a trial's rendezvous (``MASTER_PORT``, ``ASHA_FREE_PORT``).

The usual recipe, bind port 0 and close the socket, hands out a port from the kernel's
ephemeral range, the one it also gives every outgoing connection. Between that check and the
training code's own bind (seconds: torch is imported in between) any connection the node
opens (to Slurm's controller, a file server, another job's store) can take the port, and the
store then fails with EADDRINUSE, whatever SO_REUSEADDR says. A port below that range is
never taken by a connection; a random one of several thousand, checked free, is unlikely to
be chosen by another trial on the node in the same seconds.
"""
from __future__ import annotations

import random
import socket
from pathlib import Path

EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
LOWEST = 20000  # above the ports services are usually given
TORCH_DEFAULTS = range(29400, 29601)  # torchrun's 29500 and its c10d rendezvous' 29400
MIN_CHOICES = 1000  # fewer candidates than this below the ephemeral range: ask the kernel
TRIES = 64


def ephemeral_range(path: Path = EPHEMERAL_RANGE) -> tuple[int, int] | None:
    """The kernel's range for outgoing connections, or None where it cannot be read."""
    try:
        lo, hi = (int(x) for x in path.read_text().split())
    except (OSError, ValueError):
        return None
    return lo, hi


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("", port))
        except OSError:
            return False
    return True


def free_port(path: Path = EPHEMERAL_RANGE, rng: random.Random | None = None) -> int:
    """A port nothing is bound to now, below the ephemeral range where that range leaves
    enough room (else, or when every try is taken, one the kernel picks)."""
    eph = ephemeral_range(path)
    rng = rng or random.SystemRandom()
    if eph is not None:
        choices = [p for p in range(LOWEST, eph[0]) if p not in TORCH_DEFAULTS]
        if len(choices) >= MIN_CHOICES:
            for port in rng.sample(choices, TRIES):
                if _bindable(port):
                    return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("", 0))
        return int(s.getsockname()[1])

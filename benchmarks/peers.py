"""What the search benchmarks (stopping_rules.py, search_quality.py) share to drive the peer
systems: whether a peer is installed, and Ray Tune's scheduler driven without Ray's runtime
(a trial handle its ``ASHAScheduler`` accepts, configurations drawn from ``tune`` domains)."""
from __future__ import annotations

from typing import Any


def have(mod: str) -> bool:
    """``mod`` imports (an optional peer such as optuna or ray.tune is installed)."""
    try:
        __import__(mod)
        return True
    except ImportError:
        return False


class RayTrial:
    """The part of a Ray Tune trial its schedulers read (``trial_id``), with the benchmark's
    own bookkeeping: ``n`` (1, 2, ... in creation order) and ``step`` (units trained)."""

    __slots__ = ("trial_id", "config", "n", "step")

    def __init__(self, n: int, config: dict[str, Any]) -> None:
        self.trial_id, self.config, self.n, self.step = str(n), config, n, 0


def ray_sample(domains: dict[str, Any], rs: Any) -> dict[str, Any]:
    """One configuration from ``tune`` domains with a numpy RandomState, as plain Python values
    (numpy scalars would not compare or serialise like the other systems' values)."""
    cfg = {k: d.sample(random_state=rs) for k, d in domains.items()}
    return {k: (v.item() if hasattr(v, "item") else v) for k, v in cfg.items()}

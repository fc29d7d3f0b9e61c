"""What the search benchmarks (stopping_rules.py, search_quality.py) share to drive the peer
systems: whether a peer is installed, an asha_hpc search space in a peer's own domains, and Ray
Tune's scheduler driven without Ray's runtime (a trial handle its ``ASHAScheduler`` accepts,
configurations drawn from ``tune`` domains)."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any


def have(mod: str) -> bool:
    """``mod`` imports (an optional peer such as optuna or ray.tune is installed)."""
    try:
        __import__(mod)
        return True
    except ImportError:
        return False


def peer_domains(spec: dict[str, Any], *, uniform: Callable[[float, float], Any],
                 loguniform: Callable[[float, float], Any], randint: Callable[[int, int], Any],
                 choice: Callable[[list[Any]], Any]) -> dict[str, Any]:
    """A flat asha_hpc space spec (``log``, ``double``, ``int``, ``categorical``) in a peer's
    domains, built with its constructors; ``randint(lo, hi)`` gets both bounds inclusive, as
    asha_hpc's ``int`` has them (Ray's ``tune.randint`` excludes ``hi``: wrap it)."""
    out = {}
    for k, p in spec.items():
        t = p["type"]
        if t == "log":
            b = p["base"]
            out[k] = loguniform(b ** p["minval"], b ** p["maxval"])
        elif t == "double":
            out[k] = uniform(p["minval"], p["maxval"])
        elif t == "int":
            out[k] = randint(p["minval"], p["maxval"])
        elif t == "categorical":
            out[k] = choice(list(p["vals"]))
        else:
            raise ValueError(f"hyperparameter {k!r}: type {t!r} has no peer domain here")
    return out


class RayTrial:
    """The part of a Ray Tune trial its schedulers read (``trial_id``), with the benchmark's
    own bookkeeping: ``n`` (1, 2, ... in creation order) and ``step`` (units trained)."""

    __slots__ = ("trial_id", "config", "n", "step")

    def __init__(self, n: int, config: dict[str, Any]) -> None:
        self.trial_id, self.config, self.n, self.step = str(n), config, n, 0


def ray_sample(domains: dict[str, Any], rs: Any) -> dict[str, Any]:
    """One configuration from ``tune`` domains with a numpy RandomState, as plain Python values
    (numpy scalars would not compare or serialise like the other systems' values)."""
    return plain({k: d.sample(random_state=rs) for k, d in domains.items()})


def plain(cfg: Any) -> dict[str, Any]:
    """A peer's configuration with numpy scalars as Python values (numpy scalars would not
    compare or serialise like the other systems' values)."""
    return {k: (v.item() if hasattr(v, "item") else v) for k, v in cfg.items()}

"""Virtual workers for the benchmarks that drive searchers in simulated time
(stopping_rules.py, search_quality.py).

    run_pool(system)                 # until the system hands out no more work
    run_pool(system, stop=run.over)  # or until ``stop()`` says the budget is spent: True if
                                     # work was still in flight then

``system`` hands out work items: ``start()`` the first ones (as many as it has workers),
``done(item)`` the next ones once ``item`` has finished, ``cost(item)`` the units an item takes.
A work item of k units holds one worker for k time steps (at least one), so the order in which
results arrive is the order a real cluster with equally fast workers would produce.
"""
from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable
from typing import Any, Protocol


class System(Protocol):
    def start(self) -> Iterable[Any]: ...

    def done(self, item: Any) -> Iterable[Any]: ...

    def cost(self, item: Any) -> float: ...


def run_pool(system: System, stop: Callable[[], bool] = lambda: False) -> bool:
    """Returns whether ``stop()`` ended it with work still in flight."""
    heap: list[tuple[float, int, Any]] = []
    seq = 0
    now = 0.0

    def push(items: Iterable[Any]) -> None:
        nonlocal seq
        for w in items:
            seq += 1  # ties end in the order they started: deterministic
            heapq.heappush(heap, (now + max(system.cost(w), 1), seq, w))

    push(system.start())
    while heap and not stop():
        now, _, w = heapq.heappop(heap)
        push(system.done(w))
    return bool(heap)

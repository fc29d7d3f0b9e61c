"""A small sorted multiset with rank queries in O(log n): what a rung needs.

Keys live in sorted buckets of at most ``2 * LOAD`` items (so an insert moves at most a
bucket's worth of pointers, not the whole list), a list of bucket maxima finds the bucket by
bisection, and a Fenwick tree over the bucket sizes answers "how many keys are smaller than
k" in O(log(n / LOAD)). Splitting a bucket rebuilds the Fenwick tree (O(n / LOAD)), which
happens once per LOAD inserts, so it is O(1) amortised.
"""
from __future__ import annotations

from bisect import bisect_left, bisect_right, insort
from collections.abc import Iterator
from typing import Any

LOAD = 256


class SortedKeys:
    """Sorted distinct-or-not keys (any mutually comparable values)."""

    __slots__ = ("_lists", "_maxes", "_fen", "_len")

    def __init__(self) -> None:
        self._lists: list[list[Any]] = []
        self._maxes: list[Any] = []
        self._fen: list[int] = [0]  # 1-based Fenwick tree over len(self._lists[i])
        self._len = 0

    # ------------------------------------------------------------------ fenwick
    def _rebuild(self) -> None:
        n = len(self._lists)
        fen = [0] * (n + 1)
        for i, lst in enumerate(self._lists, 1):
            fen[i] += len(lst)
            j = i + (i & -i)
            if j <= n:
                fen[j] += fen[i]
        self._fen = fen

    def _bump(self, i: int, delta: int) -> None:
        fen = self._fen
        n = len(fen) - 1
        i += 1
        while i <= n:
            fen[i] += delta
            i += i & -i

    def _prefix(self, i: int) -> int:
        """Number of keys in buckets ``0 .. i-1``."""
        fen = self._fen
        s = 0
        while i > 0:
            s += fen[i]
            i -= i & -i
        return s

    # ------------------------------------------------------------------ public
    def __len__(self) -> int:
        return self._len

    def __iter__(self) -> Iterator[Any]:
        for lst in self._lists:
            yield from lst

    def __bool__(self) -> bool:
        return self._len > 0

    def first(self) -> Any:
        """The smallest key (IndexError when empty)."""
        return self._lists[0][0]

    def add(self, key: Any) -> None:
        lists, maxes = self._lists, self._maxes
        self._len += 1
        if not lists:
            lists.append([key])
            maxes.append(key)
            self._rebuild()
            return
        i = bisect_left(maxes, key)
        if i == len(maxes):
            i -= 1
            lists[i].append(key)
            maxes[i] = key
        else:
            insort(lists[i], key)
        if len(lists[i]) > 2 * LOAD:
            lst = lists[i]
            lists[i:i + 1] = [lst[:LOAD], lst[LOAD:]]
            maxes[i:i + 1] = [lst[LOAD - 1], lst[-1]]
            self._rebuild()
        else:
            self._bump(i, 1)

    def remove(self, key: Any) -> None:
        """Remove one occurrence of ``key`` (ValueError if absent)."""
        maxes = self._maxes
        i = bisect_left(maxes, key)
        if i == len(maxes):
            raise ValueError(f"{key!r} not in list")
        lst = self._lists[i]
        j = bisect_left(lst, key)
        if j == len(lst) or lst[j] != key:
            raise ValueError(f"{key!r} not in list")
        del lst[j]
        self._len -= 1
        if not lst:
            del self._lists[i]
            del maxes[i]
            self._rebuild()
            return
        if j == len(lst):
            maxes[i] = lst[-1]
        self._bump(i, -1)

    def rank(self, key: Any) -> int:
        """How many keys are strictly smaller than ``key``."""
        i = bisect_left(self._maxes, key)
        if i == len(self._maxes):
            return self._len
        return self._prefix(i) + bisect_left(self._lists[i], key)

    def count_le(self, key: Any) -> int:
        """How many keys are smaller than or equal to ``key``."""
        i = bisect_right(self._maxes, key)
        if i == len(self._maxes):
            return self._len
        return self._prefix(i) + bisect_right(self._lists[i], key)

    def __getitem__(self, index: int) -> Any:
        """The key at position ``index`` (O(n / LOAD); for tests and displays)."""
        if index < 0:
            index += self._len
        if not 0 <= index < self._len:
            raise IndexError(index)
        for lst in self._lists:
            if index < len(lst):
                return lst[index]
            index -= len(lst)
        raise IndexError(index)  # pragma: no cover

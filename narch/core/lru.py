"""A bounded least-recently-used map: the one cache shape for values that are pure functions of their key (a
network's features, cost terms, encodings), so a long search keeps its working set and memory stays bounded."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from typing import Generic, TypeVar

V = TypeVar("V")


class LRU(Generic[V]):
    """``get`` refreshes an entry; ``put`` evicts the least recently used one beyond ``max_entries``."""

    __slots__ = ("_d", "max_entries")

    def __init__(self, max_entries: int) -> None:
        if max_entries < 1:
            raise ValueError(f"LRU: max_entries must be >= 1, got {max_entries}")
        self.max_entries = max_entries
        self._d: OrderedDict[Hashable, V] = OrderedDict()

    def __len__(self) -> int:
        return len(self._d)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._d

    def get(self, key: Hashable) -> V | None:
        v = self._d.get(key)
        if v is not None:
            self._d.move_to_end(key)
        return v

    def put(self, key: Hashable, value: V) -> V:
        d = self._d
        d[key] = value
        d.move_to_end(key)
        while len(d) > self.max_entries:
            d.popitem(last=False)
        return value

    def clear(self) -> None:
        self._d.clear()

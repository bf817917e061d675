"""Collects an import's rows: maps each distinct cell once, counts skipped and approximated cells per row."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

from narch.dataset_builder.importers.cells import CellMapping, UnmappableCell
from narch.dataset_builder.importers.writer import RowGroup


@dataclass(frozen=True)
class MappedCell:
    """What a row needs of a mapped cell."""

    arch_id: str
    arch_json: str
    notes: tuple[str, ...]


CellCache = dict[Hashable, MappedCell | UnmappableCell]


class RowCollector:
    """Rows of one corpus, grouped by source file; unmappable cells are skipped and counted, never fatal.

    Collectors of one command may share a ``cache`` (the same cells recur across budgets and devices).
    """

    def __init__(self, cache: CellCache | None = None) -> None:
        self._cache: CellCache = {} if cache is None else cache
        self.groups: list[RowGroup] = []
        self.skipped: Counter[str] = Counter()
        self.notes: Counter[str] = Counter()
        self.unmapped: dict[str, dict[str, Any]] = {}

    def group(self, source_file: str) -> RowGroup:
        """Start the rows of one source file."""
        g = RowGroup(source_file)
        self.groups.append(g)
        return g

    def arch(self, key: Hashable, make: Callable[[], CellMapping]) -> MappedCell | UnmappableCell:
        """The mapping of a cell, computed once per key."""
        if key not in self._cache:
            try:
                m = make()
                self._cache[key] = MappedCell(m.net.arch_id, m.net.to_json(), tuple(m.notes))
            except UnmappableCell as e:
                self._cache[key] = e
        return self._cache[key]

    def add(
        self, g: RowGroup, source_row: int, key: Hashable, make: Callable[[], CellMapping], columns: dict[str, Any]
    ) -> None:
        """Append one row (arch columns from the mapped cell) or count it as skipped."""
        m = self.arch(key, make)
        if isinstance(m, UnmappableCell):
            self.skipped[m.reason] += 1
            u = self.unmapped.setdefault(m.reason, {"count": 0, "example": str(m), "source_rows": []})
            u["count"] += 1
            rows = u["source_rows"]
            if rows and rows[-1][1] == source_row and rows[-1][2] == g.source_file:
                rows[-1][1] = source_row + 1
            else:
                rows.append([source_row, source_row + 1, g.source_file])
            return
        for note in m.notes:
            self.notes[note] += 1
        g.rows.append({"arch_id": m.arch_id, "arch_json": m.arch_json, **columns})
        g.source_rows.append(source_row)

"""Markdown tables: the one renderer behind every report's tables (search, verify, hardware compare, pipeline,
leaderboard). Takes anything with ``.columns`` and ``.iter_rows()`` (a polars frame), so the core needs no polars."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Protocol


class Rows(Protocol):
    """A table: column names and rows of cells in the same order (``polars.DataFrame`` is one)."""

    @property
    def columns(self) -> Sequence[str]: ...

    def iter_rows(self) -> Iterable[Sequence[Any]]: ...


def _cell(value: Any, floats: int | None) -> str:
    if floats is not None and isinstance(value, float):
        return f"{value:.{floats}g}"
    return str(value)


def markdown_table(table: Rows, *, floats: int | None = 4) -> str:
    """``table`` as a markdown table; floats to ``floats`` significant digits (None: as ``str`` shows them)."""
    cols = list(table.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(_cell(v, floats) for v in row) + " |" for row in table.iter_rows()]
    return "\n".join(lines)

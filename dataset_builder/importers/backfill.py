"""Columns an importer learned to fill after a corpus was imported, added to that corpus in place.

Rows of an imported corpus join back to their source rows through the sidecar (``_import.json``: per part, the
source file and the source row numbers in row order), so a value that depends only on the source row (the
benchmark's index and arch string, the whole network's params and FLOPs) can be added later without importing
again: ``narch import`` on a finished import computes them per source row and, where a row lacks one, fills it
through the journaled compaction (dataset_builder/compaction.py). Only null cells are filled; a value that is there
never changes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import polars as pl
import pyarrow as pa

from narch.dataset_builder.compaction import compact_corpus
from narch.dataset_builder.corpus import list_parts, read_corpus
from narch.dataset_builder.importers.writer import SIDECAR, SourceColumns, _entries, _sidecar, update_sidecar

BENCH_COLUMNS = ("bench_index", "bench_arch", "bench_cell", "params", "flops_fwd")


def source_rows(out: Path) -> list[tuple[str, int]]:
    """(source file, source row) of every row of the corpus, in the order a compaction concatenates its parts."""
    update_sidecar(out)  # re-keys the sidecar to the live parts (an earlier compaction may have merged them)
    parts = _sidecar(out).get("parts", {})
    rows: list[tuple[str, int]] = []
    for p in list_parts(out).live:
        if p.name not in parts:
            raise ValueError(f"{out}: {SIDECAR} does not say where the rows of {p.name} come from")
        for e in _entries(parts[p.name]):
            rows += [(e["source"], i) for a, b, *_ in e["source_rows"] for i in range(a, b)]
    return rows


def _positional_fill(values: pl.DataFrame) -> Callable[[pa.Table], pa.Table]:
    """A compaction Fill that sets the null cells of ``values``' columns row by row (same length and order)."""

    def fill(table: pa.Table) -> pa.Table:
        df = pl.from_arrow(table)
        assert isinstance(df, pl.DataFrame)
        if df.height != values.height:
            raise ValueError(f"the corpus has {df.height} rows, its sidecar accounts for {values.height}")
        new = values.rename({c: f"{c}__new" for c in values.columns})
        new = new.with_columns(pl.col(f"{c}__new").cast(df.schema[c]) for c in values.columns)
        out = pl.concat([df, new], how="horizontal")
        out = out.with_columns(pl.coalesce(c, f"{c}__new").alias(c) for c in values.columns)
        return out.drop(new.columns).to_arrow()

    return fill


def backfill(out: Path, columns: SourceColumns, names: Sequence[str] = BENCH_COLUMNS) -> int:
    """Fill the null cells of ``names`` from ``columns`` per source row; the number of rows that gained a value."""
    where = source_rows(out)
    have = read_corpus(out).select(names)  # its dtypes are the corpus schema's
    values = pl.DataFrame([{n: columns(src, i).get(n) for n in names} for src, i in where], schema=have.schema)
    if have.height != values.height:
        raise ValueError(f"{out}: the corpus has {have.height} rows, {SIDECAR} accounts for {values.height}")
    both = pl.concat([have, values.rename({n: f"{n}__new" for n in names})], how="horizontal")
    gains = pl.any_horizontal(pl.col(n).is_null() & pl.col(f"{n}__new").is_not_null() for n in names)
    gained = int(both.select(gains.sum()).item())
    if gained:
        compact_corpus(out, fill=_positional_fill(values))
        update_sidecar(out)
    return gained


__all__ = ["BENCH_COLUMNS", "SourceColumns", "backfill", "source_rows"]

"""The import kinds behind `narch import`: prepare every corpus of a command first, then write them."""

from __future__ import annotations

from pathlib import Path

from narch.dataset_builder.importers.backfill import backfill
from narch.dataset_builder.importers.collect import CellCache
from narch.dataset_builder.importers.ecnas import prepare_ecnas
from narch.dataset_builder.importers.help_latency import prepare_help_latency
from narch.dataset_builder.importers.nb101 import prepare_nb101
from narch.dataset_builder.importers.nb201 import prepare_nb201
from narch.dataset_builder.importers.table import prepare_table
from narch.dataset_builder.importers.writer import PreparedImport, write_import

KINDS = ("nb201", "nb101", "help-latency", "ecnas", "table")


def prepare_import(
    kind: str,
    out: Path,
    *,
    src: Path | None = None,
    dataset: str | None = None,
    devices: list[str] | None = None,
    config: Path | None = None,
) -> list[PreparedImport]:
    """Check the source and map every cell; nothing is written. ValueError for bad input."""
    if kind not in KINDS:
        raise ValueError(f"unknown import kind {kind!r} (known: {', '.join(KINDS)})")
    if dataset is not None and kind != "nb201":
        raise ValueError(f"--dataset applies to nb201 only, not {kind}")
    if devices is not None and kind != "help-latency":
        raise ValueError(f"--devices applies to help-latency only, not {kind}")
    if kind == "table" and (src is None or config is None):
        raise ValueError("a table import needs --src (the table) and --config (how to read it)")
    if config is not None and kind != "table":
        raise ValueError(f"--config applies to table only, not {kind}")
    cache: CellCache = {}
    match kind:
        case "nb201":
            return [prepare_nb201(out, dataset=dataset or "cifar10", src=src, cache=cache)]
        case "nb101":
            return [prepare_nb101(out, src=src)]
        case "help-latency":
            return prepare_help_latency(out, src=src, devices=devices, cache=cache)
        case "table":
            assert src is not None and config is not None
            return [prepare_table(out, src=src, config=config, cache=cache)]
        case _:
            return prepare_ecnas(out, src=src)


def run_import(preps: list[PreparedImport]) -> list[PreparedImport]:
    """Write every prepared corpus; one already imported gets the columns it lacks (backfill); returns them."""
    for p in preps:
        if p.done and p.bench is not None:
            p.filled = backfill(p.out, p.bench)
        else:
            write_import(p)
    return preps

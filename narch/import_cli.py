"""`narch import nb201|nb101|help-latency|ecnas|table`: parse, prepare every corpus, write, print one line each."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from narch.console import OUT, fail, guarded
from narch.core.checks import check_out_folder


class ImportKind(StrEnum):
    """Public corpora `narch import` reads, and `table`: your own benchmark (a table and a config)."""

    NB201 = "nb201"
    NB101 = "nb101"
    HELP_LATENCY = "help-latency"
    ECNAS = "ecnas"
    TABLE = "table"


def _counts(d: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(d.items())) or "none"


@guarded
def import_cmd(
    kind: Annotated[ImportKind, typer.Argument(help="which public corpus, or table (your own benchmark)")],
    out: Annotated[
        Path | None,
        typer.Option(
            help="corpus folder (help-latency: one sub-folder per device setting; "
            "ecnas with a folder source: one per file) [default: runs/<kind>, nb201: runs/nb201_<dataset>]"
        ),
    ] = None,
    src: Annotated[
        Path | None,
        typer.Option(
            help="source file or folder (default: the public files shipped with the package, or $NARCH_EXTERNAL_DIR "
            "when set); table: the CSV, JSONL or Parquet file (required)"
        ),
    ] = None,
    dataset: Annotated[str | None, typer.Option(help="nb201: cifar10, cifar100 or ImageNet16-120")] = None,
    devices: Annotated[str | None, typer.Option(help="help-latency: comma-separated settings (default: all)")] = None,
    config: Annotated[
        Path | None, typer.Option(help="table: JSON config (task, data, arch form and op mapping, metrics; see README)")
    ] = None,
) -> None:
    """Import a public corpus into the corpus schema (checks everything before writing anything)."""
    from narch.dataset_builder.importers import prepare_import, run_import

    if out is None:
        if kind is ImportKind.TABLE:
            raise fail("import table needs --out (the folder of your benchmark's corpus)")
        name = f"nb201_{(dataset or 'cifar10').lower().replace('-', '_')}" if kind is ImportKind.NB201 else \
            kind.value.replace("-", "_")
        out = Path("runs") / name
    check_out_folder("--out", out)
    device_list = None
    if devices is not None:
        device_list = [d.strip() for d in devices.split(",") if d.strip()]
        if not device_list:
            raise fail("--devices is empty")
    preps = prepare_import(kind.value, out, src=src, dataset=dataset, devices=device_list, config=config)
    run_import(preps)
    for p in preps:
        if not p.done:
            state = "written"
        elif p.filled:
            state = f"already imported; {p.filled} rows gained benchmark index, name, cell, params or FLOPs"
        else:
            state = "already imported, nothing written"
        OUT.print(
            f"{p.out}: {p.n_rows} rows {state}; skipped: {_counts(p.skipped)}; approximated: {_counts(p.notes)}",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )

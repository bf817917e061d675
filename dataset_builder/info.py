"""A readable summary of a corpus for `narch corpus info`."""

from __future__ import annotations

from pathlib import Path

import polars as pl
from rich.console import Console
from rich.table import Table

from narch.dataset_builder.contention import QUIET_OTHER_CORES
from narch.dataset_builder.corpus import corrupt_parts, part_files, read_corpus, read_manifest
from narch.dataset_builder.schema import COLUMNS, TIME_LABEL


def _counts(df: pl.DataFrame, col: str) -> str:
    if df.is_empty():
        return "-"
    rows = df.group_by(col).len().sort("len", descending=True).iter_rows()
    return ", ".join(f"{k}: {n}" for k, n in rows)


def corpus_summary(corpus_dir: str | Path, *, console: Console, skip_corrupt: bool = False) -> pl.DataFrame:
    """Print manifest, rows by status, tasks, devices, sizes and the columns with units; return the rows."""
    m = read_manifest(corpus_dir)
    bad = corrupt_parts(corpus_dir)
    df = read_corpus(corpus_dir, skip_corrupt=skip_corrupt)
    console.print(
        f"[bold]{corpus_dir}[/] task {m.task}, corpus schema v{m.corpus_schema_version}, "
        f"search space {m.search_space_version}, protocol {m.protocol_hash}"
    )
    console.print("protocol: " + ", ".join(f"{k}={v}" for k, v in m.protocol.items()))
    console.print(f"parts: {len(part_files(corpus_dir))}" + (f" ({len(bad)} corrupt, left out)" if bad else ""))
    for _path, why in bad:
        console.print(f"  [red]{why}[/]", markup=True)
    console.print(f"rows: {df.height}, distinct networks: {df['arch_id'].n_unique() if df.height else 0}")
    for label, col in (
        ("status", "status"),
        ("tasks", "task"),
        ("devices", "device_name"),
        ("n_train", "n_train"),
        ("seeds", "seed"),
    ):
        console.print(f"{label}: {_counts(df, col)}")
    ok = df.filter(pl.col("status") == "ok")
    if ok.height:
        stats = ok.select(
            pl.col("val_acc").min().alias("val_min"),
            pl.col("val_acc").median().alias("val_med"),
            pl.col("val_acc").max().alias("val_max"),
            pl.col("train_time_s").median().alias("t_med"),
            pl.col("params").median().alias("p_med"),
        ).row(0, named=True)
        digits = {"t_med": 2, "p_med": 0}
        f = {k: "n/a" if v is None else f"{v:.{digits.get(k, 3)}f}" for k, v in stats.items()}
        console.print(  # imported corpora may lack a column (latency rows have no val_acc)
            f"val_acc min/median/max: {f['val_min']} / {f['val_med']} / {f['val_max']}; "
            f"median train_time_s {f['t_med']}; median params {f['p_med']}"
        )
    for kind in sorted(set(df["device_kind"].drop_nulls())) if df.height else []:
        col, why = TIME_LABEL.get(kind, ("train_time_s", "no robust label for this device kind"))
        timed = ok.filter(pl.col("device_kind") == kind)
        contended = timed.filter(pl.col("other_cpu_cores") >= QUIET_OTHER_CORES).height
        untimed = timed[col].null_count()
        old = f"; {untimed} rows predate the label (null)" if untimed else ""
        console.print(f"time label on {kind}: {col} ({why}); {contended} of {timed.height} ok rows timed while other "
                      f"work used >= {QUIET_OTHER_CORES:g} cores{old}")
    table = Table(title="columns", show_lines=False)
    for name in ("column", "type", "unit", "non-null", "meaning"):
        table.add_column(name)
    for name, typ, unit, meaning in COLUMNS:
        nn = str(df.height - df[name].null_count()) if df.height else "0"
        table.add_row(name, str(typ), unit or "-", nn, meaning)
    console.print(table)
    return df

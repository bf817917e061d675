"""EC-NAS-Bench: measured GPU training time and energy of NAS-Bench-101-style cells, as corpora.

Only measured rows are imported (the external-data README's caveat):

- ``ecnas_4v_quadro_rtx6000_all_budgets.csv``: every row (91 cells x 4 budgets x 3 repeats, Quadro RTX 6000).
  The repeats carry no seed value upstream; ``seed`` is the repeat's order (0, 1, 2) within its cell and budget.
- ``ecnas_5v_4ep.csv``: every row (one 4-epoch run per cell, Quadro RTX 6000 as for all EC-NAS-Bench data).
- ``ecnas_4v_<gpu>.csv``: the 4-epoch rows only; the 12/36/108-epoch rows are 3x/9x/27x copies. ``seed`` is null.
  Accuracies are shared across the four GPU files upstream.

Columns: ``train_time_s`` = ``final_training_time`` (s), ``energy_j`` = ``final_energy`` (kWh) x 3.6e6 — EC-NAS
measured it with carbontracker, so it covers GPU, CPU and DRAM over training, not the GPU counter alone —,
``wall_time_s`` = ``total_time`` (training plus evaluation), ``val_acc`` / ``test_acc`` = the final accuracies,
``params`` = ``trainable_parameters``. ``final_pred_*`` (forecasts) and CO2 columns are ignored. Data descriptors
follow NAS-Bench-101's CIFAR-10 split (40,000 training images); the training protocol is NAS-Bench-101's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import polars as pl

from narch.dataset_builder.importers.bench_costs import nb101_cost
from narch.dataset_builder.importers.cells import CellFormatError, nb101_network, node_cell_json
from narch.dataset_builder.importers.collect import RowCollector
from narch.dataset_builder.importers.nb101 import DESCRIPTORS, TRAINING
from narch.dataset_builder.importers.sources import SOURCES, SourceError, check_file, check_range, read_csv_checked
from narch.dataset_builder.importers.sources import source_record as record
from narch.dataset_builder.importers.writer import (
    PreparedImport,
    SourceColumns,
    already_imported,
    budget_protocols,
    finish_prepare,
    make_manifest,
    provenance_columns,
)

TASK = "ecnas-cifar10"
KWH_J = 3.6e6
GPUS = {
    "quadrortx6000": "NVIDIA Quadro RTX 6000",
    "rtx3060": "NVIDIA GeForce RTX 3060",
    "rtx3090": "NVIDIA GeForce RTX 3090",
    "titanxp": "NVIDIA TITAN Xp",
}
KNOWN = ("ecnas_4v_all_budgets", "ecnas_5v_4ep", *(f"ecnas_4v_{gpu}" for gpu in GPUS))
"""The source keys of every known EC-NAS file (the packaged default imports them all)."""
REQUIRED = [
    "module_hash",
    "epochs",
    "num_vertices",
    "adjacency",
    "ops",
    "trainable_parameters",
    "total_time",
    "final_training_time",
    "final_validation_accuracy",
    "final_test_accuracy",
    "final_energy",
]


@dataclass(frozen=True)
class EcnasFile:
    """What a source file is: its source key, the GPU, and which rows were measured."""

    key: str
    gpu: str
    all_rows: bool  # False: 4-epoch rows only
    repeats: bool  # several runs per cell and budget (seed = repeat order)


def classify(path: Path) -> EcnasFile:
    """Tell an EC-NAS file by its name; SourceError for an unknown one (its measured rows are unknown)."""
    name = path.name
    if name == "ecnas_4v_quadro_rtx6000_all_budgets.csv":
        return EcnasFile("ecnas_4v_all_budgets", GPUS["quadrortx6000"], all_rows=True, repeats=True)
    if name == "ecnas_5v_4ep.csv":
        return EcnasFile("ecnas_5v_4ep", GPUS["quadrortx6000"], all_rows=True, repeats=False)
    m = re.fullmatch(r"ecnas_4v_([a-z0-9]+)\.csv", name)
    if m and m.group(1) in GPUS:
        return EcnasFile(f"ecnas_4v_{m.group(1)}", GPUS[m.group(1)], all_rows=False, repeats=False)
    known = [SOURCES[k].name for k in KNOWN]
    raise SourceError(f"{path}: not a known EC-NAS file, so which rows were measured is unknown (known: {known})")


def source_files(src: Path | None) -> list[Path]:
    """A file, every known EC-NAS file in a folder, or (``src`` None) every one in external_dir(), each checked."""
    if src is None:
        return sorted(SOURCES[k].locate() for k in KNOWN)
    src = Path(src).expanduser()
    if src.is_dir():
        files = []
        for p in sorted(src.glob("ecnas_*.csv")):
            try:
                classify(p)
            except SourceError:
                continue
            files.append(p.resolve())
        if not files:
            raise SourceError(f"{src}: no known EC-NAS files (ecnas_*.csv)")
        return files
    return [check_file(src)]


def _cell(adjacency: str, ops: str, n: int, where: str) -> tuple[list[list[int]], list[str]]:
    labels = ops.split(",")
    if len(adjacency) != n * n or set(adjacency) - {"0", "1"} or len(labels) != n:
        raise CellFormatError(f"{where}: expected an {n}x{n} bit string and {n} ops, got {adjacency!r} {ops!r}")
    return [[int(adjacency[i * n + j]) for j in range(n)] for i in range(n)], labels


def _bench_columns(df: pl.DataFrame, where: str) -> SourceColumns:
    """Per source row: the module hash, the cell and the whole network's FLOPs (bench_costs.nb101_cost, which
    reproduces the file's trainable_parameters)."""
    cells = {int(r["source_row"]): r for r in df.select("source_row", "module_hash", "adjacency", "ops",
                                                          "num_vertices").iter_rows(named=True)}
    done: dict[str, dict[str, Any]] = {}

    def columns(_source: str, i: int) -> dict[str, Any]:
        r = cells[i]
        if r["module_hash"] not in done:
            adj, ops = _cell(r["adjacency"], r["ops"], int(r["num_vertices"]), f"{where} row {i}")
            done[r["module_hash"]] = {"bench_arch": r["module_hash"], "bench_cell": node_cell_json(adj, ops),
                                      "flops_fwd": float(nb101_cost(adj, ops).flops_fwd)}
        return done[r["module_hash"]]

    return columns


def _read(path: Path, f: EcnasFile) -> pl.DataFrame:
    df = read_csv_checked(path, REQUIRED, strings=("adjacency", "ops", "module_hash"))
    df = df.with_row_index("source_row")
    if not f.all_rows:
        df = df.filter(pl.col("epochs") == 4)
    elif not f.repeats and set(df["epochs"].unique().to_list()) != {4}:
        raise SourceError(f"{path}: expected 4-epoch rows only")
    if df.height == 0:
        raise SourceError(f"{path}: no measured (4-epoch) rows")
    for c in ("final_validation_accuracy", "final_test_accuracy"):
        check_range(path, df, c, 0.0, 1.0)
    for c in ("final_training_time", "total_time", "trainable_parameters", "epochs"):
        check_range(path, df, c, 1e-9, 1e12)
    check_range(path, df, "final_energy", 0.0, 1e6)
    return df.with_columns(repeat=pl.int_range(pl.len()).over("module_hash", "epochs"))


def prepare_ecnas_file(path: Path, out: Path) -> PreparedImport:
    """Read, check and map one EC-NAS file's measured rows; nothing is written."""
    f = classify(path)
    df = _read(check_file(path), f)
    protocol: dict[str, Any] = {
        "benchmark": "EC-NAS-Bench",
        "dataset": "cifar10",
        "gpu": f.gpu,
        "rows": "all rows" if f.all_rows else "4-epoch rows only (the others are scaled copies)",
        "energy": "carbontracker final_energy (GPU+CPU+DRAM over training), kWh x 3.6e6",
        "training": TRAINING,
        "sources": [record(f.key, path)],
    }
    epochs = sorted(int(e) for e in df["epochs"].unique())
    budgets = budget_protocols(protocol, epochs)
    protocol["budget_protocol_hashes"] = {str(e): h for e, h in budgets.items()}
    manifest = make_manifest(TASK, protocol)
    bench = _bench_columns(df, f"{path}")
    if done := already_imported(f"ecnas {path.stem}", Path(out), manifest):
        return replace(done, bench=bench)
    shared = {
        **provenance_columns(manifest.created_at),
        **DESCRIPTORS,
        "task": TASK,
        "batch_size": TRAINING["batch_size"],
        "optimizer": TRAINING["optimizer"],
        "lr": TRAINING["lr"],
        "device_kind": "cuda",
        "device_name": f.gpu,
    }
    col = RowCollector()
    g = col.group(path.name)
    for r in df.iter_rows(named=True):
        where = f"{path} row {r['source_row']} ({r['module_hash']})"
        adj, ops = _cell(r["adjacency"], r["ops"], int(r["num_vertices"]), where)
        cols = {
            **shared,
            "protocol_hash": budgets[int(r["epochs"])],
            "epochs": int(r["epochs"]),
            "seed": int(r["repeat"]) if f.repeats else None,
            "val_acc": float(r["final_validation_accuracy"]),
            "test_acc": float(r["final_test_accuracy"]),
            "params": int(r["trainable_parameters"]),
            "train_time_s": float(r["final_training_time"]),
            "energy_j": float(r["final_energy"]) * KWH_J,
            "wall_time_s": float(r["total_time"]),
            **bench(path.name, int(r["source_row"])),
        }
        col.add(g, int(r["source_row"]), ("nb101", r["module_hash"]), lambda a=adj, o=ops: nb101_network(a, o), cols)
    prep = PreparedImport(
        f"ecnas {path.stem}", Path(out), manifest, col.groups, dict(col.skipped), dict(col.notes), col.unmapped
    )
    return finish_prepare(prep)


def prepare_ecnas(out: Path, *, src: Path | None = None) -> list[PreparedImport]:
    """A file into ``out``; a folder's known files each into ``out/<file stem>``."""
    files = source_files(src)
    if len(files) == 1 and not (src is None or Path(src).is_dir()):
        return [prepare_ecnas_file(files[0], Path(out))]
    return [prepare_ecnas_file(p, Path(out) / p.stem) for p in files]

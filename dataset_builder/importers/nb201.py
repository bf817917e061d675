"""NAS-Bench-201 accuracies (200-epoch test accuracy, 12-epoch validation and test accuracy) as a corpus.

One corpus per data set holds both budgets; ``epochs`` (200 or 12) and the per-budget ``protocol_hash`` tell them
apart. The 200-epoch file has test accuracy only, so those rows carry ``test_acc`` and a null ``val_acc``: a
leaderboard of the 200-epoch budget filters ``epochs == 200`` and targets ``test_acc``. The CSVs give percentages;
rows hold fractions. The 200-epoch values are NAS-Bench-201's means over its seeds, so ``seed`` is null.

Data descriptors follow the NAS-Bench-201 paper's splits for the setting that produced the test accuracy:
CIFAR-10 trains on train+valid (50,000), CIFAR-100 on 50,000, ImageNet16-120 on 151,700 (16x16, 120 classes).
The 12-epoch validation accuracies come from NAS-Bench-201's hold-out splits (CIFAR-10's trains on 25,000);
``n_train`` is the test setting's for both. The source row number is the NAS-Bench-201 index; ``_import.json``
maps every row back to it (isomorphic cells may share an arch_id).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import polars as pl

from narch.dataset_builder.importers.bench_costs import NetCost, nb201_cost
from narch.dataset_builder.importers.cells import edges_to_nodes, nb201_network, node_cell_json, parse_nb201
from narch.dataset_builder.importers.collect import CellCache, RowCollector
from narch.dataset_builder.importers.sources import (
    SOURCES,
    SourceError,
    check_file,
    check_range,
    csv_header,
    read_csv_checked,
)
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


@dataclass(frozen=True)
class Nb201Dataset:
    """One NAS-Bench-201 data set: its column prefix and data descriptors."""

    name: str
    prefix: str
    n_train: int
    n_classes: int
    input_shape: tuple[int, int, int]

    @property
    def task(self) -> str:
        return f"nb201-{self.name.lower()}"


DATASETS = {
    "cifar10": Nb201Dataset("cifar10", "cifar10", 50_000, 10, (3, 32, 32)),
    "cifar100": Nb201Dataset("cifar100", "cifar100", 50_000, 100, (3, 32, 32)),
    "ImageNet16-120": Nb201Dataset("ImageNet16-120", "imagenet16_120", 151_700, 120, (3, 16, 16)),
}
TRAINING = {  # NAS-Bench-201 paper, training hyperparameters (the same for both budgets but the epochs)
    "optimizer": "sgd-nesterov",
    "momentum": 0.9,
    "lr": 0.1,
    "weight_decay": 0.0005,
    "batch_size": 256,
    "schedule": "cosine",
}


def nb201_bench_columns(arch_strs: Sequence[str] | Mapping[int, str], ds: Nb201Dataset) -> SourceColumns:
    """Per NAS-Bench-201 index (the source row; ``arch_strs[index]`` its cell): the index, the arch string and the
    whole network's params and FLOPs on this data set (bench_costs.nb201_cost, computed once per cell)."""
    costs: dict[str, NetCost] = {}

    def columns(_source: str, i: int) -> dict[str, Any]:
        a = arch_strs[i]
        if a not in costs:
            costs[a] = nb201_cost(a, n_classes=ds.n_classes, hw=ds.input_shape[-1])
        return {"bench_index": i, "bench_arch": a, "bench_cell": node_cell_json(*edges_to_nodes(parse_nb201(a), 4)),
                "params": costs[a].params, "flops_fwd": float(costs[a].flops_fwd)}

    return columns


def resolve_dataset(name: str) -> Nb201Dataset:
    """The data set by name (case-insensitive); ValueError listing the known ones."""
    for key, ds in DATASETS.items():
        if key.lower() == name.lower():
            return ds
    raise ValueError(f"unknown NAS-Bench-201 data set {name!r} (known: {', '.join(DATASETS)})")


def nb201_sources(src: Path | None) -> dict[int, Path]:
    """Budget -> checked file: a folder (default: the packaged one) gives both files, a file its own budget (told by
    its columns)."""
    if src is None or Path(src).expanduser().is_dir():
        return {200: SOURCES["nb201_200ep"].locate(src), 12: SOURCES["nb201_12ep"].locate(src)}
    src = check_file(src)
    header = csv_header(src)
    if any(c.endswith("_val_acc") for c in header):
        return {12: src}
    if "unique_str" in header:
        return {200: src}
    raise SourceError(f"{src}: neither the 200-epoch (unique_str, *_test_acc) nor the 12-epoch (*_val_acc) file")


def _read(path: Path, ds: Nb201Dataset, epochs: int) -> pl.DataFrame:
    value_cols = [f"{ds.prefix}_test_acc"] + ([f"{ds.prefix}_val_acc"] if epochs == 12 else [])
    df = read_csv_checked(path, ["nb201_index", "arch_str", *value_cols])
    if not df["nb201_index"].cast(pl.Int64, strict=False).equals(pl.Series(range(df.height)), check_names=False):
        raise SourceError(f"{path}: nb201_index must be the row number 0..{df.height - 1}")
    for c in value_cols:
        check_range(path, df, c, 0.0, 100.0)
    return df


def prepare_nb201(
    out: Path, *, dataset: str = "cifar10", src: Path | None = None, cache: CellCache | None = None
) -> PreparedImport:
    """Read, check and map NAS-Bench-201 accuracies for one data set; nothing is written."""
    ds = resolve_dataset(dataset)
    paths = nb201_sources(src)
    frames = {e: _read(p, ds, e) for e, p in paths.items()}
    if len(frames) == 2 and not frames[200]["arch_str"].equals(frames[12]["arch_str"]):
        raise SourceError(f"{paths[200]} and {paths[12]}: the cell strings differ row by row (not the same index)")
    key = {200: "nb201_200ep", 12: "nb201_12ep"}
    protocol: dict[str, Any] = {
        "benchmark": "NAS-Bench-201",
        "dataset": ds.name,
        "training": TRAINING,
        "sources": [{"budget_epochs": e, **record(key[e], p)} for e, p in sorted(paths.items(), reverse=True)],
    }
    budgets = budget_protocols(protocol, sorted(paths))
    protocol["budget_protocol_hashes"] = {str(e): h for e, h in budgets.items()}
    manifest = make_manifest(ds.task, protocol)
    bench = nb201_bench_columns(next(iter(frames.values()))["arch_str"].to_list(), ds)
    if done := already_imported(f"nb201 {ds.name}", Path(out), manifest):
        return replace(done, bench=bench)
    shared = {
        **provenance_columns(manifest.created_at),
        "task": ds.task,
        "n_train": ds.n_train,
        "n_classes": ds.n_classes,
        "input_shape": list(ds.input_shape),
        "batch_size": TRAINING["batch_size"],
        "optimizer": TRAINING["optimizer"],
        "lr": TRAINING["lr"],
        "device_kind": "cuda",
        "device_name": "NVIDIA GPU (NAS-Bench-201)",
    }
    col = RowCollector(cache)
    for epochs in sorted(frames, reverse=True):
        df, g = frames[epochs], col.group(paths[epochs].name)
        test = df[f"{ds.prefix}_test_acc"].cast(pl.Float64).to_list()
        val = df[f"{ds.prefix}_val_acc"].cast(pl.Float64).to_list() if epochs == 12 else [None] * df.height
        for i, arch_str in enumerate(df["arch_str"].to_list()):
            cols = {
                **shared,
                "protocol_hash": budgets[epochs],
                "epochs": epochs,
                "test_acc": test[i] / 100.0,
                "val_acc": None if val[i] is None else val[i] / 100.0,
                **bench(paths[epochs].name, i),
            }
            col.add(g, i, ("nb201", arch_str), lambda s=arch_str: nb201_network(s), cols)
    prep = PreparedImport(
        f"nb201 {ds.name}", Path(out), manifest, col.groups, dict(col.skipped), dict(col.notes), col.unmapped
    )
    return finish_prepare(prep)

"""NAS-Bench-101 (the 1,000-cell sample with training time) as a corpus.

Each cell gives four rows, one per budget (4, 12, 36, 108 epochs), with the validation accuracy at that budget;
the budget sets the row's ``protocol_hash``. ``train_time_s`` (NAS-Bench-101's ``final_training_time``, seconds on
a TPU v2) is on the 108-epoch rows only, the budget it most likely belongs to; ``params`` is NAS-Bench-101's count
for the real stacked network. There is no test accuracy in the file and no seed (``seed`` stays null).
Data descriptors follow NAS-Bench-101: CIFAR-10 with 40,000 training, 10,000 validation and 10,000 test images.
Op codes in the file: -1 input, -2 output, 0 conv3x3-bn-relu, 1 conv1x1-bn-relu, 2 maxpool3x3, -3 padding
(padding nodes of cells with fewer than 7 vertices are removed before mapping).
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from narch.dataset_builder.importers.bench_costs import nb101_cost
from narch.dataset_builder.importers.cells import CellFormatError, nb101_network, node_cell_json
from narch.dataset_builder.importers.collect import RowCollector
from narch.dataset_builder.importers.sources import SOURCES, SourceError, source_record
from narch.dataset_builder.importers.writer import (
    PreparedImport,
    SourceColumns,
    already_imported,
    budget_protocols,
    finish_prepare,
    make_manifest,
    provenance_columns,
)

TASK = "nb101-cifar10"
BUDGETS = (4, 12, 36, 108)
OP_CODES = {-1: "input", -2: "output", 0: "conv3x3-bn-relu", 1: "conv1x1-bn-relu", 2: "maxpool3x3"}
PADDING = -3
TRAINING = {  # NAS-Bench-101 paper, training details
    "optimizer": "rmsprop",
    "momentum": 0.9,
    "lr": 0.2,
    "weight_decay": 0.0001,
    "batch_size": 256,
    "schedule": "cosine",
}
DESCRIPTORS = {"n_train": 40_000, "n_classes": 10, "input_shape": [3, 32, 32]}
DEVICE = {"device_kind": "tpu", "device_name": "TPU v2 (NAS-Bench-101)"}


def unpad(adjacency: list[list[Any]], codes: list[int], where: str) -> tuple[list[list[int]], list[str]]:
    """Drop padding vertices (code -3, no edges) and turn op codes into labels."""
    n = len(codes)
    if not isinstance(adjacency, list) or len(adjacency) != n or any(len(r) != n for r in adjacency):
        raise CellFormatError(f"{where}: adjacency must be {n}x{n} for {n} op codes")
    if any(c not in OP_CODES and c != PADDING for c in codes):
        raise CellFormatError(f"{where}: unknown op code(s) {sorted(set(codes) - set(OP_CODES) - {PADDING})}")
    keep = [i for i, c in enumerate(codes) if c != PADDING]
    for i, c in enumerate(codes):
        if c == PADDING and (any(adjacency[i]) or any(r[i] for r in adjacency)):
            raise CellFormatError(f"{where}: padding vertex {i} has edges")
    adj = [[int(adjacency[i][j]) for j in keep] for i in keep]
    return adj, [OP_CODES[codes[i]] for i in keep]


def nb101_bench_columns(d: dict[str, list[Any]], path: Path) -> SourceColumns:
    """Per source row: NAS-Bench-101's module hash, its cell and the whole network's FLOPs (bench_costs.nb101_cost; its
    parameter count is the file's, which the cost model reproduces exactly)."""
    cells: dict[int, dict[str, Any]] = {}

    def columns(_source: str, i: int) -> dict[str, Any]:
        if i not in cells:
            adj, ops = unpad(d["adjacency"][i], d["operations"][i], f"{path} cell {i}")
            cells[i] = {"bench_arch": d["key"][i], "bench_cell": node_cell_json(adj, ops),
                        "flops_fwd": float(nb101_cost(adj, ops).flops_fwd)}
        return cells[i]

    return columns


def _load(path: Path) -> dict[str, list[Any]]:
    try:
        d = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise SourceError(f"{path}: not JSON ({e})") from None
    need = [f"{b}_final_validation_accuracy" for b in BUDGETS] + [
        "final_training_time",
        "trainable_parameters",
        "operations",
        "adjacency",
        "key",
    ]
    if not isinstance(d, dict):
        raise SourceError(f"{path}: expected a column-oriented JSON object")
    missing = [k for k in need if k not in d]
    if missing:
        raise SourceError(f"{path}: missing field(s) {missing}")
    lengths = {k: len(d[k]) if isinstance(d[k], list) else -1 for k in need}
    if len(set(lengths.values())) != 1 or -1 in lengths.values():
        raise SourceError(f"{path}: fields must be lists of one length, got {lengths}")
    for k in need[:4]:
        bad = [i for i, v in enumerate(d[k]) if not isinstance(v, int | float) or not 0.0 <= v <= 1.0]
        if bad:
            raise SourceError(f"{path}: {k}[{bad[0]}] = {d[k][bad[0]]!r} is not a fraction in [0, 1]")
    for k in ("final_training_time", "trainable_parameters"):
        bad = [i for i, v in enumerate(d[k]) if not isinstance(v, int | float) or not v > 0]
        if bad:
            raise SourceError(f"{path}: {k}[{bad[0]}] = {d[k][bad[0]]!r} is not a positive number")
    return d


def prepare_nb101(out: Path, *, src: Path | None = None) -> PreparedImport:
    """Read, check and map the NAS-Bench-101 sample; nothing is written."""
    path = SOURCES["nb101"].locate(src)
    d = _load(path)
    protocol: dict[str, Any] = {
        "benchmark": "NAS-Bench-101",
        "dataset": "cifar10",
        "training": TRAINING,
        "sources": [source_record("nb101", path)],
    }
    budgets = budget_protocols(protocol, list(BUDGETS))
    protocol["budget_protocol_hashes"] = {str(e): h for e, h in budgets.items()}
    manifest = make_manifest(TASK, protocol)
    bench = nb101_bench_columns(d, path)
    if done := already_imported("nb101", Path(out), manifest):
        return replace(done, bench=bench)
    shared = {
        **provenance_columns(manifest.created_at),
        **DESCRIPTORS,
        **DEVICE,
        "task": TASK,
        "batch_size": TRAINING["batch_size"],
        "optimizer": TRAINING["optimizer"],
        "lr": TRAINING["lr"],
    }
    col = RowCollector()
    groups = {b: col.group(path.name) for b in BUDGETS}
    for i, key in enumerate(d["key"]):
        adj, ops = unpad(d["adjacency"][i], d["operations"][i], f"{path} cell {i} ({key})")
        for b in BUDGETS:
            cols = {
                **shared,
                "protocol_hash": budgets[b],
                "epochs": b,
                "val_acc": float(d[f"{b}_final_validation_accuracy"][i]),
                "params": int(d["trainable_parameters"][i]),
                "train_time_s": float(d["final_training_time"][i]) if b == 108 else None,
                **bench(path.name, i),
            }
            col.add(groups[b], i, ("nb101", key), lambda a=adj, o=ops: nb101_network(a, o), cols)
    prep = PreparedImport("nb101", Path(out), manifest, col.groups, dict(col.skipped), dict(col.notes), col.unmapped)
    return finish_prepare(prep)

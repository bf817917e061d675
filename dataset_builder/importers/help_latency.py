"""HELP's NAS-Bench-201 inference latencies, one corpus per device setting.

A setting is a device and, for the desktop GPUs, a batch size (``1080ti_32``: GTX 1080 Ti at batch 32). Batch-1
settings fill ``latency_bs1_ms``; batched ones ``latency_bsN_ms`` and ``latency_batch_n``. Settings without a batch
suffix (CPUs, phones, Raspberry Pi 4, Eyeriss, FPGA) are taken as batch 1 (the CPU numbers, ~10 ms for a cell
network, only fit batch 1). ``essential_ph_1`` is the Essential Phone PH-1, not a batch size.

HELP's NAS-Bench-201 experiments are on CIFAR-100 (its reported searched accuracies are CIFAR-100's), so rows carry
that task's descriptors (32x32 inputs, 100 classes). ``device_name`` is the setting; the manifest names the hardware.
Latency rows have no training protocol: ``epochs``, ``batch_size`` and the accuracies stay null.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import polars as pl

from narch.dataset_builder.importers.cells import nb201_network
from narch.dataset_builder.importers.collect import CellCache, RowCollector
from narch.dataset_builder.importers.nb201 import DATASETS, nb201_bench_columns
from narch.dataset_builder.importers.sources import (
    SOURCES,
    check_range,
    csv_header,
    read_csv_checked,
    source_record,
)
from narch.dataset_builder.importers.writer import (
    PreparedImport,
    already_imported,
    finish_prepare,
    make_manifest,
    provenance_columns,
)


@dataclass(frozen=True)
class DeviceSetting:
    """A HELP device setting: device kind, hardware and the batch the latency was measured at."""

    kind: str
    hardware: str
    batch: int = 1


def _gpu(hardware: str, stem: str) -> dict[str, DeviceSetting]:
    return {f"{stem}_{b}": DeviceSetting("cuda", hardware, b) for b in (1, 32, 256)}


SETTINGS: dict[str, DeviceSetting] = {
    **_gpu("NVIDIA GeForce GTX 1080 Ti", "1080ti"),
    **_gpu("NVIDIA GeForce RTX 2080 Ti", "2080ti"),
    **_gpu("NVIDIA TITAN RTX", "titan_rtx"),
    **_gpu("NVIDIA TITAN X", "titanx"),
    **_gpu("NVIDIA TITAN Xp", "titanxp"),
    "gold_6226": DeviceSetting("cpu", "Intel Xeon Gold 6226"),
    "gold_6240": DeviceSetting("cpu", "Intel Xeon Gold 6240"),
    "silver_4114": DeviceSetting("cpu", "Intel Xeon Silver 4114"),
    "silver_4210r": DeviceSetting("cpu", "Intel Xeon Silver 4210R"),
    "essential_ph_1": DeviceSetting("mobile", "Essential Phone PH-1"),
    "pixel2": DeviceSetting("mobile", "Google Pixel 2"),
    "pixel3": DeviceSetting("mobile", "Google Pixel 3 (HW-NAS-Bench)"),
    "samsung_a50": DeviceSetting("mobile", "Samsung Galaxy A50"),
    "samsung_s7": DeviceSetting("mobile", "Samsung Galaxy S7"),
    "raspi4": DeviceSetting("edge", "Raspberry Pi 4 (HW-NAS-Bench)"),
    "eyeriss": DeviceSetting("asic", "Eyeriss ASIC (HW-NAS-Bench, simulated)"),
    "fpga": DeviceSetting("fpga", "FPGA (HW-NAS-Bench)"),
}
DATASET = DATASETS["cifar100"]
TASK = "nb201-cifar100"


def source_path(src: Path | None) -> Path:
    """The latency CSV: ``src`` itself, the file inside a folder ``src``, or the packaged default."""
    return SOURCES["help_latency"].locate(src)


def settings_in(path: Path, wanted: list[str] | None) -> list[str]:
    """The settings to import: all latency columns of the file, or ``wanted`` after checking each exists."""
    have = [c.removesuffix("_ms") for c in csv_header(path) if c.endswith("_ms")]
    if not have:
        raise ValueError(f"{path}: no latency columns (<setting>_ms)")
    unknown = [s for s in have if s not in SETTINGS]
    if unknown:
        raise ValueError(f"{path}: no description of device setting(s) {unknown}")
    if wanted is None:
        return have
    missing = [s for s in wanted if s not in have]
    if missing:
        raise ValueError(f"unknown device setting(s) {missing} (known: {', '.join(have)})")
    return list(dict.fromkeys(wanted))


def prepare_help_latency(
    out: Path, *, src: Path | None = None, devices: list[str] | None = None, cache: CellCache | None = None
) -> list[PreparedImport]:
    """One prepared corpus per device setting, under ``out/<setting>``; nothing is written."""
    path = source_path(src)
    names = settings_in(path, devices)
    df = read_csv_checked(path, ["nb201_index", "arch_str", *(f"{s}_ms" for s in names)])
    for s in names:
        check_range(path, df, f"{s}_ms", 1e-6, 1e7)
    record = source_record("help_latency", path)
    arch_strs = df["arch_str"].to_list()
    index = df["nb201_index"].cast(pl.Int64).to_list()
    cache = {} if cache is None else cache
    bench = nb201_bench_columns(dict(zip(index, arch_strs, strict=True)), DATASET)  # source rows: NB-201 indices
    preps = []
    for s in names:
        dev = SETTINGS[s]
        protocol: dict[str, Any] = {
            "benchmark": "HELP (NAS-Bench-201 latency)",
            "measure": "inference latency, ms",
            "device_setting": s,
            "device": dev.hardware,
            "batch": dev.batch,
            "input_shape": list(DATASET.input_shape),
            "sources": [record],
        }
        manifest = make_manifest(TASK, protocol)
        if done := already_imported(f"help-latency {s}", Path(out) / s, manifest):
            preps.append(replace(done, bench=bench))
            continue
        shared = {
            **provenance_columns(manifest.created_at),
            "task": TASK,
            "n_train": DATASET.n_train,
            "n_classes": DATASET.n_classes,
            "input_shape": list(DATASET.input_shape),
            "protocol_hash": manifest.protocol_hash,
            "device_kind": dev.kind,
            "device_name": s,
            "cpu_model": dev.hardware if dev.kind == "cpu" else None,
        }
        col = RowCollector(cache)
        g = col.group(path.name)
        latency = df[f"{s}_ms"].cast(pl.Float64).to_list()
        for i, arch_str in enumerate(arch_strs):
            if dev.batch == 1:
                cols = {**shared, "latency_bs1_ms": latency[i]}
            else:
                cols = {**shared, "latency_bsN_ms": latency[i], "latency_batch_n": dev.batch}
            col.add(g, index[i], ("nb201", arch_str), lambda a=arch_str: nb201_network(a),
                    cols | bench(path.name, index[i]))
        prep = PreparedImport(
            f"help-latency {s}", Path(out) / s, manifest, col.groups, dict(col.skipped), dict(col.notes), col.unmapped
        )
        preps.append(finish_prepare(prep))
    return preps

"""Build a corpus: plan networks, train each for real, write one part per run; resume by default."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from dataset_builder.corpus import Manifest, create_corpus, existing_keys, now_iso, open_corpus, write_part
from dataset_builder.protocol import Protocol
from dataset_builder.provenance import builder_version, git_rev
from dataset_builder.tasks import check_cifar_dir, describe_task, load_task
from dataset_builder.train import DeviceData, train_network
from hardware.costs import step_costs
from hardware.device import describe_device, resolve_device
from hardware.roofline import roofline_run
from search_space import LIMITS, SEARCH_SPACE_VERSION, Network, PlannedNet, load_networks, plan_networks, validate


@dataclass(frozen=True)
class BuildConfig:
    """Everything `narch build` needs."""

    task: str
    out: Path
    archs: int = 16
    seed: int = 0
    protocol: Protocol = field(default_factory=Protocol)
    archs_from: Path | None = None
    device: str = "cpu"
    n_train: int | None = None
    data_dir: Path | None = None
    threads: int | None = None
    timeout_s: float | None = None
    skip_corrupt: bool = False


@dataclass
class BuildSummary:
    """What a build did."""

    planned: int = 0
    skipped: int = 0
    done: int = 0
    failed: int = 0
    interrupted: bool = False
    wall_s: float = 0.0
    statuses: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class PreparedBuild:
    """A checked build: every input validated before anything is written."""

    config: BuildConfig
    plan: list[PlannedNet]
    manifest: Manifest
    device_kind: str


def prepare_build(cfg: BuildConfig) -> PreparedBuild:
    """Validate task, device, networks and corpus compatibility; raises before writing anything."""
    if cfg.task == "cifar10":
        check_cifar_dir(cfg.data_dir)
    data = load_task(cfg.task, n_train=cfg.n_train, data_dir=cfg.data_dir, data_seed=cfg.protocol.data_seed)
    kind = resolve_device(cfg.device)
    if cfg.archs_from is not None:
        plan = [PlannedNet(n) for n in load_networks(cfg.archs_from)]
    else:
        if cfg.archs < 1:
            raise ValueError(f"--archs must be >= 1, got {cfg.archs}")
        plan = plan_networks(cfg.archs, cfg.seed)
    for item in plan:
        validate(item.net, limits=LIMITS, input_shape=data.input_shape, n_classes=data.n_classes)
    manifest = Manifest(
        task=cfg.task,
        protocol=cfg.protocol.to_dict(),
        protocol_hash=cfg.protocol.protocol_hash,
        search_space_version=SEARCH_SPACE_VERSION,
        builder_version=builder_version(),
        created_at=now_iso(),
        data_dir=None if cfg.data_dir is None else str(cfg.data_dir),
    )
    open_corpus(cfg.out, manifest)
    return PreparedBuild(cfg, plan, manifest, kind)


ProgressFn = Callable[[BuildSummary, dict[str, Any] | None], None]


def run_build(pb: PreparedBuild, on_progress: ProgressFn | None = None) -> BuildSummary:
    """Train every planned network not yet in the corpus; Ctrl-C stops cleanly between atomic writes."""
    cfg, p = pb.config, pb.config.protocol
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    data = load_task(cfg.task, n_train=cfg.n_train, data_dir=cfg.data_dir, data_seed=p.data_seed)
    create_corpus(cfg.out, pb.manifest)
    have = existing_keys(cfg.out, skip_corrupt=cfg.skip_corrupt)
    device = torch.device(pb.device_kind)
    dev = describe_device(pb.device_kind)
    summary = BuildSummary(planned=len(pb.plan))
    todo = []
    for item in pb.plan:
        key = (item.net.arch_id, cfg.task, data.n_train, p.protocol_hash, cfg.seed, pb.device_kind)
        if key in have:
            summary.skipped += 1
        else:
            todo.append(item)
    if on_progress:
        on_progress(summary, None)
    if not todo:
        return summary
    descriptors = describe_task(data)
    dd = DeviceData.from_task(data, device)
    shared = {
        **descriptors,
        "task": cfg.task,
        "protocol_hash": p.protocol_hash,
        "epochs": p.epochs,
        "batch_size": p.batch_size,
        "optimizer": p.optimizer,
        "lr": p.lr,
        "seed": cfg.seed,
        "latency_batch_n": p.latency_batch_n,
        **dev.to_dict(),
        "threads": torch.get_num_threads(),
        "concurrency": 1,
        "git_rev": git_rev(),
        "builder_version": builder_version(),
    }
    t0 = time.perf_counter()
    try:
        for item in todo:
            row = profile_row(item, dd, p, seed=cfg.seed, timeout_s=cfg.timeout_s, shared=shared)
            write_part(cfg.out, [row])
            summary.done += 1
            summary.statuses[row["status"]] = summary.statuses.get(row["status"], 0) + 1
            summary.failed += row["status"] != "ok"
            summary.wall_s = time.perf_counter() - t0
            if on_progress:
                on_progress(summary, row)
    except KeyboardInterrupt:
        summary.interrupted = True
    summary.wall_s = time.perf_counter() - t0
    return summary


def cost_columns(net: Network, data: DeviceData, p: Protocol, *, device_kind: str, threads: int) -> dict[str, Any]:
    """Cost-model columns: FLOPs and bytes of a training step, and the roofline time on the device that runs it."""
    n_train = len(data.y_train)
    costs = step_costs(net, data.input_shape, data.n_classes, p.batch_size)
    run = roofline_run(
        net,
        data.input_shape,
        data.n_classes,
        batch_size=p.batch_size,
        n_train=n_train,
        epochs=p.epochs,
        device="local-cuda" if device_kind == "cuda" else "local",
        threads=threads,
    )
    return {
        "flops_fwd": float(costs.flops_fwd),
        "flops_train_step": float(costs.flops_train_step),
        "bytes_train_step": float(costs.bytes_train_step),
        "arithmetic_intensity": costs.arithmetic_intensity,
        "roofline_train_time_s": run.train_time_s,
    }


def profile_row(
    item: PlannedNet, data: DeviceData, p: Protocol, *, seed: int, timeout_s: float | None, shared: dict[str, Any]
) -> dict[str, Any]:
    """Train and measure one network; the corpus row, whatever the outcome."""
    t0 = time.perf_counter()
    rec = train_network(item.net, data, p, seed=seed, timeout_s=timeout_s)
    return {
        **shared,
        "arch_id": item.net.arch_id,
        "arch_json": item.net.to_json(),
        "parent_arch_id": item.parent_arch_id,
        "move": item.move,
        **cost_columns(item.net, data, p, device_kind=shared["device_kind"], threads=shared["threads"]),
        **rec.to_columns(),
        "created_at": now_iso(),
        "load_avg_1m": os.getloadavg()[0],
        "wall_time_s": time.perf_counter() - t0,
    }

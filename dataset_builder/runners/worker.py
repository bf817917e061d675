"""One run in whatever process it lands in: task data cached per process, train, write the run's own part.

A run is trained under its key's advisory lock (corpus.run_lock_path; released when the holder dies), and only when
the corpus does not hold it yet: two builds into one folder, or a retry racing a late first try, never train one
network twice. A second build waits for the run the first one holds, then finds it stored. The corpus may be a
local folder or an object store's URL (``narch.core.store``): the lock is then a lease, and the part one PUT.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import torch

from narch.core.provenance import cluster_node, now_iso
from narch.core.store import Location, open_store
from narch.dataset_builder.corpus import holds_key, key_part_name, read_part, run_lock_name, write_part
from narch.dataset_builder.protocol import Protocol
from narch.dataset_builder.tasks import TaskData, load_task
from narch.dataset_builder.train import DeviceData, train_network
from narch.dataset_builder.zero_cost import minibatch, zero_cost_scores
from narch.hardware.costs import step_costs
from narch.hardware.device import describe_device
from narch.hardware.roofline import roofline_run
from narch.search_space import Network, PlannedNet


@dataclass(frozen=True)
class RunContext:
    """What a run needs besides its network; small and picklable, so it travels to pool and Ray workers."""

    out: Location  # a local folder, or an object store's URL
    task: str
    n_train: int | None
    data_dir: Path | None
    protocol: Protocol
    seed: int
    timeout_s: float | None
    device_kind: str
    threads: int | None
    concurrency: int
    base: dict[str, Any]  # columns every row shares: task descriptors, protocol, git_rev, builder_version
    data: TaskData | None = None  # the splits, shipped so workers need neither the data files nor regeneration

    def key(self, arch_id: str) -> tuple[Any, ...]:
        """The resume key of a run (KEY_COLUMNS order)."""
        p = self.protocol
        return (arch_id, self.task, self.base["n_train"], p.protocol_hash, self.seed, self.device_kind)

    def part_name(self, arch_id: str) -> str:
        """The name of the part the run of ``arch_id`` writes (the same on every try)."""
        return key_part_name(self.key(arch_id))

    def part_path(self, arch_id: str) -> Path:
        """Where the run of ``arch_id`` writes its part in a local corpus folder."""
        return Path(self.out) / self.part_name(arch_id)

    def lock_name(self, arch_id: str) -> str:
        """The lock held while the run of ``arch_id`` is trained and written."""
        return run_lock_name(self.key(arch_id))


_DATA: dict[tuple[Any, ...], DeviceData] = {}


def device_data(ctx: RunContext) -> DeviceData:
    """The task's splits on the device, loaded once per process (a Ray worker or pool process runs many tasks)."""
    key = (ctx.task, ctx.n_train, ctx.data_dir, ctx.protocol.data_seed, ctx.device_kind,
           os.environ.get("CUDA_VISIBLE_DEVICES"))
    if key not in _DATA:
        data = ctx.data or load_task(ctx.task, n_train=ctx.n_train, data_dir=ctx.data_dir,
                                     data_seed=ctx.protocol.data_seed)
        _DATA[key] = DeviceData.from_task(data, torch.device(ctx.device_kind))
    return _DATA[key]


@cache
def _device_columns(kind: str) -> dict[str, Any]:
    """Provenance of this process's device (NVML is opened once per process, not per run)."""
    return describe_device(kind).to_dict()


MAX_TIMING_TRIES = 3  # a run contended every time keeps its third timing (other_cpu_cores says so)


def run_one(ctx: RunContext, item: PlannedNet, *,
            retime: Callable[[dict[str, Any]], bool] | None = None) -> dict[str, Any] | None:
    """Train and measure one network, write its row as the run's own part (atomic, named by key); return the row.
    None when the corpus already holds the run (another build or an earlier try stored it): nothing is trained.
    ``retime(row)`` (the build's timing guard) may ask for the run again, after waiting for a quiet machine, when
    other work competed while it trained; only the kept try is written (``timing_tries`` counts them)."""
    store = open_store(ctx.out)
    with store.lock(ctx.lock_name(item.net.arch_id)):
        if holds_key(store, ctx.key(item.net.arch_id)):
            return None
        return _train_and_write(ctx, item, retime)


def _train_and_write(ctx: RunContext, item: PlannedNet,
                     retime: Callable[[dict[str, Any]], bool] | None = None) -> dict[str, Any]:
    if ctx.threads:
        torch.set_num_threads(ctx.threads)
    dd = device_data(ctx)
    shared = {
        **ctx.base,
        **_device_columns(ctx.device_kind),
        "threads": torch.get_num_threads(),
        "concurrency": ctx.concurrency,
        "worker_node": cluster_node(),
    }
    row = profile_row(item, dd, ctx.protocol, seed=ctx.seed, timeout_s=ctx.timeout_s, shared=shared)
    tries = 1
    while retime is not None and row["status"] == "ok" and tries < MAX_TIMING_TRIES and retime(row):
        tries += 1
        row = profile_row(item, dd, ctx.protocol, seed=ctx.seed, timeout_s=ctx.timeout_s, shared=shared)
    row["timing_tries"] = tries
    write_part(ctx.out, [row], name=ctx.part_name(item.net.arch_id))
    return row


def record_failure(ctx: RunContext, item: PlannedNet, error: str) -> dict[str, Any] | None:
    """A run whose process failed (died, or raised outside train_network): keep its part if it got written before
    the failure, else write an error row, so the network is in the corpus exactly once either way (None: a merged
    part holds it). Under the run's lock, so an error row never lands over another build's finished run."""
    with open_store(ctx.out).lock(ctx.lock_name(item.net.arch_id)):
        return _record_failure(ctx, item, error)


def _record_failure(ctx: RunContext, item: PlannedNet, error: str) -> dict[str, Any] | None:
    store, name = open_store(ctx.out), ctx.part_name(item.net.arch_id)
    if store.exists(name):
        rows = read_part(store.handle(name)).to_pylist()
        if rows:
            return rows[0]
    if holds_key(ctx.out, ctx.key(item.net.arch_id)):
        return None
    row = {
        **ctx.base,
        "arch_id": item.net.arch_id,
        "arch_json": item.net.to_json(),
        "parent_arch_id": item.parent_arch_id,
        "move": item.move,
        "device_kind": ctx.device_kind,
        "concurrency": ctx.concurrency,
        "created_at": now_iso(),
        "status": "error",
        "error": error[:500],
    }
    write_part(ctx.out, [row], name=name)
    return row


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


def zero_cost_columns(net: Network, data: DeviceData, *, seed: int) -> dict[str, Any]:
    """The zc_* columns of a run: the proxies at the run's own initialisation (its training seed) on the fixed
    minibatch of its training data; all None when the proxies cannot run (the row is written anyway)."""
    try:
        batch = minibatch(data.x_train, data.y_train)
        return zero_cost_scores(net, batch, tuple(data.x_train.shape[1:]), data.n_classes, seed=seed)
    except Exception:  # a proxy bug must never cost the run its row; the training below reports real failures
        return {}


def profile_row(
    item: PlannedNet, data: DeviceData, p: Protocol, *, seed: int, timeout_s: float | None, shared: dict[str, Any]
) -> dict[str, Any]:
    """Train and measure one network; the corpus row, whatever the outcome."""
    t0 = time.perf_counter()
    zc = zero_cost_columns(item.net, data, seed=seed)  # before training: the same initial weights, not timed
    rec = train_network(item.net, data, p, seed=seed, timeout_s=timeout_s)
    return {
        **zc,
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

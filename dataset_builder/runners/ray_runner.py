"""Ray backend: one Ray task per network, each writing its own part; Ray schedules and retries (nothing home-made).

A local cluster is started when no address is given; with ``--address`` every node needs this package installed
and the corpus where every node and the driver reach it: an object store's URL (``s3://bucket/prefix``, with the
store's credentials on every node), or a folder on a file system they all share. Each row's ``worker_node`` names
the Ray node that trained it.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import replace
from functools import cache
from types import ModuleType
from typing import Any

from narch.dataset_builder.runners import RunnerError
from narch.dataset_builder.runners.worker import RunContext, record_failure, run_one
from narch.search_space import PlannedNet

RAY_HINT = "the ray backend needs Ray: pip install -e '.[distributed]'"
MAX_RETRIES = 3  # retries of a task whose worker process died (killed, node lost); training errors are rows


def import_ray() -> ModuleType:
    """Ray, imported lazily; a RunnerError with the install hint when it is missing."""
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # else Ray turns on token auth and writes ~/.ray/auth_token
    try:
        import ray
    except ImportError:
        raise RunnerError(RAY_HINT) from None
    return ray


@cache
def _node_cpu_slots(cpus_per_task: float) -> int:
    """How many CPU tasks this worker's node runs at once: the trainings sharing its CPUs."""
    import ray

    node = ray.get_runtime_context().get_node_id()
    for n in ray.nodes():
        if n["NodeID"] == node:
            return max(1, int(n["Resources"].get("CPU", 1) // cpus_per_task))
    return 1


def train_one_network(ctx: RunContext, item: PlannedNet, cpus_per_task: float | None) -> dict[str, Any] | None:
    """The Ray task (its worker process is titled ray::train_one_network): train, write the part, return the row."""
    if cpus_per_task is not None:
        ctx = replace(ctx, concurrency=_node_cpu_slots(cpus_per_task))
    return run_one(ctx, item)


def task_options(ray: ModuleType, ctx: RunContext) -> dict[str, Any]:
    """Resources of one task: a 1/concurrency share of a GPU on CUDA, ``threads`` CPUs otherwise."""
    cpus = ctx.threads or 1
    if ctx.device_kind != "cuda":
        return {"num_cpus": cpus}
    gpus = [n["Resources"].get("GPU", 0) for n in ray.nodes() if n.get("Alive")]
    if not any(gpus):
        raise RunnerError("--device cuda: the Ray cluster has no GPU (`ray status` lists its resources)")
    # A reused worker keeps the GPU it initialised CUDA on; reuse (data cached per worker) is safe only where every
    # node has one GPU, so elsewhere each task gets a fresh worker (Ray's default for GPU tasks).
    return {"num_cpus": cpus, "num_gpus": 1 / ctx.concurrency, "max_calls": 0 if max(gpus) <= 1 else 1}


def _local_gpus(ctx: RunContext) -> int:
    """GPUs of a local cluster: torch's count on CUDA (not left to Ray's detection), none for a CPU build."""
    if ctx.device_kind != "cuda":
        return 0
    import torch

    return torch.cuda.device_count()


def _one_line(e: BaseException) -> str:
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    return f"{type(e).__name__}: {lines[0] if lines else ''}"


def run_ray(
    ctx: RunContext,
    todo: list[PlannedNet],
    record: Callable[[dict[str, Any] | None], None],
    *,
    address: str | None = None,
    num_cpus: int | None = None,
) -> None:
    """Run ``todo`` as Ray tasks and record each row as ``ray.wait`` returns it. A task whose worker died is retried
    (MAX_RETRIES); past that, or when a task raised, the run becomes an error row unless its part was already written.
    On Ctrl-C the pending tasks are cancelled and KeyboardInterrupt propagates."""
    ray = import_ray()
    temp_dir, started = None, not ray.is_initialized()
    if started:
        if address:
            ray.init(address=address, log_to_driver=False, logging_level=logging.WARNING)
        else:
            temp_dir = tempfile.mkdtemp(prefix="narch-ray-", dir="/tmp")  # short: Ray's socket paths are limited
            ray.init(num_cpus=num_cpus, num_gpus=_local_gpus(ctx), include_dashboard=False, _temp_dir=temp_dir,
                     log_to_driver=False, logging_level=logging.WARNING)
    try:
        if ctx.threads is None:
            ctx = replace(ctx, threads=1)
        opts = task_options(ray, ctx)
        remote = ray.remote(max_retries=MAX_RETRIES, **opts)(train_one_network)
        cpus_per_task = None if ctx.device_kind == "cuda" else float(opts["num_cpus"])
        ctx_ref = ray.put(ctx)
        refs = {remote.remote(ctx_ref, item, cpus_per_task): item for item in todo}
        pending = list(refs)
        try:
            while pending:
                ready, pending = ray.wait(pending, num_returns=1, timeout=1.0)
                for ref in ready:
                    try:
                        row = ray.get(ref)
                    except ray.exceptions.RayError as e:
                        row = record_failure(ctx, refs[ref], _one_line(e))
                    record(row)
        except KeyboardInterrupt:
            for ref in pending:
                ray.cancel(ref, force=True)
            raise
    finally:
        if started:
            ray.shutdown()
        if temp_dir is not None:
            shutil.rmtree(temp_dir, ignore_errors=True)

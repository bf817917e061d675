"""Measurements around a training run: timers, latency, memory."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import torch
from torch import nn


def sync(device: torch.device) -> None:
    """Wait for queued GPU work so a wall-clock reading means what it says."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def percentile(values: list[float], q: float) -> float | None:
    """The q-th percentile, None for no values."""
    return float(np.percentile(values, q)) if values else None


def steps_by_epoch(steps: list[float], epochs: int) -> np.ndarray | None:
    """Per-step times as an (epochs, steps per epoch) array; None when they do not split evenly."""
    if epochs < 1 or not steps or len(steps) % epochs:
        return None
    return np.asarray(steps, dtype=np.float64).reshape(epochs, -1)


def robust_train_time(steps: list[float], epochs: int, *, q: float = 0.0, fallback_q: float = 10.0) -> float | None:
    """The uncontended training time, estimated from per-step times of a run (warm-up included).

    Every epoch runs the same sequence of batches (sizes differ only at the epoch's end), so position j of every
    epoch is one measurement repeated ``epochs`` times: take its ``q``-th percentile over the epochs (the minimum by
    default: the run of that step that no other process preempted or slowed) and sum over positions. Warm-up steps
    drop out (they are slow in the first epoch only). Runs of one epoch fall back to the ``fallback_q``-th
    percentile of all steps times their count. The minimum was chosen by measurement: its seed-to-seed spread is
    the lowest of the candidates (results/timing/README.md, the noise floor in results/DATACARD.md).
    """
    grid = steps_by_epoch(steps, epochs)
    if grid is None or epochs < 2:
        return float(np.percentile(steps, fallback_q) * len(steps)) if steps else None
    return float(np.percentile(grid, q, axis=0).sum() * epochs)


def speed_probe_s(reps: int = 3) -> float:
    """CPU seconds of a fixed small conv forward+backward (the best of ``reps``, ~15 ms in all on one core): how fast
    this core runs right now. A run records it before and after training (``speed_probe_s``), so a label can be put
    on one host speed when the host drifts (results/timing/README.md)."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(64, 16, 40, generator=gen)  # its own generator: the training's random streams stay untouched
    w = torch.randn(32, 16, 5, generator=gen).mul_(0.1).requires_grad_()
    best = float("inf")
    for _ in range(reps):
        c0 = time.process_time()
        for _ in range(5):
            torch.nn.functional.conv1d(x, w, padding=2).relu().sum().backward()
        best = min(best, time.process_time() - c0)
    return best


def time_call_ms(fn: Callable[[], object], device: torch.device, *, warmup: int, repeats: int) -> float:
    """Median wall time of ``fn`` in milliseconds after ``warmup`` calls, synchronised on CUDA."""
    for _ in range(warmup):
        fn()
    sync(device)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        sync(device)
        times.append((time.perf_counter() - t0) * 1000)
    return float(np.median(times))


@torch.inference_mode()
def inference_latency_ms(model: nn.Module, x: torch.Tensor, *, warmup: int = 3, repeats: int = 10) -> float:
    """Median eval-mode forward latency for the batch ``x``."""
    model.eval()
    return time_call_ms(lambda: model(x), x.device, warmup=warmup, repeats=repeats)


def _tensor_bytes(tensors: list[torch.Tensor]) -> int:
    seen: set[tuple[int, int]] = set()
    total = 0
    for t in tensors:
        key = (t.untyped_storage().data_ptr(), t.untyped_storage().nbytes())
        if key not in seen:
            seen.add(key)
            total += t.untyped_storage().nbytes()
    return total


def cpu_train_memory_bytes(model: nn.Module, loss_fn: Callable[[], torch.Tensor], optimizer_states: int = 2) -> int:
    """Parameters + gradients + AdamW state + the activations autograd saves in one step, counted tensor by tensor.

    On CPU torch keeps no allocator statistics; this counts the real tensors of one forward pass
    (storages deduplicated) instead of sampling the process's RSS, which other work disturbs.
    """
    saved: list[torch.Tensor] = []

    def pack(t: torch.Tensor) -> torch.Tensor:
        saved.append(t)
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = loss_fn()
    del loss
    param_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    buffers = sum(b.numel() * b.element_size() for b in model.buffers())
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    activations = [t for t in saved if t.untyped_storage().data_ptr() not in params]
    return param_bytes * (2 + optimizer_states) + buffers + _tensor_bytes(activations)

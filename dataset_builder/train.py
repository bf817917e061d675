"""The training and measurement loop: data on the device as tensors, batches as index slices."""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from narch.dataset_builder.contention import CpuClock
from narch.dataset_builder.measure import (
    cpu_train_memory_bytes,
    inference_latency_ms,
    percentile,
    robust_train_time,
    speed_probe_s,
    sync,
)
from narch.dataset_builder.model import build_model, model_size_bytes
from narch.dataset_builder.protocol import Protocol
from narch.dataset_builder.tasks import TaskData
from narch.hardware.telemetry import open_telemetry
from narch.search_space import Network


class Diverged(RuntimeError):
    """The training loss became NaN or infinite."""


class TimedOut(RuntimeError):
    """The run passed its time limit."""


@dataclass(frozen=True)
class DeviceData:
    """A task's splits as tensors on one device."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    n_classes: int

    @staticmethod
    def from_task(data: TaskData, device: torch.device) -> DeviceData:
        def t(a: Any) -> torch.Tensor:
            return torch.as_tensor(a).to(device)

        return DeviceData(
            t(data.x_train),
            t(data.y_train),
            t(data.x_val),
            t(data.y_val),
            t(data.x_test),
            t(data.y_test),
            data.n_classes,
        )

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])


@dataclass
class RunRecord:
    """What one training run measured; failed runs keep what they reached."""

    status: str = "ok"
    error: str | None = None
    val_acc: float | None = None
    test_acc: float | None = None
    train_loss: float | None = None
    val_acc_curve: list[float] = field(default_factory=list)
    train_loss_curve: list[float] = field(default_factory=list)
    epoch_time_s_curve: list[float] = field(default_factory=list)
    step_times_s: list[float] = field(default_factory=list)  # every step, warm-up included (wall; CUDA: events)
    step_cpu_s: list[float] = field(default_factory=list)  # every step's process CPU time (CPU runs only)
    warmup_steps: int = 0
    measures: dict[str, Any] = field(default_factory=dict)

    def to_columns(self) -> dict[str, Any]:
        """As corpus columns."""
        epochs = self.epoch_time_s_curve
        return {
            "status": self.status,
            "error": self.error,
            "val_acc": self.val_acc,
            "test_acc": self.test_acc,
            "train_loss": self.train_loss,
            "val_acc_curve": self.val_acc_curve,
            "train_loss_curve": self.train_loss_curve,
            "epoch_time_s_curve": epochs,
            "train_time_s": sum(epochs) if epochs else None,
            "epoch_time_p50_s": percentile(epochs, 50),
            "epoch_time_p90_s": percentile(epochs, 90),
            "step_time_p50_s": percentile(self.step_times_s[self.warmup_steps:], 50),
            "step_time_p90_s": percentile(self.step_times_s[self.warmup_steps:], 90),
            "step_time_s_curve": self.step_times_s,
            "step_cpu_s_curve": self.step_cpu_s or None,
            "train_steps": len(self.step_times_s) or None,
            **self.measures,
        }


@torch.inference_mode()
def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int) -> float:
    """Top-1 accuracy in eval mode, batched."""
    model.eval()
    correct = torch.zeros((), dtype=torch.long, device=x.device)
    for i in range(0, len(y), batch_size):
        correct += (model(x[i : i + batch_size]).argmax(1) == y[i : i + batch_size]).sum()
    return correct.item() / len(y)


def _onecycle(opt: torch.optim.Optimizer, p: Protocol, total_steps: int) -> torch.optim.lr_scheduler.LRScheduler:
    warm = max(1, int(p.warmup_frac * total_steps))

    def factor(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        frac = (step - warm) / max(1, total_steps - warm)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, frac)))

    return torch.optim.lr_scheduler.LambdaLR(opt, factor)


def _epoch(
    model: nn.Module,
    opt: torch.optim.Optimizer,
    sched: Any,
    data: DeviceData,
    p: Protocol,
    gen: torch.Generator,
    step_times: list[float],
    step_cpu: list[float],
    deadline: float | None = None,
) -> float:
    """One epoch; returns the mean training loss. Per-step times: wall (CUDA: events) and, on CPU, process CPU time.
    ``deadline`` (a perf_counter reading) is checked after every step, so a time limit holds within an epoch."""
    model.train()
    n = len(data.y_train)
    perm = torch.randperm(n, generator=gen).to(data.x_train.device)
    loss_sum = torch.zeros((), device=data.x_train.device)
    cuda = data.x_train.device.type == "cuda"
    events: list[tuple[torch.cuda.Event, torch.cuda.Event]] = []
    for i in range(0, n, p.batch_size):
        idx = perm[i : i + p.batch_size]
        if len(idx) == 1 and n > 1:  # batch-norm cannot train on one example at 1x1 spatial size
            continue
        t0, c0 = time.perf_counter(), time.process_time()
        if cuda:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(data.x_train[idx]), data.y_train[idx])
        loss.backward()
        opt.step()
        sched.step()
        loss_sum += loss.detach() * len(idx)
        if cuda:
            end.record()
            events.append((start, end))
        else:
            step_times.append(time.perf_counter() - t0)
            step_cpu.append(time.process_time() - c0)
        if deadline is not None and time.perf_counter() > deadline:
            raise TimedOut(f"run passed its time limit after {len(step_times) + len(events)} steps")
    if cuda:
        torch.cuda.synchronize()
        step_times.extend(s.elapsed_time(e) / 1000 for s, e in events)
    mean_loss = loss_sum.item() / (n - (n % p.batch_size == 1 and n > 1))
    if not math.isfinite(mean_loss):
        raise Diverged(f"training loss became {mean_loss}")
    return mean_loss


def train_network(
    net: Network, data: DeviceData, p: Protocol, *, seed: int, timeout_s: float | None = None
) -> RunRecord:
    """Train one network under the protocol and measure it; failures become a record with their status."""
    device = data.x_train.device
    rec = RunRecord()
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    telemetry = open_telemetry(device.type)
    try:
        model = build_model(net, data.input_shape, data.n_classes).to(device)
        rec.measures["params"] = sum(q.numel() for q in model.parameters())
        rec.measures["model_size_bytes"] = model_size_bytes(model)
        opt = torch.optim.AdamW(model.parameters(), lr=p.lr, weight_decay=p.weight_decay)
        steps_per_epoch = math.ceil(len(data.y_train) / p.batch_size)
        sched = _onecycle(opt, p, p.epochs * steps_per_epoch)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        rec.warmup_steps = p.timing_warmup_steps
        t_start = time.perf_counter()
        deadline = None if timeout_s is None else t_start + timeout_s
        rec.measures["load_avg_1m_before"] = os.getloadavg()[0]
        probe0 = speed_probe_s() if device.type == "cpu" else None
        clock0, train_cpu = CpuClock.now(), 0.0
        telemetry.start()
        for _ in range(p.epochs):
            sync(device)
            t0, c0 = time.perf_counter(), time.process_time()
            loss = _epoch(model, opt, sched, data, p, gen, rec.step_times_s, rec.step_cpu_s, deadline)
            sync(device)
            rec.epoch_time_s_curve.append(time.perf_counter() - t0)
            train_cpu += time.process_time() - c0
            rec.train_loss_curve.append(loss)
            rec.val_acc_curve.append(accuracy(model, data.x_val, data.y_val, p.eval_batch_size))
            if deadline is not None and time.perf_counter() > deadline:
                raise TimedOut(f"run passed its limit of {timeout_s:g} s after {len(rec.val_acc_curve)} epoch(s)")
        rec.measures.update(telemetry.stop().to_dict())
        rec.measures.update(_timing_columns(rec, device, train_cpu, clock0, threads=torch.get_num_threads(),
                                            epochs=p.epochs))
        if probe0 is not None:
            rec.measures["speed_probe_s"] = min(probe0, speed_probe_s())
        rec.val_acc, rec.train_loss = rec.val_acc_curve[-1], rec.train_loss_curve[-1]
        rec.test_acc = accuracy(model, data.x_test, data.y_test, p.eval_batch_size)
        rec.measures["latency_bs1_ms"] = inference_latency_ms(model, data.x_test[:1], warmup=5, repeats=20)
        rec.measures["latency_bsN_ms"] = inference_latency_ms(model, data.x_test[: p.latency_batch_n])
        rec.measures["peak_mem_bytes"] = _peak_memory(model, data, p)
    except torch.OutOfMemoryError as e:
        rec.status, rec.error = "failed_oom", _one_line(e)
    except Diverged as e:
        rec.status, rec.error = "diverged", str(e)
    except TimedOut as e:
        rec.status, rec.error = "timeout", str(e)
    except Exception as e:  # any other failure is a row with its error, never a gap or a dead build
        oom = "can't allocate memory" in str(e) or "out of memory" in str(e)
        rec.status, rec.error = ("failed_oom" if oom else "error"), _one_line(e)
    finally:
        telemetry.stop() if rec.status != "ok" else None
    return rec


def _timing_columns(rec: RunRecord, device: torch.device, train_cpu_s: float, start: CpuClock, *, threads: int,
                    epochs: int) -> dict[str, Any]:
    """CPU time, core share, contention and the robust time label of a finished run (see schema.TIME_LABEL)."""
    wall = sum(rec.epoch_time_s_curve)
    if device.type == "cuda":
        return {"train_time_robust_s": wall, "other_cpu_cores": CpuClock.now().other_cores_since(start)}
    return {
        "train_cpu_s": train_cpu_s,
        "core_share": train_cpu_s / (wall * max(1, threads)) if wall > 0 else None,
        "other_cpu_cores": CpuClock.now().other_cores_since(start),
        "train_time_robust_s": robust_train_time(rec.step_cpu_s, epochs),
    }


def _peak_memory(model: nn.Module, data: DeviceData, p: Protocol) -> int:
    if data.x_train.device.type == "cuda":
        return int(torch.cuda.max_memory_allocated(data.x_train.device))
    model.train()
    x, y = data.x_train[: p.batch_size], data.y_train[: p.batch_size]
    return cpu_train_memory_bytes(model, lambda: F.cross_entropy(model(x), y))


def _one_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0] if text else ''}"[:500]

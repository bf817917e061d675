"""Roofline times: per op max(compute, memory) at the device's efficiencies plus launch overhead. Pure Python.

Precision ``fp32`` follows PyTorch's defaults on CUDA: convolutions run on TF32 tensor cores (cuDNN's
``allow_tf32`` is on), matmuls on fp32 CUDA cores (``torch.backends.cuda.matmul.allow_tf32`` is off).
Element-wise ops run at the fp32 vector rate. ``bf16``/``fp16`` halve activation traffic (optimizer stays fp32).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from narch.hardware.catalogue import Device, get_device
from narch.hardware.costs import (
    ADAMW_OPS_PER_TENSOR,
    CLASS_CODE,
    OP_CLASSES,
    V_BYTES_BWD,
    V_BYTES_FWD,
    V_FLOPS_BWD,
    V_FLOPS_FWD,
    V_LAUNCHES_BWD,
    V_LAUNCHES_FWD,
    OpClass,
    OpCost,
    OpTable,
    RunCosts,
    StepCosts,
    network_ops,
    run_batches,
    run_costs,
)
from narch.search_space import Network

PRECISIONS = ("fp32", "tf32", "bf16", "fp16")
BOUNDS = ("compute", "memory", "launch")


def op_dtype(cls: OpClass, device: Device, precision: str) -> str:
    """The dtype whose peak an op class runs at on a device under a precision setting."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision {precision!r} is not one of {PRECISIONS}")
    if cls == OpClass.CONV:
        if precision == "fp32":
            return "tf32" if device.kind == "gpu" and "tf32" in device.peak_flops else "fp32"
        return precision
    if cls == OpClass.DENSE:
        return precision
    return "fp32"


def op_launches(op: OpCost, kind: str) -> int:
    """Launches of an op on a device kind; AdamW on CUDA takes the foreach path (one launch per element-wise op)."""
    if op.op_class == OpClass.OPTIMIZER and kind == "gpu":
        return ADAMW_OPS_PER_TENSOR
    return op.launches


@dataclass(frozen=True, slots=True)
class OpTime:
    """Roofline time of one op of a step."""

    name: str
    op_class: OpClass
    layer: str
    compute_s: float
    memory_s: float
    launch_s: float

    @property
    def time_s(self) -> float:
        return max(self.compute_s, self.memory_s) + self.launch_s

    @property
    def bound(self) -> str:
        if self.launch_s >= max(self.compute_s, self.memory_s):
            return "launch"
        return "compute" if self.compute_s >= self.memory_s else "memory"


_OPTIMIZER = CLASS_CODE[OpClass.OPTIMIZER]


def class_rate(cls: OpClass, device: Device, precision: str = "fp32") -> tuple[float, float]:
    """(attainable FLOP/s, scale of its bytes) of an op class on a device: the dtype's peak times the compute
    efficiency; half-precision activation traffic where the precision is bf16/fp16 (optimizer and data stay fp32)."""
    peak = device.peak(op_dtype(cls, device, precision)) * device.compute_efficiency
    scale = 0.5 if precision in ("bf16", "fp16") and cls not in (OpClass.OPTIMIZER, OpClass.DATA) else 1.0
    return peak, scale


def _seconds(flops: Any, nbytes: Any, launches: Any, peak: Any, scale: Any, device: Device) -> tuple[Any, Any, Any]:
    """compute, memory and launch seconds: FLOPs / attainable FLOP/s, bytes / attainable bandwidth, launches x
    overhead (scalars or arrays alike)."""
    return (flops / peak, nbytes * scale / (device.mem_bandwidth.value * device.memory_efficiency),
            launches * device.launch_overhead_s)


def op_seconds(op_class: np.ndarray, flops: np.ndarray, nbytes: np.ndarray, launches: np.ndarray, device: Device,
               precision: str = "fp32") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``op_time``'s seconds for arrays of ops (classes as ``costs.CLASS_CODE``; ``launches`` as the ops count them:
    AdamW on CUDA takes its foreach launches here, as ``op_launches`` says)."""
    rates = [class_rate(c, device, precision) for c in OP_CLASSES]
    peak = np.asarray([r[0] for r in rates])[op_class]
    scale = np.asarray([r[1] for r in rates])[op_class]
    if device.kind == "gpu":
        launches = np.where(op_class == _OPTIMIZER, ADAMW_OPS_PER_TENSOR, launches)
    return _seconds(flops.astype(np.float64), nbytes.astype(np.float64), launches.astype(np.float64), peak, scale,
                    device)


def op_time(op: OpCost, layer: str, device: Device, precision: str = "fp32") -> OpTime:
    """max(FLOPs / attainable FLOP/s, bytes / attainable bandwidth) and launches x overhead."""
    peak, scale = class_rate(op.op_class, device, precision)
    return OpTime(op.name, op.op_class, layer, *_seconds(op.flops, op.bytes, op_launches(op, device.kind), peak, scale,
                                                         device))


@dataclass(frozen=True, slots=True)
class StepTime:
    """Roofline time of one training step on a device, per op."""

    device: str
    batch_size: int
    ops: tuple[OpTime, ...]
    flops: int
    bytes: int
    overhead_s: float = 0.0  # the device's fixed per-step overhead (the training loop's Python work)

    @property
    def time_s(self) -> float:
        return sum(o.time_s for o in self.ops) + self.overhead_s

    def bound_times(self) -> dict[str, float]:
        """Time attributed to each bound: each op's max() term to compute or memory; launches and overhead to launch."""
        out = dict.fromkeys(BOUNDS, 0.0)
        out["launch"] = self.overhead_s
        for o in self.ops:
            out["compute" if o.compute_s >= o.memory_s else "memory"] += max(o.compute_s, o.memory_s)
            out["launch"] += o.launch_s
        return out

    @property
    def bound(self) -> str:
        """What bounds the step: the largest of compute-bound, memory-bound and launch time."""
        bt = self.bound_times()
        return max(BOUNDS, key=lambda b: bt[b])

    def layer_times(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for o in self.ops:
            out[o.layer] = out.get(o.layer, 0.0) + o.time_s
        return out

    @property
    def dominating_layer(self) -> str:
        lt = self.layer_times()
        return max(lt, key=lambda k: lt[k])

    @property
    def attainable_flops(self) -> float:
        """FLOP/s the step attains under the model."""
        return self.flops / self.time_s


def _device(device: Device | str, threads: int | None = None) -> Device:
    return device if isinstance(device, Device) else get_device(device, threads=threads)


def step_time(costs: StepCosts, device: Device | str = "local", *, precision: str = "fp32") -> StepTime:
    """Roofline time of one step of known costs."""
    dev = _device(device)
    ops = tuple(op_time(o, layer.label, dev, precision) for layer in costs.layers for o in layer.ops)
    return StepTime(dev.key, costs.batch_size, ops, costs.flops_train_step, costs.bytes_train_step,
                    dev.step_overhead_s)


def step_seconds(ops: OpTable, batch_size: int | np.ndarray, device: Device | str = "local", *,
                 precision: str = "fp32") -> np.ndarray:
    """``step_time(...).time_s`` of every network of an op table at once (the same sums, in the same order)."""
    dev = _device(device)
    v = ops.values(batch_size)
    c, m, la = op_seconds(ops.op_class, v[:, V_FLOPS_FWD] + v[:, V_FLOPS_BWD], v[:, V_BYTES_FWD] + v[:, V_BYTES_BWD],
                          v[:, V_LAUNCHES_FWD] + v[:, V_LAUNCHES_BWD], dev, precision)
    # bincount adds each network's op times one by one in op order, from 0: the sum step_time's time_s takes
    return np.bincount(ops.net, weights=np.maximum(c, m) + la, minlength=len(ops.start) - 1) + dev.step_overhead_s


def train_seconds(ops: OpTable, *, batch_size: int, n_train: int, epochs: int, device: Device | str = "local",
                  precision: str = "fp32") -> np.ndarray:
    """``roofline_run(...).train_time_s`` of every network of an op table at once."""
    if n_train < 1 or epochs < 1 or batch_size < 1:
        raise ValueError(f"n_train, epochs and batch_size must be >= 1, got {n_train}, {epochs} and {batch_size}")
    dev = _device(device)
    full, rem = run_batches(batch_size, n_train)
    n_full = math.ceil(n_train / batch_size) - (rem != 0)
    epoch = n_full * step_seconds(ops, full, dev, precision=precision)
    epoch = epoch + (step_seconds(ops, rem, dev, precision=precision) if rem else 0.0)
    return epochs * epoch


def roofline_train_times(nets: Sequence[Network], input_shape: tuple[int, ...], n_classes: int, *, batch_size: int,
                         n_train: int, epochs: int, device: Device | str = "local",
                         precision: str = "fp32") -> np.ndarray:
    """``roofline_train_time_s`` of a batch of networks, traced and costed together."""
    return train_seconds(network_ops(nets, input_shape, n_classes), batch_size=batch_size, n_train=n_train,
                         epochs=epochs, device=device, precision=precision)


@dataclass(frozen=True, slots=True)
class RunTime:
    """Roofline time of a training run: full steps, plus one partial step per epoch when n_train is not a multiple."""

    device: str
    device_name: str
    full: StepTime
    remainder: StepTime | None
    steps_per_epoch: int
    epochs: int

    @property
    def epoch_time_s(self) -> float:
        n_full = self.steps_per_epoch - (self.remainder is not None)
        return n_full * self.full.time_s + (self.remainder.time_s if self.remainder else 0.0)

    @property
    def train_time_s(self) -> float:
        return self.epochs * self.epoch_time_s

    @property
    def step_time_s(self) -> float:
        return self.full.time_s

    @property
    def bound(self) -> str:
        return self.full.bound

    @property
    def dominating_layer(self) -> str:
        return self.full.dominating_layer


def run_time(rc: RunCosts, device: Device | str = "local", *, precision: str = "fp32") -> RunTime:
    """Roofline time of a training run of known costs."""
    dev = _device(device)
    rem = step_time(rc.remainder, dev, precision=precision) if rc.remainder else None
    return RunTime(dev.key, dev.name, step_time(rc.full, dev, precision=precision), rem, rc.steps_per_epoch,
                   rc.epochs)


def roofline_run(
    net: Network, input_shape: tuple[int, ...], n_classes: int, *, batch_size: int, n_train: int, epochs: int,
    device: Device | str = "local", precision: str = "fp32", threads: int | None = None,
) -> RunTime:
    """Roofline time of training ``net`` for ``epochs`` on n_train samples on a device."""
    rc = run_costs(net, input_shape, n_classes, batch_size=batch_size, n_train=n_train, epochs=epochs)
    return run_time(rc, _device(device, threads), precision=precision)


def roofline_train_time_s(
    net: Network, input_shape: tuple[int, ...], n_classes: int, *, batch_size: int, n_train: int, epochs: int,
    device: Device | str = "local",
) -> float:
    """Roofline training time in seconds of ``net`` on a catalogued device (or ``local``)."""
    return roofline_run(
        net, input_shape, n_classes, batch_size=batch_size, n_train=n_train, epochs=epochs, device=device
    ).train_time_s

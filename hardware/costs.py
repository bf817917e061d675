"""FLOPs, bytes moved and op launches of one training step, per op, forward and backward. Pure Python.

Shapes, parameters and forward multiply-accumulates come from the search space's trace (``trace_network``); this
module adds the hardware conventions on top: backward work, bytes moved, launches and the dtype.

Conventions (fp32, 4 bytes per element; N is the batch size, E the elements of the tensor named):
- conv and linear FLOPs are ``torch.utils.flop_counter.FlopCounterMode``'s exactly: 2 per multiply-accumulate,
  bias ignored; the backward counts the weight gradient always and the input gradient only when the input
  needs one (a layer reading the network input, or only parameter-free layers after it, does not). One
  exception: a grouped conv's weight gradient is its forward's work, as for any conv, where FlopCounterMode
  counts it as if the conv were ungrouped (``groups`` times more; its formula skips groups).
- other ops, which FlopCounterMode counts as 0, use the per-element formulas in ``_FLOPS`` below.
- bytes are ideal-cache traffic: each tensor an op reads or writes crosses memory once per pass.
- launches count the aten ops an eager step dispatches (what per-op overhead multiplies).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import numpy as np

from narch.search_space import Network, Op, Trace, trace_network
from narch.search_space.trace import (
    C_ADD,
    C_AVGPOOL,
    C_CONV,
    C_DENSE,
    C_DROPOUT,
    C_MAXPOOL,
    TraceTable,
    batch_trace,
)

BYTES_F32 = 4
BYTES_I64 = 8
BYTES_MASK = 1


class OpClass(StrEnum):
    """Classes of ops that share an efficiency (what calibration fits one factor for)."""

    CONV = "conv"
    DENSE = "dense"
    BN = "bn"
    RELU = "relu"
    POOL = "pool"
    DROPOUT = "dropout"
    ADD = "add"
    GAP = "gap"
    LOSS = "loss"
    DATA = "data"
    OPTIMIZER = "optimizer"


MATMUL_CLASSES = frozenset({OpClass.CONV, OpClass.DENSE})

# FLOPs per element (forward, backward) of the ops FlopCounterMode does not count.
_FLOPS: dict[str, tuple[int, int]] = {
    "bn": (7, 10),  # fwd: sum x, sum x² (3), normalise (2), affine (2); bwd: reductions (3), x̂ (2), dx (5)
    "relu": (1, 1),  # max(x, 0); threshold_backward
    "dropout": (2, 1),  # mask draw + scaled multiply; masked multiply
    "add": (1, 1),  # a + b; the gradient accumulation where the branches fork
    "gap": (1, 1),  # sum (+ one divide per output, folded in); spread dy / S
    "avgpool": (1, 1),  # per input element summed: window sum (+ divide); spread dy / window
    "softmax_ce": (5, 3),  # per logit: max, sub, exp, sum, log; softmax - onehot, scale
}
ADAMW_FLOPS_PER_PARAM = 14  # decay 1, lerp m 3, v update 4, sqrt/div/add eps 3, addcdiv 3
ADAMW_BYTES_PER_PARAM = 80  # single-tensor AdamW: 8 element-wise passes over p, g, m, v and a temporary
ADAMW_OPS_PER_TENSOR = 9  # step += 1, mul_, lerp_, mul_, addcmul_, sqrt, div_, add_, addcdiv_


@dataclass(frozen=True, slots=True)
class OpCost:
    """One op of a training step at a batch size: FLOPs, bytes and launches forward and backward."""

    name: str
    op_class: OpClass
    flops_fwd: int = 0
    flops_bwd: int = 0
    bytes_fwd: int = 0
    bytes_bwd: int = 0
    launches_fwd: int = 1
    launches_bwd: int = 0
    param_tensors: int = 0  # optimizer only: how many parameter tensors it updates
    out_elems: int = 0  # elements the forward writes (parameters, for the optimizer)
    out_cols: int = 1  # conv / linear: output channels or units (the GEMM's N side)

    @property
    def flops(self) -> int:
        return self.flops_fwd + self.flops_bwd

    @property
    def bytes(self) -> int:
        return self.bytes_fwd + self.bytes_bwd

    @property
    def launches(self) -> int:
        return self.launches_fwd + self.launches_bwd


@dataclass(frozen=True, slots=True)
class LayerCost:
    """A layer of the spec (or a pseudo-layer: head, loss, data, optimizer) and its ops."""

    index: int  # layer index; -1 for pseudo-layers
    label: str  # e.g. "3:conv(32,k5,s2)", "head", "optimizer"
    out_shape: tuple[int, ...]
    params: int
    ops: tuple[OpCost, ...]

    @property
    def flops(self) -> int:
        return sum(o.flops for o in self.ops)

    @property
    def bytes(self) -> int:
        return sum(o.bytes for o in self.ops)


@dataclass(frozen=True, slots=True)
class StepCosts:
    """Costs of one training step (forward, backward, AdamW step) of a network at a batch size."""

    batch_size: int
    input_shape: tuple[int, ...]
    n_classes: int
    params: int
    param_tensors: int
    layers: tuple[LayerCost, ...]
    flops_fwd: int  # forward FLOPs per sample, all ops
    matmul_flops_fwd: int  # forward conv + linear FLOPs per sample (FlopCounterMode's count)
    flops_train_step: int  # forward + backward + optimizer FLOPs of one step at batch_size
    bytes_train_step: int
    launches_train_step: int
    arithmetic_intensity: float  # flops_train_step / bytes_train_step

    def ops(self) -> Iterator[OpCost]:
        """Every op of the step, in order."""
        for layer in self.layers:
            yield from layer.ops

    def by_class(self) -> dict[OpClass, tuple[int, int]]:
        """(FLOPs, bytes) of the step summed per op class."""
        out: dict[OpClass, tuple[int, int]] = {}
        for o in self.ops():
            f, b = out.get(o.op_class, (0, 0))
            out[o.op_class] = (f + o.flops, b + o.bytes)
        return out


def _label(i: int, net: Network) -> str:
    layer = net.layers[i]
    match layer.op:
        case Op.CONV:
            g = f",g{layer.groups}" if layer.groups != 1 else ""
            d = f",d{layer.dilation}" if layer.dilation != 1 else ""
            return f"{i}:conv({layer.channels},k{layer.kernel},s{layer.stride}{g}{d})"
        case Op.MAXPOOL | Op.AVGPOOL:
            return f"{i}:{layer.op.value}(k{layer.kernel},s{layer.stride})"
        case Op.DENSE:
            return f"{i}:dense({layer.units})"
        case Op.DROPOUT:
            return f"{i}:dropout({layer.dropout_pct}%)"
        case Op.ADD:
            return f"{i}:add{layer.inputs}"
    return f"{i}:{layer.op.value}"  # pragma: no cover - Op is closed


OP_CLASSES: tuple[OpClass, ...] = tuple(OpClass)
CLASS_CODE: dict[OpClass, int] = {c: k for k, c in enumerate(OP_CLASSES)}
VALUES = ("flops_fwd", "flops_bwd", "bytes_fwd", "bytes_bwd", "launches_fwd", "launches_bwd", "param_tensors",
          "out_elems", "out_cols")
"""An op's numbers in an OpTable (the OpCost fields, in their order), each ``fixed + per_sample * batch size``."""
V_FLOPS_FWD, V_FLOPS_BWD, V_BYTES_FWD, V_BYTES_BWD, V_LAUNCHES_FWD, V_LAUNCHES_BWD = range(6)
_VALUE_INDEX = {name: j for j, name in enumerate(VALUES)}

# The ops a step dispatches, by kind: (name suffix, class). Layer ops are named "<layer>:<suffix>", the others
# "<suffix>" as is; a layer's ops keep this order within the layer (a dense layer: gap, dense, relu).
KINDS: tuple[tuple[str, OpClass], ...] = (
    ("data:index", OpClass.DATA), ("conv", OpClass.CONV), ("bn", OpClass.BN), ("relu", OpClass.RELU),
    ("gap", OpClass.GAP), ("dense", OpClass.DENSE), ("maxpool", OpClass.POOL), ("avgpool", OpClass.POOL),
    ("dropout", OpClass.DROPOUT), ("add", OpClass.ADD), ("head:gap", OpClass.GAP), ("head:dense", OpClass.DENSE),
    ("loss:cross_entropy", OpClass.LOSS), ("optimizer:adamw", OpClass.OPTIMIZER),
)
(K_DATA, K_CONV, K_BN, K_RELU, K_GAP, K_DENSE, K_MAXPOOL, K_AVGPOOL, K_DROPOUT, K_ADD, K_HEAD_GAP, K_HEAD_DENSE, K_LOSS,
 K_OPT) = range(len(KINDS))
_KIND_CLASS = np.asarray([CLASS_CODE[c] for _, c in KINDS], dtype=np.int64)
_PSEUDO = ("data", "head", "loss", "optimizer")  # the pseudo-layers' labels, in step order (data first)


@dataclass(frozen=True, slots=True, eq=False)
class OpTable:
    """Every op of a traced batch's training step as linear functions of the batch size n: each of ``VALUES`` is
    ``fixed + per_sample * n`` (exactly: every count below is an integer polynomial of degree one in n).

    Ops are ordered as a step dispatches them, network by network (network b's ops are rows
    ``start[b]:start[b + 1]``): data, each layer's ops, the head, the loss, the optimizer. ``layer`` is the layer
    an op belongs to (-1: a pseudo-layer). This is where the cost formulas live; ``step_costs`` and the roofline
    read their numbers from it.
    """

    trace: TraceTable
    start: np.ndarray  # (B + 1,)
    net: np.ndarray  # (K,)
    kind: np.ndarray  # (K,) index into KINDS
    op_class: np.ndarray  # (K,) index into OP_CLASSES
    layer: np.ndarray  # (K,)
    fixed: np.ndarray  # (K, len(VALUES)) int64
    per_sample: np.ndarray  # (K, len(VALUES)) int64

    def values(self, batch_size: int | np.ndarray) -> np.ndarray:
        """(K, len(VALUES)) int64 at a batch size (one for all networks, or one per network)."""
        n = np.asarray(batch_size, dtype=np.int64)
        return self.fixed + self.per_sample * (n if n.ndim == 0 else n[self.net])[..., None]


class _Ops:
    """Collects op blocks (one row per op) with their step-order sort keys."""

    def __init__(self, n_nets: int, max_depth: int) -> None:
        self.span = 4 * (max_depth + 4)  # per network: positions (data, layers, head, loss, optimizer) x 4 sub-slots
        self.blocks: list[tuple[np.ndarray, ...]] = []

    def add(self, kind: int, net: np.ndarray, position: np.ndarray, sub: int, layer: np.ndarray | int,
            **cols: tuple[Any, Any] | Any) -> None:
        """``cols``: per VALUES name, a (fixed, per-sample) pair or a constant; missing ones are OpCost's defaults
        (0, or 1 output column)."""
        k = len(net)
        if k == 0:
            return
        fixed = np.zeros((k, len(VALUES)), dtype=np.int64)
        fixed[:, -1] = 1  # out_cols: 1 unless a GEMM's N side
        per = np.zeros((k, len(VALUES)), dtype=np.int64)
        for name, v in cols.items():
            j = _VALUE_INDEX[name]
            if isinstance(v, tuple):
                fixed[:, j], per[:, j] = v
            else:
                fixed[:, j] = v
        key = net * self.span + position * 4 + sub
        layers = layer if isinstance(layer, np.ndarray) else np.full(k, layer, dtype=np.int64)
        self.blocks.append((key, net, np.full(k, kind, dtype=np.int64), layers, fixed, per))

    def matmul(self, kind: int, net: np.ndarray, position: np.ndarray, sub: int, layer: np.ndarray | int, *,
               macs: np.ndarray, x: np.ndarray, w: np.ndarray, y: np.ndarray, bias: np.ndarray,
               input_grad: np.ndarray, conv: bool) -> None:
        """A conv or linear (x, y: elements per sample): 2·macs FLOPs forward; weight gradient always, input
        gradient when needed (bias ignored, as FlopCounterMode counts)."""
        if len(net) == 0:
            return
        ig = input_grad.astype(np.int64)
        f = 2 * macs
        self.add(kind, net, position, sub, layer, flops_fwd=(0, f), flops_bwd=(0, f * (1 + ig)),
                 bytes_fwd=((w + bias) * BYTES_F32, (x + y) * BYTES_F32),  # x, w, bias, y
                 # dW = f(x, dy); db = sum(dy); dx = f(dy, w) when needed
                 bytes_bwd=((w + bias + ig * w) * BYTES_F32, (x + 2 * y + ig * (y + x)) * BYTES_F32),
                 out_elems=(0, y), launches_fwd=1,
                 launches_bwd=1 if conv else 2 + ig,  # convolution_backward | mm, sum, (mm)
                 out_cols=bias)

    def elementwise(self, kind: int, net: np.ndarray, position: np.ndarray, sub: int, layer: np.ndarray | int,
                    formula: str, e: np.ndarray, grad: np.ndarray | int, rw: tuple[int, int]) -> None:
        """An op touching e elements per sample: rw = (tensors read+written forward, backward), fp32 each."""
        if len(net) == 0:
            return
        ff, fb = _FLOPS[formula]
        g = np.asarray(grad, dtype=np.int64)
        self.add(kind, net, position, sub, layer, flops_fwd=(0, ff * e), flops_bwd=(0, fb * e * g),
                 bytes_fwd=(0, rw[0] * e * BYTES_F32), bytes_bwd=(0, rw[1] * e * BYTES_F32 * g), out_elems=(0, e),
                 launches_fwd=1, launches_bwd=g)

    def gap(self, kind: int, net: np.ndarray, position: np.ndarray, sub: int, layer: np.ndarray | int,
            e_in: np.ndarray, e_out: np.ndarray, grad: np.ndarray) -> None:
        if len(net) == 0:
            return
        ff, fb = _FLOPS["gap"]
        g = grad.astype(np.int64)
        b = (e_in + e_out) * BYTES_F32
        self.add(kind, net, position, sub, layer, flops_fwd=(0, ff * e_in), flops_bwd=(0, fb * e_in * g),
                 bytes_fwd=(0, b), bytes_bwd=(0, b * g), out_elems=(0, e_out), launches_fwd=1, launches_bwd=g)

    def table(self, t: TraceTable) -> OpTable:
        key, net, kind, layer, fixed, per = (np.concatenate(parts) for parts in zip(*self.blocks, strict=True))
        order = np.argsort(key, kind="stable")
        net = net[order]
        start = np.zeros(len(t) + 1, dtype=np.int64)
        np.cumsum(np.bincount(net, minlength=len(t)), out=start[1:])
        kind = kind[order]
        return OpTable(t, start, net, kind, _KIND_CLASS[kind], layer[order], fixed[order], per[order])


def op_table(t: TraceTable) -> OpTable:
    """The ops of one training step of every network of a traced batch (see OpTable)."""
    c = t.cols
    ops = _Ops(len(t), int(t.depth.max()))
    op, net, pos = c["op"], t.net, t.pos
    position = pos + 1
    e_out, e_in, g_in, grad = t.out_elems, t.in_elems, t.src_grad, c["grad"]
    rank = len(t.input_shape) - 1
    spatial_in = ~t.in_flat & (rank > 0)  # a tensor with spatial dimensions (what a dense layer pools first)

    def rows(code: int) -> np.ndarray:
        return np.flatnonzero(op == code)

    i = rows(C_CONV)
    ops.matmul(K_CONV, net[i], position[i], 0, pos[i], macs=t.macs[i], x=e_in[i], w=t.weights[i], y=e_out[i],
               bias=c["channels"][i], input_grad=g_in[i], conv=True)
    ops.elementwise(K_BN, net[i], position[i], 1, pos[i], "bn", e_out[i], 1, (3, 5))
    ops.elementwise(K_RELU, net[i], position[i], 2, pos[i], "relu", e_out[i], 1, (2, 3))
    i = rows(C_DENSE)
    j = i[spatial_in[i]]
    ops.gap(K_GAP, net[j], position[j], 0, pos[j], e_in[j], t.in_channels[j], g_in[j])
    ops.matmul(K_DENSE, net[i], position[i], 1, pos[i], macs=t.macs[i], x=t.in_channels[i], w=t.weights[i],
               y=e_out[i], bias=c["units"][i], input_grad=g_in[i], conv=False)
    ops.elementwise(K_RELU, net[i], position[i], 2, pos[i], "relu", e_out[i], 1, (2, 3))
    for code, kind in ((C_MAXPOOL, K_MAXPOOL), (C_AVGPOOL, K_AVGPOOL)):
        # non-overlapping pooling (stride = kernel: the windows tile the input) or stride-1 'same' pooling
        i = rows(code)
        if not len(i):
            continue
        ei, eo, g = e_in[i], e_out[i], g_in[i].astype(np.int64)
        window = c["kernel"][i] ** rank
        tiled = c["stride"][i] == c["kernel"][i]
        if kind == K_MAXPOOL:  # comparisons: E_in - E_out when tiled, (window - 1) per output otherwise
            b = (ei + eo) * BYTES_F32 + eo * BYTES_I64
            ops.add(kind, net[i], position[i], 0, pos[i], flops_fwd=(0, np.where(tiled, ei - eo, (window - 1) * eo)),
                    flops_bwd=(0, eo * g), bytes_fwd=(0, b), bytes_bwd=(0, b * g), out_elems=(0, eo),
                    launches_fwd=1, launches_bwd=g)
        else:
            ff, fb = _FLOPS["avgpool"]
            touched = np.where(tiled, ei, window * eo)  # input elements summed (windows overlap at stride 1)
            b = (ei + eo) * BYTES_F32
            ops.add(kind, net[i], position[i], 0, pos[i], flops_fwd=(0, ff * touched),
                    flops_bwd=(0, fb * touched * g), bytes_fwd=(0, b), bytes_bwd=(0, b * g), out_elems=(0, eo),
                    launches_fwd=1, launches_bwd=g)
    i = rows(C_DROPOUT)
    ff, fb = _FLOPS["dropout"]
    e, g = e_out[i], g_in[i].astype(np.int64)
    b = 2 * e * BYTES_F32 + e * BYTES_MASK
    ops.add(K_DROPOUT, net[i], position[i], 0, pos[i], flops_fwd=(0, ff * e), flops_bwd=(0, fb * e * g),
            bytes_fwd=(0, b), bytes_bwd=(0, b * g), out_elems=(0, e),
            launches_fwd=3, launches_bwd=g)  # bernoulli_, div_, mul | mul
    i = rows(C_ADD)  # the gradient flows when either branch carries one
    ops.elementwise(K_ADD, net[i], position[i], 0, pos[i], "add", e_out[i], grad[i], (3, 3))
    # pseudo-layers, one of each per network
    b_all = np.arange(len(t), dtype=np.int64)
    depth = t.depth
    last = t.last
    n_classes = t.n_classes
    in_elems = math.prod(t.input_shape)
    ops.add(K_DATA, b_all, np.zeros_like(b_all), 0, -1, bytes_fwd=(0, 2 * in_elems * BYTES_F32 + 3 * BYTES_I64),
            out_elems=(0, in_elems), launches_fwd=3)  # slice of the permutation, gather of x and y
    last_grad = grad[last] != 0
    j = np.flatnonzero((c["flat"][last] == 0) & (rank > 0))
    ops.gap(K_HEAD_GAP, b_all[j], depth[j] + 1, 0, -1, e_out[last][j], t.head_in[j], last_grad[j])
    ops.matmul(K_HEAD_DENSE, b_all, depth + 1, 1, -1, macs=t.head_weights, x=t.head_in, w=t.head_weights,
               y=np.full(len(t), n_classes), bias=np.full(len(t), n_classes), input_grad=last_grad, conv=False)
    ff, fb = _FLOPS["softmax_ce"]
    e = n_classes
    ops.add(K_LOSS, b_all, depth + 2, 0, -1, flops_fwd=(0, ff * e), flops_bwd=(0, fb * e),
            bytes_fwd=(0, 2 * e * BYTES_F32 + BYTES_I64), bytes_bwd=(0, 3 * e * BYTES_F32 + BYTES_I64),
            out_elems=(0, e), launches_fwd=2, launches_bwd=2)  # log_softmax, nll_loss | their backwards
    params, tensors = t.total_params, t.total_param_tensors
    ops.add(K_OPT, b_all, depth + 3, 0, -1, flops_fwd=(ADAMW_FLOPS_PER_PARAM * params, 0),
            bytes_fwd=(ADAMW_BYTES_PER_PARAM * params, 0), launches_fwd=ADAMW_OPS_PER_TENSOR * tensors,
            param_tensors=tensors, out_elems=(params, 0))
    return ops.table(t)


def network_ops(nets: Sequence[Network], input_shape: tuple[int, ...], n_classes: int) -> OpTable:
    """The op table of a batch of networks (traced through the search space's batched trace)."""
    return op_table(batch_trace(nets, input_shape, n_classes))


def _step_costs(ops: OpTable, b: int, net: Network, trace: Trace, batch_size: int) -> StepCosts:
    """Network b's step of an op table as objects."""
    lo, hi = int(ops.start[b]), int(ops.start[b + 1])
    n = batch_size
    vals = (ops.fixed[lo:hi] + ops.per_sample[lo:hi] * n).tolist()  # this network's rows only
    kinds = ops.kind[lo:hi].tolist()
    layers_of = ops.layer[lo:hi].tolist()
    per_layer: list[list[OpCost]] = [[] for _ in range(len(net.layers) + len(_PSEUDO))]
    depth = len(net.layers)
    for kind, layer, v in zip(kinds, layers_of, vals, strict=True):
        suffix, cls = KINDS[kind]
        if layer >= 0:
            slot, name = 1 + layer, f"{layer}:{suffix}"
        else:
            slot, name = {K_DATA: 0, K_HEAD_GAP: depth + 1, K_HEAD_DENSE: depth + 1, K_LOSS: depth + 2,
                          K_OPT: depth + 3}[kind], suffix
        per_layer[slot].append(OpCost(name, cls, *v))
    input_shape, n_classes = trace.input_shape, trace.n_classes
    layers = [
        LayerCost(-1, "data", (n, *input_shape), 0, tuple(per_layer[0])),
        *(LayerCost(i, _label(i, net), lt.out_shape, lt.params, tuple(per_layer[1 + i]))
          for i, lt in enumerate(trace.layers)),
        LayerCost(-1, "head", (n_classes,), trace.head.params, tuple(per_layer[depth + 1])),
        LayerCost(-1, "loss", (), 0, tuple(per_layer[depth + 2])),
        LayerCost(-1, "optimizer", (), 0, tuple(per_layer[depth + 3])),
    ]
    all_ops = [o for lc in layers for o in lc.ops]
    fwd = sum(o.flops_fwd for o in all_ops if o.op_class != OpClass.OPTIMIZER)
    mm_fwd = sum(o.flops_fwd for o in all_ops if o.op_class in MATMUL_CLASSES)
    flops = sum(o.flops for o in all_ops)
    nbytes = sum(o.bytes for o in all_ops)
    return StepCosts(
        batch_size=n, input_shape=input_shape, n_classes=n_classes, params=trace.params,
        param_tensors=trace.param_tensors, layers=tuple(layers), flops_fwd=fwd // n, matmul_flops_fwd=mm_fwd // n,
        flops_train_step=flops, bytes_train_step=nbytes, launches_train_step=sum(o.launches for o in all_ops),
        arithmetic_intensity=flops / nbytes,
    )


def step_costs(net: Network, input_shape: tuple[int, ...], n_classes: int, batch_size: int) -> StepCosts:
    """FLOPs, bytes and launches of one AdamW training step of ``net`` on inputs (C, *spatial) at a batch size."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    input_shape = tuple(int(d) for d in input_shape)
    ops = network_ops([net], input_shape, n_classes)
    return _step_costs(ops, 0, net, trace_network(net, input_shape, n_classes), batch_size)


@dataclass(frozen=True, slots=True)
class RunCosts:
    """Totals of a training run: full steps at batch_size plus one remainder step per epoch."""

    steps_per_epoch: int
    epochs: int
    full: StepCosts
    remainder: StepCosts | None  # the last, smaller batch of each epoch (None when n_train divides evenly)

    @property
    def steps(self) -> int:
        return self.steps_per_epoch * self.epochs

    def _total(self, attr: str) -> int:
        n_full = self.steps_per_epoch - (self.remainder is not None)
        per_epoch = n_full * getattr(self.full, attr) + (getattr(self.remainder, attr) if self.remainder else 0)
        return per_epoch * self.epochs

    @property
    def flops_epoch(self) -> int:
        return self._total("flops_train_step") // self.epochs

    @property
    def bytes_epoch(self) -> int:
        return self._total("bytes_train_step") // self.epochs

    @property
    def flops_run(self) -> int:
        return self._total("flops_train_step")

    @property
    def bytes_run(self) -> int:
        return self._total("bytes_train_step")


def run_costs(
    net: Network, input_shape: tuple[int, ...], n_classes: int, *, batch_size: int, n_train: int, epochs: int
) -> RunCosts:
    """Costs of ``epochs`` passes over n_train samples in batches (the last one partial, as the builder runs)."""
    return run_costs_many([net], input_shape, n_classes, batch_size=batch_size, n_train=n_train, epochs=epochs)[0]


def run_costs_many(nets: Sequence[Network], input_shape: tuple[int, ...], n_classes: int, *, batch_size: int,
                   n_train: int, epochs: int) -> list[RunCosts]:
    """``run_costs`` of a batch of networks under one task and protocol, costed together."""
    if n_train < 1 or epochs < 1:
        raise ValueError(f"n_train and epochs must be >= 1, got {n_train} and {epochs}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    input_shape = tuple(int(d) for d in input_shape)
    t = batch_trace(nets, input_shape, n_classes)
    ops = op_table(t)
    full, rem = run_batches(batch_size, n_train)
    out = []
    for b, net in enumerate(nets):
        trace = t.trace(b)
        out.append(RunCosts(
            steps_per_epoch=math.ceil(n_train / batch_size), epochs=epochs,
            full=_step_costs(ops, b, net, trace, full), remainder=_step_costs(ops, b, net, trace, rem) if rem else None,
        ))
    return out


def run_batches(batch_size: int, n_train: int) -> tuple[int, int]:
    """A run's full batch size and the size of each epoch's last, partial batch (0: n_train divides evenly)."""
    return min(batch_size, n_train), (n_train % batch_size if n_train > batch_size else 0)

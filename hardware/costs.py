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
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum

from narch.search_space import Layer, Network, Op, Trace, trace_network

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


def _prod(xs: tuple[int, ...]) -> int:
    return math.prod(xs) if xs else 1


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


def _elementwise(name: str, cls: OpClass, kind: str, e: int, *, grad: bool, rw: tuple[int, int]) -> OpCost:
    """An op touching e elements: rw = (tensors read+written forward, backward), fp32 each."""
    ff, fb = _FLOPS[kind]
    return OpCost(
        name, cls, flops_fwd=ff * e, flops_bwd=fb * e if grad else 0,
        bytes_fwd=rw[0] * e * BYTES_F32, bytes_bwd=rw[1] * e * BYTES_F32 if grad else 0,
        launches_fwd=1, launches_bwd=1 if grad else 0, out_elems=e,
    )


def matmul_op(name: str, cls: OpClass, *, macs: int, x_elems: int, w_elems: int, y_elems: int, bias: int,
              input_grad: bool) -> OpCost:
    """A conv or linear: 2·macs FLOPs forward; weight gradient always, input gradient when needed."""
    f = 2 * macs
    bwd_w = (x_elems + y_elems + w_elems + y_elems + bias) * BYTES_F32  # dW = f(x, dy); db = sum(dy)
    bwd_x = (y_elems + w_elems + x_elems) * BYTES_F32 if input_grad else 0
    launches_bwd = 1 if cls == OpClass.CONV else 2 + int(input_grad)  # convolution_backward | mm, sum, (mm)
    return OpCost(
        name, cls, flops_fwd=f, flops_bwd=f * (2 if input_grad else 1),
        bytes_fwd=(x_elems + w_elems + bias + y_elems) * BYTES_F32, bytes_bwd=bwd_w + bwd_x,
        launches_fwd=1, launches_bwd=launches_bwd, out_elems=y_elems, out_cols=bias,
    )


def _gap(name: str, n: int, shape: tuple[int, ...], *, grad: bool) -> OpCost:
    e_in, e_out = n * _prod(shape), n * shape[0]
    ff, fb = _FLOPS["gap"]
    return OpCost(
        name, OpClass.GAP, flops_fwd=ff * e_in, flops_bwd=fb * e_in if grad else 0,
        bytes_fwd=(e_in + e_out) * BYTES_F32, bytes_bwd=(e_in + e_out) * BYTES_F32 if grad else 0,
        launches_fwd=1, launches_bwd=1 if grad else 0, out_elems=e_out,
    )


def _pool(name: str, layer: Layer, n: int, in_shape: tuple[int, ...], out_shape: tuple[int, ...], *,
          grad: bool) -> OpCost:
    """Non-overlapping pooling (stride = kernel: the windows tile the input) or stride-1 'same' pooling."""
    e_in, e_out = n * _prod(in_shape), n * _prod(out_shape)
    window = layer.kernel ** (len(in_shape) - 1)
    tiled = layer.stride == layer.kernel
    if layer.op == Op.MAXPOOL:  # comparisons: E_in - E_out when tiled, (window - 1) per output otherwise
        return OpCost(
            name, OpClass.POOL, flops_fwd=e_in - e_out if tiled else (window - 1) * e_out,
            flops_bwd=e_out if grad else 0,
            bytes_fwd=(e_in + e_out) * BYTES_F32 + e_out * BYTES_I64,
            bytes_bwd=(e_out + e_in) * BYTES_F32 + e_out * BYTES_I64 if grad else 0,
            launches_fwd=1, launches_bwd=1 if grad else 0, out_elems=e_out,
        )
    ff, fb = _FLOPS["avgpool"]
    touched = e_in if tiled else window * e_out  # input elements summed (windows overlap at stride 1)
    return OpCost(
        name, OpClass.POOL, flops_fwd=ff * touched, flops_bwd=fb * touched if grad else 0,
        bytes_fwd=(e_in + e_out) * BYTES_F32, bytes_bwd=(e_in + e_out) * BYTES_F32 if grad else 0,
        launches_fwd=1, launches_bwd=1 if grad else 0, out_elems=e_out,
    )


def _dropout(name: str, e: int, *, grad: bool) -> OpCost:
    ff, fb = _FLOPS["dropout"]
    return OpCost(
        name, OpClass.DROPOUT, flops_fwd=ff * e, flops_bwd=fb * e if grad else 0,
        bytes_fwd=2 * e * BYTES_F32 + e * BYTES_MASK, bytes_bwd=(2 * e * BYTES_F32 + e * BYTES_MASK) if grad else 0,
        launches_fwd=3, launches_bwd=1 if grad else 0, out_elems=e,  # bernoulli_, div_, mul | mul
    )


def _layer_ops(net: Network, t: Trace, n: int) -> tuple[list[LayerCost], bool]:
    """Per-layer costs at batch size n from the trace, and whether the last output carries a gradient."""
    needs_grad: list[bool] = []  # does layer i's output carry a gradient (depends on some parameter)?
    out: list[LayerCost] = []

    def src_grad(j: int) -> bool:
        return j != -1 and needs_grad[j]

    for i, (layer, lt) in enumerate(zip(net.layers, t.layers, strict=True)):
        s_in, g_in = lt.in_shape, src_grad(lt.sources[0])
        y = lt.out_shape
        e_out = n * lt.out_elems
        ops: list[OpCost] = []
        match layer.op:
            case Op.CONV:
                ops.append(matmul_op(
                    f"{i}:conv", OpClass.CONV, macs=n * lt.macs, x_elems=n * _prod(s_in), w_elems=lt.weights,
                    y_elems=e_out, bias=layer.channels, input_grad=g_in,
                ))
                ops.append(_elementwise(f"{i}:bn", OpClass.BN, "bn", e_out, grad=True, rw=(3, 5)))
                ops.append(_elementwise(f"{i}:relu", OpClass.RELU, "relu", e_out, grad=True, rw=(2, 3)))
                grad = True
            case Op.DENSE:
                if len(s_in) > 1:
                    ops.append(_gap(f"{i}:gap", n, s_in, grad=g_in))
                ops.append(matmul_op(
                    f"{i}:dense", OpClass.DENSE, macs=n * lt.macs, x_elems=n * lt.in_channels, w_elems=lt.weights,
                    y_elems=e_out, bias=layer.units, input_grad=g_in,
                ))
                ops.append(_elementwise(f"{i}:relu", OpClass.RELU, "relu", e_out, grad=True, rw=(2, 3)))
                grad = True
            case Op.MAXPOOL | Op.AVGPOOL:
                ops.append(_pool(f"{i}:{layer.op.value}", layer, n, s_in, y, grad=g_in))
                grad = g_in
            case Op.DROPOUT:
                ops.append(_dropout(f"{i}:dropout", e_out, grad=g_in))
                grad = g_in
            case Op.ADD:
                grad = any(src_grad(j) for j in layer.inputs)
                ops.append(_elementwise(f"{i}:add", OpClass.ADD, "add", e_out, grad=grad, rw=(3, 3)))
        needs_grad.append(grad)
        out.append(LayerCost(i, _label(i, net), y, lt.params, tuple(ops)))
    return out, needs_grad[-1]


def step_costs(net: Network, input_shape: tuple[int, ...], n_classes: int, batch_size: int) -> StepCosts:
    """FLOPs, bytes and launches of one AdamW training step of ``net`` on inputs (C, *spatial) at a batch size."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    n = batch_size
    input_shape = tuple(int(d) for d in input_shape)
    t = trace_network(net, input_shape, n_classes)
    layers, last_grad = _layer_ops(net, t, n)
    head, last_shape = t.head, t.head.in_shape
    head_ops: list[OpCost] = []
    if len(last_shape) > 1:
        head_ops.append(_gap("head:gap", n, last_shape, grad=last_grad))
    head_ops.append(matmul_op(
        "head:dense", OpClass.DENSE, macs=n * head.macs, x_elems=n * head.in_channels, w_elems=head.weights,
        y_elems=n * n_classes, bias=n_classes, input_grad=last_grad,
    ))
    params, tensors = t.params, t.param_tensors
    e_logits = n * n_classes
    ff, fb = _FLOPS["softmax_ce"]
    loss = OpCost(
        "loss:cross_entropy", OpClass.LOSS, flops_fwd=ff * e_logits, flops_bwd=fb * e_logits,
        bytes_fwd=2 * e_logits * BYTES_F32 + n * BYTES_I64, bytes_bwd=3 * e_logits * BYTES_F32 + n * BYTES_I64,
        launches_fwd=2, launches_bwd=2, out_elems=e_logits,  # log_softmax, nll_loss | their backwards
    )
    in_elems = n * _prod(input_shape)
    data = OpCost(
        "data:index", OpClass.DATA, bytes_fwd=2 * in_elems * BYTES_F32 + 3 * n * BYTES_I64, launches_fwd=3,
        out_elems=in_elems,
    )  # slice of the permutation, gather of x and y
    opt = OpCost(
        "optimizer:adamw", OpClass.OPTIMIZER, flops_fwd=ADAMW_FLOPS_PER_PARAM * params,
        bytes_fwd=ADAMW_BYTES_PER_PARAM * params, launches_fwd=ADAMW_OPS_PER_TENSOR * tensors,
        param_tensors=tensors, out_elems=params,
    )
    layers = [
        LayerCost(-1, "data", (n, *input_shape), 0, (data,)),
        *layers,
        LayerCost(-1, "head", (n_classes,), head.params, tuple(head_ops)),
        LayerCost(-1, "loss", (), 0, (loss,)),
        LayerCost(-1, "optimizer", (), 0, (opt,)),
    ]
    all_ops = [o for lc in layers for o in lc.ops]
    fwd = sum(o.flops_fwd for o in all_ops if o.op_class != OpClass.OPTIMIZER)
    mm_fwd = sum(o.flops_fwd for o in all_ops if o.op_class in MATMUL_CLASSES)
    flops = sum(o.flops for o in all_ops)
    nbytes = sum(o.bytes for o in all_ops)
    return StepCosts(
        batch_size=n, input_shape=input_shape, n_classes=n_classes, params=params, param_tensors=tensors,
        layers=tuple(layers), flops_fwd=fwd // n, matmul_flops_fwd=mm_fwd // n, flops_train_step=flops,
        bytes_train_step=nbytes, launches_train_step=sum(o.launches for o in all_ops),
        arithmetic_intensity=flops / nbytes,
    )


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
    if n_train < 1 or epochs < 1:
        raise ValueError(f"n_train and epochs must be >= 1, got {n_train} and {epochs}")
    full = step_costs(net, input_shape, n_classes, min(batch_size, n_train))
    rem = n_train % batch_size if n_train > batch_size else 0
    return RunCosts(
        steps_per_epoch=math.ceil(n_train / batch_size), epochs=epochs, full=full,
        remainder=step_costs(net, input_shape, n_classes, rem) if rem else None,
    )

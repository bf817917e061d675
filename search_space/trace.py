"""One shape and cost trace of a network: per layer what it reads and writes, its parameters and its forward
multiply-accumulates, plus the classifier head and totals. Validation, predictor features, the controller's move
masks, hardware costs and model size all read it, so a layer's shape rule lives here only. Pure Python, no torch.

Shapes are tracked rank-free as (channels, downsample factor, flat) keys. Every spatial op uses 'same' padding or
ceil-mode pooling, so a length L becomes ceil(L / factor) and two tensors with equal keys have the same size for any
input size and rank. A flat tensor's factor is 1: a dense layer reading a spatial tensor pools it globally first.

A conv of ``groups`` g connects each output channel to C_in / g input channels, so its weight and multiply-accumulates
are those of an ungrouped conv divided by g; ``dilation`` spaces the taps without changing either (nor a shape).

Counts follow the torch builder (``dataset_builder/model.py``): a conv has a weight, a bias and a batch-norm affine
(with running mean and variance and a step counter as buffers), a dense layer a weight and a bias, and a linear head
reads the (globally pooled) last output. The builder's parameters and buffers are fp32, the step counter int64.

The trace is computed for a batch of networks at once (``trace_table``): one lean Python pass per network for what is
sequential (the shape rule, the downsampling a flat layer pooled at, whether a layer's output depends on a parameter),
then numpy columns over every layer of the batch for sizes, weights, parameters and multiply-accumulates. Features,
hardware costs and the controller's objectives read those columns; ``trace_network`` is the same table for one
network as objects (cached per network: a network's trace is a pure function of it and the task).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from itertools import chain
from typing import NamedTuple

import numpy as np

from narch.search_space.layer import Layer, Layered, Op, SpecError

ShapeKey = tuple[int, int, bool]
"""A rank-free shape as a plain tuple: (channels or units, downsample factor, flat). What the hot paths compare."""

BYTES_F32 = 4  # the builder's parameter and buffer dtype
BN_BUFFER_BYTES_PER_CHANNEL = 8  # running mean and running variance, fp32 each
BN_STEP_BYTES = 8  # num_batches_tracked, one int64

# Enum members bound once and compared by identity: an attribute look-up on the Enum class, or the Python-level hash
# that a set membership test calls, costs as much as the whole shape rule.
_CONV, _DENSE, _ADD, _MAXPOOL, _AVGPOOL = Op.CONV, Op.DENSE, Op.ADD, Op.MAXPOOL, Op.AVGPOOL


class Shape(NamedTuple):
    """A layer's output, rank-free: spatial (channels, downsample factor) or flat (units); equal to its ShapeKey."""

    channels: int
    factor: int = 1
    flat: bool = False

    def __str__(self) -> str:
        return f"flat({self.channels})" if self.flat else f"({self.channels} ch, /{self.factor})"


def width(layer: Layer) -> int:
    """What a layer's output width is set by: a conv's channels or a dense layer's units (0 for other ops)."""
    return layer.channels if layer.op is _CONV else layer.units


def step(op: Op, size: int, stride: int, src: ShapeKey) -> ShapeKey | None:
    """The shape rule: the output of a single-input layer (``size``: see ``width``) reading ``src``, or None when the
    read is illegal (a conv or a pooling reading a flat tensor). Kept lean: the move masks call it in their hot loop."""
    if op is _CONV:
        return None if src[2] else (size, src[1] * stride, False)
    if op is _MAXPOOL or op is _AVGPOOL:
        return None if src[2] else (src[0], src[1] * stride, False)
    if op is _DENSE:
        return (size, 1, True)
    return src


def flat_read(i: int, op: Op, src: ShapeKey) -> SpecError:
    """The error of layer i, a conv or a pooling, reading the flat tensor ``src``."""
    hint = " (put it before any dense layer)" if op is Op.CONV else ""
    return SpecError(f"layer {i}: {op.value} cannot read a flat tensor {Shape._make(src)}{hint}")


def add_mismatch(i: int, a: int, sa: ShapeKey, b: int, sb: ShapeKey) -> SpecError:
    """The error of layer i, an add, joining layers a and b whose shapes differ."""
    return SpecError(
        f"layer {i}: add cannot join layer {a} {Shape._make(sa)} with layer {b} {Shape._make(sb)}: shapes differ"
    )


def check_groups(i: int, layer: Layer, src: ShapeKey) -> None:
    """Raise the error of layer i, a grouped conv, when its groups do not divide the channels it reads."""
    if src[0] % layer.groups:
        raise SpecError(f"layer {i}: conv groups {layer.groups} must divide its {src[0]} input channels")


def shape_keys(net: Layered, in_channels: int) -> list[ShapeKey]:
    """Rank-free output of every layer of a constructed (so validated) network for inputs of ``in_channels``.

    Only the rules the input's channels can break are checked (an add joining the input, a grouped conv reading
    it); this is the lean path that the move masks and the full trace share.
    """
    inp: ShapeKey = (in_channels, 1, False)
    keys: list[ShapeKey] = []
    append = keys.append
    for i, x in enumerate(net.layers):
        op, ins = x.op, x.inputs
        j = ins[0] if ins else i - 1
        src = inp if j == -1 else keys[j]
        if op is _ADD:
            b = ins[1]
            sb = inp if b == -1 else keys[b]
            if sb != src:
                raise add_mismatch(i, j, src, b, sb)
            append(src)
            continue
        out = step(op, x.channels if op is _CONV else x.units, x.stride, src)
        if out is None:
            raise flat_read(i, op, src)
        if op is _CONV and x.groups != 1:
            check_groups(i, x, src)
        append(out)
    return keys


class LayerTrace(NamedTuple):
    """One layer traced for an input shape: what it reads and writes, its parameters and its forward work per sample.

    A NamedTuple rather than a frozen dataclass: it is built once per layer on the features' path, four times faster.
    """

    op: Op
    sources: tuple[int, ...]  # the layers it reads (-1: the network input); an add reads two
    in_shape: tuple[int, ...]  # concrete shape of its first source: (C, *spatial) or (units,)
    shape: Shape  # rank-free output
    out_shape: tuple[int, ...]  # concrete output: (C, *spatial) or (units,)
    out_elems: int  # elements of the output per sample
    downsample: int  # of the network input on the way here: at the global pooling for a flat layer, along the
    #                  first input for an add (equals shape.factor for a spatial output)
    weights: int = 0  # elements of the conv or linear weight
    params: int = 0  # trainable: weight, bias and (conv) batch-norm affine
    param_tensors: int = 0
    buffer_bytes: int = 0  # batch-norm running statistics and step counter
    macs: int = 0  # forward multiply-accumulates per sample (conv and linear; other ops do none)

    @property
    def in_channels(self) -> int:
        """Channels (or units) of the first source."""
        return self.in_shape[0]

    @property
    def channels(self) -> int:
        """Channels (or units) of the output."""
        return self.out_shape[0]


@dataclass(frozen=True, slots=True)
class Trace:
    """A network traced for an input shape and a number of classes: every layer, the head and the totals."""

    input_shape: tuple[int, ...]
    n_classes: int
    layers: tuple[LayerTrace, ...]
    head: LayerTrace  # the classifier: a linear layer on the (globally pooled) last output
    params: int  # trainable parameters, head included
    param_tensors: int
    macs: int  # forward multiply-accumulates per sample, head included
    model_size_bytes: int  # parameters and buffers, as the built model holds them

    @property
    def depth(self) -> int:
        """Layers of the spec (the head not counted)."""
        return len(self.layers)


OPS: tuple[Op, ...] = tuple(Op)
OP_CODE: dict[Op, int] = {op: k for k, op in enumerate(OPS)}
"""An op's code in a table's ``op`` column (its position in ``Op``)."""
_CODE_BY_ID = {id(op): k for k, op in enumerate(OPS)}  # an id() look-up: no Python-level Enum hash in the pass
C_CONV, C_MAXPOOL, C_AVGPOOL, C_DENSE, C_DROPOUT, C_ADD = (OP_CODE[o] for o in (Op.CONV, Op.MAXPOOL, Op.AVGPOOL,
                                                                                Op.DENSE, Op.DROPOUT, Op.ADD))
LAYER_COLUMNS = ("op", "channels", "units", "kernel", "stride", "dropout_pct", "groups", "dilation", "dist_a", "dist_b",
                 "src", "out_channels", "factor", "flat", "downsample", "grad")
"""What the Python pass records per layer (see ``_rows``); the rest of a table is numpy arithmetic on these."""
_N_COLUMNS = len(LAYER_COLUMNS)


def _rows(net: Layered, in_channels: int) -> list[tuple[int, ...]]:
    """The sequential part of the trace, one tuple of ``LAYER_COLUMNS`` per layer: the layer's fields, the distances
    back to its explicit inputs (0: none), its first source (-1: the network input), its rank-free output (the one
    shape rule, ``shape_keys``), the downsampling of the network input on the way here (a flat layer keeps the factor
    it pooled at) and whether its output depends on a parameter (carries a gradient in training)."""
    keys = shape_keys(net, in_channels)
    rows: list[tuple[int, ...]] = []
    downs: list[int] = []
    grads: list[int] = []
    code = _CODE_BY_ID
    for i, x in enumerate(net.layers):
        op, ins = x.op, x.inputs
        c, f, flat = keys[i]
        j = ins[0] if ins else i - 1
        if op is _CONV or op is _DENSE:
            g = 1
        elif op is _ADD:
            b = ins[1]
            g = 1 if (j >= 0 and grads[j]) or (b >= 0 and grads[b]) else 0
        else:
            g = grads[j] if j >= 0 else 0
        d = (downs[j] if j >= 0 else 1) if flat else f  # a spatial tensor's downsampling is its factor
        downs.append(d)
        grads.append(g)
        rows.append((code[id(op)], x.channels, x.units, x.kernel, x.stride, x.dropout_pct, x.groups, x.dilation,
                     i - j if ins else 0, i - ins[1] if len(ins) > 1 else 0, j, c, f, int(flat), d, g))
    return rows


@dataclass(frozen=True, slots=True, eq=False)
class TraceTable:
    """A batch of networks traced for one input shape (C, *spatial) and number of classes, as columns.

    Layer columns (one entry per layer of every network, network by network) are ``LAYER_COLUMNS`` plus the derived
    ones below; ``start`` holds each network's first row (and the total at the end), so network b's layers are rows
    ``start[b]:start[b + 1]``. Per-network columns hold the head and the totals, as ``Trace`` does for one network.
    All counts are int64 (exact: far below 2**63 within the search space's limits).
    """

    input_shape: tuple[int, ...]
    n_classes: int
    start: np.ndarray  # (B + 1,)
    cols: dict[str, np.ndarray]  # LAYER_COLUMNS, each (L,)
    net: np.ndarray  # (L,) network of each layer
    pos: np.ndarray  # (L,) index of the layer in its network
    src_row: np.ndarray  # (L,) row of the first source (-1: the network input)
    out_len: np.ndarray  # (L, rank) output length per spatial dimension (for a spatial output)
    out_elems: np.ndarray  # (L,) elements of the output per sample
    in_elems: np.ndarray  # (L,) elements of the first source per sample
    in_channels: np.ndarray  # (L,) channels (or units) of the first source
    in_flat: np.ndarray  # (L,) bool: the first source is flat
    src_grad: np.ndarray  # (L,) bool: the first source carries a gradient
    weights: np.ndarray  # (L,) conv or linear weight elements
    params: np.ndarray  # (L,)
    param_tensors: np.ndarray  # (L,)
    buffer_bytes: np.ndarray  # (L,)
    macs: np.ndarray  # (L,) forward multiply-accumulates per sample
    head_in: np.ndarray  # (B,) channels (or units) the head reads: the last layer's
    head_weights: np.ndarray  # (B,)
    total_params: np.ndarray  # (B,) head included
    total_param_tensors: np.ndarray  # (B,)
    total_macs: np.ndarray  # (B,)
    model_size_bytes: np.ndarray  # (B,)

    def __len__(self) -> int:
        return len(self.start) - 1

    @property
    def depth(self) -> np.ndarray:
        return np.diff(self.start)

    @property
    def last(self) -> np.ndarray:
        """Row of each network's last layer."""
        return self.start[1:] - 1

    def __getitem__(self, name: str) -> np.ndarray:
        return self.cols[name]

    def trace(self, b: int) -> Trace:
        """Network b's trace as objects."""
        lo, hi = int(self.start[b]), int(self.start[b + 1])
        c = self.cols
        shape_in = self.input_shape
        recs: list[LayerTrace] = []
        out_shapes: list[tuple[int, ...]] = []
        rows = zip(*(a[lo:hi].tolist() for a in (c["op"], c["dist_a"], c["dist_b"], c["src"], c["out_channels"],
                                                 c["factor"], c["flat"], c["downsample"], self.out_elems,
                                                 self.weights, self.params, self.param_tensors, self.buffer_bytes,
                                                 self.macs)), self.out_len[lo:hi].tolist(), strict=True)
        for i, (op, da, db, j, ch, f, flat, down, e, w, p, pt, bb, m, ol) in enumerate(rows):
            out_shape = (ch,) if flat else (ch, *ol)
            srcs = (i - da, i - db) if db else ((i - da,) if da else (i - 1,))
            recs.append(LayerTrace(OPS[op], srcs, shape_in if j == -1 else out_shapes[j], Shape(ch, f, bool(flat)),
                                   out_shape, e, down, w, p, pt, bb, m))
            out_shapes.append(out_shape)
        last = recs[-1]
        n_classes = self.n_classes
        w = int(self.head_weights[b])
        head = LayerTrace(Op.DENSE, (len(recs) - 1,), last.out_shape, Shape(n_classes, 1, True), (n_classes,),
                          n_classes, last.downsample, weights=w, params=w + n_classes, param_tensors=2, macs=w)
        return Trace(input_shape=shape_in, n_classes=n_classes, layers=tuple(recs), head=head,
                     params=int(self.total_params[b]), param_tensors=int(self.total_param_tensors[b]),
                     macs=int(self.total_macs[b]), model_size_bytes=int(self.model_size_bytes[b]))


def trace_table(nets: Sequence[Layered], input_shape: Sequence[int], n_classes: int) -> TraceTable:
    """Trace a batch of constructed networks on inputs of shape (C, *spatial) with a head of ``n_classes``.

    Raises SpecError when an add joining the network input no longer matches it, or a grouped conv reading it does
    not divide its channels (the rules the input's channels can break; a Network is validated on construction).
    """
    shape_in = tuple(int(d) for d in input_shape)
    if not nets:
        raise ValueError("trace_table: no networks")
    per = [_rows(net, shape_in[0]) for net in nets]
    lengths = np.fromiter(map(len, per), dtype=np.int64, count=len(per))
    start = np.zeros(len(per) + 1, dtype=np.int64)
    np.cumsum(lengths, out=start[1:])
    n_rows = int(start[-1])
    flat_rows = np.fromiter(chain.from_iterable(chain.from_iterable(per)), dtype=np.int64,
                            count=n_rows * _N_COLUMNS).reshape(n_rows, _N_COLUMNS)
    cols = {name: flat_rows[:, k] for k, name in enumerate(LAYER_COLUMNS)}
    net = np.repeat(np.arange(len(per), dtype=np.int64), lengths)
    pos = np.arange(n_rows, dtype=np.int64) - start[net]
    src = cols["src"]
    has_src = src >= 0
    src_row = np.where(has_src, start[:-1][net] + src, -1)
    gather = np.where(has_src, src_row, 0)  # in range; rows reading the input are overwritten below
    op, ch, flat = cols["op"], cols["out_channels"], cols["flat"].astype(bool)
    spatial = np.asarray(shape_in[1:], dtype=np.int64)
    out_len = -(-spatial[None, :] // cols["factor"][:, None])
    out_elems = np.where(flat, ch, ch * out_len.prod(axis=1))
    in_elems = np.where(has_src, out_elems[gather], math.prod(shape_in))
    in_channels = np.where(has_src, ch[gather], shape_in[0])
    in_flat = has_src & flat[gather]
    src_grad = has_src & (cols["grad"][gather] != 0)
    conv, dense = op == C_CONV, op == C_DENSE
    fan_in = in_channels // cols["groups"] * cols["kernel"] ** len(spatial)  # input taps of one output element
    weights = np.where(conv, fan_in * ch, np.where(dense, in_channels * ch, 0))
    params = np.where(conv, weights + 3 * ch, np.where(dense, weights + ch, 0))
    tensors = np.where(conv, 4, np.where(dense, 2, 0))
    buffers = np.where(conv, BN_BUFFER_BYTES_PER_CHANNEL * ch + BN_STEP_BYTES, 0)
    macs = np.where(conv, out_elems * fan_in, np.where(dense, weights, 0))
    head_in = ch[start[1:] - 1]
    head_w = head_in * n_classes
    firsts = start[:-1]
    total_params = np.add.reduceat(params, firsts) + head_w + n_classes
    return TraceTable(
        input_shape=shape_in, n_classes=n_classes, start=start, cols=cols, net=net, pos=pos, src_row=src_row,
        out_len=out_len, out_elems=out_elems, in_elems=in_elems, in_channels=in_channels, in_flat=in_flat,
        src_grad=src_grad, weights=weights, params=params, param_tensors=tensors, buffer_bytes=buffers, macs=macs,
        head_in=head_in, head_weights=head_w, total_params=total_params,
        total_param_tensors=np.add.reduceat(tensors, firsts) + 2, total_macs=np.add.reduceat(macs, firsts) + head_w,
        model_size_bytes=BYTES_F32 * total_params + np.add.reduceat(buffers, firsts),
    )


@lru_cache(maxsize=8)
def _recent_table(nets: tuple[Layered, ...], input_shape: tuple[int, ...], n_classes: int) -> TraceTable:
    return trace_table(nets, input_shape, n_classes)


def batch_trace(nets: Sequence[Layered], input_shape: Sequence[int], n_classes: int) -> TraceTable:
    """``trace_table``, remembered for the last few batches: the controller's predictor, objectives and costs all
    trace the same batch of new networks, which is traced once."""
    return _recent_table(tuple(nets), tuple(int(d) for d in input_shape), int(n_classes))


@lru_cache(maxsize=10_000)  # a trace of objects is ~2 kB: the batched paths use tables, not this
def _cached_trace(net: Layered, input_shape: tuple[int, ...], n_classes: int) -> Trace:
    return trace_table((net,), input_shape, n_classes).trace(0)


def trace_network(net: Layered, input_shape: Sequence[int], n_classes: int) -> Trace:
    """Trace a constructed network on inputs of shape (C, *spatial) with a head of ``n_classes`` (a Network's trace
    is cached: it is a pure function of the network and the task, and immutable; a network under construction,
    hashed by identity, is not).

    Raises SpecError when an add joining the network input no longer matches it (the one rule the input's channels
    can break; a Network is validated for one input channel on construction).
    """
    shape_in = tuple(int(d) for d in input_shape)
    h = type(net).__hash__
    if h is not None and h is not object.__hash__:  # hashed by value (a Network): immutable, so cacheable
        return _cached_trace(net, shape_in, int(n_classes))
    return trace_table((net,), shape_in, n_classes).trace(0)


def concrete_shapes(net: Layered, input_shape: Sequence[int]) -> list[tuple[int, ...]]:
    """Per-layer output shape (C, *spatial) or (units,) for inputs of shape (C, *spatial)."""
    return [r.out_shape for r in trace_network(net, input_shape, 1).layers]


def count_params(net: Layered, input_shape: Sequence[int], n_classes: int) -> int:
    """Trainable parameters of the built model (conv and batch-norm, dense, classifier head)."""
    return trace_network(net, input_shape, n_classes).params


__all__ = [
    "LAYER_COLUMNS",
    "OPS",
    "OP_CODE",
    "LayerTrace",
    "Shape",
    "ShapeKey",
    "Trace",
    "TraceTable",
    "add_mismatch",
    "batch_trace",
    "check_groups",
    "concrete_shapes",
    "count_params",
    "flat_read",
    "shape_keys",
    "step",
    "trace_network",
    "trace_table",
    "width",
]

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
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

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


def _layer(x: Layer, i: int, key: ShapeKey, src: LayerTrace | None, shape_in: tuple[int, ...],
           spatial: tuple[int, ...]) -> LayerTrace:
    """The trace record of layer i with rank-free output ``key``, reading ``src`` (None: the network input)."""
    op = x.op
    in_shape = shape_in if src is None else src.out_shape
    c_out, factor, flat = key
    out_shape = (c_out,) if flat else (c_out, *[-(-s // factor) for s in spatial])
    out_elems = math.prod(out_shape)
    spatial_op = op is _CONV or op is _MAXPOOL or op is _AVGPOOL
    down = (1 if src is None else src.downsample) * (x.stride if spatial_op else 1)
    srcs = x.inputs or (i - 1,)
    shape = Shape(c_out, factor, flat)
    c_in = in_shape[0]
    if op is _CONV:
        k = x.kernel ** len(spatial)
        fan_in = c_in // x.groups * k  # input taps of one output element
        w = fan_in * c_out
        return LayerTrace(op, srcs, in_shape, shape, out_shape, out_elems, down, w, w + 3 * c_out, 4,
                          BN_BUFFER_BYTES_PER_CHANNEL * c_out + BN_STEP_BYTES, out_elems * fan_in)
    if op is _DENSE:
        w = c_in * c_out
        return LayerTrace(op, srcs, in_shape, shape, out_shape, out_elems, down, w, w + c_out, 2, 0, w)
    return LayerTrace(op, srcs, in_shape, shape, out_shape, out_elems, down)


def trace_network(net: Layered, input_shape: Sequence[int], n_classes: int) -> Trace:
    """Trace a constructed network on inputs of shape (C, *spatial) with a head of ``n_classes``.

    Raises SpecError when an add joining the network input no longer matches it (the one rule the input's channels
    can break; a Network is validated for one input channel on construction).
    """
    shape_in = tuple(int(d) for d in input_shape)
    spatial = shape_in[1:]
    records: list[LayerTrace] = []
    for i, (x, key) in enumerate(zip(net.layers, shape_keys(net, shape_in[0]), strict=True)):
        j = x.inputs[0] if x.inputs else i - 1
        records.append(_layer(x, i, key, None if j == -1 else records[j], shape_in, spatial))
    last = records[-1]
    w = last.channels * n_classes
    head = LayerTrace(Op.DENSE, (len(records) - 1,), last.out_shape, Shape(n_classes, 1, True), (n_classes,),
                      n_classes, last.downsample, weights=w, params=w + n_classes, param_tensors=2, macs=w)
    every = (*records, head)
    params = sum(r.params for r in every)
    return Trace(
        input_shape=shape_in, n_classes=n_classes, layers=tuple(records), head=head, params=params,
        param_tensors=sum(r.param_tensors for r in every), macs=sum(r.macs for r in every),
        model_size_bytes=BYTES_F32 * params + sum(r.buffer_bytes for r in every),
    )


def concrete_shapes(net: Layered, input_shape: Sequence[int]) -> list[tuple[int, ...]]:
    """Per-layer output shape (C, *spatial) or (units,) for inputs of shape (C, *spatial)."""
    return [r.out_shape for r in trace_network(net, input_shape, 1).layers]


def count_params(net: Layered, input_shape: Sequence[int], n_classes: int) -> int:
    """Trainable parameters of the built model (conv and batch-norm, dense, classifier head)."""
    return trace_network(net, input_shape, n_classes).params


__all__ = [
    "LayerTrace",
    "Shape",
    "ShapeKey",
    "Trace",
    "add_mismatch",
    "check_groups",
    "concrete_shapes",
    "count_params",
    "flat_read",
    "shape_keys",
    "step",
    "trace_network",
    "width",
]

"""Validation, shape inference and parameter counts of a Network, without torch.

Shapes are tracked rank-free as (channels, downsample factor) for spatial tensors and (units,) for flat ones.
Every spatial op uses 'same' padding or ceil-mode pooling, so a length L becomes ceil(L / factor) and two
tensors with the same channels and factor have the same size for any input size and rank.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from narch.search_space.spec import POOL_OPS, Layer, Op, SpecError

if TYPE_CHECKING:
    from narch.search_space.spec import Network


@dataclass(frozen=True, slots=True)
class Limits:
    """Hard bounds every network must satisfy."""

    max_layers: int = 48
    max_channels: int = 1024
    max_units: int = 4096
    kernels: tuple[int, ...] = (1, 3, 5, 7, 9)
    strides: tuple[int, ...] = (1, 2)
    pool_kernels: tuple[int, ...] = (2, 3)
    max_dropout_pct: int = 90
    max_downsample: int = 1024
    max_params: int = 20_000_000


LIMITS = Limits()


@dataclass(frozen=True, slots=True)
class Shape:
    """A layer's output: spatial (channels, downsample factor) or flat (units)."""

    channels: int
    factor: int = 1
    flat: bool = False

    def __str__(self) -> str:
        return f"flat({self.channels})" if self.flat else f"({self.channels} ch, /{self.factor})"


def _check_defaults(i: int, layer: Layer, used: set[str]) -> None:
    defaults = {"channels": 0, "kernel": 1, "stride": 1, "units": 0, "dropout_pct": 0}
    for name, default in defaults.items():
        if name not in used and getattr(layer, name) != default:
            raise SpecError(
                f"layer {i}: {layer.op.value} does not use {name!r} (must stay {default}, got {getattr(layer, name)})"
            )


def _check_types(i: int, layer: Layer) -> None:
    # A float or bool that compares equal to an int would pass every bound yet change the canonical JSON (and so
    # the arch_id) and fail to parse back; layers built in code must hold the same types as parsed ones.
    if not isinstance(layer.op, Op):
        raise SpecError(f"layer {i}: op must be an Op, got {layer.op!r}")
    for name in ("channels", "kernel", "stride", "units", "dropout_pct"):
        v = getattr(layer, name)
        if isinstance(v, bool) or not isinstance(v, int):
            raise SpecError(f"layer {i}: field {name!r} must be an integer, got {v!r}")
    ins = layer.inputs
    if not isinstance(ins, tuple) or not all(isinstance(j, int) and not isinstance(j, bool) for j in ins):
        raise SpecError(f"layer {i}: 'inputs' must be a tuple of integers, got {ins!r}")


def _source(i: int, layer: Layer) -> int:
    if not layer.inputs:
        return i - 1
    if len(layer.inputs) != 1:
        raise SpecError(f"layer {i}: a {layer.op.value} reads at most one explicit input, got {layer.inputs}")
    j = layer.inputs[0]
    if j < -1 or j >= i:
        raise SpecError(f"layer {i}: input {j} must be an earlier layer (or -1, the network input)")
    return j


def _layer_shape(i: int, layer: Layer, shapes: list[Shape], input_shape: Shape, lim: Limits) -> Shape:
    def shape_of(j: int) -> Shape:
        return input_shape if j == -1 else shapes[j]

    match layer.op:
        case Op.CONV:
            _check_defaults(i, layer, {"channels", "kernel", "stride"})
            if not 1 <= layer.channels <= lim.max_channels:
                raise SpecError(f"layer {i}: conv channels must be in 1..{lim.max_channels}, got {layer.channels}")
            if layer.kernel not in lim.kernels:
                raise SpecError(f"layer {i}: conv kernel must be one of {lim.kernels}, got {layer.kernel}")
            if layer.stride not in lim.strides:
                raise SpecError(f"layer {i}: conv stride must be one of {lim.strides}, got {layer.stride}")
            src = shape_of(_source(i, layer))
            if src.flat:
                raise SpecError(f"layer {i}: conv cannot read a flat tensor {src} (put it before any dense layer)")
            return Shape(layer.channels, src.factor * layer.stride)
        case Op.MAXPOOL | Op.AVGPOOL:
            _check_defaults(i, layer, {"kernel", "stride"})
            if layer.kernel not in lim.pool_kernels:
                raise SpecError(
                    f"layer {i}: {layer.op.value} kernel must be one of {lim.pool_kernels}, got {layer.kernel}"
                )
            if layer.stride not in (1, layer.kernel):
                raise SpecError(
                    f"layer {i}: {layer.op.value} stride must be 1 or its kernel {layer.kernel}, got {layer.stride}"
                )
            if layer.stride == 1 and layer.kernel % 2 == 0:
                raise SpecError(f"layer {i}: {layer.op.value} with stride 1 needs an odd kernel, got {layer.kernel}")
            src = shape_of(_source(i, layer))
            if src.flat:
                raise SpecError(f"layer {i}: {layer.op.value} cannot read a flat tensor {src}")
            return Shape(src.channels, src.factor * layer.stride)
        case Op.DENSE:
            _check_defaults(i, layer, {"units"})
            if not 1 <= layer.units <= lim.max_units:
                raise SpecError(f"layer {i}: dense units must be in 1..{lim.max_units}, got {layer.units}")
            shape_of(_source(i, layer))
            return Shape(layer.units, flat=True)
        case Op.DROPOUT:
            _check_defaults(i, layer, {"dropout_pct"})
            if not 0 < layer.dropout_pct <= lim.max_dropout_pct:
                raise SpecError(f"layer {i}: dropout_pct must be in 1..{lim.max_dropout_pct}, got {layer.dropout_pct}")
            return shape_of(_source(i, layer))
        case Op.ADD:
            _check_defaults(i, layer, set())
            if len(layer.inputs) != 2:
                raise SpecError(f"layer {i}: add joins exactly two earlier layers, got inputs {layer.inputs}")
            a, b = layer.inputs
            for j in (a, b):
                if j == i:
                    raise SpecError(f"layer {i}: add cannot reference itself")
                if j > i:
                    raise SpecError(f"layer {i}: add references a later layer {j}")
                if j < -1:
                    raise SpecError(f"layer {i}: add input {j} is not a layer index")
            if a == b:
                raise SpecError(f"layer {i}: add must join two distinct layers, got {a} twice")
            sa, sb = shape_of(a), shape_of(b)
            if sa != sb:
                raise SpecError(f"layer {i}: add cannot join layer {a} {sa} with layer {b} {sb}: shapes differ")
            return sa
    raise SpecError(f"layer {i}: unknown op {layer.op!r}")  # pragma: no cover - Op is closed


def infer_shapes(net: Network, *, in_channels: int = 1, limits: Limits = LIMITS) -> list[Shape]:
    """Output shape of every layer; raises SpecError on the first rule broken."""
    if not net.layers:
        raise SpecError("arch: a network needs at least one layer")
    if len(net.layers) > limits.max_layers:
        raise SpecError(f"arch: {len(net.layers)} layers exceed the depth limit of {limits.max_layers}")
    input_shape = Shape(in_channels)
    shapes: list[Shape] = []
    for i, layer in enumerate(net.layers):
        if not isinstance(layer, Layer):
            raise SpecError(f"layer {i}: expected a Layer, got {type(layer).__name__}")
        _check_types(i, layer)
        shape = _layer_shape(i, layer, shapes, input_shape, limits)
        if not shape.flat and shape.factor > limits.max_downsample:
            raise SpecError(f"layer {i}: total downsampling {shape.factor} exceeds {limits.max_downsample}")
        shapes.append(shape)
    return shapes


def check_network(net: Network) -> None:
    """Validation run by Network's constructor (rank- and task-free rules at the hard limits)."""
    infer_shapes(net)


def spatial_size(size: tuple[int, ...], factor: int) -> tuple[int, ...]:
    """Concrete spatial dims after a downsample factor (ceil division per dim)."""
    return tuple(math.ceil(s / factor) for s in size)


def concrete_shapes(net: Network, input_shape: tuple[int, ...]) -> list[tuple[int, ...]]:
    """Per-layer output shape (C, *spatial) or (units,) for an input of shape (C, *spatial)."""
    shapes = infer_shapes(net, in_channels=input_shape[0])
    return [(s.channels,) if s.flat else (s.channels, *spatial_size(input_shape[1:], s.factor)) for s in shapes]


def layer_input_channels(net: Network, in_channels: int) -> list[int]:
    """Channels (or units) each layer reads."""
    shapes = infer_shapes(net, in_channels=in_channels)
    out = []
    for i, layer in enumerate(net.layers):
        src = layer.inputs[0] if layer.inputs else i - 1
        out.append(in_channels if src == -1 else shapes[src].channels)
    return out


def count_params(net: Network, input_shape: tuple[int, ...], n_classes: int) -> int:
    """Trainable parameters of the built model (conv+BN, dense, classifier head); matches dataset_builder."""
    rank = len(input_shape) - 1
    shapes = infer_shapes(net, in_channels=input_shape[0])
    cin = layer_input_channels(net, input_shape[0])
    total = 0
    for layer, c_in in zip(net.layers, cin, strict=True):
        if layer.op == Op.CONV:
            total += c_in * layer.channels * layer.kernel**rank + layer.channels  # weight + bias
            total += 2 * layer.channels  # batch-norm affine
        elif layer.op == Op.DENSE:
            total += c_in * layer.units + layer.units
    total += shapes[-1].channels * n_classes + n_classes
    return total


def validate(
    net: Network,
    *,
    limits: Limits = LIMITS,
    input_shape: tuple[int, ...] | None = None,
    n_classes: int = 10,
) -> Network:
    """Check a network against (possibly tighter) limits and, given an input shape, the size limit."""
    infer_shapes(net, in_channels=input_shape[0] if input_shape else 1, limits=limits)
    if input_shape is not None:
        p = count_params(net, input_shape, n_classes)
        if p > limits.max_params:
            raise SpecError(f"arch: {p} parameters exceed the size limit of {limits.max_params}")
    return net


__all__ = [
    "LIMITS",
    "POOL_OPS",
    "Limits",
    "Shape",
    "check_network",
    "concrete_shapes",
    "count_params",
    "infer_shapes",
    "layer_input_channels",
    "validate",
]

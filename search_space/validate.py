"""Validation of a network against limits: every rule a layer must obey, with errors that name the layer and the rule.

Shapes come from the trace's one shape rule (``trace.step``); the rules here are the bounds and field checks.
"""

from __future__ import annotations

from dataclasses import dataclass
from operator import attrgetter
from typing import TypeVar

from narch.search_space.layer import INT_FIELDS, Layer, Layered, Op, SpecError
from narch.search_space.trace import (
    Shape,
    ShapeKey,
    add_mismatch,
    check_groups,
    count_params,
    flat_read,
    step,
    width,
)


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
    max_dilation: int = 8
    max_downsample: int = 1024
    max_params: int = 20_000_000


LIMITS = Limits()

N = TypeVar("N", bound=Layered)


_DEFAULTS = {"channels": 0, "kernel": 1, "stride": 1, "units": 0, "dropout_pct": 0, "groups": 1, "dilation": 1}
_USED: dict[Op, frozenset[str]] = {
    Op.CONV: frozenset({"channels", "kernel", "stride", "groups", "dilation"}),
    Op.MAXPOOL: frozenset({"kernel", "stride"}),
    Op.AVGPOOL: frozenset({"kernel", "stride"}),
    Op.DENSE: frozenset({"units"}),
    Op.DROPOUT: frozenset({"dropout_pct"}),
    Op.ADD: frozenset(),
}
"""The fields each op uses; every other field must keep its default."""
# per op: the unused fields' getter and their defaults, so a valid layer is checked by one tuple comparison
_UNUSED = {op: (attrgetter(*(n for n in _DEFAULTS if n not in used)), tuple(d for n, d in _DEFAULTS.items()
                                                                             if n not in used))
           for op, used in _USED.items()}
_INTS = attrgetter(*INT_FIELDS)
_CONV, _MAXPOOL, _AVGPOOL, _DENSE, _DROPOUT, _ADD = Op.CONV, Op.MAXPOOL, Op.AVGPOOL, Op.DENSE, Op.DROPOUT, Op.ADD


def _check_defaults(i: int, layer: Layer) -> None:
    get, defaults = _UNUSED[layer.op]
    if get(layer) == defaults:
        return
    used = _USED[layer.op]
    for name, default in _DEFAULTS.items():
        if name not in used and getattr(layer, name) != default:
            raise SpecError(
                f"layer {i}: {layer.op.value} does not use {name!r} (must stay {default}, got {getattr(layer, name)})"
            )


def _check_types(i: int, layer: Layer) -> None:
    # A float or bool that compares equal to an int would pass every bound yet change the canonical JSON (and so
    # the arch_id) and fail to parse back; layers built in code must hold the same types as parsed ones.
    if not isinstance(layer.op, Op):
        raise SpecError(f"layer {i}: op must be an Op, got {layer.op!r}")
    ins = layer.inputs
    if all(type(v) is int for v in _INTS(layer)) and type(ins) is tuple and all(type(j) is int for j in ins):
        return  # the common case; the checks below give the error (and accept int subclasses other than bool)
    for name in INT_FIELDS:
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


def _check_conv(i: int, layer: Layer, lim: Limits) -> None:
    _check_defaults(i, layer)
    if not 1 <= layer.channels <= lim.max_channels:
        raise SpecError(f"layer {i}: conv channels must be in 1..{lim.max_channels}, got {layer.channels}")
    if layer.kernel not in lim.kernels:
        raise SpecError(f"layer {i}: conv kernel must be one of {lim.kernels}, got {layer.kernel}")
    if layer.stride not in lim.strides:
        raise SpecError(f"layer {i}: conv stride must be one of {lim.strides}, got {layer.stride}")
    if not 1 <= layer.dilation <= lim.max_dilation:
        raise SpecError(f"layer {i}: conv dilation must be in 1..{lim.max_dilation}, got {layer.dilation}")
    if layer.groups < 1 or layer.channels % layer.groups:
        raise SpecError(f"layer {i}: conv groups {layer.groups} must divide its {layer.channels} output channels")


def _layer_shape(i: int, layer: Layer, shapes: list[ShapeKey], input_shape: ShapeKey | None,
                 lim: Limits) -> ShapeKey:
    """Check layer i against its op's rules, then its output shape by the trace's shape rule (``input_shape``
    None: the network input's channels are unknown, so a grouped conv reading it is checked by the trace)."""
    inp = input_shape or _UNKNOWN_INPUT
    op = layer.op  # compared by identity (an Op, checked): a match on Op.X values compares strings
    if op is _CONV:
        _check_conv(i, layer, lim)
    elif op is _MAXPOOL or op is _AVGPOOL:
        _check_defaults(i, layer)
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
    elif op is _DENSE:
        _check_defaults(i, layer)
        if not 1 <= layer.units <= lim.max_units:
            raise SpecError(f"layer {i}: dense units must be in 1..{lim.max_units}, got {layer.units}")
    elif op is _DROPOUT:
        _check_defaults(i, layer)
        if not 0 < layer.dropout_pct <= lim.max_dropout_pct:
            raise SpecError(f"layer {i}: dropout_pct must be in 1..{lim.max_dropout_pct}, got {layer.dropout_pct}")
    elif op is _ADD:
        _check_defaults(i, layer)
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
        sa, sb = inp if a == -1 else shapes[a], inp if b == -1 else shapes[b]
        if sa != sb:
            raise add_mismatch(i, a, sa, b, sb)
        return sa
    else:  # pragma: no cover - Op is closed
        raise SpecError(f"layer {i}: unknown op {layer.op!r}")
    j = _source(i, layer)
    src = inp if j == -1 else shapes[j]
    out = step(op, width(layer), layer.stride, src)
    if out is None:
        raise flat_read(i, layer.op, src)
    if layer.groups != 1 and (j != -1 or input_shape is not None):
        check_groups(i, layer, src)
    return out


_UNKNOWN_INPUT: ShapeKey = (1, 1, False)  # the network input where its channels are not known (construction)


def _checked_shapes(net: Layered, in_channels: int | None, limits: Limits) -> list[ShapeKey]:
    if not net.layers:
        raise SpecError("arch: a network needs at least one layer")
    if len(net.layers) > limits.max_layers:
        raise SpecError(f"arch: {len(net.layers)} layers exceed the depth limit of {limits.max_layers}")
    input_shape: ShapeKey | None = None if in_channels is None else (in_channels, 1, False)
    shapes: list[ShapeKey] = []
    for i, layer in enumerate(net.layers):
        if not isinstance(layer, Layer):
            raise SpecError(f"layer {i}: expected a Layer, got {type(layer).__name__}")
        _check_types(i, layer)
        shape = _layer_shape(i, layer, shapes, input_shape, limits)
        if not shape[2] and shape[1] > limits.max_downsample:
            raise SpecError(f"layer {i}: total downsampling {shape[1]} exceeds {limits.max_downsample}")
        shapes.append(shape)
    return shapes


def infer_shapes(net: Layered, *, in_channels: int | None = None, limits: Limits = LIMITS) -> list[Shape]:
    """Output shape of every layer; raises SpecError on the first rule broken. Without ``in_channels`` the input is
    taken as one channel, and a grouped conv reading it is left to the trace (which knows the input)."""
    return [Shape._make(s) for s in _checked_shapes(net, in_channels, limits)]


def check_network(net: Layered) -> None:
    """Validation run by Network's constructor (rank- and task-free rules at the hard limits)."""
    _checked_shapes(net, None, LIMITS)


def validate(
    net: N,
    *,
    limits: Limits = LIMITS,
    input_shape: tuple[int, ...] | None = None,
    n_classes: int = 10,
) -> N:
    """Check a network against (possibly tighter) limits and, given an input shape, the size limit."""
    _checked_shapes(net, input_shape[0] if input_shape else None, limits)
    if input_shape is not None:
        p = count_params(net, input_shape, n_classes)
        if p > limits.max_params:
            raise SpecError(f"arch: {p} parameters exceed the size limit of {limits.max_params}")
    return net


__all__ = [
    "LIMITS",
    "Limits",
    "Shape",
    "check_network",
    "infer_shapes",
    "validate",
]

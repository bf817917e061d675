"""One layer of the spec: the ops, a layer's fields and their canonical dict form.

It sits below ``spec`` (the Network), ``validate`` and ``trace``, so that a Network can validate itself on
construction without an import cycle.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from enum import StrEnum
from typing import Any, Protocol

from narch.core.errors import NarchError


class SpecError(NarchError, ValueError):
    """An invalid architecture or move; the message names the layer and the rule broken."""


class Op(StrEnum):
    """Layer operations of the search space."""

    CONV = "conv"
    MAXPOOL = "maxpool"
    AVGPOOL = "avgpool"
    DENSE = "dense"
    DROPOUT = "dropout"
    ADD = "add"


SPATIAL_OPS = frozenset({Op.CONV, Op.MAXPOOL, Op.AVGPOOL})
INT_FIELDS = ("channels", "kernel", "stride", "units", "dropout_pct", "groups", "dilation")
"""A layer's integer fields; ``groups`` and ``dilation`` (conv only) came with schema 2."""
SCHEMA_2_FIELDS = frozenset({"groups", "dilation"})
POOL_OPS = frozenset({Op.MAXPOOL, Op.AVGPOOL})


@dataclass(frozen=True, slots=True)
class Layer:
    """One layer. Fields an op does not use must stay at their defaults, so each network has one JSON form.

    - conv: ``channels`` out, odd ``kernel``, ``stride`` 1 or 2; batch-norm and ReLU follow. ``groups`` splits the
      channels into groups that do not mix (it divides the input and output channels: ``groups`` = input channels
      is a depthwise conv, see ``sep_conv``); ``dilation`` spaces the kernel's taps. Padding is 'same':
      ``dilation * (kernel - 1) // 2``, so neither changes a shape. Other ops keep both at 1.
    - maxpool / avgpool: window ``kernel`` with ``stride`` either equal to it (non-overlapping, ceil mode:
      downsamples) or 1 (odd kernel, 'same' padding, as in NAS-Bench-101/201 cells).
    - dense: ``units``, ReLU follows; reading a spatial tensor implies global average pooling first.
    - dropout: ``dropout_pct`` in percent (ints keep the JSON byte-stable).
    - add: sums the two earlier layers named in ``inputs`` (their shapes must match).

    ``inputs`` of a non-add layer is empty (reads the previous layer, or the network input for layer 0)
    or one earlier index, where -1 is the network input.
    """

    op: Op
    channels: int = 0
    kernel: int = 1
    stride: int = 1
    units: int = 0
    dropout_pct: int = 0
    inputs: tuple[int, ...] = ()
    groups: int = 1
    dilation: int = 1

    @property
    def grouped_or_dilated(self) -> bool:
        """Whether ``groups`` or ``dilation`` leaves its default (such a network is written in schema 2)."""
        return self.groups != 1 or self.dilation != 1

    def to_dict(self, *, conv_keys: bool = False) -> dict[str, Any]:
        """The canonical form: every field of schema 1, plus ``groups`` and ``dilation`` when they leave their
        default or, with ``conv_keys`` (a schema-2 network), on every conv layer."""
        d: dict[str, Any] = {
            "op": self.op.value,
            "channels": self.channels,
            "kernel": self.kernel,
            "stride": self.stride,
            "units": self.units,
            "dropout_pct": self.dropout_pct,
            "inputs": list(self.inputs),
        }
        if self.grouped_or_dilated or (conv_keys and self.op is Op.CONV):
            d["groups"] = self.groups
            d["dilation"] = self.dilation
        return d

    @staticmethod
    def from_dict(d: Any, *, index: int = 0) -> Layer:
        """Parse one layer; unknown ops, unknown keys and non-integers raise SpecError."""
        if not isinstance(d, dict):
            raise SpecError(f"layer {index}: expected an object, got {type(d).__name__}")
        known = {f.name for f in fields(Layer)}
        extra = sorted(set(d) - known)
        if extra:
            raise SpecError(f"layer {index}: unknown field(s) {extra} (known: {sorted(known)})")
        if "op" not in d:
            raise SpecError(f"layer {index}: missing field 'op'")
        try:
            op = Op(d["op"])
        except ValueError:
            raise SpecError(
                f"layer {index}: unknown op {d['op']!r} (known: {', '.join(o.value for o in Op)})"
            ) from None
        kw: dict[str, Any] = {"op": op}
        for name in INT_FIELDS:
            if name in d:
                v = d[name]
                if isinstance(v, bool) or not isinstance(v, int):
                    raise SpecError(f"layer {index}: field {name!r} must be an integer, got {v!r}")
                kw[name] = v
        if "inputs" in d:
            ins = d["inputs"]
            if not isinstance(ins, list) or not all(isinstance(i, int) and not isinstance(i, bool) for i in ins):
                raise SpecError(f"layer {index}: 'inputs' must be a list of integers, got {ins!r}")
            kw["inputs"] = tuple(ins)
        return Layer(**kw)


def conv(channels: int, kernel: int = 3, stride: int = 1, *, groups: int = 1, dilation: int = 1) -> Layer:
    """A conv-BN-ReLU layer (grouped and dilated when asked)."""
    return Layer(Op.CONV, channels=channels, kernel=kernel, stride=stride, groups=groups, dilation=dilation)


def sep_conv(in_channels: int, channels: int, kernel: int = 3, stride: int = 1, *,
             dilation: int = 1) -> tuple[Layer, Layer]:
    """A depthwise-separable conv: a depthwise conv (``groups`` = its ``in_channels``, which it keeps) then a 1x1
    conv to ``channels``; each is conv-BN-ReLU. With ``dilation`` > 1 it is DARTS' dilated conv."""
    return (
        conv(in_channels, kernel, stride, groups=in_channels, dilation=dilation),
        conv(channels, 1),
    )


def maxpool(kernel: int = 2, stride: int | None = None) -> Layer:
    """A max-pooling layer (stride defaults to the kernel: non-overlapping)."""
    return Layer(Op.MAXPOOL, kernel=kernel, stride=kernel if stride is None else stride)


def avgpool(kernel: int = 2, stride: int | None = None) -> Layer:
    """An average-pooling layer (stride defaults to the kernel: non-overlapping)."""
    return Layer(Op.AVGPOOL, kernel=kernel, stride=kernel if stride is None else stride)


def dense(units: int) -> Layer:
    """A dense-ReLU layer."""
    return Layer(Op.DENSE, units=units)


def dropout(pct: int) -> Layer:
    """A dropout layer (rate in percent)."""
    return Layer(Op.DROPOUT, dropout_pct=pct)


def add(a: int, b: int) -> Layer:
    """An add joining earlier layers a and b."""
    return Layer(Op.ADD, inputs=(a, b))


class Layered(Protocol):
    """What validation and the trace read of a network: its layers (a Network, or one under construction)."""

    @property
    def layers(self) -> tuple[Layer, ...]: ...

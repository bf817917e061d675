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
POOL_OPS = frozenset({Op.MAXPOOL, Op.AVGPOOL})


@dataclass(frozen=True, slots=True)
class Layer:
    """One layer. Fields an op does not use must stay at their defaults, so each network has one JSON form.

    - conv: ``channels`` out, odd ``kernel`` ('same' padding), ``stride`` 1 or 2; batch-norm and ReLU follow.
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

    def to_dict(self) -> dict[str, Any]:
        """Every field, in canonical form."""
        return {
            "op": self.op.value,
            "channels": self.channels,
            "kernel": self.kernel,
            "stride": self.stride,
            "units": self.units,
            "dropout_pct": self.dropout_pct,
            "inputs": list(self.inputs),
        }

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
        for name in ("channels", "kernel", "stride", "units", "dropout_pct"):
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


def conv(channels: int, kernel: int = 3, stride: int = 1) -> Layer:
    """A conv-BN-ReLU layer."""
    return Layer(Op.CONV, channels=channels, kernel=kernel, stride=stride)


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

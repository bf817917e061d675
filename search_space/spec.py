"""The architecture spec: frozen layers and networks, canonical JSON and a stable arch_id."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, fields, replace
from enum import StrEnum
from typing import Any

from narch.core.errors import NarchError

SCHEMA_VERSION = 1
"""Version of the canonical JSON form; bump it when the form (and so every arch_id) changes."""


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


@dataclass(frozen=True, slots=True)
class Network:
    """A network: a sequence of layers forming a DAG. Validated on construction (see validate.py)."""

    layers: tuple[Layer, ...]

    def __post_init__(self) -> None:
        if not isinstance(self.layers, tuple):
            object.__setattr__(self, "layers", tuple(self.layers))
        from narch.search_space.validate import check_network

        check_network(self)

    def __len__(self) -> int:
        return len(self.layers)

    def to_dict(self) -> dict[str, Any]:
        """The canonical dict (schema version inside)."""
        return {"schema": SCHEMA_VERSION, "layers": [layer.to_dict() for layer in self.layers]}

    def to_json(self) -> str:
        """Canonical JSON: sorted keys, no spaces, schema version inside."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @property
    def arch_id(self) -> str:
        """sha256 of the canonical JSON, first 16 hex digits: stable across processes and machines."""
        return hashlib.sha256(self.to_json().encode()).hexdigest()[:16]

    def with_layers(self, layers: list[Layer] | tuple[Layer, ...]) -> Network:
        """A new validated network with these layers."""
        return replace(self, layers=tuple(layers))

    @staticmethod
    def from_dict(d: Any) -> Network:
        """Parse a dict in canonical form (a missing schema means the current one)."""
        if not isinstance(d, dict):
            raise SpecError(f"arch: expected a JSON object, got {type(d).__name__}")
        extra = sorted(set(d) - {"schema", "layers"})
        if extra:
            raise SpecError(f"arch: unknown field(s) {extra} (known: ['layers', 'schema'])")
        schema = d.get("schema", SCHEMA_VERSION)
        if isinstance(schema, bool) or not isinstance(schema, int) or schema != SCHEMA_VERSION:
            raise SpecError(f"arch: schema version {schema!r} is not supported (this is {SCHEMA_VERSION})")
        layers = d.get("layers")
        if not isinstance(layers, list):
            raise SpecError("arch: 'layers' must be a list")
        return Network(tuple(Layer.from_dict(x, index=i) for i, x in enumerate(layers)))

    @staticmethod
    def from_json(text: str) -> Network:
        """Parse JSON text; malformed JSON raises SpecError with line and column."""
        try:
            d = json.loads(text)
        except json.JSONDecodeError as e:
            raise SpecError(f"arch JSON: malformed at line {e.lineno} column {e.colno}: {e.msg}") from None
        return Network.from_dict(d)

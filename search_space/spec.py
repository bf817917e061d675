"""The architecture spec: frozen networks of layers, canonical JSON and a stable arch_id."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace
from typing import Any

from narch.core.files import parse_json
from narch.search_space.layer import SCHEMA_2_FIELDS, Layer, SpecError
from narch.search_space.validate import check_network

SCHEMA_VERSION = 2
"""Newest version of the canonical JSON form. Each version's form is kept, so no existing arch_id changes:

- 1: every layer holds ``op``, ``channels``, ``kernel``, ``stride``, ``units``, ``dropout_pct`` and ``inputs``.
- 2: as 1, and every conv layer also holds ``groups`` and ``dilation`` (other layers never do). A network is
  written in schema 2 only when some layer is grouped or dilated; every other network keeps its schema-1 JSON.

Readers accept both (a schema-1 layer may not name ``groups`` or ``dilation``). A change of a form means a new
version, and the golden test pins the old forms."""

SCHEMA_VERSIONS = (1, 2)
"""The versions ``Network.from_dict`` reads."""


@dataclass(frozen=True, slots=True)
class Network:
    """A network: a sequence of layers forming a DAG. Validated on construction (see validate.py)."""

    layers: tuple[Layer, ...]
    # Pure functions of ``layers``, filled on first use: the search hashes, serialises and ids the same network many
    # times (caches, the evaluator, histories). Never compared, and not pickled (a str hash differs per process).
    _hash: int | None = field(default=None, init=False, repr=False, compare=False)
    _json: str | None = field(default=None, init=False, repr=False, compare=False)
    _id: str | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.layers, tuple):
            object.__setattr__(self, "layers", tuple(self.layers))
        check_network(self)

    def __hash__(self) -> int:
        h = self._hash
        if h is None:
            h = hash(self.layers)
            object.__setattr__(self, "_hash", h)
        return h

    def __getstate__(self) -> tuple[Layer, ...]:
        return self.layers

    def __setstate__(self, layers: tuple[Layer, ...]) -> None:
        for name, value in (("layers", layers), ("_hash", None), ("_json", None), ("_id", None)):
            object.__setattr__(self, name, value)

    def __len__(self) -> int:
        return len(self.layers)

    @property
    def schema(self) -> int:
        """The schema version this network is written in: 2 when a layer is grouped or dilated, else 1."""
        return 2 if any(x.grouped_or_dilated for x in self.layers) else 1

    def to_dict(self) -> dict[str, Any]:
        """The canonical dict (schema version inside; see SCHEMA_VERSION)."""
        schema = self.schema
        return {"schema": schema, "layers": [x.to_dict(conv_keys=schema == 2) for x in self.layers]}

    def to_json(self) -> str:
        """Canonical JSON: sorted keys, no spaces, schema version inside (computed once per object)."""
        j = self._json
        if j is None:
            j = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
            object.__setattr__(self, "_json", j)
        return j

    @property
    def arch_id(self) -> str:
        """sha256 of the canonical JSON, first 16 hex digits: stable across processes and machines."""
        a = self._id
        if a is None:
            a = hashlib.sha256(self.to_json().encode()).hexdigest()[:16]
            object.__setattr__(self, "_id", a)
        return a

    def with_layers(self, layers: list[Layer] | tuple[Layer, ...]) -> Network:
        """A new validated network with these layers."""
        return replace(self, layers=tuple(layers))

    @staticmethod
    def from_dict(d: Any) -> Network:
        """Parse a dict in canonical form of any version in SCHEMA_VERSIONS (a missing schema means the newest)."""
        if not isinstance(d, dict):
            raise SpecError(f"arch: expected a JSON object, got {type(d).__name__}")
        extra = sorted(set(d) - {"schema", "layers"})
        if extra:
            raise SpecError(f"arch: unknown field(s) {extra} (known: ['layers', 'schema'])")
        schema = d.get("schema", SCHEMA_VERSION)
        if isinstance(schema, bool) or not isinstance(schema, int) or schema not in SCHEMA_VERSIONS:
            raise SpecError(f"arch: schema version {schema!r} is not supported (this reads {list(SCHEMA_VERSIONS)})")
        layers = d.get("layers")
        if not isinstance(layers, list):
            raise SpecError("arch: 'layers' must be a list")
        if schema == 1:
            for i, x in enumerate(layers):
                named = sorted(SCHEMA_2_FIELDS & set(x)) if isinstance(x, dict) else []
                if named:
                    raise SpecError(f"layer {i}: field(s) {named} need schema 2 (this network says schema 1)")
        return Network(tuple(Layer.from_dict(x, index=i) for i, x in enumerate(layers)))

    @staticmethod
    def from_json(text: str) -> Network:
        """Parse JSON text; malformed JSON raises SpecError with line and column."""
        return Network.from_dict(parse_json(text, error=SpecError, what="arch"))


__all__ = ["SCHEMA_VERSION", "SCHEMA_VERSIONS", "Network"]

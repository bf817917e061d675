"""The architecture spec: frozen networks of layers, canonical JSON and a stable arch_id."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace
from typing import Any

from narch.core.files import parse_json
from narch.search_space.layer import Layer, SpecError
from narch.search_space.validate import check_network

SCHEMA_VERSION = 1
"""Version of the canonical JSON form; bump it when the form (and so every arch_id) changes."""


@dataclass(frozen=True, slots=True)
class Network:
    """A network: a sequence of layers forming a DAG. Validated on construction (see validate.py)."""

    layers: tuple[Layer, ...]

    def __post_init__(self) -> None:
        if not isinstance(self.layers, tuple):
            object.__setattr__(self, "layers", tuple(self.layers))
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
        return Network.from_dict(parse_json(text, error=SpecError, what="arch"))


__all__ = ["SCHEMA_VERSION", "Network"]

"""The configuration of a generic table import (``narch import table``): a JSON file, checked whole on load.

The format is documented in ``importers/table.py``. Every error is one line naming the config file and the key.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from narch.core.files import read_json
from narch.dataset_builder.importers.cells import CellOp
from narch.dataset_builder.importers.sources import SourceError, check_file
from narch.dataset_builder.schema import COLUMNS
from narch.search_space import Layer, Network, Op, Shape, SpecError, infer_shapes
from narch.search_space.layer import INT_FIELDS

FORMS = ("layers", "nodes", "edges")
SKIP, NONE = "skip", "none"
# Columns the importer sets itself (identity, descriptors, protocol, provenance): a metric may not map onto them.
RESERVED = frozenset({
    "arch_id", "arch_json", "parent_arch_id", "move", "task", "n_train", "n_classes", "input_shape",
    "protocol_hash", "epochs", "batch_size", "optimizer", "lr", "seed", "device_kind", "device_name", "host",
    "git_rev", "builder_version", "created_at", "status", "error", "bench_index", "bench_arch",
})
_KEYS = {"name", "task", "data", "training", "device", "arch", "metrics", "seed_column", "epochs_column",
         "index_column", "name_column"}
_WIDTH = re.compile(r"^C(?:\s*([*/])\s*(\d+))?$")  # "C", "C*2", "C/4": in units of the cell's channels


@dataclass(frozen=True)
class Metric:
    """A corpus column filled from a source column, times ``scale`` (e.g. 0.01 for percentages)."""

    column: str
    scale: float = 1.0
    kind: str = "nonneg"  # "fraction" (in [0, 1]), "nonneg" (finite, >= 0) or "any" (finite: zero-cost proxies)
    integer: bool = False


@dataclass(frozen=True)
class ArchConfig:
    """How a row's architecture is read: a layer list, or a cell (ops on nodes or on edges) and its op table."""

    form: str
    column: str
    ops_column: str | None = None
    channels: int = 0
    stem: tuple[Layer, ...] = ()
    ops: dict[str, CellOp] | None = None


@dataclass(frozen=True)
class TableConfig:
    """A checked table-import configuration; ``raw`` (the file's JSON) goes into the corpus protocol."""

    name: str
    task: str
    n_train: int
    n_classes: int
    input_shape: tuple[int, ...]
    training: dict[str, Any]
    device_kind: str
    device_name: str | None
    arch: ArchConfig
    metrics: dict[str, Metric]
    seed_column: str | None
    epochs_column: str | None
    index_column: str | None  # the benchmark's own index of a row's network (bench_index)
    name_column: str | None  # its own name of it, e.g. an arch string (bench_arch)
    raw: dict[str, Any]

    @property
    def source_columns(self) -> list[str]:
        """Every column of the table the import reads."""
        cols = [self.arch.column, self.arch.ops_column, self.seed_column, self.epochs_column, self.index_column,
                self.name_column]
        return list(dict.fromkeys([c for c in cols if c] + [m.column for m in self.metrics.values()]))


class _Bad(Exception):
    """A rule broken at a key of the config (turned into a SourceError naming the file)."""


def _obj(d: Any, key: str, allowed: set[str]) -> dict[str, Any]:
    if not isinstance(d, dict):
        raise _Bad(f"{key}: expected an object, got {type(d).__name__}")
    extra = sorted(set(d) - allowed)
    if extra:
        raise _Bad(f"{key}: unknown key(s) {extra} (known: {sorted(allowed)})")
    return d


def _int(d: dict[str, Any], key: str, where: str, *, lo: int = 1) -> int:
    v = d.get(key)
    if isinstance(v, bool) or not isinstance(v, int) or v < lo:
        raise _Bad(f"{where}.{key}: expected an integer >= {lo}, got {v!r}")
    return v


def _str(d: dict[str, Any], key: str, where: str, *, required: bool = True) -> str | None:
    v = d.get(key)
    if v is None and not required:
        return None
    if not isinstance(v, str) or not v.strip():
        raise _Bad(f"{where}.{key}: expected a non-empty string, got {v!r}")
    return v


def _width(v: Any, channels: int, where: str) -> Any:
    """An integer field of an op's layer: an int, or "C" / "C*k" / "C/k" in units of the cell's channels."""
    if not isinstance(v, str):
        return v
    m = _WIDTH.match(v.strip())
    if not m or channels < 1:
        raise _Bad(f"{where}: {v!r} is neither an integer nor 'C', 'C*k' or 'C/k' (C: arch.channels)")
    op, k = m.group(1), int(m.group(2) or 1)
    if op == "/" and (k == 0 or channels % k):
        raise _Bad(f"{where}: {v!r} does not divide the {channels} channels evenly")
    return channels * k if op == "*" else channels // k if op == "/" else channels


def _layers(items: Any, channels: int, where: str) -> tuple[Layer, ...]:
    """A chain of layer dicts (canonical form, widths in units of C); chains have no adds and no inputs."""
    if not isinstance(items, list):
        raise _Bad(f"{where}: expected a list of layers, '{SKIP}' or '{NONE}', got {items!r}")
    out = []
    for k, d in enumerate(items):
        if isinstance(d, dict) and ("inputs" in d or d.get("op") == Op.ADD.value):
            raise _Bad(f"{where}[{k}]: an op's layers form a chain (no 'add', no 'inputs')")
        resolved = {f: _width(v, channels, f"{where}[{k}].{f}") if f in INT_FIELDS else v
                    for f, v in d.items()} if isinstance(d, dict) else d
        try:
            out.append(Layer.from_dict(resolved, index=k))
        except SpecError as e:
            raise _Bad(f"{where}: {e}") from None
    return tuple(out)


def _chain_shapes(layers: tuple[Layer, ...], in_channels: int, where: str) -> Shape:
    try:
        return infer_shapes(Network(layers), in_channels=in_channels)[-1]
    except SpecError as e:
        raise _Bad(f"{where}: {e}") from None


def _op_table(d: Any, channels: int) -> dict[str, CellOp]:
    if not isinstance(d, dict) or not d:
        raise _Bad(f"arch.ops: expected an object of op name -> layers, '{SKIP}' or '{NONE}', got {d!r}")
    table: dict[str, CellOp] = {}
    keep = Shape(channels, 1, False)
    for name, v in d.items():
        where = f"arch.ops.{name}"
        if v == SKIP:
            table[name] = ()
        elif v == NONE:
            table[name] = None
        else:
            chain = _layers(v, channels, where)
            if not chain:
                raise _Bad(f"{where}: an empty list (write '{SKIP}' for the identity)")
            out = _chain_shapes(chain, channels, where)
            if out != keep:
                raise _Bad(f"{where}: must keep the cell's shape {keep} (C = arch.channels), makes {out}")
            table[name] = chain
    return table


def _arch(d: Any, input_shape: tuple[int, ...]) -> ArchConfig:
    d = _obj(d, "arch", {"form", "column", "ops_column", "channels", "stem", "ops"})
    form = d.get("form")
    if form not in FORMS:
        raise _Bad(f"arch.form: expected one of {', '.join(FORMS)}, got {form!r}")
    column = _str(d, "column", "arch")
    assert column is not None
    if form == "layers":
        extra = sorted({"ops_column", "channels", "stem", "ops"} & set(d))
        if extra:
            raise _Bad(f"arch: {extra} apply to the cell forms (nodes, edges) only")
        return ArchConfig(form, column)
    ops_column = _str(d, "ops_column", "arch", required=form == "nodes")
    if form == "edges" and ops_column is not None:
        raise _Bad("arch.ops_column: applies to the nodes form only (edges name their ops in arch.column)")
    channels = _int(d, "channels", "arch")
    stem = _layers(d.get("stem", [{"op": "conv", "channels": "C", "kernel": 3}]), channels, "arch.stem")
    if not stem:
        raise _Bad("arch.stem: needs at least one layer (the cell input)")
    out = _chain_shapes(stem, input_shape[0], "arch.stem")
    if out.flat or out.channels != channels:
        raise _Bad(f"arch.stem: must end in a spatial tensor of C = {channels} channels, makes {out}")
    return ArchConfig(form, column, ops_column, channels, stem, _op_table(d.get("ops"), channels))


def _metric(name: str, v: Any) -> Metric:
    types = {c: (t, unit) for c, t, unit, _ in COLUMNS}
    if name not in types or name in RESERVED or not (pa.types.is_integer(types[name][0])
                                                     or pa.types.is_floating(types[name][0])):
        numeric = sorted(c for c, (t, _) in types.items() if c not in RESERVED
                         and (pa.types.is_integer(t) or pa.types.is_floating(t)))
        raise _Bad(f"metrics.{name}: not a numeric corpus column the table can fill (e.g. {', '.join(numeric[:12])}"
                   ", ...)")
    if isinstance(v, str):
        v = {"column": v}
    v = _obj(v, f"metrics.{name}", {"column", "scale"})
    column = _str(v, "column", f"metrics.{name}")
    scale = v.get("scale", 1.0)
    if isinstance(scale, bool) or not isinstance(scale, int | float) or not math.isfinite(scale) or scale == 0:
        raise _Bad(f"metrics.{name}.scale: expected a non-zero number, got {scale!r}")
    t, unit = types[name]
    kind = "fraction" if unit == "fraction" else "any" if name.startswith("zc_") else "nonneg"
    assert column is not None
    return Metric(column, float(scale), kind, pa.types.is_integer(t))


def _parse(d: Any, default_name: str) -> TableConfig:
    d = _obj(d, "config", _KEYS)
    task = _str(d, "task", "config")
    data = _obj(d.get("data"), "data", {"n_train", "n_classes", "input_shape"})
    shape = data.get("input_shape")
    if not isinstance(shape, list) or len(shape) not in (2, 3) or not all(
            isinstance(x, int) and not isinstance(x, bool) and x > 0 for x in shape):
        raise _Bad(f"data.input_shape: expected [C, L] or [C, H, W] of positive integers, got {shape!r}")
    training = _obj(d.get("training", {}), "training", {"epochs", "batch_size", "optimizer", "lr", "momentum",
                                                        "weight_decay", "schedule", "notes"})
    epochs_column = _str(d, "epochs_column", "config", required=False)
    if epochs_column is None:
        _int(training, "epochs", "training")
    elif "epochs" in training:
        raise _Bad("training.epochs: give either training.epochs or epochs_column, not both")
    if "batch_size" in training:
        _int(training, "batch_size", "training")
    if "lr" in training and (isinstance(training["lr"], bool) or not isinstance(training["lr"], int | float)):
        raise _Bad(f"training.lr: expected a number, got {training['lr']!r}")
    if "optimizer" in training:
        _str(training, "optimizer", "training")
    device = _obj(d.get("device"), "device", {"kind", "name"})
    metrics = d.get("metrics")
    if not isinstance(metrics, dict) or not metrics:
        raise _Bad("metrics: map at least one corpus column onto a source column")
    return TableConfig(
        name=_str(d, "name", "config", required=False) or default_name,
        task=task or "",
        n_train=_int(data, "n_train", "data"),
        n_classes=_int(data, "n_classes", "data", lo=2),
        input_shape=tuple(shape),
        training=training,
        device_kind=_str(device, "kind", "device") or "",
        device_name=_str(device, "name", "device", required=False),
        arch=_arch(d.get("arch"), tuple(shape)),
        metrics={name: _metric(name, v) for name, v in metrics.items()},
        seed_column=_str(d, "seed_column", "config", required=False),
        epochs_column=epochs_column,
        index_column=_str(d, "index_column", "config", required=False),
        name_column=_str(d, "name_column", "config", required=False),
        raw=d,
    )


def load_config(path: Path, *, default_name: str) -> TableConfig:
    """Read and check a table-import config; SourceError naming the file and the key for anything wrong."""
    path = check_file(path)
    d = read_json(path, error=SourceError)
    try:
        return _parse(d, default_name)
    except _Bad as e:
        raise SourceError(f"{path}: {e}") from None

"""Bring your own benchmark: a table of architectures and their metrics (CSV, JSONL or Parquet) as a corpus.

``narch import table --src FILE --out DIR --config CONFIG.json``. One source row becomes one corpus row. The config
(a JSON object, checked whole before the table is read; ``table_config.py``):

- ``task`` (required): the corpus's task name, e.g. ``"mybench-cifar10"``; ``name``: the import's name (default:
  the source file's stem).
- ``data`` (required): ``n_train``, ``n_classes`` and ``input_shape`` ([C, L] or [C, H, W]): the descriptors the
  predictors read, and the input the cost model traces.
- ``training``: ``epochs`` (required unless ``epochs_column`` gives each row's), and optionally ``batch_size``,
  ``optimizer``, ``lr``, ``momentum``, ``weight_decay``, ``schedule``, ``notes``. ``device`` (required): ``kind``
  (e.g. ``cuda``, ``cpu``, ``tpu``) and ``name``. ``seed_column``: each row's training seed (default: none, as for
  a benchmark's means over seeds). ``index_column`` and ``name_column``: the benchmark's own index (an integer)
  and name (e.g. the arch string) of each row's network, kept as ``bench_index`` and ``bench_arch`` so that the
  query API finds the network by them.
- ``arch`` (required): ``form`` and ``column``:
  - ``"layers"``: ``column`` holds a network in the spec's canonical form (JSON text or, in JSONL / Parquet, the
    object itself; ``{"layers": [...]}`` with or without ``"schema"``).
  - ``"nodes"`` (NAS-Bench-101's form): ``column`` holds an upper-triangular 0/1 adjacency (a list of lists) and
    ``ops_column`` the op of every node, ``"input"`` first and ``"output"`` last.
  - ``"edges"`` (NAS-Bench-201's form): ``column`` holds a cell string ``|op~0|+|op~0|op~1|+...`` (any number of
    nodes) or a matrix of op names, ``[i][j]`` the op of edge i -> j (null: no edge; only above the diagonal).
  The cell forms also take ``channels`` (C, required), ``ops`` (required: op name -> ``"skip"`` (the identity),
  ``"none"`` (zero: no edge), or a list of layer dicts applied in a chain, whose integer fields may be ``"C"``,
  ``"C*k"`` or ``"C/k"``; each op must keep the cell's shape, C channels and no downsampling) and ``stem`` (the
  layers before the cell, default ``[{"op": "conv", "channels": "C", "kernel": 3}]``). A cell is mapped as
  ``cells.py`` maps NAS-Bench-201's and NAS-Bench-101's, with its notes and skips.
- ``metrics`` (required): corpus column -> source column, or ``{"column": ..., "scale": 0.01}`` (percentages to
  fractions, ms to s, ...). Any numeric corpus column the importer does not set itself may be filled (``val_acc``,
  ``test_acc``, ``train_time_s``, ``latency_bs1_ms``, ``energy_j``, ``params``, ``flops_fwd``, ``zc_*``, ...);
  fractions must land in [0, 1], zero-cost proxies be finite, every other metric finite and >= 0. Empty cells are
  nulls.

A separable conv is ``[{"op": "conv", "channels": "C", "kernel": 3, "groups": "C"}, {"op": "conv", "channels": "C",
"kernel": 1}]`` and a dilated one ``[{"op": "conv", "channels": "C", "kernel": 3, "dilation": 2}]``: their params and
FLOPs are their true ones (``search_space/trace.py``). Every row gets ``params``, ``model_size_bytes`` and
``flops_fwd`` from the cost model (and, with a ``batch_size``, ``flops_train_step``, ``bytes_train_step`` and
``arithmetic_intensity``), for the network as imported: for a cell, the one-cell network. Map the benchmark's own
columns onto ``params`` or ``flops_fwd`` to keep its whole network's instead.

Bad input (an unreadable file, a missing column, an unknown op, a bad adjacency, a metric out of range) stops the
import with one line naming the file, the row (counted from 0, the first data row) and the rule; nothing is
written. The config and the sha256 of both files form the corpus protocol, so a rerun is a no-op.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Hashable
from pathlib import Path
from typing import Any

import polars as pl

from narch.core.files import sha256_file
from narch.dataset_builder.importers.cells import (
    CellFormatError,
    CellMapping,
    edge_cell_network,
    node_cell_network,
    parse_edge_string,
)
from narch.dataset_builder.importers.collect import CellCache, MappedCell, RowCollector
from narch.dataset_builder.importers.sources import SourceError, check_file
from narch.dataset_builder.importers.table_config import NONE, TableConfig, load_config
from narch.dataset_builder.importers.writer import (
    PreparedImport,
    already_imported,
    budget_protocols,
    finish_prepare,
    make_manifest,
    provenance_columns,
)
from narch.hardware.costs import step_costs
from narch.search_space import Network, SpecError, trace_network, validate

FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet"}


class _RowError(Exception):
    """A rule one row breaks (turned into a SourceError naming the file and the row)."""


def read_table(path: Path) -> tuple[list[str], list[dict[str, Any]]]:
    """The columns and rows of a CSV, JSONL or Parquet file (told by its suffix)."""
    path = check_file(path)
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise SourceError(f"{path}: unknown table format {path.suffix!r} (known: {', '.join(FORMATS)})")
    try:
        if fmt == "jsonl":
            return _read_jsonl(path)
        df = pl.read_csv(path, infer_schema_length=None) if fmt == "csv" else pl.read_parquet(path)
    except (pl.exceptions.PolarsError, OSError, UnicodeDecodeError) as e:
        raise SourceError(f"{path}: not a readable {fmt} file ({type(e).__name__}: {str(e)[:120]})") from None
    return df.columns, df.to_dicts()


def _read_jsonl(path: Path) -> tuple[list[str], list[dict[str, Any]]]:
    rows: list[dict[str, Any]] = []
    for line_no, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise SourceError(f"{path}: line {line_no}: malformed JSON ({e.msg} at column {e.colno})") from None
        if not isinstance(row, dict):
            raise SourceError(f"{path}: line {line_no}: expected a JSON object, got {type(row).__name__}")
        rows.append(row)
    return list(dict.fromkeys(k for r in rows for k in r)), rows


def _json(row: dict[str, Any], column: str) -> Any:
    """A cell holding JSON: text is parsed, a list or object (JSONL, Parquet) taken as it is."""
    v = row.get(column)
    if v is None:
        raise _RowError(f"column {column!r} is empty")
    if isinstance(v, str):
        try:
            return json.loads(v)
        except json.JSONDecodeError as e:
            raise _RowError(f"column {column!r}: malformed JSON ({e.msg} at column {e.colno})") from None
    return v


def _number(row: dict[str, Any], column: str) -> float | None:
    """A numeric cell (None when empty)."""
    v = row.get(column)
    if v is None or (isinstance(v, str) and not v.strip()):
        return None
    if isinstance(v, bool):
        raise _RowError(f"column {column!r} = {v!r} is not a number")
    try:
        return float(v)
    except (TypeError, ValueError):
        raise _RowError(f"column {column!r} = {v!r} is not a number") from None


Mapper = Callable[[], CellMapping]


class _Arch:
    """Reads a row's architecture as the config says: a cache key and how to map it (once per key)."""

    def __init__(self, cfg: TableConfig) -> None:
        self.cfg = cfg

    def _checked(self, m: CellMapping) -> CellMapping:
        validate(m.net, input_shape=self.cfg.input_shape, n_classes=self.cfg.n_classes)  # e.g. groups vs input
        return m

    def __call__(self, row: dict[str, Any]) -> tuple[Hashable, Mapper]:
        a = self.cfg.arch
        raw = row.get(a.column)
        if a.form == "edges" and isinstance(raw, str) and raw.strip().startswith("|"):
            assert a.ops is not None
            cell = raw.strip()
            return ("edges", cell), self._edges(parse_edge_string(cell, ops=list(a.ops)), cell.count("+") + 2, cell)
        value = _json(row, a.column)
        if a.form == "layers":
            net = Network.from_dict({"layers": value} if isinstance(value, list) else value)
            return ("layers", net.arch_id), lambda: self._checked(CellMapping(net, {}))
        if a.form == "edges":
            return ("edges", json.dumps(value)), self._edges(*self._matrix_edges(value), json.dumps(value))
        assert a.ops_column is not None and a.ops is not None
        ops, table, stem = _json(row, a.ops_column), a.ops, a.stem
        if not isinstance(value, list) or not all(isinstance(r, list) for r in value):
            raise _RowError(f"column {a.column!r}: expected an adjacency matrix (a list of lists)")
        if not isinstance(ops, list) or not all(isinstance(o, str) for o in ops):
            raise _RowError(f"column {a.ops_column!r}: expected a list of op names")
        return ("nodes", json.dumps(value), tuple(ops)), lambda: self._checked(
            node_cell_network(value, ops, table, stem=stem))

    def _edges(self, edges: dict[tuple[int, int], str], n: int, cell: str) -> Mapper:
        table, stem = self.cfg.arch.ops, self.cfg.arch.stem
        assert table is not None
        return lambda: self._checked(edge_cell_network(edges, n, table, stem=stem, cell=cell))

    def _matrix_edges(self, value: Any) -> tuple[dict[tuple[int, int], str], int]:
        """Edges of a matrix of op names: [i][j] the op of edge i -> j, null (or 'none') where there is none."""
        column = self.cfg.arch.column
        if not isinstance(value, list) or not all(isinstance(r, list) and len(r) == len(value) for r in value):
            raise _RowError(f"column {column!r}: expected a cell string '|op~0|+...' or a square matrix of op names")
        edges: dict[tuple[int, int], str] = {}
        for i, r in enumerate(value):
            for j, op in enumerate(r):
                if op is None or (op == NONE and j <= i):
                    continue
                if not isinstance(op, str):
                    raise _RowError(f"column {column!r}: [{i}][{j}] must be an op name or null, got {op!r}")
                if j <= i:
                    raise CellFormatError(f"cell {json.dumps(value)}: edge {i}->{j} breaks the upper-triangular "
                                          "(DAG) order")
                edges[(i, j)] = op
        return edges, len(value)


def _costs(net: Network, cfg: TableConfig) -> dict[str, Any]:
    """The cost model's columns of one network (as the builder's rows have them)."""
    t = trace_network(net, cfg.input_shape, cfg.n_classes)
    batch = cfg.training.get("batch_size")
    c = step_costs(net, cfg.input_shape, cfg.n_classes, batch or 1)
    out: dict[str, Any] = {"params": t.params, "model_size_bytes": t.model_size_bytes, "flops_fwd": float(c.flops_fwd)}
    if batch:
        out |= {"flops_train_step": float(c.flops_train_step), "bytes_train_step": float(c.bytes_train_step),
                "arithmetic_intensity": c.arithmetic_intensity}
    return out


def _metrics(row: dict[str, Any], cfg: TableConfig) -> dict[str, Any]:
    """The mapped metric columns of a row, scaled and range-checked (integer columns rounded)."""
    out: dict[str, Any] = {}
    for name, m in cfg.metrics.items():
        v = _number(row, m.column)
        if v is not None:
            v *= m.scale
            if not math.isfinite(v) or (m.kind == "fraction" and not 0.0 <= v <= 1.0) or (m.kind == "nonneg" and v < 0):
                rule = {"fraction": "in [0, 1]", "nonneg": "finite and >= 0", "any": "finite"}[m.kind]
                raise _RowError(f"{name} = {v:g} (column {m.column!r} x {m.scale:g}) must be {rule}")
        out[name] = round(v) if m.integer and v is not None else v
    return out


def _check_columns(path: Path, columns: list[str], rows: list[dict[str, Any]], cfg: TableConfig) -> None:
    missing = [c for c in cfg.source_columns if c not in columns]
    if missing:
        raise SourceError(f"{path}: missing column(s) {missing} (has {columns[:8]}{'...' if len(columns) > 8 else ''})")
    if not rows:
        raise SourceError(f"{path}: no rows")
    for i, r in enumerate(rows):  # JSONL rows may each lack a key
        gone = [c for c in cfg.source_columns if c not in r]
        if gone:
            raise SourceError(f"{path}: row {i}: missing column(s) {gone}")


def _row_ints(rows: list[dict[str, Any]], column: str | None, path: Path, *, lo: int | None = None) -> list[int | None]:
    """Each row's integer in ``column`` (None when empty; all None without a column); ``lo``: required, >= lo."""
    if column is None:
        return [None] * len(rows)
    out: list[int | None] = []
    for i, r in enumerate(rows):
        try:
            v = _number(r, column)
        except _RowError as e:
            raise SourceError(f"{path}: row {i}: {e}") from None
        if (v is not None and v != int(v)) or (lo is not None and (v is None or v < lo)):
            need = "an integer" if lo is None else f"an integer >= {lo}"
            raise SourceError(f"{path}: row {i}: column {column!r} = {r.get(column)!r} must be {need}")
        out.append(None if v is None else int(v))
    return out


def _name(v: Any) -> str:
    """A benchmark's name of a network as text: a string stays, anything else is its compact JSON."""
    return v.strip() if isinstance(v, str) else json.dumps(v, separators=(",", ":"))


def prepare_table(out: Path, *, src: Path, config: Path, cache: CellCache | None = None) -> PreparedImport:
    """Read, check and map a user's table of architectures and metrics; nothing is written."""
    src, config = check_file(src), check_file(config)
    cfg = load_config(config, default_name=src.stem)
    columns, rows = read_table(src)
    _check_columns(src, columns, rows, cfg)
    epochs = _row_ints(rows, cfg.epochs_column, src, lo=1)
    seeds = _row_ints(rows, cfg.seed_column, src)
    index = _row_ints(rows, cfg.index_column, src)
    names = [None if cfg.name_column is None or r[cfg.name_column] is None else _name(r[cfg.name_column])
             for r in rows]
    protocol: dict[str, Any] = {
        "benchmark": cfg.name,
        "config": cfg.raw,
        "sources": [{"file": src.name, "sha256": sha256_file(src)},
                    {"file": config.name, "sha256": sha256_file(config)}],
    }
    budgets: dict[int, str] = {}
    if cfg.epochs_column:
        budgets = budget_protocols(protocol, sorted({e for e in epochs if e is not None}))
        protocol["budget_protocol_hashes"] = {str(e): h for e, h in budgets.items()}
    manifest = make_manifest(cfg.task, protocol)
    name = f"table {cfg.name}"
    if done := already_imported(name, Path(out), manifest):
        return done
    t = cfg.training
    shared = {
        **provenance_columns(manifest.created_at), "task": cfg.task, "n_train": cfg.n_train,
        "n_classes": cfg.n_classes, "input_shape": list(cfg.input_shape), "batch_size": t.get("batch_size"),
        "optimizer": t.get("optimizer"), "lr": None if t.get("lr") is None else float(t["lr"]),
        "device_kind": cfg.device_kind, "device_name": cfg.device_name,
    }
    col, arch, costs = RowCollector(cache), _Arch(cfg), {}
    g = col.group(src.name)
    for i, row in enumerate(rows):
        try:
            key, make = arch(row)
            m = col.arch(key, make)
            if isinstance(m, MappedCell) and m.arch_id not in costs:
                costs[m.arch_id] = _costs(Network.from_json(m.arch_json), cfg)
            metrics = _metrics(row, cfg)
        except (_RowError, CellFormatError, SpecError) as e:
            raise SourceError(f"{src}: row {i}: {e}") from None
        e = epochs[i]
        cols = {**shared, **(costs[m.arch_id] if isinstance(m, MappedCell) else {}), **metrics, "seed": seeds[i],
                "bench_index": index[i], "bench_arch": names[i],
                "epochs": int(t["epochs"]) if e is None else e,
                "protocol_hash": manifest.protocol_hash if e is None else budgets[e]}
        col.add(g, i, key, make, cols)
    prep = PreparedImport(name, Path(out), manifest, col.groups, dict(col.skipped), dict(col.notes), col.unmapped)
    return finish_prepare(prep)

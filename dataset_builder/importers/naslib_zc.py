"""NASLib's precomputed zero-cost scores (NAS-Bench-Suite-Zero) in the zc_* columns of an imported corpus.

Which NASLib data set fills which corpus is NASLIB below, keyed by the corpus's task: ``zc_nasbench201_725.json``
holds ``cifar10``, ``cifar100`` and ``ImageNet16-120`` (725, 725 and 724 cells), ``zc_nasbench101_500.json``
holds ``nasbench101`` / ``cifar10`` (500 cells).

Keys (NASLib's conversions): NAS-Bench-201, six op indices on the edges (1,2),(1,3),(1,4),(2,3),(2,4),(3,4), whose
nodes 1-4 are the cell string's nodes 0-3, ops ``NB201_OPS``; NAS-Bench-101, the 7x7 adjacency row by row and then
7 op codes, ops ``NB101_OPS``. A cell becomes a network, so an arch_id, through the importers' own mapping
(cells.py); cells without one (an output that is identically zero) are counted and left out.

Values: ``NASLIB_NAMES`` pairs our proxies with NASLib's; ``zen`` is in neither file and ``naswot`` (NASLib's
``nwot``) only in the NAS-Bench-201 one, so those columns stay null. NASLib's units are converted to ours: params
in millions; flops in millions of multiply-accumulates (zero-cost-nas's model_stats, as NAS-Bench-201's own
220 M for the all-3x3 CIFAR network), while zc_flops counts two FLOPs per multiply-accumulate; synflow as
sign(s) log|s| (NASLib's ZeroCost.query, 0 kept 0). NASLib writes -1e8 for a NaN or infinite score (synflow:
its log): such scores, and infinite ones, are null here, as in our builds. Both counts are of the benchmark's
full network, like the imported ``params`` column, not of the one-cell layer DAG in ``arch_json``.

Several NASLib cells can map to one network: NAS-Bench-201 cells that differ only on edges the mapping drops
(zero or dead nodes), NAS-Bench-101 specs that prune to one cell. The row's arch_json cannot tell them apart, so
their scores are averaged as repeated scorings of one network (``averaged`` counts such networks).

The scores go into every row of a scored arch_id (every budget) through one compaction that fills only null zc_*
cells (compaction.fill_nulls): no value that is there changes, and a rerun finds nothing to fill and writes nothing.
The import's sidecar is re-keyed for the merged part and records the NASLib file (``zero_cost_source``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from narch.dataset_builder.compaction import compact_corpus, fill_nulls
from narch.dataset_builder.corpus import CorpusError, corpus_file, read_corpus, read_manifest
from narch.dataset_builder.importers.cells import CellFormatError, CellMapping, UnmappableCell, nb101_network
from narch.dataset_builder.importers.cells import nb201_network as _nb201_network
from narch.dataset_builder.importers.sources import SOURCES, SourceError, source_record
from narch.dataset_builder.importers.writer import SIDECAR, update_sidecar
from narch.dataset_builder.schema import ZC_COLUMNS, ZC_PREFIX

NB201_EDGES = ((1, 2), (1, 3), (1, 4), (2, 3), (2, 4), (3, 4))
NB201_OPS = ("skip_connect", "none", "nor_conv_3x3", "nor_conv_1x1", "avg_pool_3x3")
NB101_OPS = ("input", "output", "maxpool3x3", "conv1x1-bn-relu", "conv3x3-bn-relu")
NASLIB_NAMES: dict[str, str | None] = {  # our proxy -> NASLib's name for it (None: NASLib has none)
    "params": "params", "flops": "flops", "l2_norm": "l2_norm", "synflow": "synflow", "zen": None, "plain": "plain",
    "snip": "snip", "grad_norm": "grad_norm", "grasp": "grasp", "fisher": "fisher", "jacov": "jacov",
    "naswot": "nwot", "epe_nas": "epe_nas",
}
SCALE = {"params": 1e6, "flops": 2e6}  # NASLib's millions of parameters / of multiply-accumulates -> ours
NOT_A_SCORE = -1e8  # NASLib's stand-in for a NaN or infinite score


def nb201_arch_str(ops: Sequence[int]) -> str:
    """The NAS-Bench-201 cell string of NASLib's six op indices."""
    edge_ops = dict(zip(NB201_EDGES, (NB201_OPS[i] for i in ops), strict=True))
    return "+".join("|" + "".join(f"{edge_ops[(i, j)]}~{i - 1}|" for i in range(1, j)) for j in range(2, 5))


def nb201_network(key: tuple[int, ...]) -> CellMapping:
    """The network of a NASLib NAS-Bench-201 key."""
    if len(key) != len(NB201_EDGES) or not all(0 <= i < len(NB201_OPS) for i in key):
        raise CellFormatError(f"expected {len(NB201_EDGES)} op indices in 0..{len(NB201_OPS) - 1}")
    return _nb201_network(nb201_arch_str(key))


def nb101_spec_network(key: tuple[int, ...]) -> CellMapping:
    """The network of a NASLib NAS-Bench-101 key (n x n adjacency, then n op codes)."""
    n = math.isqrt(len(key))
    if n < 2 or n * n + n != len(key) or not all(0 <= c < len(NB101_OPS) for c in key[n * n :]):
        raise CellFormatError(f"expected an n x n adjacency and n op codes in 0..{len(NB101_OPS) - 1}")
    return nb101_network([key[i * n : (i + 1) * n] for i in range(n)], [NB101_OPS[c] for c in key[n * n :]])


@dataclass(frozen=True)
class NaslibSet:
    """One data set of a NASLib file: where it is in the JSON and how its keys become networks."""

    source: str  # SOURCES key
    path: tuple[str, ...]  # keys into the file's JSON object
    network: Callable[[tuple[int, ...]], CellMapping]


NASLIB: dict[str, NaslibSet] = {  # our corpus's task -> NASLib's data set
    "nb201-cifar10": NaslibSet("naslib_zc_nb201", ("cifar10",), nb201_network),
    "nb201-cifar100": NaslibSet("naslib_zc_nb201", ("cifar100",), nb201_network),
    "nb201-imagenet16-120": NaslibSet("naslib_zc_nb201", ("ImageNet16-120",), nb201_network),
    "nb101-cifar10": NaslibSet("naslib_zc_nb101", ("nasbench101", "cifar10"), nb101_spec_network),
}


@dataclass(frozen=True)
class NaslibScores:
    """NASLib's scores per network: ``frame`` holds arch_id and the zc_* columns, one row per network."""

    frame: pl.DataFrame
    path: Path  # the file read
    cells: int  # NASLib cells read
    unmappable: int  # cells without a network
    averaged: int  # networks scored from several cells


@dataclass(frozen=True)
class NaslibFill:
    """What a fill did."""

    scores: NaslibScores
    matched: int  # scored networks present in the corpus
    rows_filled: int  # rows that gained at least one score


def _value(name: str, entry: Any, where: str) -> float | None:
    """Our value of proxy ``name`` from NASLib's entry (a number, or {"score": number, "time": s})."""
    raw = entry.get("score") if isinstance(entry, dict) else entry
    if not isinstance(raw, int | float) or isinstance(raw, bool):
        raise SourceError(f"{where}: {NASLIB_NAMES[name]} is {entry!r}, not a number")
    if not math.isfinite(raw) or raw == NOT_A_SCORE or (name == "synflow" and raw == -math.log(-NOT_A_SCORE)):
        return None
    if name == "synflow":
        return 0.0 if raw == 0 else math.exp(raw)
    return raw * SCALE.get(name, 1.0)


def _cells(path: Path, naslib: NaslibSet) -> dict[str, Any]:
    try:
        data: Any = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise SourceError(f"{path}: not JSON ({e})") from None
    for k in naslib.path:
        if not isinstance(data, dict) or k not in data:
            raise SourceError(f"{path}: no data set {'/'.join(naslib.path)!r}")
        data = data[k]
    if not isinstance(data, dict) or not data:
        raise SourceError(f"{path}: {'/'.join(naslib.path)} holds no cells")
    return data


def _key(text: str, where: str) -> tuple[int, ...]:
    try:
        return tuple(int(x) for x in text.strip().removeprefix("(").removesuffix(")").split(","))
    except ValueError:
        raise SourceError(f"{where}: the key is not a tuple of integers") from None


def read_naslib(task: str, *, src: Path | None = None) -> NaslibScores:
    """NASLib's scores for a corpus's task, per network; CorpusError for a task NASLib did not score."""
    naslib = NASLIB.get(task)
    if naslib is None:
        raise CorpusError(f"task {task!r} has no NASLib zero-cost scores (NASLib scored: {', '.join(NASLIB)})")
    path = SOURCES[naslib.source].locate(src)
    rows, unmappable = [], 0
    for text, entry in _cells(path, naslib).items():
        where = f"{path}: {'/'.join(naslib.path)} cell {text}"
        if not isinstance(entry, dict):
            raise SourceError(f"{where}: expected an object of scores")
        try:
            net = naslib.network(_key(text, where)).net
        except UnmappableCell:
            unmappable += 1
            continue
        except CellFormatError as e:
            raise SourceError(f"{where}: {e}") from None
        zc = {ZC_PREFIX + ours: None if theirs not in entry else _value(ours, entry[theirs], where)
              for ours, theirs in NASLIB_NAMES.items() if theirs is not None}
        rows.append({"arch_id": net.arch_id, **zc})
    cells = pl.DataFrame(rows, schema={"arch_id": pl.String, **dict.fromkeys(ZC_COLUMNS, pl.Float64)})
    per_net = cells.group_by("arch_id", maintain_order=True).agg(pl.len().alias("__n"), pl.col(ZC_COLUMNS).mean())
    averaged = int((per_net["__n"] > 1).sum())
    return NaslibScores(per_net.drop("__n"), path, len(rows) + unmappable, unmappable, averaged)


def _gains(rows: pl.DataFrame, scores: pl.DataFrame) -> pl.DataFrame:
    """The rows of scored networks, with whether each would gain a value (a null cell NASLib has a score for)."""
    new = scores.rename({c: f"{c}__new" for c in ZC_COLUMNS})
    j = rows.select("arch_id", *ZC_COLUMNS).join(new, on="arch_id", how="inner")
    gain = pl.any_horizontal(pl.col(c).is_null() & pl.col(f"{c}__new").is_not_null() for c in ZC_COLUMNS)
    return j.select("arch_id", gain.alias("gains"))


def fill_from_naslib(corpus_dir: str | Path, *, src: Path | None = None) -> NaslibFill:
    """Fill the null zc_* cells of an imported NAS-Bench-201 / NAS-Bench-101 corpus from NASLib's scores."""
    d = Path(corpus_dir)
    manifest = read_manifest(d)
    try:
        scores = read_naslib(manifest.task, src=src)
    except CorpusError as e:
        raise CorpusError(f"{d}: {e}") from None
    if not corpus_file(d, SIDECAR).is_file():
        raise CorpusError(f"{d}: not an imported corpus (no {SIDECAR}); NASLib's scores are for imported benchmarks")
    update_sidecar(d)  # re-keys the sidecar if an earlier fill stopped after its compaction; fails on a foreign part
    j = _gains(read_corpus(d), scores.frame)
    rows_filled = int(j["gains"].sum())
    if rows_filled:
        compact_corpus(d, fill=fill_nulls(scores.frame, on=("arch_id",), columns=ZC_COLUMNS))
    naslib = NASLIB[manifest.task]
    record = {**source_record(naslib.source, scores.path), "data_set": "/".join(naslib.path)}
    update_sidecar(d, zero_cost_source=record)
    return NaslibFill(scores, j["arch_id"].n_unique(), rows_filled)

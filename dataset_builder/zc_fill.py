"""`narch zc`: the zero-cost columns for the rows of an existing corpus that lack them, resumably.

Scores go first to a side folder (``_zc/``, one atomic part per chunk of networks, keyed by run key), so an
interrupted run loses at most one chunk and a rerun skips what is there. When every row has its scores, one
compaction (dataset_builder/compaction.py, journaled and crash-safe) merges them into the rows: only null zc_*
cells are filled, no measured value changes, and the side folder is removed.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow.parquet as pq
import torch
from rich.console import Console

from narch.core.files import atomic_write_bytes
from narch.core.progress import Tracker, track
from narch.dataset_builder.compaction import compact_corpus, fill_nulls
from narch.dataset_builder.corpus import CorpusError, read_corpus, read_manifest
from narch.dataset_builder.schema import KEY_COLUMNS, ZC_COLUMNS
from narch.dataset_builder.tasks import TASKS, load_task
from narch.dataset_builder.train import DeviceData
from narch.dataset_builder.zero_cost import minibatch, zero_cost_scores
from narch.search_space import Network

SIDE = "_zc"
CHUNK = 50  # networks per side part


@dataclass
class ZcSummary:
    needed: int = 0  # rows lacking a score when it started (a proxy that cannot be computed stays null)
    computed: int = 0  # scored in this run
    reused: int = 0  # scored by an earlier, interrupted run
    filled: int = 0  # rows whose zc_* columns the final compaction filled
    wall_s: float = 0.0


def _side_scores(d: Path) -> pl.DataFrame | None:
    parts = sorted((d / SIDE).glob("part-*.parquet"))
    return pl.concat([pl.read_parquet(p) for p in parts], how="vertical_relaxed") if parts else None


def _write_side(d: Path, rows: list[dict[str, Any]]) -> None:
    (d / SIDE).mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
    table = pl.DataFrame(rows, infer_schema_length=None).to_arrow()
    atomic_write_bytes(d / SIDE / f"part-{stamp}.parquet", lambda f: pq.write_table(table, f))


@contextmanager
def _progress(console: Console | None, total: int) -> Iterator[Tracker | None]:
    """The shared progress display (a bar in a terminal, plain lines elsewhere), or none without a console."""
    if console is None:
        yield None
        return
    with track(console, "zero-cost scores", total, unit="nets") as tracker:
        yield tracker


def fill_zero_cost(corpus_dir: str | Path, *, data_dir: str | Path | None = None,
                   console: Console | None = None) -> ZcSummary:
    """Score every row that lacks zero-cost columns (its own training seed and training data), then merge."""
    d = Path(corpus_dir)
    manifest = read_manifest(d)
    if manifest.task not in TASKS:
        raise CorpusError(f"{d}: task {manifest.task!r} has no local data to score networks on (known tasks: "
                          f"{', '.join(TASKS)}); imported NAS-Bench-201 and NAS-Bench-101 corpora take NASLib's "
                          "precomputed scores instead")
    t0 = time.perf_counter()
    df = read_corpus(d)
    todo = df.filter(pl.col("arch_json").is_not_null() & pl.any_horizontal(pl.col(ZC_COLUMNS).is_null()))
    summary = ZcSummary(needed=todo.height)
    side = _side_scores(d)
    if side is not None and todo.height:
        done = side.select(KEY_COLUMNS).with_columns(*(pl.col(k).cast(todo.schema[k]) for k in KEY_COLUMNS))
        before = todo.height
        todo = todo.join(done, on=list(KEY_COLUMNS), how="anti", nulls_equal=True)
        summary.reused = before - todo.height
    data_seed = int(manifest.protocol.get("data_seed", 0))
    rows: list[dict[str, Any]] = []
    with _progress(console, todo.height) as tracker:
        for (n_train,), group in todo.group_by(["n_train"], maintain_order=True):
            task = load_task(manifest.task, n_train=n_train, data_dir=data_dir or manifest.data_dir,
                             data_seed=data_seed)
            data = DeviceData.from_task(task, torch.device("cpu"))
            batch = minibatch(data.x_train, data.y_train)
            for r in group.iter_rows(named=True):
                net = Network.from_json(r["arch_json"])
                zc = zero_cost_scores(net, batch, tuple(data.x_train.shape[1:]), data.n_classes, seed=int(r["seed"]))
                rows.append({k: r[k] for k in KEY_COLUMNS} | zc)
                summary.computed += 1
                if len(rows) >= CHUNK:
                    _write_side(d, rows)
                    rows = []
                if tracker is not None:
                    tracker.advance(note=r["arch_id"])
    if rows:
        _write_side(d, rows)
    side = _side_scores(d)
    if side is not None:
        gaps = pl.any_horizontal(pl.col(ZC_COLUMNS).is_null())
        before = df.filter(gaps).height
        compact_corpus(d, fill=fill_nulls(side, on=KEY_COLUMNS, columns=ZC_COLUMNS))
        summary.filled = before - read_corpus(d).filter(gaps).height
        shutil.rmtree(d / SIDE)
    summary.wall_s = time.perf_counter() - t0
    return summary

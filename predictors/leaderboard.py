"""The leaderboard: every family x target x training size x seed under the protocol, aggregated, best one frozen.

Freezing rule (declared, also written into leaderboard.md): at the largest training size, ranked by
- a target fitted in linear space (accuracy): the best mean Kendall τ (ties: lower mean MAE);
- a target fitted in log space (times, sizes): the lowest mean MAE in log space (ties: higher ±10 % hit rate).
The best-ranked family is re-tuned and refitted on every architecture of the corpus; if the refitted model answers
fewer than ``MIN_FROZEN_QPS`` batched queries per second (the controller's need), the next of the top
``CANDIDATES`` is tried. The result is written to ``out/frozen/``.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from narch.dataset_builder.corpus import read_corpus
from narch.predictors.artefacts import corpus_fingerprint, save_artefact
from narch.predictors.base import PREDICTORS, Predictor, Target
from narch.predictors.families import load_families, supports
from narch.predictors.features import row_descriptors
from narch.predictors.metrics import METRICS, score
from narch.predictors.protocol import SIZES, make_splits, query_groups, rows_of, train_sizes, write_splits
from narch.predictors.tuning import tune

MIN_FROZEN_QPS = 20_000
CANDIDATES = 3
QUERY_BATCH = 1024
QUICK_SIZES = (16, 64, 256, 1024)
RULE = {
    "linear": "best mean Kendall tau at the largest training size (ties: lower MAE)",
    "log": "lowest mean MAE in log space at the largest training size (ties: higher ±10 % hit rate)",
    "throughput": f"the refitted model must answer >= {MIN_FROZEN_QPS} batched queries/s (batch {QUERY_BATCH}, best "
                  f"of 5); the top {CANDIDATES} by quality are tried in order",
}


@dataclass
class LeaderboardConfig:
    """What one leaderboard run evaluates."""

    corpus: Path
    out: Path
    targets: tuple[str, ...] = ("val_acc", "train_time_s")
    predictors: tuple[str, ...] | None = None
    seeds: int = 5
    trials: int = 10
    sizes: tuple[int, ...] = SIZES
    include_all: bool = True
    test_frac: float = 0.2
    max_test: int = 1000
    freeze: bool = True
    quick: bool = False
    command: str = ""
    where: dict[str, Any] = field(default_factory=dict)  # column == value filters applied to the corpus first
    family_trials: dict[str, int] = field(default_factory=dict)  # per-family trial budgets (slow families)
    family_sizes: dict[str, tuple[int, ...]] = field(default_factory=dict)  # sizes a family is limited to
    extra: dict[str, Any] = field(default_factory=dict)

    def trials_for(self, family: str) -> int:
        return self.family_trials.get(family, self.trials)

    def runs_at(self, family: str, size: int, *, largest: int) -> bool:
        """Whether a family is evaluated at a size (the whole pool counts as size ``largest``)."""
        allowed = self.family_sizes.get(family)
        return allowed is None or size in allowed or (size == largest and -1 in allowed)

    def __post_init__(self) -> None:
        if self.seeds < 1:
            raise ValueError(f"--seeds must be >= 1, got {self.seeds}")
        if self.trials < 0:
            raise ValueError(f"--trials must be >= 0, got {self.trials}")


@dataclass
class LeaderboardResult:
    """Per-cell results, the aggregated board and what was frozen."""

    cells: pl.DataFrame
    board: pl.DataFrame
    frozen: dict[str, str]
    predictions: dict[tuple[str, str], tuple[np.ndarray, np.ndarray]]
    split_digests: dict[str, dict[str, str]]
    wall_s: float


Progress = Callable[[str, int], None]  # (description, cells just finished)


def target_rows(rows: pl.DataFrame, target: Target) -> pl.DataFrame:
    """OK rows with a usable value of the target (positive where fitted in log space)."""
    if target.name not in rows.columns:
        raise ValueError(f"the corpus has no column {target.name!r}")
    if not rows[target.name].dtype.is_numeric():
        raise ValueError(f"column {target.name!r} is not numeric ({rows[target.name].dtype})")
    out = rows.filter(pl.col(target.name).is_not_null() & pl.col(target.name).is_not_nan())
    if target.log:
        out = out.filter(pl.col(target.name) > 0)
    return out


def query_rate(pred: Predictor, rows: pl.DataFrame, *, seed: int = 0, repeats: int = 3) -> float:
    """Queries per second of a warm predictor on a batch of QUERY_BATCH rows: the best of ``repeats`` timed calls
    after a warm-up that caches the features (the best, because other work on a shared machine only slows it)."""
    idx = np.random.default_rng(seed).integers(0, rows.height, QUERY_BATCH)
    batch = rows.select(pl.all().gather(idx.tolist()))
    pred.predict(batch)
    best = math.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        pred.predict(batch)
        best = min(best, time.perf_counter() - t0)
    return QUERY_BATCH / max(best, 1e-9)


def evaluate_cell(
    cls: type[Predictor], train: pl.DataFrame, test: pl.DataFrame, y_test: np.ndarray, target: Target, *,
    trials: int, seed: int,
) -> tuple[dict[str, Any], np.ndarray]:
    """Tune on the training rows, fit, score on the test configurations; returns the row and the predictions."""
    t0 = time.perf_counter()
    params, records = tune(cls, train, target, trials=trials, seed=seed)
    tune_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    pred = cls(seed=seed, **params).fit(train, target)
    fit_s = time.perf_counter() - t0
    yhat = np.asarray(pred.predict(test), dtype=np.float64)
    row = score(yhat, y_test, log=target.log)
    row |= {"fit_s": fit_s, "tune_s": tune_s, "qps": query_rate(pred, test, seed=seed),
            "params": json.dumps(params, sort_keys=True), "trials_run": len(records)}
    return row, yhat


def _aggregate(cells: pl.DataFrame) -> pl.DataFrame:
    aggs: list[pl.Expr] = [pl.len().alias("n_seeds"), pl.col("n_train_archs").first(), pl.col("n_test").first()]
    for m in (*METRICS, "fit_s", "qps"):
        aggs += [pl.col(m).mean().alias(f"{m}_mean"),
                 (pl.col(m).std() / pl.len().cast(pl.Float64).sqrt()).fill_null(0.0).alias(f"{m}_se")]
    return cells.group_by("target", "predictor", "size_label", "size").agg(aggs).sort("target", "size", "predictor")


def ranked(board: pl.DataFrame, target: Target) -> list[str]:
    """Families at the largest training size, best first under the declared quality rule."""
    b = board.filter(pl.col("target") == target.name)
    if b.height == 0:
        return []
    b = b.filter(pl.col("size") == b["size"].max())
    if target.log:
        b = b.with_columns(pl.col("mae_log_mean").fill_nan(math.inf)).sort(
            ["mae_log_mean", "within_10pct_mean"], descending=[False, True])
    else:
        b = b.sort(["kendall_tau_mean", "mae_mean"], descending=[True, False])
    return [str(x) for x in b["predictor"]]


def pick_best(board: pl.DataFrame, target: Target) -> str | None:
    """The best family by quality alone (freeze_best then checks its throughput on the refitted model)."""
    r = ranked(board, target)
    return r[0] if r else None


def typical_task(rows: pl.DataFrame) -> dict[str, Any]:
    """The most common task description among rows (what `narch predict` assumes by default); nulls match nulls."""
    keys = [c for c in ("task", "n_train", "epochs", "batch_size") if c in rows.columns]
    if not keys:
        return row_descriptors(rows.row(0, named=True))
    top = rows.group_by(keys).len().sort("len", descending=True).row(0, named=True)
    first = rows.filter(pl.all_horizontal(pl.col(k).eq_missing(top[k]) for k in keys)).row(0, named=True)
    return row_descriptors(first) | {"task": first["task"]} if "task" in first else row_descriptors(first)


def run_leaderboard(cfg: LeaderboardConfig, *, progress: Progress | None = None) -> LeaderboardResult:
    """Evaluate, aggregate and freeze; writing the files is leaderboard_report's job."""
    start = time.perf_counter()
    load_families()
    names = list(cfg.predictors) if cfg.predictors else PREDICTORS.names()
    classes = {n: PREDICTORS.get(n) for n in names}
    rows = load_rows(cfg)
    sizes = QUICK_SIZES if cfg.quick and cfg.sizes == SIZES else cfg.sizes
    records: list[dict[str, Any]] = []
    preds: dict[tuple[str, str], tuple[np.ndarray, np.ndarray]] = {}
    digests: dict[str, dict[str, str]] = {}
    plan = _plan(cfg, rows, classes, sizes)
    for tname, (trows, splits, tsizes, fams) in plan.items():
        target = Target.of(tname)
        digests[tname] = write_splits(cfg.out / "splits" / tname, splits, tsizes)
        for sp in splits:
            test_rows, y_test = query_groups(rows_of(trows, sp.test), tname)
            y = y_test.to_numpy()
            for n in tsizes:
                train = rows_of(trows, sp.train(n))
                label = "all" if n == len(sp.pool) and cfg.include_all else str(n)
                for fam in fams:
                    if not cfg.runs_at(fam, n, largest=tsizes[-1]):
                        continue
                    row, yhat = evaluate_cell(classes[fam], train, test_rows, y, target, trials=cfg.trials_for(fam),
                                              seed=sp.seed)
                    records.append({"target": tname, "predictor": fam, "size": n, "size_label": label,
                                    "seed": sp.seed, "n_train_archs": n, "n_train_rows": train.height,
                                    "n_test": len(y), **row})
                    if sp.seed == 0:  # sizes ascend: the family's largest size is kept for the scatter plot
                        preds[(tname, fam)] = (y, yhat)
                    if progress:
                        progress(f"{tname} {fam} n={label} seed {sp.seed}", 1)
    cells = pl.DataFrame(records)
    board = _aggregate(cells)
    frozen: dict[str, str] = {}
    if cfg.freeze:
        frozen = freeze_best(cfg, rows, board, classes, list(plan))
    return LeaderboardResult(cells, board, frozen, preds, digests, time.perf_counter() - start)


def load_rows(cfg: LeaderboardConfig) -> pl.DataFrame:
    """The corpus's ok rows that pass the ``where`` filters."""
    rows = read_corpus(cfg.corpus).filter(pl.col("status") == "ok")
    for col, value in cfg.where.items():
        if col not in rows.columns:
            raise ValueError(f"--where: the corpus has no column {col!r}")
        rows = rows.filter(pl.col(col).cast(pl.String) == str(value))
    if rows.height == 0:
        raise ValueError(f"{cfg.corpus}: no ok rows" + (f" where {cfg.where}" if cfg.where else ""))
    return rows


def _plan(cfg: LeaderboardConfig, rows: pl.DataFrame, classes: dict[str, type[Predictor]], sizes: tuple[int, ...]
          ) -> dict[str, tuple[pl.DataFrame, list[Any], list[int], list[str]]]:
    plan = {}
    for tname in cfg.targets:
        target = Target.of(tname)
        trows = target_rows(rows, target)
        fams = [n for n, c in classes.items() if supports(c, target)]
        if not fams:
            raise ValueError(f"no selected predictor models target {tname!r}")
        splits = make_splits(trows["arch_id"].to_list(), seeds=cfg.seeds, test_frac=cfg.test_frac,
                             max_test=cfg.max_test)
        plan[tname] = (trows, splits, train_sizes(len(splits[0].pool), sizes, include_all=cfg.include_all), fams)
    return plan


def total_cells(cfg: LeaderboardConfig) -> int:
    """Cells a run will evaluate (for a progress bar)."""
    load_families()
    names = list(cfg.predictors) if cfg.predictors else PREDICTORS.names()
    classes = {n: PREDICTORS.get(n) for n in names}
    rows = load_rows(cfg)
    sizes = QUICK_SIZES if cfg.quick and cfg.sizes == SIZES else cfg.sizes
    return sum(len(sp) * sum(cfg.runs_at(fam, n, largest=sz[-1]) for n in sz for fam in f)
               for _, sp, sz, f in _plan(cfg, rows, classes, sizes).values())


def _freeze_one(cfg: LeaderboardConfig, trows: pl.DataFrame, board: pl.DataFrame,
                classes: dict[str, type[Predictor]], target: Target) -> tuple[str, Predictor, dict[str, Any]] | None:
    """The best-ranked family whose refitted model reaches MIN_FROZEN_QPS (best of 5 timed batches); the top
    CANDIDATES are tried in rank order, and when none is fast enough the best by quality is kept and flagged."""
    first: tuple[str, Predictor, dict[str, Any]] | None = None
    for fam in ranked(board, target)[:CANDIDATES]:
        params, _ = tune(classes[fam], trows, target, trials=cfg.trials_for(fam), seed=0)
        pred = classes[fam](seed=0, **params).fit(trows, target)
        qps = query_rate(pred, trows, repeats=5)
        info = {"params": params, "frozen_qps": round(qps), "meets_throughput_rule": qps >= MIN_FROZEN_QPS}
        if qps >= MIN_FROZEN_QPS:
            return fam, pred, info
        first = first or (fam, pred, info)
    return first


def freeze_best(cfg: LeaderboardConfig, rows: pl.DataFrame, board: pl.DataFrame,
                classes: dict[str, type[Predictor]], targets: list[str]) -> dict[str, str]:
    """Refit each target's winner on all its rows (re-tuned) and write one artefact into ``out/frozen``."""
    fitted: dict[str, Predictor] = {}
    metrics: dict[str, dict[str, Any]] = {}
    used = []
    for tname in targets:
        target = Target.of(tname)
        trows = target_rows(rows, target)
        chosen = _freeze_one(cfg, trows, board, classes, target)
        if chosen is None:
            continue
        fam, fitted[tname], info = chosen
        row = board.filter((pl.col("target") == tname) & (pl.col("predictor") == fam))
        metrics[tname] = {"rule": RULE["log" if target.log else "linear"], "throughput_rule": RULE["throughput"],
                          "leaderboard_row": row.filter(pl.col("size") == row["size"].max()).to_dicts()[0],
                          "fitted_on_rows": trows.height, **info}
        used.append(trows)
    if not fitted:
        return {}
    allrows = pl.concat(used, how="vertical_relaxed").unique(subset=["arch_id", "seed"], maintain_order=True)
    save_artefact(cfg.out / "frozen", fitted, fingerprint=corpus_fingerprint(allrows), metrics=metrics,
                  extra={"corpus": str(cfg.corpus), "command": cfg.command, "descriptors": typical_task(allrows)})
    return {t: p.name for t, p in fitted.items()}


def refreeze(cfg: LeaderboardConfig) -> dict[str, str]:
    """Redo only the freezing step from a finished run's leaderboard.parquet (same corpus and filters)."""
    load_families()
    board = pl.read_parquet(cfg.out / "leaderboard.parquet")
    classes = {n: PREDICTORS.get(n) for n in sorted(set(board["predictor"]))}
    targets = [t for t in cfg.targets if t in set(board["target"])]
    if cfg.out.joinpath("frozen").exists():
        import shutil

        shutil.rmtree(cfg.out / "frozen")
    return freeze_best(cfg, load_rows(cfg), board, classes, targets)

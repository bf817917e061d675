"""The leaderboard: every family x target x training size x seed under the protocol, aggregated, best one frozen.

The corpus is read once and the splits are built once (``plan_leaderboard``); evaluating, aggregating and freezing
all take that plan. Freezing (the declared rule) is ``predictors.freeze``: the only way to freeze.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from narch.core.checks import check_float, check_int, check_out_folder
from narch.core.errors import SettingError
from narch.core.store import Location
from narch.dataset_builder.corpus import read_corpus
from narch.predictors.base import PREDICTORS, Predictor, Target
from narch.predictors.cell_store import CellStore, target_digest
from narch.predictors.families import fit_extras, load_families, offered, supports
from narch.predictors.freeze import RULE, freeze, pick_best, query_rate, ranked, target_rows
from narch.predictors.metrics import METRICS, score
from narch.predictors.protocol import (
    SIZES,
    Split,
    make_splits,
    query_groups,
    rows_of,
    split_digests,
    train_sizes,
    write_splits,
)
from narch.predictors.tuning import tune

__all__ = ["RULE", "SIZES", "LeaderboardConfig", "LeaderboardPlan", "LeaderboardResult", "freeze_with",
           "pick_best", "plan_leaderboard", "ranked", "run_leaderboard"]

QUICK_SIZES = (16, 64, 256, 1024)
QUICK_TRIALS = 2  # --quick: at most this many Optuna trials per cell
# --quick on a 2-core CPU (a 30-network corpus in about a minute): families that declare ``slow`` (the neural ones)
# run at the whole pool only, with their defaults; ``quick_skip`` families (the deep ensemble) run only when named.


@dataclass
class LeaderboardConfig:
    """What one leaderboard run evaluates."""

    corpus: Location  # a folder, or an object store's URL
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
    restart: bool = False  # drop the finished cells in out/cells and evaluate every cell again

    def trials_for(self, family: str) -> int:
        if family in self.family_trials:
            return self.family_trials[family]
        if self.quick:
            return 0 if _flag(family, "slow") else min(self.trials, QUICK_TRIALS)
        return self.trials

    def runs_at(self, family: str, size: int, *, largest: int) -> bool:
        """Whether a family is evaluated at a size (the whole pool counts as size ``largest``)."""
        allowed = self.family_sizes.get(family)
        if allowed is None and self.quick and _flag(family, "slow"):
            allowed = (-1,)
        return allowed is None or size in allowed or (size == largest and -1 in allowed)

    def __post_init__(self) -> None:
        """Every count checked now, before the corpus is read."""
        check_int("--seeds", self.seeds, low=1)
        check_int("--trials", self.trials, low=0)
        check_int("--max-test", self.max_test, low=1)
        check_float("test_frac", self.test_frac, low=0, low_open=True, high=1, high_open=True)
        if not self.sizes:
            raise SettingError("--sizes is empty")
        for n in self.sizes:
            check_int("--sizes", n, low=1)
        for family, n in self.family_trials.items():
            check_int(f"--family-trials {family}", n, low=0)
        for family, sizes in self.family_sizes.items():
            for n in sizes:
                if n != -1:  # -1: the whole pool ('all')
                    check_int(f"--family-sizes {family}", n, low=1)
        check_out_folder("--out", self.out)


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


@dataclass(frozen=True)
class TargetPlan:
    """One target's usable rows, its split per seed, the training sizes and the families that model it."""

    rows: pl.DataFrame
    splits: list[Split]
    sizes: list[int]
    families: list[str]

    @property
    def digests(self) -> dict[str, str]:
        """sha256 of its split files (computed, not written)."""
        return split_digests(self.splits, self.sizes)


@dataclass(frozen=True)
class LeaderboardPlan:
    """What a leaderboard run evaluates, built once from one read of the corpus."""

    rows: pl.DataFrame  # the corpus's ok rows after the ``where`` filters
    classes: dict[str, type[Predictor]]
    targets: dict[str, TargetPlan]
    total_cells: int  # cells the run evaluates (for a progress bar)


def _flag(family: str, name: str) -> bool:
    """A family's class attribute ``name`` (False for a family not registered)."""
    return family in PREDICTORS.names() and bool(getattr(PREDICTORS.get(family), name, False))


def load_rows(cfg: LeaderboardConfig) -> pl.DataFrame:
    """The corpus's ok rows that pass the ``where`` filters."""
    return filter_rows(read_corpus(cfg.corpus), cfg)


def filter_rows(rows: pl.DataFrame, cfg: LeaderboardConfig) -> pl.DataFrame:
    """Ok rows that pass the ``where`` filters (of a corpus already read)."""
    return ok_rows_where(rows, cfg.where, cfg.corpus)


def ok_rows_where(rows: pl.DataFrame, where: dict[str, Any], name: object) -> pl.DataFrame:
    """Ok rows whose columns equal the ``where`` values (compared as strings, as a command line gives them)."""
    rows = rows.filter(pl.col("status") == "ok")
    for col, value in where.items():
        if col not in rows.columns:
            raise ValueError(f"--where: the corpus has no column {col!r}")
        rows = rows.filter(pl.col(col).cast(pl.String) == str(value))
    if rows.height == 0:
        raise ValueError(f"{name}: no ok rows" + (f" where {where}" if where else ""))
    return rows


def plan_leaderboard(cfg: LeaderboardConfig, *, rows: pl.DataFrame | None = None) -> LeaderboardPlan:
    """Read the corpus (unless ``rows``, the corpus already in memory, is given) and build every split."""
    load_families()
    names = list(cfg.predictors) if cfg.predictors else [
        n for n in PREDICTORS.names() if not (cfg.quick and _flag(n, "quick_skip"))]
    classes = {n: PREDICTORS.get(n) for n in names}
    ok = filter_rows(rows, cfg) if rows is not None else load_rows(cfg)
    sizes = QUICK_SIZES if cfg.quick and cfg.sizes == SIZES else cfg.sizes
    targets, total = {}, 0
    for tname in cfg.targets:
        target = Target.of(tname)
        trows = target_rows(ok, target)
        fams = [n for n, c in classes.items() if supports(c, target) and offered(c, trows)]
        if not fams:
            raise ValueError(f"no selected predictor models target {tname!r}")
        try:
            splits = make_splits(trows["arch_id"].to_list(), seeds=cfg.seeds, test_frac=cfg.test_frac,
                                 max_test=cfg.max_test)
        except ValueError as e:
            raise ValueError(f"target {tname!r}: {trows.height} of the corpus's {ok.height} ok rows have a usable "
                             f"value in column {tname!r}, so {e}; choose targets with --target") from None
        tsizes = train_sizes(len(splits[0].pool), sizes, include_all=cfg.include_all)
        targets[tname] = TargetPlan(trows, splits, tsizes, fams)
        total += len(splits) * sum(cfg.runs_at(f, n, largest=tsizes[-1]) for n in tsizes for f in fams)
    return LeaderboardPlan(ok, classes, targets, total)


def evaluate_cell(
    cls: type[Predictor], train: pl.DataFrame, test: pl.DataFrame, y_test: np.ndarray, target: Target, *,
    trials: int, seed: int, unlabeled: pl.DataFrame | None = None,
) -> tuple[dict[str, Any], np.ndarray]:
    """Tune on the training rows, fit, score on the test configurations; returns the row and the predictions.
    ``unlabeled``: the corpus's architectures, for families that pretrain on them (labels are cut off first)."""
    extras = fit_extras(cls, unlabeled)
    t0 = time.perf_counter()
    params, records = tune(cls, train, target, trials=trials, seed=seed, extras=extras)
    tune_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    pred = cls(seed=seed, **params).fit(train, target, **extras)
    fit_s = time.perf_counter() - t0
    yhat = np.asarray(pred.predict(test), dtype=np.float64)
    row = score(yhat, y_test, log=target.log)
    row |= {"fit_s": fit_s, "tune_s": tune_s, "qps": query_rate(pred, test, seed=seed),
            "params": json.dumps(params, sort_keys=True), "trials_run": len(records)}
    return row, yhat


def aggregate(cells: pl.DataFrame) -> pl.DataFrame:
    """Mean and standard error over seeds per target, family and training size."""
    aggs: list[pl.Expr] = [pl.len().alias("n_seeds"), pl.col("n_train_archs").first(), pl.col("n_test").first()]
    for m in (*METRICS, "fit_s", "qps"):
        aggs += [pl.col(m).mean().alias(f"{m}_mean"),
                 (pl.col(m).std() / pl.len().cast(pl.Float64).sqrt()).fill_null(0.0).alias(f"{m}_se")]
    return cells.group_by("target", "predictor", "size_label", "size").agg(aggs).sort("target", "size", "predictor")


def open_cells(cfg: LeaderboardConfig, plan: LeaderboardPlan) -> CellStore:
    """The finished cells of ``cfg.out``, refused (CellStoreError, nothing written) when they come from another
    split, filter or corpus; ``cfg.restart`` drops them."""
    return CellStore(cfg.out, {"splits": {t: tp.digests for t, tp in plan.targets.items()}, "where": cfg.where,
                               "values": {t: target_digest(tp.rows, t) for t, tp in plan.targets.items()}},
                     restart=cfg.restart)


def run_leaderboard(cfg: LeaderboardConfig, plan: LeaderboardPlan | None = None, *,
                    progress: Progress | None = None, store: CellStore | None = None) -> LeaderboardResult:
    """Evaluate every cell of ``plan`` (built here when not given), aggregate, and freeze when ``cfg.freeze``;
    writing the report is leaderboard_report's job."""
    start = time.perf_counter()
    plan = plan or plan_leaderboard(cfg)
    records: list[dict[str, Any]] = []
    preds: dict[tuple[str, str], tuple[np.ndarray, np.ndarray]] = {}
    store = store or open_cells(cfg, plan)
    digests = {}
    for t, tp in plan.targets.items():
        digests[t] = tp.digests
        write_splits(cfg.out / "splits" / t, tp.splits, tp.sizes)
    for tname, tp in plan.targets.items():
        target = Target.of(tname)
        for sp in tp.splits:
            test_rows, y_test = query_groups(rows_of(tp.rows, sp.test), tname)
            y = y_test.to_numpy()
            for n in tp.sizes:
                train = rows_of(tp.rows, sp.train(n))
                label = "all" if n == len(sp.pool) and cfg.include_all else str(n)
                for fam in tp.families:
                    if not cfg.runs_at(fam, n, largest=tp.sizes[-1]):
                        continue
                    trials = cfg.trials_for(fam)
                    done = store.get(tname, fam, label, sp.seed, trials)
                    if done is None:
                        row, yhat = evaluate_cell(plan.classes[fam], train, test_rows, y, target, trials=trials,
                                                  seed=sp.seed, unlabeled=tp.rows)
                        store.put(tname, fam, label, sp.seed, trials, row, yhat if sp.seed == 0 else None)
                    else:
                        row, kept = done
                        yhat = kept if kept is not None else np.full(len(y), np.nan)
                    records.append({"target": tname, "predictor": fam, "size": n, "size_label": label,
                                    "seed": sp.seed, "n_train_archs": n, "n_train_rows": train.height,
                                    "n_test": len(y), **row})
                    if sp.seed == 0:  # sizes ascend: the family's largest size is kept for the scatter plot
                        preds[(tname, fam)] = (y, yhat)
                    if progress:
                        progress(f"{tname} {fam} n={label} seed {sp.seed}" + (" (saved)" if done else ""), 1)
    cells = pl.DataFrame(records)
    board = aggregate(cells)
    frozen = freeze_with(cfg, plan.rows, board=board) if cfg.freeze else {}
    return LeaderboardResult(cells, board, frozen, preds, digests, time.perf_counter() - start)


def freeze_with(cfg: LeaderboardConfig, rows: pl.DataFrame, *, board: pl.DataFrame | None = None,
                family: str | None = None) -> dict[str, str]:
    """``predictors.freeze.freeze`` under this config: its targets, trial budgets, corpus and ``out/frozen``;
    ranked on ``board`` (a leaderboard's) or the one ``family`` named."""
    targets = [t for t in cfg.targets if board is None or t in set(board["target"])]
    return freeze(rows, targets, out=cfg.out / "frozen", corpus=cfg.corpus, command=cfg.command, board=board,
                  family=family, trials=cfg.trials_for)

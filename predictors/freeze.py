"""Freezing: the one way a fitted predictor becomes an artefact the controller loads (``out/frozen/``).

Rule (declared, also written into leaderboard.md and into each artefact entry): at the largest training size of a
leaderboard, families are ranked by
- a target fitted in linear space (accuracy): the best mean Kendall τ (ties: lower mean MAE);
- a target fitted in log space (times, sizes): the lowest mean MAE in log space (ties: higher ±10 % hit rate).
The best-ranked family is re-tuned and refitted on every architecture of the corpus; if the refitted model answers
fewer than ``MIN_FROZEN_QPS`` batched queries per second (the controller's need), the next of the top
``CANDIDATES`` is tried. A caller may instead name one family (no ranking): it is tuned, refitted and timed the same
way, and the artefact records that it was named.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from narch.predictors.artefacts import FINGERPRINT_COLUMNS, corpus_fingerprint, save_artefact
from narch.predictors.base import PREDICTORS, Predictor, Target
from narch.predictors.families import load_families, row_only, supports
from narch.predictors.features import row_descriptors
from narch.predictors.tuning import tune

MIN_FROZEN_QPS = 20_000
CANDIDATES = 3
QUERY_BATCH = 1024
RULE = {
    "linear": "best mean Kendall tau at the largest training size (ties: lower MAE)",
    "log": "lowest mean MAE in log space at the largest training size (ties: higher ±10 % hit rate)",
    "throughput": f"the refitted model must answer >= {MIN_FROZEN_QPS} batched queries/s (batch {QUERY_BATCH}, best "
                  f"of 5); the top {CANDIDATES} by quality are tried in order",
    "named": "the family was named by the caller (not ranked by a leaderboard)",
    "row_only": "families that read columns only corpus rows carry (zero-cost proxies) are ranked but never frozen: "
                "the controller scores networks without rows",
}


def target_rows(rows: pl.DataFrame, target: Target) -> pl.DataFrame:
    """OK rows with a usable value of the target (positive where fitted in log space)."""
    if target.name not in rows.columns:
        raise ValueError(f"the corpus has no column {target.name!r}")
    if not rows[target.name].dtype.is_numeric():
        raise ValueError(f"column {target.name!r} is not numeric ({rows[target.name].dtype})")
    out = rows.filter(pl.col("status") == "ok") if "status" in rows.columns else rows
    out = out.filter(pl.col(target.name).is_not_null() & pl.col(target.name).is_not_nan())
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
    """The best family by quality alone (``freeze`` then checks its throughput on the refitted model)."""
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


def _fit_first_fast(families: list[str], trows: pl.DataFrame, target: Target, trials: Callable[[str], int],
                    fixed: dict[str, Any] | None = None) -> tuple[str, Predictor, dict[str, Any]] | None:
    """The first family whose refitted model reaches MIN_FROZEN_QPS (best of 5 timed batches); when none is fast
    enough the first is kept and flagged. ``fixed``: hyperparameters to refit with instead of tuning."""
    first: tuple[str, Predictor, dict[str, Any]] | None = None
    for fam in families:
        cls = PREDICTORS.get(fam)
        params = dict(fixed) if fixed is not None else tune(cls, trows, target, trials=trials(fam), seed=0)[0]
        pred = cls(seed=0, **params).fit(trows, target)
        qps = query_rate(pred, trows, repeats=5)
        info = {"params": params, "frozen_qps": round(qps), "meets_throughput_rule": qps >= MIN_FROZEN_QPS}
        if qps >= MIN_FROZEN_QPS:
            return fam, pred, info
        first = first or (fam, pred, info)
    return first


def _candidates(target: Target, board: pl.DataFrame | None, family: str | None) -> list[str]:
    if family is not None:
        if row_only(PREDICTORS.get(family)):
            raise ValueError(f"family {family!r} reads zero-cost columns of corpus rows: it cannot score the "
                             "controller's new networks, so it is never frozen")
        return [family] if supports(PREDICTORS.get(family), target) else []
    if board is None:
        raise ValueError("freeze needs a leaderboard to rank families, or one family named")
    return [f for f in ranked(board, target) if not row_only(PREDICTORS.get(f))][:CANDIDATES]


def _row_of(board: pl.DataFrame | None, target: str, family: str) -> dict[str, Any] | None:
    if board is None:
        return None
    row = board.filter((pl.col("target") == target) & (pl.col("predictor") == family))
    return row.filter(pl.col("size") == row["size"].max()).to_dicts()[0] if row.height else None


def freeze(rows: pl.DataFrame, targets: Sequence[str], *, out: Path, corpus: str | Path, command: str,
           board: pl.DataFrame | None = None, family: str | Mapping[str, str] | None = None,
           trials: Callable[[str], int] = lambda _: 0,
           params: Mapping[str, dict[str, Any]] | None = None) -> dict[str, str]:
    """Freeze one predictor per target into ``out`` and return target -> family; the old ``out`` stays until the
    new one is complete (``save_artefact`` publishes it as a unit), so a crash during the refit leaves it.

    The candidates are the top ``CANDIDATES`` of ``board`` under the declared rule, or the one ``family`` named
    (for every target it models; a mapping names one per target); each is tuned with ``trials(family)`` Optuna
    trials on all of the target's rows (0: the family's defaults), or refitted with ``params[target]`` where given
    (the closed loop refits a frozen predictor's own hyperparameters), refitted on them, and timed."""
    load_families()
    families = family if isinstance(family, Mapping) else None
    for name in ([family] if isinstance(family, str) else list(families.values()) if families else []):
        PREDICTORS.get(name)  # an unknown name fails here, naming the known ones
    fitted: dict[str, Predictor] = {}
    metrics: dict[str, dict[str, Any]] = {}
    used = []
    for tname in targets:
        target = Target.of(tname)
        trows = target_rows(rows, target)
        named = families.get(tname) if families is not None else family
        if families is not None and named is None:
            continue
        assert not isinstance(named, Mapping)
        fixed = (params or {}).get(tname)
        chosen = _fit_first_fast(_candidates(target, board, named), trows, target, trials, fixed)
        if chosen is None:
            continue
        fam, fitted[tname], info = chosen
        rule = RULE["named"] if named is not None else RULE["log" if target.log else "linear"]
        y = trows[tname].cast(pl.Float64)
        metrics[tname] = {"rule": rule, "throughput_rule": RULE["throughput"], "fitted_on_rows": trows.height,
                          "label_range": [float(y.min()), float(y.max())],  # type: ignore[arg-type]
                          **({"leaderboard_row": r} if (r := _row_of(board, tname, fam)) else {}), **info}
        used.append(trows)
    if not fitted:
        if family is not None:
            raise ValueError(f"family {family!r} models none of the targets {', '.join(targets)}")
        return {}
    allrows = pl.concat(used, how="vertical_relaxed")
    allrows = allrows.unique(subset=[c for c in FINGERPRINT_COLUMNS if c in allrows.columns], maintain_order=True)
    # save_artefact swaps the new folder in only once it is written and loads: until then ``out`` is the old one
    save_artefact(out, fitted, fingerprint=corpus_fingerprint(allrows), metrics=metrics,
                  extra={"corpus": str(corpus), "command": command, "descriptors": typical_task(allrows)})
    return {t: p.name for t, p in fitted.items()}

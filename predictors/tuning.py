"""Hyperparameter tuning with Optuna on a training split only (TPE; an inner validation split by architecture).

Families that report intermediate validation losses (``reports_progress``; see predictors/base.py) run under a
MedianPruner; the others under no pruner. The objective is the validation L1 in fitting space (the paper's loss).
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import polars as pl

from narch.predictors.base import Predictor, Target

MIN_ARCHS = 8  # below this an inner split leaves too little to fit or judge: use the family's defaults


def has_search_space(cls: type[Predictor]) -> bool:
    import optuna

    trial = optuna.create_study().ask()
    return bool(cls.search_space(trial))


def inner_split(rows: pl.DataFrame, *, seed: int, frac: float = 0.25) -> tuple[pl.DataFrame, pl.DataFrame]:
    ids = sorted(set(rows["arch_id"].to_list()))
    random.Random(10_000 + seed).shuffle(ids)
    n_val = max(2, round(frac * len(ids)))
    val = set(ids[:n_val])
    mask = pl.col("arch_id").is_in(list(val))
    return rows.filter(~mask), rows.filter(mask)


def tune(cls: type[Predictor], rows: pl.DataFrame, target: Target, *, trials: int, seed: int,
         extras: dict[str, Any] | None = None) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Best hyperparameters for ``cls`` on ``rows`` within ``trials`` trials, and every trial's record; ``extras``:
    further keyword arguments of every fit (``predictors.families.fit_extras``)."""
    extras = extras or {}
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if trials <= 0 or rows["arch_id"].n_unique() < MIN_ARCHS or not has_search_space(cls):
        return {}, []
    fit_rows, val_rows = inner_split(rows, seed=seed)
    y_val = target.forward(val_rows[target.name].cast(pl.Float64).to_numpy())
    progress = bool(getattr(cls, "reports_progress", False))
    pruner: optuna.pruners.BasePruner = (
        optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=1) if progress else optuna.pruners.NopPruner()
    )
    study = optuna.create_study(direction="minimize", sampler=optuna.samplers.TPESampler(seed=seed), pruner=pruner)

    def objective(trial: optuna.Trial) -> float:
        params = cls.search_space(trial)
        trial.set_user_attr("params", params)
        pred = cls(seed=seed, **params)
        if progress:
            def report(step: int, value: float) -> None:
                trial.report(value, step)
                if trial.should_prune():
                    raise optuna.TrialPruned()

            pred.fit(fit_rows, target, val_rows=val_rows, report=report, **extras)  # type: ignore[call-arg]
        else:
            pred.fit(fit_rows, target, **extras)
        z = target.forward(np.maximum(pred.predict(val_rows), 1e-12) if target.log else pred.predict(val_rows))
        return float(np.mean(np.abs(z - y_val)))

    study.optimize(objective, n_trials=trials, catch=(ValueError, FloatingPointError))
    records = [{"number": t.number, "state": t.state.name, "value": t.value, "params": t.user_attrs.get("params")}
               for t in study.trials]
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not done:
        return {}, records
    return dict(study.best_trial.user_attrs["params"]), records

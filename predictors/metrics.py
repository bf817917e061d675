"""Leaderboard metrics: errors, rank correlations, top-decile overlap, ±10 % hit rate."""

from __future__ import annotations

import math

import numpy as np
from scipy.stats import kendalltau, spearmanr

METRICS = ("mae", "rmse", "mae_log", "kendall_tau", "spearman", "precision_at_10pct", "within_10pct")


def precision_at(pred: np.ndarray, true: np.ndarray, *, frac: float = 0.1, higher_is_better: bool = True) -> float:
    """Overlap of the predicted and the true best ``frac`` of the test set (|top_pred ∩ top_true| / k)."""
    n = len(true)
    k = max(1, math.ceil(frac * n))
    sign = -1.0 if higher_is_better else 1.0
    top_p = set(np.argsort(sign * pred, kind="stable")[:k].tolist())
    top_t = set(np.argsort(sign * true, kind="stable")[:k].tolist())
    return len(top_p & top_t) / k


def within(pred: np.ndarray, true: np.ndarray, *, rel: float = 0.1) -> float:
    """Fraction of predictions within ±rel of the measured value."""
    return float(np.mean(np.abs(pred - true) <= rel * np.abs(true)))


def _corr(fn: object, pred: np.ndarray, true: np.ndarray) -> float:
    if len(true) < 2 or np.ptp(pred) == 0 or np.ptp(true) == 0:
        return 0.0  # a constant prediction ranks nothing (scipy would give nan)
    return float(fn(pred, true).statistic)  # type: ignore[operator]


def score(pred: np.ndarray, true: np.ndarray, *, log: bool) -> dict[str, float]:
    """Every metric of one test set; ``log`` targets (times, sizes) add MAE in log space and the ±10 % rate."""
    pred = np.asarray(pred, dtype=np.float64)
    true = np.asarray(true, dtype=np.float64)
    err = pred - true
    out = {
        "mae": float(np.mean(np.abs(err))),
        "rmse": float(np.sqrt(np.mean(err**2))),
        "kendall_tau": _corr(kendalltau, pred, true),
        "spearman": _corr(spearmanr, pred, true),
        "precision_at_10pct": precision_at(pred, true, higher_is_better=not log),
        "mae_log": float("nan"),
        "within_10pct": float("nan"),
    }
    if log:
        out["mae_log"] = float(np.mean(np.abs(np.log(np.maximum(pred, 1e-12)) - np.log(np.maximum(true, 1e-12)))))
        out["within_10pct"] = within(pred, true)
    return out

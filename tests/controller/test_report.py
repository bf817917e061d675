"""Pareto masks, exact hypervolume, best-so-far curves and confidence intervals."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from narch.controller.pareto import hypervolume, pareto_mask
from narch.controller.report import best_so_far, ci95, curve_stats


def test_pareto_mask_keeps_non_dominated_points_once() -> None:
    pts = np.array([[1, 1, 1], [0, 0, 0], [0, 0, 0], [2, 0, 0], [0, 2, -1]], dtype=float)
    assert pareto_mask(pts).tolist() == [False, True, False, False, True]


def test_hypervolume_exact_cases_and_monte_carlo() -> None:
    ref = np.ones(3)
    assert hypervolume(np.array([[0.5, 0.5, 0.5]]), ref) == pytest.approx(0.125)
    # union of two boxes minus their overlap
    assert hypervolume(np.array([[0.5, 0.5, 0.5], [0.0, 0.9, 0.9]]), ref) == pytest.approx(0.13)
    assert hypervolume(np.array([[1.5, 0.1, 0.1]]), ref) == 0.0  # beyond the reference point
    rng = np.random.default_rng(0)
    pts = rng.random((25, 3))
    mc = rng.random((200_000, 3))
    dominated = np.zeros(len(mc), dtype=bool)
    for p in pts:
        dominated |= np.all(mc >= p, axis=1)
    assert hypervolume(pts, ref) == pytest.approx(dominated.mean(), abs=0.005)


def test_best_so_far_is_monotone_and_carried_past_a_runs_end() -> None:
    hist = pl.DataFrame({"strategy": ["a"] * 3 + ["a"] * 2, "seed": [0, 0, 0, 1, 1], "query": [1, 2, 3, 1, 2],
                         "reward": [0.5, 0.4, 0.7, 0.6, 0.8]})
    curves = best_so_far(hist, 4)
    s0 = curves.filter(pl.col("seed") == 0)["best_reward"].to_list()
    s1 = curves.filter(pl.col("seed") == 1)["best_reward"].to_list()
    assert s0 == [0.5, 0.5, 0.7, 0.7] and s1 == [0.6, 0.8, 0.8, 0.8]
    st = curve_stats(curves).filter(pl.col("query") == 4)
    assert st["mean"][0] == pytest.approx(0.75) and st["n_seeds"][0] == 2
    # two seeds: the plotted band is the exact bootstrap's, the two values, not mean ± 12.7 standard errors
    assert (st["lo"][0], st["hi"][0]) == pytest.approx((0.7, 0.8))
    st = curve_stats(curves, bounds=(None, 0.78)).filter(pl.col("query") == 4)
    assert st["hi"][0] == pytest.approx(0.78)


def test_ci95_is_a_t_interval() -> None:
    x = np.array([1.0, 2.0, 3.0, 4.0])
    assert ci95(x) == pytest.approx(3.182446 * x.std(ddof=1) / 2, rel=1e-5)
    assert np.isnan(ci95(np.array([1.0])))

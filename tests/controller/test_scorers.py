"""The ridge ensemble scorer on a real tiny corpus: shapes, uncertainty, the mean - lambda * std guard."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import polars as pl

from narch.controller.env import Evaluator
from narch.controller.objectives import Objectives, TaskContext, model_size_bytes
from narch.controller.reward import Penalty, RewardConfig
from narch.controller.scorers import RidgeEnsemble
from narch.dataset_builder.corpus import read_corpus
from narch.search_space import SEEDS, Network


def test_ridge_ensemble_predicts_means_and_spreads(tiny_corpus: Path) -> None:
    rows = read_corpus(tiny_corpus)
    sc = RidgeEnsemble(members=4, alpha=3.0).fit(rows, ["val_acc", "train_time_s"])
    nets = list(SEEDS.values())
    p = sc.predict(nets)
    for t in ("val_acc", "train_time_s"):
        assert p[t].shape == (len(nets),) and np.isfinite(p[t]).all()
        assert (p[f"{t}_std"] >= 0).all() and p[f"{t}_std"].max() > 0
    assert (p["train_time_s"] > 0).all()


def test_guard_lowers_rewards_by_lambda_std(tiny_corpus: Path) -> None:
    rows = read_corpus(tiny_corpus)
    sc = RidgeEnsemble(members=4).fit(rows, ["val_acc", "train_time_s"])
    obj = Objectives(sc, TaskContext.from_rows(rows))
    base = RewardConfig(size=Penalty(threshold=1e9), time=Penalty(threshold=1e9))
    nets = [SEEDS["lenet"], SEEDS["vgg_tiny"]]
    r0 = Evaluator(obj, base, budget=5).evaluate(nets)
    r1 = Evaluator(obj, replace(base, lambda_std=2.0), budget=5).evaluate(nets)
    std = sc.predict(nets)["val_acc_std"]
    np.testing.assert_allclose(r0 - r1, 2.0 * std, atol=1e-9)


def test_size_formula_matches_the_builders_measurement(tiny_corpus: Path) -> None:
    rows = read_corpus(tiny_corpus).filter(pl.col("status") == "ok")
    for r in rows.iter_rows(named=True):
        net = Network.from_json(r["arch_json"])
        assert model_size_bytes(net, tuple(r["input_shape"]), r["n_classes"]) == r["model_size_bytes"]

"""The plugin passes Neural Architect's packaged conformance suites (run with the plugin installed)."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from narch.predictors.base import PREDICTORS, Target
from narch.testing.predictors import PredictorTestCase
from narch.testing.strategies import StrategyTestCase


class TestKnn(PredictorTestCase):
    @pytest.fixture
    def predictor_name(self) -> str:
        return "knn"


class TestAnnealing(StrategyTestCase):
    @pytest.fixture
    def strategy_name(self) -> str:
        return "annealing"


def test_k1_recalls_the_training_targets(tmp_path_factory: pytest.TempPathFactory) -> None:
    from narch.testing.corpus import tiny_corpus_rows

    rows = tiny_corpus_rows(tmp_path_factory).unique(subset=["arch_id"], keep="first", maintain_order=True)
    pred = PREDICTORS.get("knn")(seed=0, k=1).fit(rows, Target.of("val_acc"))
    np.testing.assert_allclose(pred.predict(rows), rows["val_acc"].cast(pl.Float64).to_numpy(), rtol=1e-12)


def test_bad_parameters_name_themselves() -> None:
    with pytest.raises(ValueError, match="weights must be one of"):
        PREDICTORS.get("knn")(seed=0, weights="cosine")
    with pytest.raises(ValueError, match="unknown parameters"):
        PREDICTORS.get("knn")(seed=0, kk=3)

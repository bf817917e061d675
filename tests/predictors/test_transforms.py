"""Target transforms (a tuned option of the feature-matrix families): exact inverses, predictions inside the
training range under ``rank``, ``logit`` the identity for a log-space target, and a round trip through an artefact."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from narch.predictors.artefacts import load_artefact, save_artefact
from narch.predictors.base import PREDICTORS, Target
from narch.predictors.families import load_families
from narch.predictors.transforms import TargetTransform

ACC, TIME = Target.of("val_acc"), Target.of("train_time_s")


def test_rank_and_logit_invert_exactly_and_rank_stays_in_range() -> None:
    z = np.array([0.2, 0.5, 0.9, 0.4, 0.7])
    for kind in ("none", "rank", "logit"):
        t = TargetTransform.fit(kind, z, ACC)
        np.testing.assert_allclose(t.inverse(t.forward(z)), z, rtol=1e-9)
    r = TargetTransform.fit("rank", z, ACC)
    assert r.forward(z).min() == 0.0 and r.forward(z).max() == 1.0
    assert r.inverse(np.array([-3.0, 5.0])).tolist() == [0.2, 0.9], "never outside the training values"
    assert TargetTransform.fit("logit", np.log([0.5, 2.0]), TIME).kind == "none", "no logit of a log-space time"
    with pytest.raises(ValueError, match="'magic' is not one of"):
        TargetTransform.fit("magic", z, ACC)


@pytest.mark.parametrize("family", ["ridge", "gbdt", "random_forest", "mlp"])
@pytest.mark.parametrize("kind", ["rank", "logit"])
def test_families_fit_in_the_transformed_space_and_round_trip(family: str, kind: str, pred_rows: pl.DataFrame,
                                                               tmp_path: Path) -> None:
    load_families()
    cls = PREDICTORS.get(family)
    params = {"target_transform": kind} | ({"epochs": 5} if family == "mlp" else {})
    pred = cls(seed=0, **params).fit(pred_rows, ACC)
    out = pred.predict(pred_rows)
    assert out.dtype == np.float64 and np.isfinite(out).all()
    if kind == "rank":
        y = pred_rows["val_acc"].to_numpy()
        assert out.min() >= y.min() - 1e-12 and out.max() <= y.max() + 1e-12
    else:
        assert (out > 0).all() and (out < 1).all()
    folder = tmp_path / "art"
    save_artefact(folder, {"val_acc": pred}, fingerprint="x")
    np.testing.assert_array_equal(load_artefact(folder).predict(pred_rows)["val_acc"], out)


def test_pairwise_loss_penalises_wrong_order_and_trains() -> None:
    import torch

    from narch.predictors.losses import LOSSES, pairwise_ranking

    y = torch.tensor([0.0, 1.0, 2.0])
    right, wrong = torch.tensor([0.1, 0.9, 2.1]), torch.tensor([2.1, 0.9, 0.1])
    assert pairwise_ranking(right, y) < pairwise_ranking(wrong, y)
    assert float(pairwise_ranking(right, torch.ones(3))) == 0.0, "no pair differs: no ranking term"
    p = wrong.clone().requires_grad_(True)
    LOSSES["pairwise"](p, y).backward()
    assert p.grad is not None and p.grad[0] > 0 > p.grad[2], "the gradient reorders the pair"


@pytest.mark.parametrize("family", ["mlp", "gin", "lstm_embedding"])
def test_a_family_trains_with_the_pairwise_loss(family: str, pred_rows: pl.DataFrame) -> None:
    load_families()
    cls = PREDICTORS.get(family)
    small = getattr(cls, "test_params", {}) | {"epochs": 3}
    pred = cls(seed=0, **(small | {"loss": "pairwise"})).fit(pred_rows, ACC)
    assert np.isfinite(pred.predict(pred_rows)).all()
    with pytest.raises(ValueError, match="loss 'magic' is unknown"):
        cls(seed=0, **(small | {"loss": "magic"})).fit(pred_rows, ACC)

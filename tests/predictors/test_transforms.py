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

"""Every registered predictor family passes the packaged conformance suite (narch.testing.predictors); artefact
rules that are not per family; family-specific checks."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from narch.core.errors import PluginError
from narch.predictors.artefacts import ArtefactError, load_artefact, save_artefact
from narch.predictors.base import PREDICTORS, Target
from narch.predictors.families import load_families, supports
from narch.testing.predictors import PredictorTestCase

NAMES = load_families()


@pytest.mark.parametrize("name", NAMES)
class TestEveryFamily(PredictorTestCase):
    """The suite over every registered name (plugins installed in this environment included)."""

    @pytest.fixture
    def predictor_name(self, name: str) -> str:
        return name

    @pytest.fixture
    def corpus_rows(self, pred_rows: pl.DataFrame) -> pl.DataFrame:
        return pred_rows  # the predictor tests' shared corpus (tests/predictors/conftest.py)


@pytest.fixture(scope="module")
def split(pred_rows: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    ids = sorted(set(pred_rows["arch_id"].to_list()))
    inside = pl.col("arch_id").is_in(ids[: len(ids) * 2 // 3])
    return pred_rows.filter(inside), pred_rows.filter(~inside)


def _ridge(rows: pl.DataFrame) -> tuple[object, Target]:
    target = Target.of("val_acc")
    return PREDICTORS.get("ridge")(seed=0).fit(rows, target), target


def test_extra_pkl_file_is_refused(split: tuple[pl.DataFrame, pl.DataFrame], tmp_path: Path) -> None:
    pred, target = _ridge(split[0])
    folder = save_artefact(tmp_path / "art", {target.name: pred}, fingerprint="test")  # type: ignore[dict-item]
    (folder / target.name / "model.pkl").write_bytes(b"not even a pickle")
    with pytest.raises(ArtefactError, match=r"model\.pkl"):
        load_artefact(folder)


def test_unknown_family_names_its_module_and_imports_nothing(split: tuple[pl.DataFrame, pl.DataFrame],
                                                             tmp_path: Path) -> None:
    import sys

    pred, target = _ridge(split[0])
    folder = save_artefact(tmp_path / "art", {target.name: pred}, fingerprint="test")  # type: ignore[dict-item]
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["entries"][target.name]["module"] == "narch.predictors.linear"
    manifest["entries"][target.name] |= {"predictor": "no_such_family", "module": "json.tool"}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    sys.modules.pop("json.tool", None)
    with pytest.raises(PluginError, match=r"'no_such_family' is not registered.*'json\.tool'.*--plugin json\.tool"):
        load_artefact(folder)
    assert "json.tool" not in sys.modules, "the artefact's module must be named, never imported"


def test_unknown_ensemble_member_family_names_its_module(split: tuple[pl.DataFrame, pl.DataFrame],
                                                         tmp_path: Path) -> None:
    import sys

    if "ensemble" not in NAMES:
        pytest.skip("the neural families (torch) are not installed")
    target = Target.of("val_acc")
    ens = PREDICTORS.get("ensemble")(seed=0, members=2, family="ridge").fit(split[0], target)
    folder = save_artefact(tmp_path / "art", {target.name: ens}, fingerprint="test")
    manifest = json.loads((folder / "manifest.json").read_text())
    config = manifest["entries"][target.name]["config"]
    assert [m["module"] for m in config["state"]["members"]] == ["narch.predictors.linear"] * 2
    config["params"]["family"] = "ridge+no_such_family"
    config["state"]["members"][1] |= {"family": "no_such_family", "module": "json.tool"}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    sys.modules.pop("json.tool", None)
    with pytest.raises(PluginError, match=r"member1: predictor family 'no_such_family' is not registered.*"
                                          r"'json\.tool'.*--plugin json\.tool"):
        load_artefact(folder)
    assert "json.tool" not in sys.modules, "the artefact's module must be named, never imported"


def test_roofline_time_refuses_accuracy(pred_rows: pl.DataFrame) -> None:
    cls = PREDICTORS.get("roofline_time")
    assert not supports(cls, Target.of("val_acc"))
    with pytest.raises(ValueError, match="times only"):
        cls(seed=0).fit(pred_rows, Target.of("val_acc"))


def test_random_forest_matches_scikit_learn(split: tuple[pl.DataFrame, pl.DataFrame]) -> None:
    from sklearn.ensemble import RandomForestRegressor

    train, test = split
    target = Target.of("val_acc")
    pred = PREDICTORS.get("random_forest")(seed=0).fit(train, target)
    p = {"n_estimators": 100, "max_features": 0.5, "min_samples_leaf": 1, "max_depth": 16}
    rf = RandomForestRegressor(**p, random_state=0, n_jobs=1).fit(
        pred.features(train), target.forward(train[target.name].to_numpy()))  # type: ignore[attr-defined]
    np.testing.assert_allclose(pred.predict(test), target.inverse(rf.predict(pred.features(test))),  # type: ignore[attr-defined]
                               rtol=1e-12)

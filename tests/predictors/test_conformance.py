"""Every registered predictor family: shapes, determinism, save/load round trip, tamper and pickle refusal."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from narch.predictors.artefacts import ArtefactError, load_artefact, save_artefact, sha256_file
from narch.predictors.base import PREDICTORS, Predictor, Target
from narch.predictors.families import load_families, supports
from narch.predictors.features import row_descriptors
from narch.search_space import Network

load_families()
NAMES = PREDICTORS.names()
TARGETS = ("val_acc", "train_time_s")


def _target(cls: type[Predictor]) -> Target:
    for name in TARGETS:
        if supports(cls, Target.of(name)):
            return Target.of(name)
    pytest.skip(f"{cls.name} models none of {TARGETS}")


def _split(rows: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    ids = sorted(set(rows["arch_id"].to_list()))
    train = set(ids[: len(ids) * 2 // 3])
    return rows.filter(pl.col("arch_id").is_in(list(train))), rows.filter(~pl.col("arch_id").is_in(list(train)))


def _fit(name: str, rows: pl.DataFrame, seed: int = 0) -> tuple[Predictor, Target]:
    cls = PREDICTORS.get(name)
    target = _target(cls)
    return cls(seed=seed, **getattr(cls, "test_params", {})).fit(rows, target), target


@pytest.fixture(scope="module")
def split(pred_rows: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    return _split(pred_rows)


@pytest.mark.parametrize("name", NAMES)
def test_shapes_and_determinism(name: str, split: tuple[pl.DataFrame, pl.DataFrame]) -> None:
    train, test = split
    a, _ = _fit(name, train, seed=3)
    b, _ = _fit(name, train, seed=3)
    pa, pb = a.predict(test), b.predict(test)
    assert pa.shape == (test.height,)
    assert np.all(np.isfinite(pa))
    np.testing.assert_allclose(pa, pb, rtol=1e-6, atol=0)
    assert json.dumps(a.config())  # the manifest can record it


@pytest.mark.parametrize("name", NAMES)
def test_round_trip_and_network_path(name: str, split: tuple[pl.DataFrame, pl.DataFrame], tmp_path: Path) -> None:
    train, test = split
    pred, target = _fit(name, train)
    save_artefact(tmp_path / "art", {target.name: pred}, fingerprint="test")
    art = load_artefact(tmp_path / "art")
    np.testing.assert_array_equal(art.predict(test)[target.name], pred.predict(test))
    row = test.row(0, named=True)
    nets = [Network.from_json(row["arch_json"])]
    fast = art.predict_networks(nets, row_descriptors(row))[target.name]
    np.testing.assert_allclose(fast, pred.predict(test.head(1)), rtol=1e-9)


@pytest.mark.parametrize("name", NAMES)
def test_changed_byte_is_refused_naming_the_file(name: str, split: tuple[pl.DataFrame, pl.DataFrame],
                                                 tmp_path: Path) -> None:
    pred, target = _fit(name, split[0])
    folder = save_artefact(tmp_path / "art", {target.name: pred}, fingerprint="test")
    manifest = json.loads((folder / "manifest.json").read_text())
    rel = sorted(manifest["entries"][target.name]["files"])[0]
    data = bytearray((folder / rel).read_bytes())
    data[len(data) // 2] ^= 0x01
    (folder / rel).write_bytes(bytes(data))
    with pytest.raises(ArtefactError, match=rel.split("/")[-1]):
        load_artefact(folder)


@pytest.mark.parametrize("name", NAMES)
def test_pickle_payload_is_refused(name: str, split: tuple[pl.DataFrame, pl.DataFrame], tmp_path: Path) -> None:
    pred, target = _fit(name, split[0])
    folder = save_artefact(tmp_path / "art", {target.name: pred}, fingerprint="test")
    manifest = json.loads((folder / "manifest.json").read_text())
    files = manifest["entries"][target.name]["files"]
    rel = sorted(files)[0]
    path = folder / rel
    # A pickle behind the original name, its sha256 updated so only the pickle rule can refuse it.
    if path.suffix == ".npy":
        np.save(path, np.array([{"x": 1}], dtype=object), allow_pickle=True)
    else:
        import pickle

        path.write_bytes(pickle.dumps({"payload": 1}, protocol=4))
    files[rel] = sha256_file(path)
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ArtefactError, match="pickle"):
        load_artefact(folder)


def test_extra_pkl_file_is_refused(split: tuple[pl.DataFrame, pl.DataFrame], tmp_path: Path) -> None:
    pred, target = _fit("ridge", split[0])
    folder = save_artefact(tmp_path / "art", {target.name: pred}, fingerprint="test")
    (folder / target.name / "model.pkl").write_bytes(b"not even a pickle")
    with pytest.raises(ArtefactError, match=r"model\.pkl"):
        load_artefact(folder)


def test_roofline_time_refuses_accuracy(pred_rows: pl.DataFrame) -> None:
    cls = PREDICTORS.get("roofline_time")
    assert not supports(cls, Target.of("val_acc"))
    with pytest.raises(ValueError, match="times only"):
        cls(seed=0).fit(pred_rows, Target.of("val_acc"))


def test_random_forest_matches_scikit_learn(split: tuple[pl.DataFrame, pl.DataFrame]) -> None:
    from sklearn.ensemble import RandomForestRegressor

    train, test = split
    pred, target = _fit("random_forest", train)
    p = {"n_estimators": 100, "max_features": 0.5, "min_samples_leaf": 1, "max_depth": 16}
    rf = RandomForestRegressor(**p, random_state=0, n_jobs=1).fit(
        pred.features(train), target.forward(train[target.name].to_numpy()))
    np.testing.assert_allclose(pred.predict(test), target.inverse(rf.predict(pred.features(test))), rtol=1e-12)

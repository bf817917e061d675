"""``PredictorTestCase``: what every registered predictor family must do, for built-in families and plugins alike.

A plugin's tests subclass it and name the family (optuna's ``SamplerTestCase`` pattern)::

    from narch.testing.predictors import PredictorTestCase

    class TestKnn(PredictorTestCase):
        @pytest.fixture
        def predictor_name(self) -> str:
            return "knn"

The family is fitted with its ``test_params`` on a tiny real corpus (``narch.testing.corpus``; override
``corpus_rows`` to use another) and must give one finite float64 prediction per row, the same predictions under the
same seed, a JSON-able config, and a save/load round trip through the artefact format (``narch.predictors.artefacts``)
that keeps every prediction, the fast ``Network`` path, and refuses changed bytes and pickles of every protocol.
Imports pytest.
"""

from __future__ import annotations

import io
import json
import pickle
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from narch.core.files import sha256_file
from narch.predictors.artefacts import ArtefactError, load_artefact, save_artefact
from narch.predictors.base import PREDICTORS, Predictor, Target
from narch.predictors.families import load_families, supports
from narch.predictors.features import row_descriptors
from narch.search_space import Network
from narch.testing.corpus import tiny_corpus_rows

TARGETS = ("val_acc", "train_time_s")  # the first one a family models is the one it is tested on


class PredictorTestCase:
    """The conformance tests of one predictor family; subclasses supply the ``predictor_name`` fixture."""

    @pytest.fixture
    def predictor_name(self) -> str:
        raise NotImplementedError("a PredictorTestCase subclass supplies a predictor_name fixture (a registered name)")

    @pytest.fixture
    def corpus_rows(self, tmp_path_factory: pytest.TempPathFactory) -> pl.DataFrame:
        """OK rows of a tiny real corpus (built once per process)."""
        return tiny_corpus_rows(tmp_path_factory)

    @pytest.fixture
    def family(self, predictor_name: str) -> type[Predictor]:
        load_families()
        return PREDICTORS.get(predictor_name)

    @pytest.fixture
    def target(self, family: type[Predictor]) -> Target:
        for name in TARGETS:
            if supports(family, Target.of(name)):
                return Target.of(name)
        pytest.skip(f"{family.name} models none of {TARGETS}")

    @pytest.fixture
    def split(self, corpus_rows: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
        """Two thirds of the architectures to fit on, the rest to predict (whole architectures, all their seeds)."""
        ids = sorted(set(corpus_rows["arch_id"].to_list()))
        train = ids[: len(ids) * 2 // 3]
        inside = pl.col("arch_id").is_in(train)
        return corpus_rows.filter(inside), corpus_rows.filter(~inside)

    @staticmethod
    def fit(family: type[Predictor], rows: pl.DataFrame, target: Target, *, seed: int = 0) -> Predictor:
        """A fitted instance with the family's small ``test_params``."""
        return family(seed=seed, **getattr(family, "test_params", {})).fit(rows, target)

    def saved(self, family: type[Predictor], split: tuple[pl.DataFrame, pl.DataFrame], target: Target,
              folder: Path) -> tuple[Predictor, Path]:
        pred = self.fit(family, split[0], target)
        return pred, save_artefact(folder, {target.name: pred}, fingerprint="test")

    # tests ------------------------------------------------------------------------------------------------------
    def test_registered_under_its_name(self, predictor_name: str, family: type[Predictor]) -> None:
        assert family.name == predictor_name
        assert predictor_name in PREDICTORS.names()
        assert PREDICTORS.module_of(predictor_name) == family.__module__

    def test_one_finite_float64_per_row_and_deterministic_under_a_seed(
        self, family: type[Predictor], split: tuple[pl.DataFrame, pl.DataFrame], target: Target,
    ) -> None:
        train, test = split
        a = self.fit(family, train, target, seed=3).predict(test)
        b = self.fit(family, train, target, seed=3).predict(test)
        assert isinstance(a, np.ndarray) and a.shape == (test.height,) and a.dtype == np.float64
        assert np.all(np.isfinite(a))
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=0)

    def test_config_is_json(self, family: type[Predictor], split: tuple[pl.DataFrame, pl.DataFrame],
                            target: Target) -> None:
        config = self.fit(family, split[0], target).config()
        assert json.loads(json.dumps(config)) == config  # the manifest records it as it is

    def test_round_trip_through_an_artefact_and_the_network_path(
        self, family: type[Predictor], split: tuple[pl.DataFrame, pl.DataFrame], target: Target, tmp_path: Path,
    ) -> None:
        test = split[1]
        pred, folder = self.saved(family, split, target, tmp_path / "art")
        art = load_artefact(folder)
        assert art.manifest["entries"][target.name]["module"] == family.__module__
        np.testing.assert_array_equal(art.predict(test)[target.name], pred.predict(test))
        row = test.row(0, named=True)
        if getattr(family, "row_only", False):  # reads corpus-only columns: a bare network is refused by name
            with pytest.raises(ValueError, match=r"zero-cost|cannot score"):
                art.predict_networks([Network.from_json(row["arch_json"])], row_descriptors(row))
            return
        fast = art.predict_networks([Network.from_json(row["arch_json"])], row_descriptors(row))[target.name]
        np.testing.assert_allclose(fast, pred.predict(test.head(1)), rtol=1e-9)

    def test_changed_byte_is_refused_naming_the_file(
        self, family: type[Predictor], split: tuple[pl.DataFrame, pl.DataFrame], target: Target, tmp_path: Path,
    ) -> None:
        _, folder = self.saved(family, split, target, tmp_path / "art")
        manifest = json.loads((folder / "manifest.json").read_text())
        rel = sorted(manifest["entries"][target.name]["files"])[0]
        data = bytearray((folder / rel).read_bytes())
        data[len(data) // 2] ^= 0x01
        (folder / rel).write_bytes(bytes(data))
        with pytest.raises(ArtefactError, match=rel.split("/")[-1]):
            load_artefact(folder)

    def test_pickle_payload_is_refused(
        self, family: type[Predictor], split: tuple[pl.DataFrame, pl.DataFrame], target: Target, tmp_path: Path,
    ) -> None:
        _, folder = self.saved(family, split, target, tmp_path / "art")
        manifest = json.loads((folder / "manifest.json").read_text())
        files = manifest["entries"][target.name]["files"]
        rel = sorted(files)[0]
        path = folder / rel
        # A pickle behind the original name, its sha256 updated so only the pickle rule can refuse it: every
        # protocol (0 and 1 have no header), and for an .npy also an array of objects.
        pickles = [pickle.dumps({"payload": [1, 2.5]}, protocol=p) for p in range(pickle.HIGHEST_PROTOCOL + 1)]
        if path.suffix == ".npy":
            buf = io.BytesIO()
            np.save(buf, np.array([{"x": 1}], dtype=object), allow_pickle=True)
            pickles.append(buf.getvalue())
        for data in pickles:
            path.write_bytes(data)
            files[rel] = sha256_file(path)
            (folder / "manifest.json").write_text(json.dumps(manifest))
            with pytest.raises(ArtefactError, match="pickle"):
                load_artefact(folder)

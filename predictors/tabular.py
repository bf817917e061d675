"""The shared shape of the predictors that fit a model on the flat feature matrix (features.py).

A family subclasses ``TabularPredictor`` and fills four hooks: ``_fit(X, y)``, ``_predict(X)`` (fitting space),
``_save(folder) -> names`` and ``_load(folder, state)``. Feature spec, target transform, config and the fast
``predict_networks`` path live here once, so every family featurises rows and Networks identically.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import polars as pl

from narch.core.errors import NarchError
from narch.core.files import atomic_write_bytes
from narch.predictors.base import Target
from narch.predictors.features import FeatureSpec, network_features, row_features
from narch.predictors.payloads import read_npy
from narch.predictors.transforms import TargetTransform
from narch.search_space import Network


class TargetError(NarchError, ValueError):
    """A family asked to fit a target it does not model."""


class TabularPredictor:
    """Base of the feature-matrix families (implementation shared on purpose: the featurisation must not drift)."""

    name: ClassVar[str]
    supports_any_target: ClassVar[bool] = True

    def __init__(self, *, seed: int = 0, **params: Any) -> None:
        self.seed = seed
        self.params = params
        self.target: Target | None = None
        self.spec: FeatureSpec | None = None
        self.transform = TargetTransform()

    @staticmethod
    def search_space(trial: Any) -> dict[str, Any]:
        return {}

    @classmethod
    def supports(cls, target: Target) -> bool:
        """Whether this family models the target (the leaderboard skips it otherwise)."""
        return cls.supports_any_target

    # hooks -----------------------------------------------------------------------------------------------------
    def _fit(self, x: np.ndarray, y: np.ndarray) -> None:
        raise NotImplementedError

    def _predict(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _save(self, folder: Path) -> list[str]:
        raise NotImplementedError

    def _load(self, folder: Path, state: Mapping[str, Any]) -> None:
        raise NotImplementedError

    def _state(self) -> dict[str, Any]:
        """Fitted scalars stored in the manifest's config."""
        return {}

    # protocol --------------------------------------------------------------------------------------------------
    def _check_target(self, target: Target) -> None:
        if not self.supports(target):
            raise TargetError(f"predictor {self.name!r} does not model target {target.name!r}")

    def features(self, rows: pl.DataFrame) -> np.ndarray:
        if self.spec is None:
            raise RuntimeError(f"predictor {self.name!r} is not fitted")
        return row_features(rows, self.spec)

    def _begin(self, rows: pl.DataFrame, target: Target) -> np.ndarray:
        """Check, set the target, feature spec and target transform; the training targets in the space the model
        fits (the target's fitting space, then ``target_transform``)."""
        self._check_target(target)
        if rows.height == 0:
            raise ValueError(f"predictor {self.name!r}: no rows to fit")
        self.target = target
        self.spec = FeatureSpec.from_rows(rows)
        z = target.forward(rows[target.name].cast(pl.Float64).to_numpy())
        self.transform = TargetTransform.fit(str(self.params.get("target_transform", "none")), z, target)
        return self.transform.forward(z)

    def model_space(self, rows: pl.DataFrame) -> np.ndarray:
        """Rows' targets in the space the model fits (for validation losses)."""
        assert self.target is not None
        return self.transform.forward(self.target.forward(rows[self.target.name].cast(pl.Float64).to_numpy()))

    def fit(self, rows: pl.DataFrame, target: Target) -> Self:
        y = self._begin(rows, target)
        self._fit(self.features(rows), y)
        return self

    def predict_features(self, x: np.ndarray) -> np.ndarray:
        """Predictions in column units from a feature matrix."""
        assert self.target is not None
        return self.target.inverse(self.transform.inverse(np.asarray(self._predict(x), dtype=np.float64)))

    def predict(self, rows: pl.DataFrame) -> np.ndarray:
        return self.predict_features(self.features(rows))

    def predict_networks(self, nets: Sequence[Network], descriptors: Mapping[str, Any]) -> np.ndarray:
        if self.spec is None:
            raise RuntimeError(f"predictor {self.name!r} is not fitted")
        return self.predict_features(network_features(nets, descriptors, self.spec))

    def config(self) -> dict[str, Any]:
        if self.target is None or self.spec is None:
            raise RuntimeError(f"predictor {self.name!r} is not fitted")
        return {"seed": self.seed, "params": dict(self.params), "target": self.target.name,
                "feature_spec": self.spec.to_dict(), "state": self._state() | self.transform.state()}

    def save(self, folder: Path) -> list[str]:
        folder.mkdir(parents=True, exist_ok=True)
        names = self._save(folder)
        if self.transform.knots is not None:
            names += save_arrays(folder, {"target_knots": self.transform.knots})
        return names

    @classmethod
    def load(cls, folder: Path, config: dict[str, Any]) -> Self:
        obj = cls(seed=int(config.get("seed", 0)), **config.get("params", {}))
        obj.target = Target.of(config["target"])
        obj.spec = FeatureSpec.from_dict(config["feature_spec"])
        state = config.get("state", {})
        kind = str(state.get("target_transform", "none"))
        obj.transform = TargetTransform(kind, load_array(folder, "target_knots") if kind == "rank" else None)
        obj._load(folder, state)
        return obj


def save_arrays(folder: Path, arrays: Mapping[str, np.ndarray]) -> list[str]:
    """Numeric arrays as .npy files (loadable with allow_pickle=False); returns the file names."""
    names = []
    for key, arr in arrays.items():
        a = np.asarray(arr)
        if a.dtype == object:
            raise TypeError(f"{key}: object arrays need pickle; store numbers only")
        atomic_write_bytes(folder / f"{key}.npy", lambda f, a=a: np.save(f, a, allow_pickle=False))
        names.append(f"{key}.npy")
    return names


def load_array(folder: Path, key: str) -> np.ndarray:
    """A numeric array saved by ``save_arrays`` (header checked against the file's size before allocating)."""
    return read_npy(folder / f"{key}.npy")

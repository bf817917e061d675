"""``knn``: k-nearest neighbours on the standard feature vectors (``narch.predictors.features``), no pickle.

The fitted state is the standardised training matrix and its targets as ``.npy`` files (loaded with
``allow_pickle=False``); ``k`` and the weighting are hyperparameters the leaderboard tunes and the manifest records.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from narch.predictors.base import PREDICTORS
from narch.predictors.tabular import TabularPredictor, load_array, save_arrays

WEIGHTS = ("uniform", "distance")


@PREDICTORS.register("knn")
class NearestNeighbours(TabularPredictor):
    """The mean (or inverse-distance mean) of the ``k`` nearest training architectures in standardised features."""

    test_params: ClassVar[dict[str, Any]] = {"k": 3}

    def __init__(self, *, seed: int = 0, **params: Any) -> None:
        unknown = set(params) - {"k", "weights"}
        if unknown:
            raise ValueError(f"predictor 'knn': unknown parameters {sorted(unknown)} (known: k, weights)")
        if params.get("weights", "uniform") not in WEIGHTS:
            raise ValueError(f"predictor 'knn': weights must be one of {WEIGHTS}, got {params['weights']!r}")
        if int(params.get("k", 5)) < 1:
            raise ValueError(f"predictor 'knn': k must be >= 1, got {params['k']}")
        super().__init__(seed=seed, **params)

    @staticmethod
    def search_space(trial: Any) -> dict[str, Any]:
        return {"k": trial.suggest_int("k", 1, 8), "weights": trial.suggest_categorical("weights", list(WEIGHTS))}

    def _fit(self, x: np.ndarray, y: np.ndarray) -> None:
        self.mu_ = x.mean(axis=0)
        sd = x.std(axis=0)
        self.sd_ = np.where(sd > 1e-12, sd, 1.0)
        self.x_ = (x - self.mu_) / self.sd_
        self.y_ = np.asarray(y, dtype=np.float64)

    def _predict(self, x: np.ndarray) -> np.ndarray:
        z = (x - self.mu_) / self.sd_
        d2 = (z * z).sum(axis=1)[:, None] - 2.0 * z @ self.x_.T + (self.x_ * self.x_).sum(axis=1)[None, :]
        k = min(int(self.params.get("k", 5)), self.x_.shape[0])
        near = np.argsort(d2, axis=1, kind="stable")[:, :k]  # stable: ties go to the earlier training row
        ys = self.y_[near]
        if self.params.get("weights", "uniform") == "uniform":
            return ys.mean(axis=1)
        w = 1.0 / (np.sqrt(np.maximum(np.take_along_axis(d2, near, axis=1), 0.0)) + 1e-9)
        return (w * ys).sum(axis=1) / w.sum(axis=1)

    def _save(self, folder: Path) -> list[str]:
        return save_arrays(folder, {"mu": self.mu_, "sd": self.sd_, "x": self.x_, "y": self.y_})

    def _load(self, folder: Path, state: Mapping[str, Any]) -> None:
        self.mu_, self.sd_ = load_array(folder, "mu"), load_array(folder, "sd")
        self.x_, self.y_ = load_array(folder, "x"), load_array(folder, "y")

"""Baselines and linear families: the training mean, monotone FLOPs / params fits, ridge regression."""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from narch.core.files import atomic_write_json
from narch.predictors.base import PREDICTORS
from narch.predictors.features import GLOBAL
from narch.predictors.payloads import read_json
from narch.predictors.tabular import TabularPredictor, load_array, save_arrays
from narch.predictors.transforms import transform_choice


@PREDICTORS.register("mean")
class MeanPredictor(TabularPredictor):
    """The training mean in fitting space (the floor every other family must beat)."""

    def _fit(self, x: np.ndarray, y: np.ndarray) -> None:
        self.mean_ = float(np.mean(y))

    def _predict(self, x: np.ndarray) -> np.ndarray:
        return np.full(x.shape[0], self.mean_)

    def _save(self, folder: Path) -> list[str]:
        atomic_write_json(folder / "mean.json", {"mean": self.mean_}, indent=None)
        return ["mean.json"]

    def _load(self, folder: Path, state: Mapping[str, Any]) -> None:
        self.mean_ = float(read_json(folder / "mean.json")["mean"])


class _Monotone(TabularPredictor):
    """Isotonic regression (direction chosen from the data) of the target on one cost feature."""

    feature: str = ""

    def _fit(self, x: np.ndarray, y: np.ndarray) -> None:
        from sklearn.isotonic import IsotonicRegression

        col = x[:, GLOBAL.index(self.feature)]
        with warnings.catch_warnings():  # "direction may be suspect" on tiny sets: the fit is still monotone
            warnings.simplefilter("ignore", UserWarning)
            iso = IsotonicRegression(increasing="auto", out_of_bounds="clip").fit(col, y)
        self.xs_ = np.asarray(iso.X_thresholds_, dtype=np.float64)
        self.ys_ = np.asarray(iso.y_thresholds_, dtype=np.float64)

    def _predict(self, x: np.ndarray) -> np.ndarray:
        return np.interp(x[:, GLOBAL.index(self.feature)], self.xs_, self.ys_)

    def _save(self, folder: Path) -> list[str]:
        return save_arrays(folder, {"iso_x": self.xs_, "iso_y": self.ys_})

    def _load(self, folder: Path, state: Mapping[str, Any]) -> None:
        self.xs_, self.ys_ = load_array(folder, "iso_x"), load_array(folder, "iso_y")


@PREDICTORS.register("flops")
class FlopsPredictor(_Monotone):
    """Monotone in forward FLOPs per example."""

    feature = "log_flops_fwd"


@PREDICTORS.register("params")
class ParamsPredictor(_Monotone):
    """Monotone in trainable parameters."""

    feature = "log_params"


@PREDICTORS.register("ridge")
class RidgePredictor(TabularPredictor):
    """Ridge regression on standardised features (closed form; the L2 strength is tuned)."""

    @staticmethod
    def search_space(trial: Any) -> dict[str, Any]:
        return {"alpha": trial.suggest_float("alpha", 1e-3, 1e3, log=True), **transform_choice(trial)}

    def _fit(self, x: np.ndarray, y: np.ndarray) -> None:
        alpha = float(self.params.get("alpha", 1.0))
        self.mu_ = x.mean(axis=0)
        sd = x.std(axis=0)
        self.sd_ = np.where(sd > 1e-12, sd, 1.0)
        z = (x - self.mu_) / self.sd_
        self.b_ = np.array([y.mean()])
        a = z.T @ z + alpha * np.eye(z.shape[1])
        self.w_ = np.linalg.solve(a, z.T @ (y - self.b_[0]))

    def _predict(self, x: np.ndarray) -> np.ndarray:
        return ((x - self.mu_) / self.sd_) @ self.w_ + self.b_[0]

    def _save(self, folder: Path) -> list[str]:
        return save_arrays(folder, {"mu": self.mu_, "sd": self.sd_, "w": self.w_, "b": self.b_})

    def _load(self, folder: Path, state: Mapping[str, Any]) -> None:
        self.mu_, self.sd_ = load_array(folder, "mu"), load_array(folder, "sd")
        self.w_, self.b_ = load_array(folder, "w"), load_array(folder, "b")

"""Roofline plus boosted residual: the calibrated roofline time, corrected by LightGBM on the log residual.

The roofline (predictors/roofline_time.py) carries the physics that extrapolates (FLOPs and bytes per op class,
launches, steps); the trees learn what it misses (per-architecture overheads, cache effects) from the flat
features, the log roofline terms and the log roofline prediction. L1 loss on the log residual, as the paper's
simulation network uses L1. Times only, like the roofline it corrects.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import polars as pl

from narch.core.files import atomic_write_text
from narch.predictors.base import PREDICTORS, Target
from narch.predictors.features import FeatureSpec, network_features, row_features
from narch.predictors.payloads import read_text
from narch.predictors.roofline_time import RooflineTimePredictor, terms_many
from narch.predictors.tabular import TargetError


@PREDICTORS.register("roofline_gbdt")
class RooflineBoostPredictor:
    """Calibrated roofline x exp(LightGBM correction of the log residual)."""

    name: ClassVar[str]
    TARGETS: ClassVar[tuple[str, ...]] = RooflineTimePredictor.TARGETS

    def __init__(self, *, seed: int = 0, **params: Any) -> None:
        self.seed = seed
        self.params = params
        self.target: Target | None = None
        self.spec: FeatureSpec | None = None

    @staticmethod
    def search_space(trial: Any) -> dict[str, Any]:
        return {
            "num_leaves": trial.suggest_int("num_leaves", 4, 48, log=True),
            "learning_rate": trial.suggest_float("learning_rate", 0.01, 0.2, log=True),
            "n_estimators": trial.suggest_int("n_estimators", 50, 600, log=True),
            "min_data_in_leaf": trial.suggest_int("min_data_in_leaf", 2, 30, log=True),
        }

    @classmethod
    def supports(cls, target: Target) -> bool:
        return target.name in cls.TARGETS

    def _x(self, flat: np.ndarray, terms: np.ndarray) -> np.ndarray:
        return np.column_stack([flat, np.log1p(terms), np.log(self.roof_._out(terms))])

    def fit(self, rows: pl.DataFrame, target: Target) -> Self:
        import lightgbm as lgb

        if not self.supports(target):
            raise TargetError(f"predictor 'roofline_gbdt' models times only ({', '.join(self.TARGETS)}); "
                              f"got {target.name!r}")
        self.target = target
        self.roof_ = RooflineTimePredictor(seed=self.seed).fit(rows, target)
        self.spec = FeatureSpec.from_rows(rows)
        terms = self.roof_._terms(rows)
        y = np.log(np.maximum(rows[target.name].cast(pl.Float64).to_numpy(), 1e-12))
        resid = y - np.log(self.roof_._out(terms))
        p = {"num_leaves": 15, "learning_rate": 0.03, "n_estimators": 400, "min_data_in_leaf": 10} | self.params
        params = {
            "objective": "l1", "num_leaves": int(p["num_leaves"]), "learning_rate": float(p["learning_rate"]),
            "min_data_in_leaf": max(1, min(int(p["min_data_in_leaf"]), rows.height // 4)), "min_data_in_bin": 1,
            "feature_fraction": 0.8, "bagging_fraction": 0.9, "bagging_freq": 1, "seed": self.seed,
            "deterministic": True, "force_row_wise": True, "num_threads": 1, "verbose": -1,
        }
        ds = lgb.Dataset(self._x(row_features(rows, self.spec), terms), resid,
                         params={"verbose": -1, "min_data_in_bin": 1})
        self.booster_ = lgb.train(params, ds, num_boost_round=int(p["n_estimators"]))
        return self

    def _out(self, flat: np.ndarray, terms: np.ndarray) -> np.ndarray:
        return self.roof_._out(terms) * np.exp(self.booster_.predict(self._x(flat, terms), num_threads=2))

    def predict(self, rows: pl.DataFrame) -> np.ndarray:
        assert self.spec is not None
        return self._out(row_features(rows, self.spec), self.roof_._terms(rows))

    def predict_networks(self, nets: Sequence[Any], descriptors: Mapping[str, Any]) -> np.ndarray:
        assert self.spec is not None and self.target is not None
        terms = terms_many(nets, self.target.name, descriptors)
        return self._out(network_features(nets, descriptors, self.spec), terms)

    def config(self) -> dict[str, Any]:
        if self.target is None or self.spec is None:
            raise RuntimeError("predictor 'roofline_gbdt' is not fitted")
        return {"seed": self.seed, "params": dict(self.params), "target": self.target.name,
                "feature_spec": self.spec.to_dict(), "roofline": self.roof_.config()}

    def save(self, folder: Path) -> list[str]:
        names = self.roof_.save(folder)
        atomic_write_text(folder / "residual_gbdt.txt", self.booster_.model_to_string())
        return [*names, "residual_gbdt.txt"]

    @classmethod
    def load(cls, folder: Path, config: dict[str, Any]) -> Self:
        import lightgbm as lgb

        obj = cls(seed=int(config.get("seed", 0)), **config.get("params", {}))
        obj.target = Target.of(config["target"])
        obj.spec = FeatureSpec.from_dict(config["feature_spec"])
        obj.roof_ = RooflineTimePredictor.load(folder, config["roofline"])
        obj.booster_ = lgb.Booster(model_str=read_text(folder / "residual_gbdt.txt"))
        return obj

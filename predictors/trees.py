"""Tree ensembles: a random forest (scikit-learn, exported to flat arrays) and gradient-boosted trees (LightGBM).

Neither is pickled. The forest's trees become node arrays (.npy) walked by a vectorised numpy evaluator that
matches scikit-learn's own predict; LightGBM saves and loads its own text model format.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from narch.core.files import atomic_write_text
from narch.predictors.base import PREDICTORS
from narch.predictors.payloads import read_text
from narch.predictors.tabular import TabularPredictor, load_array, save_arrays
from narch.predictors.transforms import transform_choice


@PREDICTORS.register("random_forest")
class RandomForestPredictor(TabularPredictor):
    """Random forest regression (bagged, feature-subsampled CART trees averaged)."""

    @staticmethod
    def search_space(trial: Any) -> dict[str, Any]:
        return {
            "n_estimators": trial.suggest_int("n_estimators", 50, 300, log=True),
            "max_features": trial.suggest_float("max_features", 0.1, 1.0),
            "min_samples_leaf": trial.suggest_int("min_samples_leaf", 1, 8),
            "max_depth": trial.suggest_int("max_depth", 6, 24),
            **transform_choice(trial),
        }

    def _fit(self, x: np.ndarray, y: np.ndarray) -> None:
        from sklearn.ensemble import RandomForestRegressor

        p = {"n_estimators": 100, "max_features": 0.5, "min_samples_leaf": 1, "max_depth": 16} | self.params
        rf = RandomForestRegressor(
            n_estimators=int(p["n_estimators"]), max_features=float(p["max_features"]),
            min_samples_leaf=int(p["min_samples_leaf"]), max_depth=int(p["max_depth"]), random_state=self.seed,
            n_jobs=1,
        ).fit(x, y)
        self._export([est.tree_ for est in rf.estimators_])

    def _export(self, trees: list[Any]) -> None:
        lefts, rights, feats, thrs, vals, roots = [], [], [], [], [], []
        off = 0
        for t in trees:
            n = t.node_count
            idx = np.arange(n)
            leaf = t.children_left == -1
            lefts.append(np.where(leaf, idx, t.children_left) + off)  # a leaf points to itself: the walk stays put
            rights.append(np.where(leaf, idx, t.children_right) + off)
            feats.append(np.where(leaf, 0, t.feature))
            thrs.append(np.where(leaf, np.inf, t.threshold))
            vals.append(t.value[:, 0, 0])
            roots.append(off)
            off += n
        self.left_ = np.concatenate(lefts).astype(np.int64)
        self.right_ = np.concatenate(rights).astype(np.int64)
        self.feat_ = np.concatenate(feats).astype(np.int64)
        self.thr_ = np.concatenate(thrs).astype(np.float64)
        self.val_ = np.concatenate(vals).astype(np.float64)
        self.roots_ = np.asarray(roots, dtype=np.int64)
        self.depth_ = np.array([max(int(t.max_depth) for t in trees)], dtype=np.int64)

    def _predict(self, x: np.ndarray) -> np.ndarray:
        x32 = np.asarray(x, dtype=np.float32)  # scikit-learn compares float32 inputs with float64 thresholds
        rows = np.arange(x32.shape[0])[:, None]
        node = np.broadcast_to(self.roots_, (x32.shape[0], self.roots_.size)).copy()
        for _ in range(int(self.depth_[0])):
            go_left = x32[rows, self.feat_[node]] <= self.thr_[node]
            node = np.where(go_left, self.left_[node], self.right_[node])
        return self.val_[node].mean(axis=1)

    def _save(self, folder: Path) -> list[str]:
        return save_arrays(folder, {"rf_left": self.left_, "rf_right": self.right_, "rf_feature": self.feat_,
                                    "rf_threshold": self.thr_, "rf_value": self.val_, "rf_roots": self.roots_,
                                    "rf_depth": self.depth_})

    def _load(self, folder: Path, state: Mapping[str, Any]) -> None:
        self.left_, self.right_ = load_array(folder, "rf_left"), load_array(folder, "rf_right")
        self.feat_, self.thr_ = load_array(folder, "rf_feature"), load_array(folder, "rf_threshold")
        self.val_, self.roots_ = load_array(folder, "rf_value"), load_array(folder, "rf_roots")
        self.depth_ = load_array(folder, "rf_depth")


@PREDICTORS.register("gbdt")
class GradientBoostedPredictor(TabularPredictor):
    """LightGBM gradient-boosted trees (L2 loss in fitting space), saved in LightGBM's text format."""

    @staticmethod
    def search_space(trial: Any) -> dict[str, Any]:
        return {
            "num_leaves": trial.suggest_int("num_leaves", 4, 64, log=True),
            "learning_rate": trial.suggest_float("learning_rate", 0.01, 0.3, log=True),
            "n_estimators": trial.suggest_int("n_estimators", 50, 600, log=True),
            "min_data_in_leaf": trial.suggest_int("min_data_in_leaf", 2, 30, log=True),
            "feature_fraction": trial.suggest_float("feature_fraction", 0.3, 1.0),
            "lambda_l2": trial.suggest_float("lambda_l2", 1e-3, 10.0, log=True),
            **transform_choice(trial),
        }

    def _fit(self, x: np.ndarray, y: np.ndarray) -> None:
        import lightgbm as lgb

        p = {"num_leaves": 31, "learning_rate": 0.05, "n_estimators": 300, "min_data_in_leaf": 5,
             "feature_fraction": 0.8, "lambda_l2": 0.1} | self.params
        n = x.shape[0]
        params = {
            "objective": "regression", "num_leaves": int(p["num_leaves"]), "learning_rate": float(p["learning_rate"]),
            "min_data_in_leaf": max(1, min(int(p["min_data_in_leaf"]), n // 4)), "min_data_in_bin": 1,
            "feature_fraction": float(p["feature_fraction"]), "lambda_l2": float(p["lambda_l2"]),
            "bagging_fraction": 0.9, "bagging_freq": 1, "seed": self.seed, "deterministic": True,
            "force_row_wise": True, "num_threads": 1, "verbose": -1,
        }
        ds = lgb.Dataset(x, y, params={"verbose": -1, "min_data_in_bin": 1})
        self.booster_ = lgb.train(params, ds, num_boost_round=int(p["n_estimators"]))

    def _predict(self, x: np.ndarray) -> np.ndarray:
        return self.booster_.predict(x, num_threads=2)

    def _save(self, folder: Path) -> list[str]:
        atomic_write_text(folder / "gbdt.txt", self.booster_.model_to_string())
        return ["gbdt.txt"]

    def _load(self, folder: Path, state: Mapping[str, Any]) -> None:
        import lightgbm as lgb

        self.booster_ = lgb.Booster(model_str=read_text(folder / "gbdt.txt"))

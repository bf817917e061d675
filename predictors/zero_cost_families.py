"""Families on the zero-cost proxies (the zc_* columns, dataset_builder/zero_cost.py).

- ``zc_<proxy>``: one proxy alone, a training-free ranker. Its order is the proxy's, in the direction that agrees
  with the training rows (the sign of their Spearman rho). The score is mapped to the target's units by a two-
  parameter line on its empirical CDF over the training rows, which is strictly monotone, so the ranking is the
  proxy's own.
- ``zc_vote``: the mean of the directed CDFs of synflow, jacov and snip (Abdelfattah et al. 2021's vote), mapped
  the same way.
- ``zc_gbdt``: gradient-boosted trees on the architecture features plus every proxy (signed log), the
  NAS-Bench-Suite-Zero recipe.

They read the proxies from the rows, so they are ``row_only``. A corpus without the columns does not offer them
(``supports_rows``). They are ranked on a leaderboard but never frozen, because the controller scores networks
without rows (predictors/freeze.py). A row without a proxy's value gets the training rows' median.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import polars as pl
from scipy.stats import spearmanr

from narch.core.files import atomic_write_json
from narch.dataset_builder.schema import ZC_PREFIX, ZERO_COST
from narch.predictors.base import PREDICTORS, Target
from narch.predictors.tabular import load_array, save_arrays
from narch.predictors.trees import GradientBoostedPredictor

PROXY_NAMES = tuple(name for name, _, _ in ZERO_COST)
VOTE = ("synflow", "jacov", "snip")
MIN_COVERAGE = 0.5  # a corpus offers the families when at least half its rows carry the proxies


class RowOnlyError(ValueError):
    """Rows without the zero-cost columns a family reads."""


def _columns(rows: pl.DataFrame, proxies: tuple[str, ...], family: str) -> np.ndarray:
    cols = [ZC_PREFIX + p for p in proxies]
    if missing := [c for c in cols if c not in rows.columns]:
        raise RowOnlyError(f"predictor {family!r} reads zero-cost columns the rows lack ({', '.join(missing)}): "
                           "score networks with `narch zc` or a build first; it cannot score a network alone")
    return rows.select(pl.col(c).cast(pl.Float64) for c in cols).to_numpy()


def covers(rows: pl.DataFrame, proxies: tuple[str, ...] = PROXY_NAMES) -> bool:
    """Whether rows carry the proxies (each non-null on at least MIN_COVERAGE of them)."""
    cols = [ZC_PREFIX + p for p in proxies]
    return rows.height > 0 and all(c in rows.columns and rows[c].is_not_null().mean() >= MIN_COVERAGE  # type: ignore[operator]
                                   for c in cols)


class _CdfRanker:
    """Directed empirical CDFs of some proxies, averaged, then a line to the target's fitting space."""

    name: ClassVar[str]
    proxies: ClassVar[tuple[str, ...]]
    row_only: ClassVar[bool] = True

    def __init__(self, *, seed: int = 0, **params: Any) -> None:
        self.seed, self.params = seed, params
        self.target: Target | None = None

    @staticmethod
    def search_space(trial: Any) -> dict[str, Any]:
        return {}

    @classmethod
    def supports_rows(cls, rows: pl.DataFrame) -> bool:
        return covers(rows, cls.proxies)

    def _score(self, x: np.ndarray) -> np.ndarray:
        x = np.where(np.isnan(x), self.median_, x)
        cdf = np.column_stack([np.interp(x[:, j], self.sorted_[j], np.linspace(0.0, 1.0, len(self.sorted_[j])))
                               for j in range(x.shape[1])])
        return (np.where(self.sign_ > 0, cdf, 1.0 - cdf)).mean(axis=1)

    def fit(self, rows: pl.DataFrame, target: Target) -> Self:
        self.target = target
        x = _columns(rows, self.proxies, self.name)
        z = target.forward(rows[target.name].cast(pl.Float64).to_numpy())
        self.median_ = np.array([np.nanmedian(c) if np.isfinite(c).any() else 0.0 for c in x.T])
        x = np.where(np.isnan(x), self.median_, x)
        self.sorted_ = [np.sort(c) for c in x.T]
        self.sign_ = np.array([1.0 if len(set(c)) < 2 or np.nan_to_num(spearmanr(c, z).statistic) >= 0 else -1.0
                               for c in x.T])
        s = self._score(x)
        self.coef_ = np.polyfit(s, z, 1) if np.ptp(s) > 0 else np.array([0.0, float(np.mean(z))])
        return self

    def predict(self, rows: pl.DataFrame) -> np.ndarray:
        assert self.target is not None
        s = self._score(_columns(rows, self.proxies, self.name))
        return self.target.inverse(np.polyval(self.coef_, s))

    def config(self) -> dict[str, Any]:
        if self.target is None:
            raise RuntimeError(f"predictor {self.name!r} is not fitted")
        return {"seed": self.seed, "params": dict(self.params), "target": self.target.name,
                "state": {"proxies": list(self.proxies), "coef": self.coef_.tolist(), "sign": self.sign_.tolist(),
                          "median": self.median_.tolist()}}

    def save(self, folder: Path) -> list[str]:
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write_json(folder / "zc_ranker.json", {"proxies": list(self.proxies)})
        return ["zc_ranker.json", *save_arrays(folder, {f"sorted_{j}": s for j, s in enumerate(self.sorted_)})]

    @classmethod
    def load(cls, folder: Path, config: dict[str, Any]) -> Self:
        obj = cls(seed=int(config.get("seed", 0)), **config.get("params", {}))
        state = config["state"]
        if tuple(state["proxies"]) != cls.proxies:
            raise ValueError(f"{folder}: proxies {state['proxies']} differ from {list(cls.proxies)}")
        obj.target = Target.of(config["target"])
        obj.coef_, obj.sign_ = np.asarray(state["coef"]), np.asarray(state["sign"])
        obj.median_ = np.asarray(state["median"])
        obj.sorted_ = [load_array(folder, f"sorted_{j}") for j in range(len(cls.proxies))]
        return obj


def _ranker(proxy_names: tuple[str, ...], family: str, doc: str) -> type[_CdfRanker]:
    cls = type(f"ZcRanker_{family}", (_CdfRanker,), {"proxies": proxy_names, "__doc__": doc,
                                                    "__module__": __name__})
    return PREDICTORS.register(family)(cls)  # type: ignore[return-value]


for _p in PROXY_NAMES:
    _ranker((_p,), f"zc_{_p}", f"The zero-cost proxy {_p} alone (training-free ranker).")
_ranker(VOTE, "zc_vote", "The mean of the directed CDFs of synflow, jacov and snip (a vote).")


def _signed_log(x: np.ndarray) -> np.ndarray:
    return np.sign(x) * np.log1p(np.abs(x))


@PREDICTORS.register("zc_gbdt")
class ZcGradientBoostedPredictor(GradientBoostedPredictor):
    """GBDT on the architecture features plus every zero-cost proxy (signed log; a missing value is the median)."""

    row_only: ClassVar[bool] = True

    @classmethod
    def supports_rows(cls, rows: pl.DataFrame) -> bool:
        return covers(rows)

    def features(self, rows: pl.DataFrame) -> np.ndarray:
        zc = _signed_log(_columns(rows, PROXY_NAMES, self.name))
        if getattr(self, "zc_median_", None) is None:
            self.zc_median_ = np.array([np.nanmedian(c) if np.isfinite(c).any() else 0.0 for c in zc.T])
        zc = np.where(np.isnan(zc), self.zc_median_, zc)
        return np.hstack([super().features(rows), zc])

    def fit(self, rows: pl.DataFrame, target: Target) -> Self:
        self.zc_median_ = None
        return super().fit(rows, target)

    def predict_networks(self, nets: Any, descriptors: Mapping[str, Any]) -> np.ndarray:
        raise RowOnlyError(f"predictor {self.name!r} reads zero-cost columns; it cannot score a network alone")

    def _state(self) -> dict[str, Any]:
        return {**super()._state(), "zc_median": [float(v) for v in self.zc_median_]}

    def _load(self, folder: Path, state: Mapping[str, Any]) -> None:
        super()._load(folder, state)
        self.zc_median_ = np.asarray(state["zc_median"], dtype=np.float64)

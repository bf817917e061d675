"""Scorers: the frozen predictor artefact behind the controller's ``Scorer`` protocol, and a bootstrap ridge
ensemble on the shared flat features (the paper's "plain regression model"; it also gives an uncertainty for the
exploitation guard)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from narch.controller.objectives import TaskContext
from narch.predictors.base import Target
from narch.predictors.features import FeatureSpec, network_features, row_features
from narch.search_space import Network

if TYPE_CHECKING:
    from narch.predictors.artefacts import Artefact


class FrozenScorer:
    """A frozen predictor folder (``predictors.artefacts``) answering for Network objects of one task."""

    def __init__(self, folder: Path, ctx: TaskContext) -> None:
        from narch.predictors.artefacts import load_artefact

        self.folder = Path(folder)
        self.artefact = load_artefact(self.folder)
        self.ctx = ctx
        self.targets = tuple(self.artefact.targets)
        self._desc = {**ctx.descriptors, "input_shape": list(ctx.input_shape), "n_classes": ctx.n_classes}

    @property
    def manifest(self) -> dict[str, Any]:
        return self.artefact.manifest

    def families(self) -> dict[str, str]:
        return {t: e["predictor"] for t, e in self.artefact.manifest["entries"].items()}

    def predict(self, nets: Sequence[Network]) -> dict[str, np.ndarray]:
        """Every target; ``<target>_std`` too where the family has an uncertainty (the deep ensemble)."""
        return artefact_predictions(self.artefact, nets, self._desc)


def artefact_predictions(artefact: Artefact, nets: Sequence[Network], desc: Mapping[str, Any]
                         ) -> dict[str, np.ndarray]:
    """Every target of a loaded artefact for ``nets`` under one task description, each followed by
    ``<target>_std`` where the family has an uncertainty (``predict_networks_with_std``: the deep ensemble)."""
    out: dict[str, np.ndarray] = {}
    for t, p in artefact.predictors.items():
        with_std = getattr(p, "predict_networks_with_std", None)
        if with_std is not None:
            mean, std = with_std(nets, desc)
            out[t], out[f"{t}_std"] = np.asarray(mean), np.asarray(std)
        else:
            out[t] = _one(p, nets, desc)
    return out


def _one(p: Any, nets: Sequence[Network], desc: Mapping[str, Any]) -> np.ndarray:
    from narch.predictors.artefacts import network_rows

    fast = getattr(p, "predict_networks", None)
    return fast(nets, desc) if fast is not None else p.predict(network_rows(nets, desc))


class RidgeEnsemble:
    """Ridge regressions on bootstrap resamples of the corpus: mean and spread per target (column units)."""

    def __init__(self, *, members: int = 8, alpha: float = 1.0, seed: int = 0) -> None:
        self.members, self.alpha, self.seed = members, alpha, seed
        self.spec: FeatureSpec | None = None
        self.ctx: TaskContext | None = None
        self.weights: dict[str, np.ndarray] = {}  # target -> (d + 1, members), standardised features
        self.mu = np.zeros(0)
        self.sd = np.ones(0)
        self.targets: tuple[str, ...] = ()

    def fit(self, rows: pl.DataFrame, targets: Sequence[str]) -> RidgeEnsemble:
        ok = rows.filter(pl.col("status") == "ok") if "status" in rows.columns else rows
        self.ctx = TaskContext.from_rows(ok)
        self.spec = FeatureSpec.from_rows(ok)
        x = row_features(ok, self.spec)
        self.mu, self.sd = x.mean(0), x.std(0) + 1e-8
        z = np.column_stack([(x - self.mu) / self.sd, np.ones(len(x))])
        rng = np.random.default_rng(self.seed)
        eye = self.alpha * np.eye(z.shape[1])
        eye[-1, -1] = 0.0  # the intercept is not shrunk
        for name in targets:
            t = Target.of(name)
            y = t.forward(ok[name].cast(pl.Float64).to_numpy())
            cols = []
            for _m in range(self.members):
                idx = rng.integers(0, len(y), len(y)) if self.members > 1 else np.arange(len(y))
                zb, yb = z[idx], y[idx]
                cols.append(np.linalg.solve(zb.T @ zb + eye, zb.T @ yb))
            self.weights[name] = np.stack(cols, axis=1)
        self.targets = tuple(targets)
        return self

    def _z(self, nets: Sequence[Network]) -> np.ndarray:
        assert self.spec is not None and self.ctx is not None, "fit first"
        desc = {**self.ctx.descriptors, "input_shape": list(self.ctx.input_shape), "n_classes": self.ctx.n_classes}
        x = network_features(nets, desc, self.spec)
        return np.column_stack([(x - self.mu) / self.sd, np.ones(len(x))])

    def predict(self, nets: Sequence[Network]) -> dict[str, np.ndarray]:
        z = self._z(nets)
        out = {}
        for name, w in self.weights.items():
            t = Target.of(name)
            each = t.inverse(z @ w)  # (n, members), column units
            out[name], out[f"{name}_std"] = each.mean(1), each.std(1)
        return out

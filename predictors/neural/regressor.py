"""The shared shape of the torch families: inputs, target scaling, fitting, batched inference, save and load.

A family subclasses ``NeuralPredictor`` and supplies ``DEFAULTS`` and ``_build(side_dim, out_dim) -> nn.Module`` (a
module mapping ``NetInputs`` to (B, out_dim) predictions in standardised fitting space). Column 0 is the target;
``aux_targets`` (comma-separated column names) adds heads trained jointly (e.g. val_acc with train_time_s: the
paper's one network predicting accuracy and training time), read back with ``predict_all``. Payload:
``weights.pt``, a state dict loaded with ``torch.load(weights_only=True)``; everything else is JSON in the config.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import polars as pl
import torch
from torch import nn

from narch.core.files import atomic_write_bytes
from narch.predictors.base import Target
from narch.predictors.neural.data import NetInputs, SideFeatures, networks_inputs, rows_inputs
from narch.predictors.neural.training import TrainConfig, TrainReport, train_model
from narch.predictors.payloads import load_torch_state
from narch.search_space import Network

WEIGHTS = "weights.pt"
INFERENCE_CHUNK = 8192


def _finite(rows: pl.DataFrame, target: Target) -> pl.DataFrame:
    return rows.filter(pl.col(target.name).is_not_null() & pl.col(target.name).cast(pl.Float64).is_finite())


class NeuralPredictor:
    """Base of the neural families (shared on purpose: inputs and scaling must be identical across them)."""

    name: ClassVar[str]
    uses_graph: ClassVar[bool] = False
    reports_progress: ClassVar[bool] = True  # fit takes val_rows and a report callback (predictors/tuning.py)
    slow: ClassVar[bool] = True  # --quick runs it at the whole pool only, with its defaults (predictors/leaderboard.py)
    DEFAULTS: ClassVar[dict[str, Any]] = {}

    def __init__(self, *, seed: int = 0, **params: Any) -> None:
        unknown = sorted(set(params) - set(self.DEFAULTS))
        if unknown:
            raise TypeError(f"predictor {self.name!r}: unknown parameter(s) {unknown} (known: {sorted(self.DEFAULTS)})")
        self.seed = seed
        self.params = {**self.DEFAULTS, **params}
        self.target: Target | None = None
        self.side: SideFeatures | None = None
        self.model: nn.Module | None = None
        self.y_mean, self.y_std = 0.0, 1.0
        self.aux_stats: list[tuple[float, float]] = []
        self.report: TrainReport | None = None

    @property
    def aux_targets(self) -> list[str]:
        return [a.strip() for a in str(self.params.get("aux_targets", "")).split(",") if a.strip()]

    @staticmethod
    def search_space(trial: Any) -> dict[str, Any]:
        return {}

    @classmethod
    def supports(cls, target: Target) -> bool:
        return True

    def _build(self, side_dim: int, out_dim: int) -> nn.Module:
        raise NotImplementedError

    def _targets_matrix(self, rows: pl.DataFrame, target: Target, *, fit_stats: bool) -> np.ndarray:
        """(R, 1 + aux) standardised fitting-space values; NaN where an auxiliary value is missing."""
        cols = [target.forward(rows[target.name].cast(pl.Float64).to_numpy())]
        for a in self.aux_targets:
            if a == target.name or a not in rows.columns:
                raise ValueError(f"predictor {self.name!r}: auxiliary target {a!r} is the target or not a column")
            v = rows[a].cast(pl.Float64).fill_null(float("nan")).to_numpy()
            with np.errstate(invalid="ignore", divide="ignore"):
                cols.append(np.where(np.isfinite(v), Target.of(a).forward(np.nan_to_num(v, nan=1.0)), np.nan))
        if fit_stats:
            z = cols[0]
            self.y_mean, self.y_std = float(z.mean()), (float(z.std()) if z.std() > 1e-9 else 1.0)
            self.aux_stats = []
            for c in cols[1:]:
                ok = c[np.isfinite(c)]
                sd = float(ok.std()) if ok.size and ok.std() > 1e-9 else 1.0
                self.aux_stats.append((float(ok.mean()) if ok.size else 0.0, sd))
        stats = [(self.y_mean, self.y_std), *self.aux_stats]
        return np.column_stack([(c - m) / s for c, (m, s) in zip(cols, stats, strict=True)])

    # fitting ---------------------------------------------------------------------------------------------------
    def fit(
        self,
        rows: pl.DataFrame,
        target: Target,
        *,
        val_rows: pl.DataFrame | None = None,
        report: Callable[[int, float], None] | None = None,
    ) -> Self:
        """Fit on rows with a finite target, early-stopping on ``val_rows`` when given (else an inner split by
        architecture); ``report(round, validation L1 in fitting space)`` may raise to prune."""
        rows = _finite(rows, target)
        if rows.height == 0:
            raise ValueError(f"predictor {self.name!r}: no rows with a value of {target.name!r} to fit")
        self.target = target
        self.side = SideFeatures.fit(rows, arch_scalars=bool(self.params.get("arch_scalars", False)))
        y = self._targets_matrix(rows, target, fit_stats=True)
        val_idx = None
        if val_rows is not None and (val_rows := _finite(val_rows, target)).height:
            val_idx = np.arange(rows.height, rows.height + val_rows.height)
            rows = pl.concat([rows, val_rows.select(rows.columns)], how="vertical_relaxed")
            y = self._targets_matrix(rows, target, fit_stats=False)
        inputs = self._encode_rows(rows, self.side)
        groups = (rows["arch_id"] if "arch_id" in rows.columns else rows["arch_json"]).to_numpy()
        side_dim, out_dim = self.side.dim, 1 + len(self.aux_targets)
        self.model, self.report = train_model(
            lambda: self._build(side_dim, out_dim),
            inputs,
            y,
            groups,
            TrainConfig.from_params(self.params),
            seed=self.seed,
            val_idx=val_idx,
            report=report,
            report_scale=self.y_std,
        )
        return self

    # inference -------------------------------------------------------------------------------------------------
    def _fitted(self) -> tuple[nn.Module, SideFeatures, Target]:
        if self.model is None or self.side is None or self.target is None:
            raise RuntimeError(f"predictor {self.name!r} is not fitted")
        return self.model, self.side, self.target

    def predict_z(self, inputs: NetInputs, *, all_heads: bool = False) -> np.ndarray:
        """Standardised fitting-space outputs (of the target, or (R, heads) with ``all_heads``), batched."""
        model, _, _ = self._fitted()
        outs = []
        with torch.inference_mode():
            for k in range(0, len(inputs), INFERENCE_CHUNK):
                idx = torch.arange(k, min(k + INFERENCE_CHUNK, len(inputs)))
                part = inputs if len(inputs) <= INFERENCE_CHUNK else inputs.take(idx)
                out = model(part)
                outs.append((out if all_heads else out[:, 0]).double().numpy())
        return np.concatenate(outs) if outs else np.zeros((0, 1 + len(self.aux_targets)) if all_heads else 0)

    def _to_column(self, z: np.ndarray) -> np.ndarray:
        _, _, target = self._fitted()
        return target.inverse(z * self.y_std + self.y_mean)

    def predict(self, rows: pl.DataFrame) -> np.ndarray:
        if rows.height == 0:
            return np.zeros(0)
        return self.predict_inputs(self.rows_inputs(rows))

    def _encode_rows(self, rows: pl.DataFrame, side: SideFeatures) -> NetInputs:
        """The model inputs of corpus rows (a family reading other columns overrides it)."""
        return rows_inputs(rows, side, graph=self.uses_graph)

    def rows_inputs(self, rows: pl.DataFrame) -> NetInputs:
        _, side, _ = self._fitted()
        return self._encode_rows(rows, side)

    def networks_inputs(self, nets: Sequence[Network], descriptors: Mapping[str, Any]) -> NetInputs:
        _, side, _ = self._fitted()
        return networks_inputs(nets, descriptors, side, graph=self.uses_graph)

    def predict_inputs(self, inputs: NetInputs) -> np.ndarray:
        """Column-unit predictions from prepared inputs (an ensemble shares them among its members)."""
        return self._to_column(self.predict_z(inputs))

    def inputs_key(self) -> str:
        """Members with equal keys take identical inputs (same side features, same graph needs)."""
        _, side, _ = self._fitted()
        return json.dumps([self.uses_graph, side.to_dict()], sort_keys=True)

    def predict_all(self, rows: pl.DataFrame) -> dict[str, np.ndarray]:
        """Every head in column units: the target and each auxiliary target."""
        _, side, target = self._fitted()
        z = self.predict_z(self._encode_rows(rows, side), all_heads=True)
        stats = [(self.y_mean, self.y_std), *self.aux_stats]
        names = [target.name, *self.aux_targets]
        return {n: Target.of(n).inverse(z[:, k] * s + m) for k, (n, (m, s)) in enumerate(zip(names, stats,
                                                                                              strict=True))}

    def predict_networks(self, nets: Sequence[Network], descriptors: Mapping[str, Any]) -> np.ndarray:
        """Predictions for Network objects of one task (``descriptors`` as in predictors.features)."""
        if not nets:
            return np.zeros(0)
        return self.predict_inputs(self.networks_inputs(nets, descriptors))

    # artefacts -------------------------------------------------------------------------------------------------
    def config(self) -> dict[str, Any]:
        _, side, target = self._fitted()
        return {
            "seed": self.seed,
            "params": dict(self.params),
            "target": target.name,
            "state": {
                "side": side.to_dict(),
                "y_mean": self.y_mean,
                "y_std": self.y_std,
                "aux_stats": [list(a) for a in self.aux_stats],
                "train": asdict(self.report) if self.report else None,
            },
        }

    def save(self, folder: Path) -> list[str]:
        model, _, _ = self._fitted()
        folder.mkdir(parents=True, exist_ok=True)
        state = model.state_dict()
        atomic_write_bytes(folder / WEIGHTS, lambda f: torch.save(state, f))
        return [WEIGHTS]

    def _load_state(self, state: Mapping[str, Any]) -> None:
        """What a family keeps beyond the shared state, restored before its model is built (a hook)."""

    @classmethod
    def load(cls, folder: Path, config: dict[str, Any]) -> Self:
        obj = cls(seed=int(config.get("seed", 0)), **config.get("params", {}))
        state = config["state"]
        obj._load_state(state)
        obj.target = Target.of(config["target"])
        obj.side = SideFeatures.from_dict(state["side"])
        obj.y_mean, obj.y_std = float(state["y_mean"]), float(state["y_std"])
        obj.aux_stats = [(float(m), float(s)) for m, s in state.get("aux_stats", [])]
        model = obj._build(obj.side.dim, 1 + len(obj.aux_targets))
        model.load_state_dict(load_torch_state(folder / WEIGHTS))
        obj.model = model.eval()
        if state.get("train"):
            obj.report = TrainReport(**state["train"])
        return obj

"""A roofline-calibrated time model: per op-class costs from hardware/, one efficiency per term fitted on training rows.

Each row's run is split into terms from ``hardware.costs`` (per op class: FLOPs and bytes; all ops: launches; a
count of steps for the per-step Python work; a count of epochs; one constant). Non-negative least squares of the
measured time on the terms, weighted by 1/measured so it minimises relative error (``hardware.compare.fit_nnls``):
a coefficient is seconds per FLOP, per byte or per launch, i.e. the inverse of the fitted attainable rate.
Only time targets: training run, epoch and step times, and forward latencies (forward-only terms).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import polars as pl

from narch.core.files import atomic_write_json
from narch.hardware.calibration import fit_nnls
from narch.hardware.costs import OpClass, run_costs, step_costs
from narch.predictors.base import PREDICTORS, Target
from narch.predictors.features import DEFAULT_SHAPE
from narch.predictors.tabular import TargetError, load_array, save_arrays
from narch.search_space import Network

TERMS = [f"{c.value}:{k}" for c in OpClass for k in ("flops", "bytes")] + ["launches", "steps", "epochs", "const"]
RUN_TARGETS = ("train_time_s", "train_time_robust_s", "train_cpu_s", "epoch_time_p50_s", "epoch_time_p90_s",
               "step_time_p50_s", "step_time_p90_s")
LATENCY_TARGETS = ("latency_bs1_ms", "latency_bsN_ms")
_CACHE: dict[tuple[Any, ...], np.ndarray] = {}


def _run_terms(net: Network, shape: tuple[int, ...], n_classes: int, batch: int, n_train: int, epochs: int,
               per: str) -> np.ndarray:
    """Terms of a training run, of one epoch (per='epoch') or of one full step (per='step')."""
    rc = run_costs(net, shape, n_classes, batch_size=batch, n_train=n_train, epochs=epochs)
    n_full = rc.steps_per_epoch - (rc.remainder is not None)
    parts = [(rc.full, 1)] if per == "step" else [(rc.full, n_full), (rc.remainder, 1)]
    scale = 1 if per == "step" else (epochs if per == "run" else 1)
    t = np.zeros(len(TERMS))
    for costs, count in parts:
        if costs is None:
            continue
        for o in costs.ops():
            k = TERMS.index(f"{o.op_class.value}:flops")
            t[k] += count * scale * o.flops
            t[k + 1] += count * scale * o.bytes
            t[-4] += count * scale * o.launches
    t[-3] = 1 if per == "step" else rc.steps_per_epoch * scale
    t[-2] = epochs if per == "run" else 1
    t[-1] = 1.0
    return t


def _forward_terms(net: Network, shape: tuple[int, ...], n_classes: int, batch: int) -> np.ndarray:
    """Forward-only terms of one inference batch (latency)."""
    sc = step_costs(net, shape, n_classes, batch)
    t = np.zeros(len(TERMS))
    for o in sc.ops():
        if o.op_class in (OpClass.OPTIMIZER, OpClass.DATA, OpClass.LOSS):
            continue
        k = TERMS.index(f"{o.op_class.value}:flops")
        t[k] += o.flops_fwd
        t[k + 1] += o.bytes_fwd
        t[-4] += o.launches_fwd
    t[-1] = 1.0
    return t


def terms_for(net: Network | str, target: str, d: Mapping[str, Any]) -> np.ndarray:
    """Cached terms of one network under one task description ``d`` (a corpus row or descriptors)."""
    shape = tuple(int(x) for x in (d.get("input_shape") or DEFAULT_SHAPE[0]))
    n_classes = int(d.get("n_classes") or DEFAULT_SHAPE[1])
    if target in LATENCY_TARGETS:
        batch = 1 if target == "latency_bs1_ms" else int(d.get("latency_batch_n") or 1)
        key: tuple[Any, ...] = (net, target, shape, n_classes, batch)
    else:
        batch, n_train, epochs = int(d.get("batch_size") or 128), int(d.get("n_train") or 1), int(d.get("epochs") or 1)
        key = (net, target, shape, n_classes, batch, n_train, epochs)
    v = _CACHE.get(key)
    if v is None:
        if len(_CACHE) > 100_000:
            _CACHE.clear()
        obj = Network.from_json(net) if isinstance(net, str) else net
        if target in LATENCY_TARGETS:
            v = _forward_terms(obj, shape, n_classes, batch)
        else:
            per = "step" if target.startswith("step_") else ("epoch" if target.startswith("epoch_") else "run")
            v = _run_terms(obj, shape, n_classes, batch, n_train, epochs, per)
        _CACHE[key] = v
    return v


@PREDICTORS.register("roofline_time")
class RooflineTimePredictor:
    """Roofline terms from hardware/ with per-term efficiencies fitted by relative-error NNLS (times only)."""

    name: ClassVar[str]
    TARGETS: ClassVar[tuple[str, ...]] = RUN_TARGETS + LATENCY_TARGETS

    def __init__(self, *, seed: int = 0, **params: Any) -> None:
        self.seed = seed
        self.params = params
        self.target: Target | None = None

    @staticmethod
    def search_space(trial: Any) -> dict[str, Any]:
        return {}

    @classmethod
    def supports(cls, target: Target) -> bool:
        return target.name in cls.TARGETS

    def _terms(self, rows: pl.DataFrame) -> np.ndarray:
        assert self.target is not None
        cols = [c for c in ("arch_json", "input_shape", "n_classes", "batch_size", "n_train", "epochs",
                            "latency_batch_n") if c in rows.columns]
        return np.array([terms_for(r["arch_json"], self.target.name, r) for r in rows.select(cols).iter_rows(
            named=True)])

    def fit(self, rows: pl.DataFrame, target: Target) -> Self:
        if not self.supports(target):
            raise TargetError(f"predictor 'roofline_time' models times only ({', '.join(self.TARGETS)}); "
                              f"got {target.name!r}")
        self.target = target
        y = rows[target.name].cast(pl.Float64).to_numpy()
        self.coef_ = fit_nnls(self._terms(rows), np.maximum(y, 1e-12))
        return self

    def _out(self, x: np.ndarray) -> np.ndarray:
        return np.maximum(x @ self.coef_, 1e-9)

    def predict(self, rows: pl.DataFrame) -> np.ndarray:
        return self._out(self._terms(rows))

    def predict_networks(self, nets: Sequence[Network], descriptors: Mapping[str, Any]) -> np.ndarray:
        assert self.target is not None
        return self._out(np.array([terms_for(n, self.target.name, descriptors) for n in nets]))

    def efficiencies(self) -> dict[str, float]:
        """Fitted seconds per unit of each term."""
        return dict(zip(TERMS, map(float, self.coef_), strict=True))

    def config(self) -> dict[str, Any]:
        if self.target is None:
            raise RuntimeError("predictor 'roofline_time' is not fitted")
        return {"seed": self.seed, "params": dict(self.params), "target": self.target.name,
                "state": {"terms": TERMS}}

    def save(self, folder: Path) -> list[str]:
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write_json(folder / "roofline_terms.json", self.efficiencies(), indent=1, sort_keys=False)
        return ["roofline_terms.json", *save_arrays(folder, {"roofline_coef": self.coef_})]

    @classmethod
    def load(cls, folder: Path, config: dict[str, Any]) -> Self:
        if config.get("state", {}).get("terms") != TERMS:
            raise ValueError(f"{folder}: roofline terms differ from this version's {TERMS}")
        obj = cls(seed=int(config.get("seed", 0)), **config.get("params", {}))
        obj.target = Target.of(config["target"])
        obj.coef_ = load_array(folder, "roofline_coef")
        return obj

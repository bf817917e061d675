"""A roofline-calibrated time model: per op-class costs from hardware/, one efficiency per term fitted on training rows.

Each row's run is split into terms from ``hardware.costs`` (per op class: FLOPs and bytes; all ops: launches; a
count of steps for the per-step Python work; a count of epochs; one constant). Non-negative least squares of the
measured time on the terms, weighted by 1/measured so it minimises relative error (``hardware.compare.fit_nnls``):
a coefficient is seconds per FLOP, per byte or per launch, i.e. the inverse of the fitted attainable rate.
Only time targets: training run, epoch and step times, and forward latencies (forward-only terms).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import polars as pl

from narch.core.files import atomic_write_json
from narch.core.lru import LRU
from narch.hardware.calibration import fit_nnls
from narch.hardware.costs import (
    OP_CLASSES,
    V_BYTES_BWD,
    V_BYTES_FWD,
    V_FLOPS_BWD,
    V_FLOPS_FWD,
    V_LAUNCHES_BWD,
    V_LAUNCHES_FWD,
    OpClass,
    OpTable,
    network_ops,
    run_batches,
)
from narch.predictors.base import PREDICTORS, Target
from narch.predictors.features import DEFAULT_SHAPE
from narch.predictors.tabular import TargetError, load_array, save_arrays
from narch.search_space import Network

TERMS = [f"{c.value}:{k}" for c in OpClass for k in ("flops", "bytes")] + ["launches", "steps", "epochs", "const"]
RUN_TARGETS = ("train_time_s", "train_time_robust_s", "train_cpu_s", "epoch_time_p50_s", "epoch_time_p90_s",
               "step_time_p50_s", "step_time_p90_s")
LATENCY_TARGETS = ("latency_bs1_ms", "latency_bsN_ms")
_CACHE: LRU[np.ndarray] = LRU(100_000)
_CLASS_TERM = np.asarray([TERMS.index(f"{c.value}:flops") for c in OP_CLASSES], dtype=np.int64)
_FORWARD_ONLY = np.asarray([c not in (OpClass.OPTIMIZER, OpClass.DATA, OpClass.LOSS) for c in OP_CLASSES])
_LAUNCHES, _STEPS, _EPOCHS, _CONST = (TERMS.index(k) for k in ("launches", "steps", "epochs", "const"))


def _accumulate(ops: OpTable, parts: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]) -> np.ndarray:
    """(B, TERMS) sums of per-op (keep, flops, bytes, launches) parts: each term adds its ops one by one, part by
    part in op order, from 0 (bincount's order), as a loop over the parts' ops would."""
    nt = len(TERMS)
    b = len(ops.start) - 1
    idx, w = [], []
    base = ops.net * nt
    k = _CLASS_TERM[ops.op_class]
    for keep, flops, nbytes, launches in parts:
        idx += [(base + k)[keep], (base + k + 1)[keep], (base + _LAUNCHES)[keep]]
        w += [flops[keep], nbytes[keep], launches[keep]]
    return np.bincount(np.concatenate(idx), weights=np.concatenate(w), minlength=b * nt).reshape(b, nt)


def _run_terms(ops: OpTable, batch: int, n_train: int, epochs: int, per: str) -> np.ndarray:
    """Terms of a training run, of one epoch (per='epoch') or of one full step (per='step'), per network."""
    full, rem = run_batches(batch, n_train)
    steps_per_epoch = math.ceil(n_train / batch)
    n_full = steps_per_epoch - (rem != 0)
    batches = [(full, 1)] if per == "step" else [(full, n_full)] + ([(rem, 1)] if rem else [])
    scale = 1 if per == "step" else (epochs if per == "run" else 1)
    keep = np.ones(len(ops.net), dtype=bool)
    parts = []
    for n, count in batches:
        v = ops.values(n)
        # count * scale * value as floats: both factors are exact below 2**53, so the one rounding of the product
        # is that of the exact integer product
        mult = float(count * scale)
        parts.append((keep, (v[:, V_FLOPS_FWD] + v[:, V_FLOPS_BWD]).astype(np.float64) * mult,
                      (v[:, V_BYTES_FWD] + v[:, V_BYTES_BWD]).astype(np.float64) * mult,
                      (v[:, V_LAUNCHES_FWD] + v[:, V_LAUNCHES_BWD]).astype(np.float64) * mult))
    t = _accumulate(ops, parts)
    t[:, _STEPS] = 1 if per == "step" else steps_per_epoch * scale
    t[:, _EPOCHS] = epochs if per == "run" else 1
    t[:, _CONST] = 1.0
    return t


def _forward_terms(ops: OpTable, batch: int) -> np.ndarray:
    """Forward-only terms of one inference batch (latency), per network."""
    v = ops.values(batch).astype(np.float64)
    t = _accumulate(ops, [(_FORWARD_ONLY[ops.op_class], v[:, V_FLOPS_FWD], v[:, V_BYTES_FWD], v[:, V_LAUNCHES_FWD])])
    t[:, _CONST] = 1.0
    return t


def _task(target: str, d: Mapping[str, Any]) -> tuple[Any, ...]:
    """What a target's terms depend on besides the network: (shape, classes, batch[, n_train, epochs])."""
    shape = tuple(int(x) for x in (d.get("input_shape") or DEFAULT_SHAPE[0]))
    n_classes = int(d.get("n_classes") or DEFAULT_SHAPE[1])
    if target in LATENCY_TARGETS:
        return shape, n_classes, 1 if target == "latency_bs1_ms" else int(d.get("latency_batch_n") or 1)
    return shape, n_classes, int(d.get("batch_size") or 128), int(d.get("n_train") or 1), int(d.get("epochs") or 1)


def terms_many(nets: Sequence[Network | str], target: str, d: Mapping[str, Any]) -> np.ndarray:
    """(len(nets), TERMS) cached terms of networks (or their canonical JSON) under one task description ``d`` (a
    corpus row or descriptors); the ones not cached are costed together."""
    task = _task(target, d)
    keys = [(n, target, *task) for n in nets]
    out = [_CACHE.get(k) for k in keys]
    missing = [i for i, v in enumerate(out) if v is None]
    if missing:
        todo: dict[Any, int] = {}
        for i in missing:
            todo.setdefault(keys[i], i)
        objs = [Network.from_json(n) if isinstance(n, str) else n for n in (nets[i] for i in todo.values())]
        ops = network_ops(objs, task[0], task[1])
        if target in LATENCY_TARGETS:
            t = _forward_terms(ops, task[2])
        else:
            per = "step" if target.startswith("step_") else ("epoch" if target.startswith("epoch_") else "run")
            t = _run_terms(ops, task[2], task[3], task[4], per)
        new = {key: _CACHE.put(key, row) for key, row in zip(todo, t, strict=True)}
        for i in missing:
            out[i] = new[keys[i]]
    return np.array(out)


def terms_for(net: Network | str, target: str, d: Mapping[str, Any]) -> np.ndarray:
    """Cached terms of one network under one task description ``d`` (a corpus row or descriptors)."""
    return terms_many([net], target, d)[0]


def row_terms(rows: pl.DataFrame, target: str) -> np.ndarray:
    """(rows, TERMS) of corpus rows, costed together per task (the rows of a corpus usually share one)."""
    cols = [c for c in ("arch_json", "input_shape", "n_classes", "batch_size", "n_train", "epochs", "latency_batch_n")
            if c in rows.columns]
    groups: dict[tuple[Any, ...], tuple[dict[str, Any], list[int]]] = {}
    js = []
    for i, r in enumerate(rows.select(cols).iter_rows(named=True)):
        js.append(r["arch_json"])
        groups.setdefault(_task(target, r), (r, []))[1].append(i)
    out = np.empty((rows.height, len(TERMS)))
    for d, idx in groups.values():
        out[idx] = terms_many([js[i] for i in idx], target, d)
    return out


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
        return row_terms(rows, self.target.name)

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
        return self._out(terms_many(nets, self.target.name, descriptors))

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

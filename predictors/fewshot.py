"""Few-shot transfer of time predictions to a new device: learn from source devices, adapt from k measured networks.

A network's times on different devices are strongly related (the same layers dominate), so the log times of the
networks on the source devices are its features on the target: log t_target = b + w . log t_sources. With k = 10
measured networks, fitting w freely overfits; instead w gets a prior learned from the sources themselves (the
meta-learning step): each source device in turn is regressed on the others over every network they share, and the
mean and covariance of those weight vectors are the prior. Adapting to the target is then the posterior of a
Bayesian linear regression (noise level and prior strength chosen by leave-one-out on the k networks), which stays
near "a typical mix of the sources" until the k measurements say otherwise.

``adapt(..., mode="blend")`` also fits the roofline time model (``predictors.roofline_time``: per op-class FLOP,
byte and launch terms by relative-error NNLS) on the k networks and mixes the two in log space with a weight chosen by
leave-one-out: the sources carry what devices share, the roofline what is particular to the target.

A network a source device did not measure gets that source's time from a gradient-boosted model of the source's
rows (architecture features), so the predictor serves any network of the search space, not only measured ones.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import polars as pl

from narch.core.errors import NarchError
from narch.hardware.calibration import fit_nnls
from narch.predictors.features import FeatureSpec, row_features
from narch.predictors.roofline_time import row_terms

Mode = Literal["prior", "roofline", "blend"]
MODES: tuple[Mode, ...] = ("prior", "roofline", "blend")
TIME_COLUMNS = ("train_time_robust_s", "train_time_s", "latency_bs1_ms", "latency_bsN_ms")
_DESCRIPTORS = ("input_shape", "n_classes", "batch_size", "n_train", "epochs", "latency_batch_n")
NOISE = (1e-4, 1e-3, 1e-2, 3e-2, 1e-1, 3e-1, 1.0)  # candidate residual variances (log time squared)
PRIOR_SCALE = (0.1, 1.0, 10.0)  # candidate multipliers of the learned prior covariance
BLEND = np.linspace(0.0, 1.0, 11)
MIN_SHARED = 20  # fewer shared networks than this: no learned prior (plain shrinkage towards zero)


class TransferError(NarchError, ValueError):
    """A device table or a few-shot request that cannot be used."""


@dataclass
class DeviceTimes:
    """One device's measured times: one row per network (``arch_id``), ``target`` > 0, in the target's unit."""

    name: str
    target: str
    rows: pl.DataFrame

    @staticmethod
    def load(folder: str | Path, *, target: str = "auto", name: str | None = None) -> DeviceTimes:
        """A corpus folder's ok rows with a positive time, averaged over repeats of a network. ``target="auto"``:
        the first of TIME_COLUMNS that every such row has."""
        from narch.dataset_builder.corpus import read_corpus

        folder = Path(folder)
        df = read_corpus(folder)
        if "status" in df.columns:
            df = df.filter(pl.col("status") == "ok")
        return DeviceTimes.from_rows(df, target=target, name=name or folder.name)

    @staticmethod
    def from_rows(df: pl.DataFrame, *, target: str = "auto", name: str) -> DeviceTimes:
        if target == "auto":
            usable = [c for c in TIME_COLUMNS if c in df.columns and df.height and df[c].null_count() == 0]
            if not usable:
                raise TransferError(f"device {name!r}: no time column that every row has (looked for "
                                    f"{', '.join(TIME_COLUMNS)})")
            target = usable[0]
        if target not in df.columns:
            raise TransferError(f"device {name!r}: no column {target!r}")
        df = df.filter(pl.col(target).is_not_null() & (pl.col(target) > 0))
        if df.height == 0:
            raise TransferError(f"device {name!r}: no row with a positive {target!r}")
        keep = [c for c in _DESCRIPTORS if c in df.columns]
        rows = (df.group_by("arch_id", maintain_order=True)
                .agg(pl.col("arch_json").first(), *(pl.col(c).first() for c in keep), pl.col(target).mean())
                .sort("arch_id"))
        return DeviceTimes(name, target, rows)

    def log_times(self) -> dict[str, float]:
        return dict(zip(self.rows["arch_id"].to_list(), np.log(self.rows[self.target].to_numpy()).tolist(),
                        strict=True))


@dataclass
class _Source:
    device: DeviceTimes
    known: dict[str, float]
    spec: FeatureSpec | None = None
    model: object | None = None  # fallback for networks it did not measure, fitted on first need

    def log_times(self, rows: pl.DataFrame) -> np.ndarray:
        ids = rows["arch_id"].to_list()
        out = np.array([self.known.get(a, np.nan) for a in ids])
        missing = np.isnan(out)
        if missing.any():
            out[missing] = self._fallback(rows.filter(pl.Series(missing)))
        return out

    def _fallback(self, rows: pl.DataFrame) -> np.ndarray:
        from sklearn.ensemble import HistGradientBoostingRegressor

        if self.model is None:
            src = self.device.rows
            self.spec = FeatureSpec.from_rows(src)
            self.model = HistGradientBoostingRegressor(max_iter=200, random_state=0).fit(
                row_features(src, self.spec), np.log(src[self.device.target].to_numpy()))
        assert self.spec is not None
        return self.model.predict(row_features(rows, self.spec))  # type: ignore[attr-defined]


@dataclass
class Prior:
    """Gaussian prior over the weights of the source log times, learned from the sources."""

    mean: np.ndarray
    cov: np.ndarray
    learned: bool
    precision: np.ndarray = field(init=False)  # cov's inverse, once (every posterior of every fold uses it)

    def __post_init__(self) -> None:
        self.precision = np.linalg.inv(self.cov)

    @staticmethod
    def learn(z: np.ndarray, *, ridge: float = 1e-2, jitter: float = 1e-3) -> Prior:
        """``z``: log times of shared networks (rows) on the sources (columns). Each source regressed on the others
        (centred least squares with a small ridge); the weight vectors' mean and covariance."""
        n, s = z.shape
        if n < MIN_SHARED or s < 2:
            return Prior(np.zeros(s), np.eye(s), learned=False)
        zc = z - z.mean(0)
        ws = []
        for j in range(s):
            o = [i for i in range(s) if i != j]
            a = zc[:, o]
            w = np.zeros(s)
            w[o] = np.linalg.solve(a.T @ a + ridge * np.eye(len(o)), a.T @ zc[:, j])
            ws.append(w)
        w_arr = np.array(ws)
        cov = np.cov(w_arr.T) if s > 2 else np.diag(w_arr.var(0))
        return Prior(w_arr.mean(0), np.atleast_2d(cov) + jitter * np.eye(s), learned=True)


def _posterior(a: np.ndarray, b: np.ndarray, prior: Prior, noise: float, scale: float) -> tuple[np.ndarray, float]:
    """Posterior mean weights for centred features ``a`` and targets ``b``, and the leave-one-out squared error."""
    ci = prior.precision / scale
    p = a.T @ a / noise + ci
    w = np.linalg.solve(p, a.T @ b / noise + ci @ prior.mean)
    h = np.einsum("ij,ji->i", a, np.linalg.solve(p, a.T)) / noise + 1.0 / len(b)
    r = b - a @ w
    return w, float(np.mean((r / np.maximum(1.0 - h, 1e-3)) ** 2))


class FewShotTransfer:
    """Learned from source devices; ``adapt`` it to a target device from k measured networks."""

    def __init__(self, sources: Sequence[DeviceTimes]) -> None:
        if not sources:
            raise TransferError("few-shot transfer needs at least one source device")
        self.sources = [_Source(d, d.log_times()) for d in sources]
        shared = set.intersection(*(set(s.known) for s in self.sources))
        ids = sorted(shared)
        z = np.array([[s.known[a] for s in self.sources] for a in ids]).reshape(len(ids), len(self.sources))
        self.prior = Prior.learn(z)

    @property
    def source_names(self) -> list[str]:
        return [s.device.name for s in self.sources]

    def features(self, rows: pl.DataFrame) -> np.ndarray:
        """Log times of the rows' networks on every source (measured, else the source's fallback model)."""
        return np.column_stack([s.log_times(rows) for s in self.sources])

    def adapt(self, rows: pl.DataFrame, target: str, *, mode: Mode = "blend",
              z: np.ndarray | None = None) -> Adapted:
        """Fit to ``rows`` (k measured networks of the target device; ``target`` names their time column).
        ``z``: their source features when the caller has them already (``features(rows)``)."""
        if mode not in MODES:
            raise TransferError(f"mode {mode!r} is not one of {', '.join(MODES)}")
        if rows.height < 3:
            raise TransferError(f"few-shot adaptation needs at least 3 measured networks, got {rows.height}")
        y = rows[target].cast(pl.Float64).to_numpy()
        if not np.all(np.isfinite(y) & (y > 0)):
            raise TransferError(f"column {target!r}: few-shot times must be positive numbers")
        z = self.features(rows) if z is None else z
        return Adapted(self, mode, target, z, np.log(y), _terms(rows, target))


def _terms(rows: pl.DataFrame, target: str) -> np.ndarray:
    return row_terms(rows, target)


@dataclass
class Adapted:
    """A few-shot predictor for one target device."""

    base: FewShotTransfer
    mode: Mode
    target: str
    z: np.ndarray  # source log times of the k networks
    y: np.ndarray  # their log times on the target
    terms: np.ndarray  # their roofline terms
    weight: float = field(init=False)  # of the source model in log space (1: sources only, 0: roofline only)

    def __post_init__(self) -> None:
        self._src = self._fit_sources(self.z, self.y)
        self._roof = fit_nnls(self.terms, np.exp(self.y))
        if self.mode == "prior":
            self.weight = 1.0
        elif self.mode == "roofline":
            self.weight = 0.0
        else:
            self.weight = self._loo_weight()

    def _fit_sources(self, z: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float, np.ndarray]:
        zm, ym = z.mean(0), y.mean()
        best = min((_posterior(z - zm, y - ym, self.base.prior, n, s) for n in NOISE for s in PRIOR_SCALE),
                   key=lambda t: t[1])
        return zm, ym, best[0]

    def _loo_weight(self) -> float:
        k = len(self.y)
        src, roof = np.empty(k), np.empty(k)
        for i in range(k):
            keep = np.arange(k) != i
            zm, ym, w = self._fit_sources(self.z[keep], self.y[keep])
            src[i] = ym + (self.z[i] - zm) @ w
            roof[i] = np.log(max(float(self.terms[i] @ fit_nnls(self.terms[keep], np.exp(self.y[keep]))), 1e-12))
        errs = [float(np.mean((a * src + (1 - a) * roof - self.y) ** 2)) for a in BLEND]
        return float(BLEND[int(np.argmin(errs))])

    def predict_log(self, rows: pl.DataFrame, *, z: np.ndarray | None = None) -> np.ndarray:
        """Log times; ``z``: the rows' source features when the caller has them."""
        out = np.zeros(rows.height)
        if self.weight > 0:
            zm, ym, w = self._src
            out += self.weight * (ym + ((self.base.features(rows) if z is None else z) - zm) @ w)
        if self.weight < 1:
            out += (1 - self.weight) * np.log(np.maximum(_terms(rows, self.target) @ self._roof, 1e-12))
        return out

    def predict(self, rows: pl.DataFrame, *, z: np.ndarray | None = None) -> np.ndarray:
        """Times of the rows' networks on the target device, in the target column's unit."""
        return np.exp(self.predict_log(rows, z=z))

    def describe(self) -> Mapping[str, object]:
        w = self._src[2]
        return {"mode": self.mode, "source_weight": self.weight, "prior_learned": self.base.prior.learned,
                "source_coef": dict(zip(self.base.source_names, map(float, w), strict=True))}

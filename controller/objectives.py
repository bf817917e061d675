"""What the reward is computed from: predicted accuracy (and its uncertainty), model size, training time.

A ``Scorer`` is anything that predicts corpus targets for a batch of networks: the frozen predictor (through an
adapter) or a regression fitted here. Size is exact (parameters and batch-norm buffers, as the builder measures
it); time is either the scorer's ``train_time_s`` (the measured device) or the roofline of a named device.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import polars as pl

from narch.hardware.catalogue import Device, get_device
from narch.hardware.roofline import roofline_run, roofline_train_times
from narch.search_space import Network, trace_network
from narch.search_space.trace import batch_trace

TIME_TARGET = "train_time_s"


class Scorer(Protocol):
    """Batched predictions: ``{target: (n,) means}`` plus ``{target + "_std": (n,)}`` where it has uncertainty."""

    targets: tuple[str, ...]

    def predict(self, nets: Sequence[Network]) -> dict[str, np.ndarray]: ...


@dataclass(frozen=True)
class TaskContext:
    """The task and protocol the predictor was trained on: what the networks are scored for."""

    input_shape: tuple[int, ...]
    n_classes: int
    n_train: int
    epochs: int
    batch_size: int
    descriptors: dict[str, Any] = field(default_factory=dict)

    @staticmethod
    def from_rows(rows: pl.DataFrame) -> TaskContext:
        """From corpus rows (the first ok row; a corpus holds one task and protocol)."""
        ok = rows.filter(pl.col("status") == "ok") if "status" in rows.columns else rows
        if ok.height == 0:
            raise ValueError("corpus has no ok rows to take the task from")
        r = ok.row(0, named=True)
        desc = {k: r[k] for k in ("n_train", "n_classes", "class_balance", "linear_probe_acc", "centroid_acc",
                                  "epochs", "batch_size", "lr") if r.get(k) is not None}
        desc["input_shape"] = list(r["input_shape"])
        return TaskContext(tuple(int(x) for x in r["input_shape"]), int(r["n_classes"]), int(r["n_train"]),
                           int(r["epochs"]), int(r["batch_size"]), desc)

    def to_dict(self) -> dict[str, Any]:
        return {"input_shape": list(self.input_shape), "n_classes": self.n_classes, "n_train": self.n_train,
                "epochs": self.epochs, "batch_size": self.batch_size, "descriptors": self.descriptors}

    @staticmethod
    def from_dict(d: Mapping[str, Any]) -> TaskContext:
        return TaskContext(tuple(d["input_shape"]), int(d["n_classes"]), int(d["n_train"]), int(d["epochs"]),
                           int(d["batch_size"]), dict(d.get("descriptors", {})))


def model_size_bytes(net: Network, input_shape: tuple[int, ...], n_classes: int) -> int:
    """Bytes of parameters and buffers of the built model, as the search space's trace counts them."""
    return trace_network(net, input_shape, n_classes).model_size_bytes


@dataclass(frozen=True, slots=True)
class Scores:
    """Objectives of a batch of networks."""

    acc: np.ndarray
    acc_std: np.ndarray | None
    size_bytes: np.ndarray
    time_s: np.ndarray
    params: np.ndarray


class Objectives:
    """Accuracy from the scorer, exact size, time from the scorer or from a device's roofline."""

    def __init__(self, scorer: Scorer, ctx: TaskContext, *, accuracy: str = "val_acc", time_source: str = "predictor",
                 device: str = "local", label_ranges: Mapping[str, tuple[float, float]] | None = None) -> None:
        if accuracy not in scorer.targets:
            raise ValueError(f"the predictor has no {accuracy!r} target (it has: {', '.join(scorer.targets)})")
        if time_source == "predictor" and TIME_TARGET not in scorer.targets:
            raise ValueError(f"time source 'predictor' needs a {TIME_TARGET!r} target "
                             f"(the predictor has: {', '.join(scorer.targets)}); use a roofline device instead")
        self.scorer, self.ctx, self.accuracy = scorer, ctx, accuracy
        self.label_ranges = dict(label_ranges or {})  # target -> (lo, hi) of the predictor's training labels
        self.time_source = time_source
        self.device_key = device
        self._device: Device | None = get_device(device) if time_source == "roofline" else None

    @property
    def time_label(self) -> str:
        return "measured (predicted)" if self.time_source == "predictor" else f"roofline {self.device_key}"

    def _kept(self, pred: Mapping[str, np.ndarray], target: str) -> np.ndarray:
        """A target's predictions kept inside the range of the labels the predictor was trained on: a regression
        extrapolates past them (a GBDT can predict an accuracy above any it saw), and a search would exploit that."""
        v = np.asarray(pred[target], dtype=np.float64)
        lo, hi = self.label_ranges.get(target, (-np.inf, np.inf))
        return np.clip(v, lo, hi)

    def roofline_time_s(self, net: Network, device: Device | str | None = None) -> float:
        dev = device if device is not None else self._device
        assert dev is not None
        c = self.ctx
        return roofline_run(net, c.input_shape, c.n_classes, batch_size=c.batch_size, n_train=c.n_train,
                            epochs=c.epochs, device=dev).train_time_s

    def roofline_times_s(self, nets: Sequence[Network]) -> np.ndarray:
        """``roofline_time_s`` of a batch, traced and costed together."""
        assert self._device is not None
        c = self.ctx
        return roofline_train_times(nets, c.input_shape, c.n_classes, batch_size=c.batch_size, n_train=c.n_train,
                                    epochs=c.epochs, device=self._device)

    def __call__(self, nets: Sequence[Network]) -> Scores:
        pred = self.scorer.predict(nets)
        c = self.ctx
        time_s = self._kept(pred, TIME_TARGET) if self.time_source == "predictor" else self.roofline_times_s(nets)
        t = batch_trace(nets, c.input_shape, c.n_classes)  # the batch the scorer traced: traced once
        return Scores(
            acc=np.clip(self._kept(pred, self.accuracy), 0.0, 1.0),
            acc_std=pred.get(f"{self.accuracy}_std"),
            size_bytes=t.model_size_bytes.astype(np.float64),
            time_s=time_s,
            params=t.total_params.astype(np.float64),
        )


def corpus_medians(rows: pl.DataFrame, objectives: Objectives, *, sample: int = 400, seed: int = 0) -> tuple[float,
                                                                                                            float]:
    """Median model size and median training time of the corpus's ok networks, in the reward's time units.

    With a roofline time source the time median is the roofline time of (a sample of) the corpus networks on that
    device, so a threshold means the same thing on every hardware target.
    """
    ok = rows.filter(pl.col("status") == "ok") if "status" in rows.columns else rows
    size = float(ok["model_size_bytes"].median())  # type: ignore[arg-type]
    if objectives.time_source == "predictor":
        return size, float(ok[TIME_TARGET].median())  # type: ignore[arg-type]
    js = ok["arch_json"].unique(maintain_order=True)
    if js.len() > sample:
        js = js.sample(sample, seed=seed)
    nets = [Network.from_json(j) for j in js.to_list()]
    return size, float(np.median(objectives.roofline_times_s(nets))) if nets else math.nan

"""A roofline calibrated on measured times: per op class coefficients on the roofline's terms.

The roofline run time of a network splits into terms: per op class its compute time, memory time and launch
time, and the number of steps (the loop's fixed per-step work). A calibration is a
non-negative coefficient per term, fitted on measured training times (``hardware.compare``) and saved as JSON,
so a predictor can reuse it: time = sum(coefficient x term). A coefficient is 1 / the term's fitted efficiency.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy.optimize import nnls

from narch.core.files import atomic_write_json
from narch.hardware.catalogue import Device, Spec, get_device
from narch.hardware.costs import OpClass, RunCosts, run_costs
from narch.hardware.roofline import step_time
from narch.search_space import Network

TERMS = ("compute", "memory", "launch")
FEATURES = [f"{c.value}:{k}" for c in OpClass for k in TERMS] + ["steps"]


def run_terms(
    net: Network, input_shape: tuple[int, ...], n_classes: int, *, batch_size: int, n_train: int, epochs: int,
    device: Device,
) -> dict[str, float]:
    """Roofline terms of a training run (seconds; steps as a count), its raw roofline time and its totals."""
    rc = run_costs(net, input_shape, n_classes, batch_size=batch_size, n_train=n_train, epochs=epochs)
    return costs_terms(rc, device)


def costs_terms(rc: RunCosts, device: Device) -> dict[str, float]:
    """run_terms for a run of known costs."""
    terms = dict.fromkeys(FEATURES, 0.0)
    n_full = rc.steps_per_epoch - (rc.remainder is not None)
    raw = 0.0
    for costs, count in ((rc.full, n_full), (rc.remainder, 1)):
        if costs is None:
            continue
        st = step_time(costs, device)
        mult = count * rc.epochs
        raw += mult * st.time_s
        for o in st.ops:
            terms[f"{o.op_class.value}:compute"] += mult * o.compute_s
            terms[f"{o.op_class.value}:memory"] += mult * o.memory_s
            terms[f"{o.op_class.value}:launch"] += mult * o.launch_s
    terms["steps"] = float(rc.steps)
    return terms | {"raw_s": raw, "flops_run": float(rc.flops_run), "bytes_run": float(rc.bytes_run),
                    "arithmetic_intensity": rc.full.arithmetic_intensity}


def fit_nnls(x: np.ndarray, y: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """Non-negative coefficients minimising the weighted relative error sum(w * (((x @ c) - y) / y)^2)."""
    scale = np.maximum(x.max(axis=0), 1e-30)  # columns to comparable size: steps are counts, the rest seconds
    sw = np.sqrt(weights) if weights is not None else np.ones_like(y)
    coef, _ = nnls(x / y[:, None] / scale * sw[:, None], sw)
    return coef / scale


def fit_robust(x: np.ndarray, y: np.ndarray, *, iters: int = 15, floor: float = 0.02) -> np.ndarray:
    """NNLS on relative error, reweighted towards least absolute relative error (IRLS), so that rows disturbed
    by contention on a shared machine pull less on the fit; the reported statistic is a median."""
    coef = fit_nnls(x, y)
    for _ in range(iters):
        rel = np.abs(x @ coef - y) / y
        coef = fit_nnls(x, y, 1 / np.maximum(rel, floor))
    return coef


@dataclass(frozen=True)
class Calibration:
    """Fitted coefficients on the roofline terms of one device (its figures kept, so the terms are reproducible)."""

    coefficients: dict[str, float]
    device: dict[str, Any]  # key, name, peak_flops, bandwidth, launch and step overhead the terms were made with
    provenance: dict[str, Any]

    @staticmethod
    def device_figures(device: Device) -> dict[str, Any]:
        """What a calibration keeps of its device so its terms can be recomputed later."""
        return {"key": device.key, "name": device.name, "peak_flops": device.peak("fp32") * device.compute_efficiency,
                "bandwidth": device.mem_bandwidth.value * device.memory_efficiency,
                "launch_overhead_s": device.launch_overhead_s, "step_overhead_s": device.step_overhead_s,
                "threads": device.extra.get("threads")}

    def base_device(self) -> Device:
        """The device the terms are computed on: a catalogue entry, or the local figures saved with the fit."""
        d = self.device
        if d["key"] != "local":
            return get_device(d["key"])
        return Device(key="local", name=d["name"], kind="cpu", peak_flops={"fp32": Spec(d["peak_flops"], "fit")},
                      mem_bandwidth=Spec(d["bandwidth"], "fit"), compute_efficiency=1.0, memory_efficiency=1.0,
                      launch_overhead_s=d["launch_overhead_s"], step_overhead_s=d["step_overhead_s"])

    def train_time_s(self, net: Network, input_shape: tuple[int, ...], n_classes: int, *, batch_size: int,
                     n_train: int, epochs: int) -> float:
        """Calibrated training time of a network."""
        t = run_terms(net, input_shape, n_classes, batch_size=batch_size, n_train=n_train, epochs=epochs,
                      device=self.base_device())
        return sum(c * t[k] for k, c in self.coefficients.items())

    def save(self, path: str | Path) -> None:
        atomic_write_json(path, {"schema": 1, "features": FEATURES, "coefficients": self.coefficients,
                                 "device": self.device, "provenance": self.provenance}, indent=1, sort_keys=False)

    @staticmethod
    def load(path: str | Path) -> Calibration:
        d = json.loads(Path(path).read_text())
        if d.get("features") != FEATURES:
            raise ValueError(f"{path}: calibration terms {d.get('features')} differ from this version's {FEATURES}")
        return Calibration(d["coefficients"], d["device"], d.get("provenance", {}))

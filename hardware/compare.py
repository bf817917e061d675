"""Measured vs roofline training time on a corpus: raw, and calibrated per op class on a split of architectures.

Calibration: each row's roofline run time splits into terms (per op class: compute, memory and launch time;
and a count of steps for the per-step Python overhead the roofline does not see).
Non-negative least squares of the measured time on those terms, on relative error and reweighted towards least
absolute relative error (rows disturbed by contention pull less), on the training architectures only; a term's
coefficient is the inverse of its fitted efficiency. Errors are reported on the held-out architectures.

The comparison takes rows, not a folder: reading the corpus (``narch.dataset_builder.corpus.read_corpus``) and
filling the task shapes of older corpora (``narch.dataset_builder.tasks.with_task_shapes``) are the caller's.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl
from scipy.stats import spearmanr

from narch.core.errors import NarchError
from narch.hardware.calibration import FEATURES, Calibration, costs_terms, fit_robust
from narch.hardware.catalogue import CATALOGUE, Device, get_device, local_device
from narch.hardware.costs import RunCosts, run_costs_many
from narch.hardware.roofline import run_time
from narch.hardware.transfer import wave_scaled_step
from narch.search_space import Network

TRANSFER_TO = ("t4", "a100", "h100")  # devices the wave-scaling comparator carries measured times to
ERROR_ROWS = (("raw_test", "raw roofline, held-out"), ("calibrated_test", "calibrated, held-out"),
              ("raw_all", "raw roofline, all rows"), ("calibrated_train", "calibrated, fit rows"))
NEEDED = ("arch_id", "arch_json", "task", "n_train", "n_classes", "input_shape", "epochs", "batch_size", "status")


class CompareError(NarchError, ValueError):
    """Rows the comparison cannot use (missing columns, too few timed rows, no task shape); names the rule."""


# NVML device-name tokens of the catalogued GPUs (first match wins; whole tokens, so "L40S" is not an L4).
NAME_TOKENS = (("h200", "h200"), ("h100", "h100"), ("a100", "a100"), ("v100", "v100"), ("a10g", "a10g"),
               ("4090", "rtx4090"), ("l4", "l4"), ("t4", "t4"))


def device_for(row: dict[str, Any]) -> Device:
    """The catalogue device a corpus row ran on: the local benchmark for CPU rows (at the row's threads)."""
    if row.get("device_kind", "cpu") == "cpu":
        return local_device(threads=row.get("threads"))
    tokens = set(re.findall(r"[a-z0-9]+", str(row.get("device_name") or "").lower()))
    for token, key in NAME_TOKENS:
        if token in tokens:
            return CATALOGUE[key]
    return local_device(cuda=True)


def _task(row: dict[str, Any]) -> tuple[tuple[int, ...], int, int, int, int]:
    return (tuple(int(d) for d in row["input_shape"]), int(row["n_classes"]), int(row["batch_size"]),
            int(row["n_train"]), int(row["epochs"]))


def _row_costs(row: dict[str, Any]) -> RunCosts:
    return _rows_costs([row])[0]


def _rows_costs(rows: list[dict[str, Any]]) -> list[RunCosts]:
    """Run costs of corpus rows, costed together per task and protocol."""
    groups: dict[tuple[Any, ...], list[int]] = {}
    for i, row in enumerate(rows):
        groups.setdefault(_task(row), []).append(i)
    out: list[RunCosts | None] = [None] * len(rows)
    for (shape, n_classes, batch, n_train, epochs), idx in groups.items():
        nets = [Network.from_json(rows[i]["arch_json"]) for i in idx]
        for i, rc in zip(idx, run_costs_many(nets, shape, n_classes, batch_size=batch, n_train=n_train,
                                             epochs=epochs), strict=True):
            out[i] = rc
    return out  # type: ignore[return-value]


def row_terms(row: dict[str, Any], device: Device) -> dict[str, float]:
    """Roofline terms of one corpus row's whole training run on a device (seconds; steps as a count)."""
    return costs_terms(_row_costs(row), device)


def error_stats(pred: np.ndarray, measured: np.ndarray) -> dict[str, float]:
    """Median and mean absolute % error, fraction within ±10 % and ±20 %, Spearman rank correlation."""
    ape = np.abs(pred - measured) / measured * 100
    varied = len(pred) > 2 and np.ptp(pred) > 0 and np.ptp(measured) > 0
    rho = float(spearmanr(pred, measured).statistic) if varied else float("nan")
    return {
        "n": len(pred), "median_ape_pct": float(np.median(ape)), "mean_ape_pct": float(np.mean(ape)),
        "within_10pct": float(np.mean(ape <= 10)), "within_20pct": float(np.mean(ape <= 20)), "spearman": rho,
    }


@dataclass
class CompareReport:
    """Per-row predictions, the fitted calibration and error statistics."""

    corpus: str
    rows: pl.DataFrame
    coefficients: dict[str, float]
    metrics: dict[str, Any]
    devices: list[str]
    train_frac: float
    seed: int
    provenance: dict[str, Any] = field(default_factory=dict)
    device: Device | None = None  # the (most common) device of the rows: what the calibration is for
    time_col: str = "train_time_s"  # the measured time compared

    def calibration(self) -> Calibration:
        """The fitted coefficients as a reusable calibration of the rows' device."""
        if self.device is None:
            raise ValueError("no device recorded for this comparison")
        return Calibration(dict(self.coefficients), Calibration.device_figures(self.device), self.provenance)

    def efficiencies(self) -> dict[str, float]:
        """Fitted efficiency per term (1 / coefficient) relative to the device's figures; launch as a factor."""
        return {k: (1 / v if v > 0 else float("inf")) for k, v in self.coefficients.items() if k != "steps"}

    def error_rows(self, *, fit_rows: bool) -> list[tuple[str, dict[str, Any]]]:
        """(label, error stats) of every judged row set, the repeat floor last; ``fit_rows`` adds the fit rows."""
        keys = ERROR_ROWS if fit_rows else ERROR_ROWS[:-1]
        rows = [(label, self.metrics[key]) for key, label in keys]
        if self.metrics.get("repeat_floor"):
            rows.append(("repeat floor: each run of a network measured more than once vs the mean of its other runs",
                         self.metrics["repeat_floor"]))
        return rows

    def summary_lines(self) -> list[str]:
        m = self.metrics
        lines = [f"{self.corpus}: {len(self.rows)} ok rows on {', '.join(self.devices)}; "
                 f"calibration fitted on {m['calibrated_train']['n']} rows, judged on {m['calibrated_test']['n']}"]
        lines += [f"{label} ({s['n']} rows): median |err| {s['median_ape_pct']:.1f} %, within ±10 % "
                  f"{s['within_10pct']:.0%}, within ±20 % {s['within_20pct']:.0%}, Spearman {s['spearman']:.3f}"
                  for label, s in self.error_rows(fit_rows=False)]
        return lines


def transfer_terms(rc: RunCosts, measured_s: float, src: Device, dsts: tuple[str, ...]) -> dict[str, float]:
    """A run's measured time carried to other devices by wave scaling, beside their roofline times."""
    out = {}
    for key in dsts:
        dst = get_device(key)
        out[f"roofline_{key}_s"] = run_time(rc, dst).train_time_s
        out[f"wave_{key}_s"] = wave_scaled_step(measured_s, rc.full, src, dst)
    return out


def transfer_stats(rows: pl.DataFrame, dsts: tuple[str, ...]) -> dict[str, dict[str, float]]:
    """Per destination: median roofline and wave-scaled times, their median ratio and rank agreement."""
    out = {}
    for key in dsts:
        roof, wave = rows[f"roofline_{key}_s"].to_numpy(), rows[f"wave_{key}_s"].to_numpy()
        varied = len(roof) > 2 and np.ptp(roof) > 0 and np.ptp(wave) > 0
        out[key] = {"median_roofline_s": float(np.median(roof)), "median_wave_scaled_s": float(np.median(wave)),
                    "median_ratio_wave_to_roofline": float(np.median(wave / roof)),
                    "spearman": float(spearmanr(roof, wave).statistic) if varied else float("nan")}
    return out


def repeat_floor(rows: pl.DataFrame) -> dict[str, float] | None:
    """Measurement noise: each run of a setting measured more than once (same network, task, data size, epochs,
    batch, threads) against the mean of its other runs (what a predictor that knew another run of the same
    setting would score); None without repeats."""
    keys = rows["setting"].to_numpy()
    y = rows["measured_s"].to_numpy()
    pred, meas = [], []
    for key in set(keys[rows["setting"].is_duplicated().to_numpy()]):
        ys = y[keys == key]
        for i in range(len(ys)):
            pred.append((ys.sum() - ys[i]) / (len(ys) - 1))
            meas.append(ys[i])
    return error_stats(np.array(pred), np.array(meas)) if pred else None


def _timed_rows(rows: pl.DataFrame, name: str, time_col: str = "train_time_s") -> pl.DataFrame:
    """The ok rows with a training time and a task shape; CompareError naming what is missing."""
    missing = [c for c in (*NEEDED, time_col) if c not in rows.columns]
    if missing:
        raise CompareError(f"{name}: corpus lacks column(s) {missing}")
    df = rows.filter((pl.col("status") == "ok") & (pl.col(time_col) > 0))
    shapeless = df.filter(pl.col("input_shape").is_null() | pl.col("n_classes").is_null())
    if shapeless.height:
        tasks = sorted(set(shapeless["task"].to_list()), key=str)
        raise CompareError(f"{name}: {shapeless.height} rows lack input_shape / n_classes (tasks {tasks})")
    if df.height < 4:
        raise CompareError(f"{name}: {df.height} ok rows with a training time; need at least 4")
    return df


def compare_rows(rows: pl.DataFrame, *, name: str, train_frac: float = 0.5, seed: int = 0,
                 transfer_to: tuple[str, ...] = TRANSFER_TO, time_col: str = "train_time_s") -> CompareReport:
    """Raw and calibrated roofline against the measured training time ``time_col`` (wall ``train_time_s``, or a
    corpus's robust label) for the ok rows of a corpus (``name`` labels the report and the errors); every such row
    needs its input_shape and n_classes."""
    if not 0 < train_frac < 1:
        raise CompareError(f"train_frac must be in (0, 1), got {train_frac}")
    df = _timed_rows(rows, name, time_col)
    records, devices = [], Counter()
    by_name: dict[str, Device] = {}
    all_rows = list(df.iter_rows(named=True))
    for row, rc in zip(all_rows, _rows_costs(all_rows), strict=True):
        dev = device_for(row)
        devices[dev.name] += 1
        by_name[dev.name] = dev
        measured = float(row[time_col])
        setting = "|".join(str(row.get(k)) for k in ("arch_id", "task", "n_train", "epochs", "batch_size", "threads"))
        records.append({"arch_id": row["arch_id"], "setting": setting, "measured_s": measured,
                        "threads": row.get("threads"),
                        "bound": run_time(rc, dev).bound,
                        **costs_terms(rc, dev), **transfer_terms(rc, measured, dev, transfer_to)})
    rows = pl.DataFrame(records)
    arch_ids = sorted(set(rows["arch_id"].to_list()))
    random.Random(seed).shuffle(arch_ids)
    n_train = min(len(arch_ids) - 1, max(1, round(train_frac * len(arch_ids))))
    train_ids = set(arch_ids[:n_train])
    rows = rows.with_columns(pl.col("arch_id").is_in(list(train_ids)).alias("train"))
    x = rows.select(FEATURES).to_numpy()
    y = rows["measured_s"].to_numpy()
    is_train = rows["train"].to_numpy()
    coef = fit_robust(x[is_train], y[is_train])
    rows = rows.with_columns(pl.Series("calibrated_s", x @ coef))
    raw, cal = rows["raw_s"].to_numpy(), rows["calibrated_s"].to_numpy()
    bounds = rows["bound"].to_numpy()
    metrics = {
        "raw_all": error_stats(raw, y), "raw_test": error_stats(raw[~is_train], y[~is_train]),
        "calibrated_train": error_stats(cal[is_train], y[is_train]),
        "calibrated_test": error_stats(cal[~is_train], y[~is_train]),
        "repeat_floor": repeat_floor(rows),
        "transfer": transfer_stats(rows, transfer_to),
        "by_bound_test": {b: {"raw": error_stats(raw[~is_train & (bounds == b)], y[~is_train & (bounds == b)]),
                              "calibrated": error_stats(cal[~is_train & (bounds == b)], y[~is_train & (bounds == b)])}
                          for b in sorted(set(bounds[~is_train]))},
    }
    return CompareReport(name, rows, dict(zip(FEATURES, map(float, coef), strict=True)), metrics,
                         sorted(devices), train_frac, seed, device=by_name[devices.most_common(1)[0][0]],
                         time_col=time_col)

"""measured-vs-roofline comparison on a synthetic corpus whose times follow a known calibration."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from narch.dataset_builder.tasks import with_task_shapes
from narch.hardware.calibration import FEATURES, Calibration, fit_nnls, fit_robust
from narch.hardware.catalogue import CATALOGUE, Device, Spec
from narch.hardware.compare import CompareError, compare_rows, device_for, error_stats, row_terms
from narch.hardware.compare_report import write_report
from narch.search_space import plan_networks

LOCAL = Device("local", "test cpu", "cpu", {"fp32": Spec(1e11, "test")}, Spec(2e10, "test"),
               compute_efficiency=1.0, memory_efficiency=1.0, launch_overhead_s=5e-6, step_overhead_s=1e-4)


def _corpus(n: int, *, noise: float, monkeypatch: pytest.MonkeyPatch) -> pl.DataFrame:
    """Rows whose measured time is 2 x conv compute + 3 x memory-ish terms + launches, with noise."""
    monkeypatch.setattr("narch.hardware.compare.local_device", lambda **_: LOCAL)
    rng = random.Random(0)
    rows = []
    for p in plan_networks(n, 2):
        row = {"arch_id": p.net.arch_id, "arch_json": p.net.to_json(), "task": "mnist1d", "n_train": 512,
               "n_classes": 10, "input_shape": [1, 40], "epochs": 2, "batch_size": 128, "status": "ok",
               "device_kind": "cpu", "device_name": "test cpu", "threads": 1}
        t = row_terms(row, LOCAL)
        launch = sum(v for k, v in t.items() if k.endswith(":launch"))
        truth = (2 * t["conv:compute"] + 3 * t["conv:memory"] + 1.5 * launch + 4e-4 * t["steps"]
                 + 5 * t["bn:memory"] + 5 * t["relu:memory"] + 2 * t["optimizer:memory"])
        row["train_time_s"] = truth * (1 + rng.uniform(-noise, noise))
        rows.append(row)
    rows.append({**rows[0], "arch_id": "failed", "status": "error", "train_time_s": None})
    return pl.DataFrame(rows)


def test_calibration_recovers_a_known_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rep = compare_rows(_corpus(40, noise=0.0, monkeypatch=monkeypatch), name="c", train_frac=0.5, seed=1)
    assert len(rep.rows) == 40  # the failed row is left out
    assert rep.metrics["calibrated_test"]["median_ape_pct"] < 1.0
    assert rep.metrics["calibrated_test"]["n"] + rep.metrics["calibrated_train"]["n"] == 40
    train_ids = set(rep.rows.filter(pl.col("train"))["arch_id"])
    assert train_ids.isdisjoint(set(rep.rows.filter(~pl.col("train"))["arch_id"]))


def test_noisy_corpus_report_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rep = compare_rows(_corpus(30, noise=0.1, monkeypatch=monkeypatch), name="c")
    assert rep.metrics["calibrated_test"]["median_ape_pct"] < 12
    assert rep.metrics["raw_all"]["median_ape_pct"] > rep.metrics["calibrated_test"]["median_ape_pct"]
    monkeypatch.setattr("narch.hardware.compare_report.get_device", lambda _k: LOCAL)
    paths = write_report(rep, tmp_path / "out")
    data = json.loads(paths[0].read_text())
    assert {"command", "host", "cpu_model", "git_rev", "created_at"} <= set(data["provenance"])
    assert len(data["rows"]["arch_id"]) == 30 and set(data["coefficients"]) == set(FEATURES)
    assert "median abs % error" in paths[1].read_text() and "git_rev" in paths[1].read_text()
    assert paths[2].read_bytes()[:4] == b"\x89PNG"
    cal = Calibration.load(paths[3])
    assert cal.coefficients == rep.coefficients and cal.device["key"] == "local"
    first = rep.rows.row(0, named=True)
    net = next(p.net for p in plan_networks(30, 2) if p.net.arch_id == first["arch_id"])
    again = cal.train_time_s(net, (1, 40), 10, batch_size=128, n_train=512, epochs=2)
    assert again == pytest.approx(first["calibrated_s"], rel=1e-9)


def test_missing_columns_shapes_and_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(CompareError, match="lacks"):
        compare_rows(pl.DataFrame({"status": ["ok"], "arch_id": ["x"]}), name="c")
    rows = _corpus(6, noise=0.0, monkeypatch=monkeypatch)
    old = rows.with_columns(pl.lit(None, pl.List(pl.Int64)).alias("input_shape"),
                            pl.lit(None, pl.Int64).alias("n_classes"))
    with pytest.raises(CompareError, match=r"lack input_shape / n_classes \(tasks \['mnist1d'\]\)"):
        compare_rows(old, name="c")
    filled = with_task_shapes(old)  # older corpora: the caller fills the shape from the task
    assert filled["input_shape"].to_list() == rows["input_shape"].to_list()
    assert len(compare_rows(filled, name="c").rows) == 6
    with pytest.raises(CompareError, match="need at least 4"):
        compare_rows(rows.head(3), name="c")


def test_fits_and_statistics() -> None:
    rng = np.random.default_rng(0)
    x = rng.uniform(0.1, 1.0, size=(50, 3))
    y = x @ np.array([2.0, 0.0, 0.5])
    assert fit_nnls(x, y) == pytest.approx([2.0, 0.0, 0.5], abs=1e-6)
    y_out = y.copy()
    y_out[:3] *= 5  # three wild rows
    assert fit_robust(x, y_out) == pytest.approx([2.0, 0.0, 0.5], rel=0.05, abs=0.02)
    s = error_stats(np.array([1.05, 0.85, 2.0, 1.0]), np.ones(4))
    assert s["median_ape_pct"] == pytest.approx(10.0)
    assert s["within_10pct"] == 0.5 and s["within_20pct"] == 0.75


def test_device_for_rows() -> None:
    assert device_for({"device_kind": "cuda", "device_name": "NVIDIA H100 80GB HBM3"}) is CATALOGUE["h100"]
    assert device_for({"device_kind": "cuda", "device_name": "Tesla T4"}) is CATALOGUE["t4"]
    assert device_for({"device_kind": "cuda", "device_name": "NVIDIA A10G"}) is CATALOGUE["a10g"]
    assert device_for({"device_kind": "cpu", "threads": 1}).kind == "cpu"


def test_repeat_floor_uses_the_other_runs_of_a_network() -> None:
    from narch.hardware.compare import repeat_floor

    rows = pl.DataFrame({"setting": ["a", "a", "b", "c", "c", "c"], "measured_s": [1.0, 1.2, 5.0, 2.0, 2.0, 2.6]})
    s = repeat_floor(rows)
    assert s is not None and s["n"] == 5  # b has one run
    assert repeat_floor(rows.filter(pl.col("setting") == "b")) is None


def test_compare_uses_the_corpus_time_label_when_every_row_has_it(tiny_corpus: Path) -> None:
    from narch.dataset_builder.corpus import read_corpus
    from narch.dataset_builder.tasks import with_task_shapes
    from narch.hardware.compare import compare_rows
    from narch.hardware_cli import time_label_of

    rows = with_task_shapes(read_corpus(tiny_corpus))
    assert time_label_of(rows) == "train_time_robust_s"
    assert time_label_of(rows.drop("train_time_robust_s")) == "train_time_s"
    rep = compare_rows(rows, name="tiny", time_col="train_time_robust_s")
    got = dict(zip(rep.rows["arch_id"], rep.rows["measured_s"], strict=False))
    want = dict(zip(rows["arch_id"], rows["train_time_robust_s"], strict=False))
    assert rep.time_col == "train_time_robust_s" and all(abs(got[a] - want[a]) < 1e-12 for a in got)

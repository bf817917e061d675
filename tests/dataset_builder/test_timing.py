"""Timing that survives other work: CPU time, core share, contention and the robust label on every row, the
estimator on synthetic step times, the contention arithmetic, and corpora written before these columns existed."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from narch.dataset_builder.contention import CpuClock
from narch.dataset_builder.corpus import read_corpus, write_part
from narch.dataset_builder.measure import robust_train_time
from narch.dataset_builder.schema import ADDED, SCHEMA, TIME_LABEL
from tests.conftest import build_tiny


def test_every_ok_row_has_the_timing_columns(tiny_corpus: Path) -> None:
    ok = read_corpus(tiny_corpus).filter(pl.col("status") == "ok")
    assert ok.height > 0
    for col in ("train_cpu_s", "train_time_robust_s", "core_share", "other_cpu_cores", "load_avg_1m_before",
                "train_steps", "step_cpu_s_curve", "step_time_s_curve", "speed_probe_s", "timing_tries"):
        assert ok[col].null_count() == 0, col
    assert (ok["train_cpu_s"] > 0).all() and (ok["core_share"] > 0).all() and (ok["core_share"] <= 1.05).all()
    assert (ok["train_time_robust_s"] > 0).all()
    assert (ok["train_time_robust_s"] <= ok["train_cpu_s"] * 1.05).all(), "a low percentile, not a sum of maxima"
    assert (ok["other_cpu_cores"] >= 0).all()
    assert (ok["step_cpu_s_curve"].list.len() == ok["train_steps"]).all()
    assert (ok["step_time_s_curve"].list.len() == ok["train_steps"]).all()


def test_robust_label_ignores_preempted_steps_and_warmup() -> None:
    clean = [0.010, 0.020, 0.005] * 4  # 4 epochs of 3 steps (the last step of an epoch is a short batch)
    assert robust_train_time(clean, 4, q=0) == pytest.approx(0.035 * 4)
    disturbed = list(clean)
    disturbed[0] = 0.5  # warm-up: the first step of the first epoch is slow
    disturbed[7] = 0.2  # another process preempted one step of the third epoch
    assert robust_train_time(disturbed, 4, q=0) == pytest.approx(0.035 * 4)
    assert robust_train_time(disturbed, 4, q=10) < sum(disturbed)
    assert robust_train_time(disturbed, 4) == pytest.approx(0.035 * 4), "the label is the positional minimum"
    assert robust_train_time([0.01, 0.01, 0.03], 1, fallback_q=0) == pytest.approx(0.03), "one epoch: low step x n"
    assert robust_train_time([], 3) is None


def test_other_cores_subtract_this_process() -> None:
    a = CpuClock(wall_s=0.0, host_busy_s=100.0, own_s=10.0)
    b = CpuClock(wall_s=2.0, host_busy_s=104.0, own_s=12.0)  # 4 busy core-seconds in 2 s, 2 of them ours
    assert b.other_cores_since(a) == pytest.approx(1.0)
    assert CpuClock(2.0, 101.0, 12.0).other_cores_since(a) == 0.0, "never negative (jiffy rounding)"
    assert a.other_cores_since(a) == 0.0


def test_time_label_names_a_column_for_every_device_kind() -> None:
    assert set(TIME_LABEL) == {"cpu", "cuda"}
    assert all(col in SCHEMA.names for col, _why in TIME_LABEL.values())


def test_parts_written_before_the_timing_columns_still_read(tmp_path: Path) -> None:
    out = build_tiny(tmp_path / "c", archs=2)
    new = read_corpus(out)
    old_schema = pa.schema([f for f in SCHEMA if f.name not in ADDED])
    old_rows = new.head(1).with_columns(pl.lit("0" * 16).alias("arch_id")).drop(sorted(ADDED)).to_arrow()
    pq.write_table(old_rows.cast(old_schema), out / "part-old-v1.parquet")
    df = read_corpus(out)
    assert df.height == new.height + 1
    assert df.filter(pl.col("arch_id") == "0" * 16)["train_cpu_s"].to_list() == [None]
    assert df.columns == SCHEMA.names
    write_part(out, [df.row(0, named=True)])  # a new part beside an old one: compaction-safe reading still works
    assert read_corpus(out).height == new.height + 2


def test_guard_warns_counts_and_waits_for_quiet(monkeypatch: pytest.MonkeyPatch) -> None:
    from narch.dataset_builder import contention

    readings = iter([0.9, 1.2, 0.8, 0.1])  # before the first run; then after a contended run, until quiet
    monkeypatch.setattr(contention, "other_cores_now", lambda sample_s=1.0: next(readings))
    monkeypatch.setattr(contention.time, "sleep", lambda s: None)
    logs: list[str] = []
    warn = contention.TimingGuard(wait=False, log=logs.append)
    warn.before_first()
    assert warn.contended == 0 and "warning: other work uses 0.90 cores before timing" in logs[-1]
    warn.after({"other_cpu_cores": 0.05})
    assert warn.contended == 0
    waiter = contention.TimingGuard(wait=True, log=logs.append)
    waiter.after({"other_cpu_cores": 0.6})
    assert waiter.contended == 1
    assert sum("waiting for a quiet machine" in m for m in logs) == 1, "saw 1.2, waited through 0.8 until 0.1"
    assert next(readings, None) is None, "it stopped looking once the machine was quiet"


def test_wait_quiet_trains_a_contended_run_again_and_writes_only_the_kept_try(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from narch.dataset_builder import build, contention

    class Strict(contention.TimingGuard):  # every run counts as contended, and the machine is quiet at once
        def __init__(self, *, wait: bool) -> None:
            super().__init__(wait=wait, threshold_cores=-1.0, log=lambda msg: None)

    monkeypatch.setattr(build, "TimingGuard", Strict)
    monkeypatch.setattr(contention, "wait_for_quiet", lambda **kw: 0.0)
    out = build_tiny(tmp_path / "c", archs=2, wait_quiet=True)
    df = read_corpus(out)
    assert df.height == 2 and df["arch_id"].n_unique() == 2, "one row per run, whatever the tries"
    assert df["timing_tries"].to_list() == [3, 3], "retimed up to the limit, the last try kept"
    again = build_tiny(tmp_path / "d", archs=2)
    assert read_corpus(again)["timing_tries"].to_list() == [1, 1], "without --wait-quiet a run is timed once"
    assert (df["speed_probe_s"] > 0).all() and (read_corpus(again)["speed_probe_s"] > 0).all()

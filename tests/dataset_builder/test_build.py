"""Builds: real trainings, resume, failed runs as rows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch

from narch.dataset_builder.build import BuildConfig, prepare_build, run_build
from narch.dataset_builder.corpus import read_corpus
from narch.dataset_builder.protocol import Protocol
from narch.dataset_builder.tasks import load_task
from narch.dataset_builder.train import DeviceData, train_network
from narch.search_space import SEEDS
from tests.conftest import build_tiny


@pytest.mark.parametrize("task", ["mnist1d", "digits"])
def test_build_beats_chance_and_rerun_adds_nothing(tmp_path: Path, task: str) -> None:
    out = build_tiny(tmp_path / task, task=task, archs=8, epochs=2, n_train=None)
    df = read_corpus(out)
    assert df.height == 8 and df["arch_id"].n_unique() == 8
    ok = df.filter(pl.col("status") == "ok")
    assert ok.height == 8
    assert ok["val_acc"].n_unique() > 3, "accuracies should differ across networks"
    assert ok["val_acc"].median() > 0.2, "median network should beat chance (0.1) clearly"
    assert (ok["train_time_s"] > 0).all() and (ok["params"] > 0).all() and (ok["peak_mem_bytes"] > 0).all()
    assert (ok["step_time_p90_s"] >= ok["step_time_p50_s"]).all()
    assert ok["parent_arch_id"].null_count() < 8, "the plan should include edits of earlier networks"
    build_tiny(out, task=task, archs=8, epochs=2, n_train=None)
    assert read_corpus(out).height == 8


def test_more_archs_adds_only_new_rows(tmp_path: Path) -> None:
    out = build_tiny(tmp_path / "c", archs=3)
    build_tiny(out, archs=5)
    df = read_corpus(out)
    assert df.height == 5 and df["arch_id"].n_unique() == 5


def test_timeout_becomes_a_row(tmp_path: Path) -> None:
    out = build_tiny(tmp_path / "c", archs=2, epochs=3, timeout_s=1e-9)
    df = read_corpus(out)
    assert df.height == 2
    assert set(df["status"]) == {"timeout"}
    assert all(len(c) == 0 for c in df["val_acc_curve"].to_list()), "the limit holds within the first epoch"
    assert all("limit after 1 steps" in e for e in df["error"].to_list()), "checked after every step"
    assert all(n == 1 for n in df["train_steps"].to_list()), "the steps it ran are kept"


def test_divergence_becomes_a_record() -> None:
    data = load_task("mnist1d", n_train=256)
    dd = DeviceData.from_task(data, torch.device("cpu"))
    bad = DeviceData(dd.x_train * np.nan, dd.y_train, dd.x_val, dd.y_val, dd.x_test, dd.y_test, dd.n_classes)
    rec = train_network(SEEDS["tiny"], bad, Protocol(epochs=1), seed=0)
    assert rec.status == "diverged" and "nan" in (rec.error or "").lower()


def test_training_is_deterministic_under_a_seed() -> None:
    dd = DeviceData.from_task(load_task("digits", n_train=300), torch.device("cpu"))
    a = train_network(SEEDS["lenet"], dd, Protocol(epochs=2), seed=3)
    b = train_network(SEEDS["lenet"], dd, Protocol(epochs=2), seed=3)
    assert a.val_acc_curve == b.val_acc_curve and a.train_loss_curve == b.train_loss_curve


def test_archs_from_file_profiles_given_networks(tmp_path: Path) -> None:
    f = tmp_path / "nets.jsonl"
    f.write_text(SEEDS["tiny"].to_json() + "\n" + SEEDS["mnist1d_cnn"].to_json() + "\n")
    cfg = BuildConfig(task="mnist1d", out=tmp_path / "c", archs_from=f, protocol=Protocol(epochs=1), n_train=256)
    run_build(prepare_build(cfg))
    assert sorted(read_corpus(tmp_path / "c")["arch_id"]) == sorted(
        [SEEDS["tiny"].arch_id, SEEDS["mnist1d_cnn"].arch_id]
    )

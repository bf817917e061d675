"""One freeze path: the leaderboard plan reads the corpus once; `--freeze-family`, `--refreeze` and a leaderboard run
all freeze through ``predictors.freeze.freeze``."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from narch.cli import app
from narch.predictors.artefacts import load_artefact
from narch.predictors.freeze import RULE, freeze
from narch.predictors.leaderboard import LeaderboardConfig, plan_leaderboard, run_leaderboard


def test_plan_takes_rows_in_memory_and_counts_the_cells_it_runs(pred_rows: pl.DataFrame, tmp_path: Path) -> None:
    cfg = LeaderboardConfig(corpus=tmp_path / "not_read", out=tmp_path / "lb", predictors=("mean", "ridge"), seeds=1,
                            trials=0, sizes=(4,), freeze=False)
    plan = plan_leaderboard(cfg, rows=pred_rows)  # the corpus folder does not exist: nothing is read
    assert set(plan.targets) == {"val_acc", "train_time_s"} and plan.rows.height == pred_rows.height
    res = run_leaderboard(cfg, plan)
    assert res.cells.height == plan.total_cells and res.frozen == {}


def test_freeze_family_freezes_the_named_family_without_a_leaderboard(pred_corpus: Path, tmp_path: Path) -> None:
    out = tmp_path / "fb"
    r = CliRunner().invoke(app, ["leaderboard", "--corpus", str(pred_corpus), "--out", str(out), "--freeze-family",
                                 "ridge", "--trials", "0"])
    assert r.exit_code == 0, r.output
    assert "frozen val_acc: ridge" in r.output and "frozen train_time_s: ridge" in r.output
    assert not (out / "leaderboard.md").exists()
    art = load_artefact(out / "frozen")
    assert set(art.targets) == {"val_acc", "train_time_s"}
    entry = art.manifest["entries"]["val_acc"]
    assert entry["predictor"] == "ridge" and entry["metrics"]["rule"] == RULE["named"]
    assert entry["metrics"]["params"] == {} and "leaderboard_row" not in entry["metrics"]


def test_freeze_family_errors(pred_rows: pl.DataFrame, tmp_path: Path) -> None:
    kw = {"out": tmp_path / "frozen", "corpus": "c", "command": "test"}
    with pytest.raises(KeyError, match="unknown"):
        freeze(pred_rows, ["val_acc"], family="no_such_family", **kw)
    with pytest.raises(ValueError, match="models none of the targets"):
        freeze(pred_rows, ["val_acc"], family="roofline_time", **kw)
    with pytest.raises(ValueError, match="needs a leaderboard"):
        freeze(pred_rows, ["val_acc"], **kw)
    assert not (tmp_path / "frozen").exists()


def test_refreeze_redoes_only_the_freezing_step(pred_corpus: Path, tmp_path: Path) -> None:
    out = tmp_path / "lb"
    runner = CliRunner()
    base = ["leaderboard", "--corpus", str(pred_corpus), "--out", str(out), "--predictors", "mean,ridge", "--seeds",
            "1", "--trials", "0", "--sizes", "4"]
    assert runner.invoke(app, base).exit_code == 0
    cells = (out / "cells.parquet").read_bytes()
    first = json.loads((out / "provenance.json").read_text())["frozen"]
    r = runner.invoke(app, [*base, "--refreeze"])
    assert r.exit_code == 0, r.output
    assert (out / "cells.parquet").read_bytes() == cells  # the evaluation was not redone
    prov = json.loads((out / "provenance.json").read_text())
    assert prov["frozen"] == first and len(prov["refrozen"]) == 1
    assert "frozen again by" in (out / "leaderboard.md").read_text()
    assert set(load_artefact(out / "frozen").targets) == set(first)
    r = runner.invoke(app, [*base, "--refreeze", "--freeze-family", "ridge"])
    assert r.exit_code == 2 and "exclude each other" in r.output

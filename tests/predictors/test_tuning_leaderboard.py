"""Optuna tuning on the training split, the leaderboard end to end, `narch leaderboard` and `narch predict`."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from narch.cli import app
from narch.predictors.artefacts import load_artefact
from narch.predictors.base import PREDICTORS, Target
from narch.predictors.families import load_families
from narch.predictors.leaderboard import LeaderboardConfig, pick_best, run_leaderboard
from narch.predictors.tuning import inner_split, tune

load_families()


def test_inner_split_is_by_architecture(pred_rows: pl.DataFrame) -> None:
    fit, val = inner_split(pred_rows, seed=0)
    assert fit.height + val.height == pred_rows.height
    assert not set(fit["arch_id"]) & set(val["arch_id"])


def test_tune_returns_params_from_the_search_space(pred_rows: pl.DataFrame) -> None:
    params, records = tune(PREDICTORS.get("ridge"), pred_rows, Target.of("val_acc"), trials=4, seed=0)
    assert set(params) == {"alpha", "target_transform"} and len(records) == 4
    assert tune(PREDICTORS.get("mean"), pred_rows, Target.of("val_acc"), trials=4, seed=0) == ({}, [])
    assert tune(PREDICTORS.get("ridge"), pred_rows.head(5), Target.of("val_acc"), trials=4, seed=0)[0] == {}


def test_progress_reporting_family_runs_under_the_pruner(pred_rows: pl.DataFrame) -> None:
    cls = PREDICTORS.get("mlp")
    assert getattr(cls, "reports_progress", False)
    params, records = tune(cls, pred_rows, Target.of("train_time_s"), trials=5, seed=0)
    assert {"hidden", "layers", "lr"} <= set(params)
    assert {r["state"] for r in records} <= {"COMPLETE", "PRUNED"}


def test_leaderboard_end_to_end(pred_corpus: Path, tmp_path: Path) -> None:
    from narch.predictors.leaderboard_report import write_report

    cfg = LeaderboardConfig(corpus=pred_corpus, out=tmp_path / "lb", predictors=("mean", "ridge", "roofline_time"),
                            seeds=2, trials=2, sizes=(4, 8))
    res = run_leaderboard(cfg)
    write_report(cfg, res)
    cells = res.cells
    # roofline_time models times only; the others both targets; sizes 4, 8 and the whole pool
    assert set(cells.filter(pl.col("target") == "val_acc")["predictor"]) == {"mean", "ridge"}
    assert set(cells.filter(pl.col("target") == "train_time_s")["predictor"]) == {"mean", "ridge", "roofline_time"}
    assert cells.height == 2 * 3 * (2 + 3)
    assert set(res.board["n_seeds"]) == {2}
    for name in ("leaderboard.md", "leaderboard.parquet", "provenance.json", "tau_vs_size_val_acc.png",
                 "pred_vs_measured_train_time_s.png", "splits/val_acc/SHA256SUMS", "frozen/manifest.json"):
        assert (tmp_path / "lb" / name).is_file(), name
    board = pl.read_parquet(tmp_path / "lb" / "leaderboard.parquet")
    assert {"kendall_tau_mean", "kendall_tau_se", "within_10pct_mean", "qps_mean", "fit_s_mean"} <= set(board.columns)
    art = load_artefact(tmp_path / "lb" / "frozen")
    assert set(art.targets) == {"val_acc", "train_time_s"}
    assert res.frozen["val_acc"] == pick_best(res.board, Target.of("val_acc"))
    prov = json.loads((tmp_path / "lb" / "provenance.json").read_text())
    assert {"command", "host", "cpu_model", "git_rev", "created_at"} <= set(prov)


def test_cli_leaderboard_and_predict(pred_corpus: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "lb"
    r = runner.invoke(app, ["leaderboard", "--corpus", str(pred_corpus), "--out", str(out), "--predictors",
                            "mean,flops", "--seeds", "1", "--trials", "0", "--sizes", "4"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["predict", "--predictor", str(out / "frozen"), "--arch", "lenet", "--task", "mnist1d"])
    assert r.exit_code == 0, r.output
    assert "val_acc:" in r.output and "train_time_s:" in r.output


@pytest.mark.parametrize("args, message", [
    (["predict", "--predictor", "nope", "--arch", "lenet"], "no manifest"),
    (["predict", "--predictor", ".", "--arch", "no_such_seed"], "neither a seed network"),
    (["leaderboard", "--corpus", "nope", "--out", "x"], "no such corpus"),
])
def test_cli_errors_are_one_line(args: list[str], message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                 ) -> None:
    monkeypatch.chdir(tmp_path)
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 2
    assert message in r.output and r.output.count("\n") == 1


def test_roofline_families_model_the_robust_time_label(pred_rows: pl.DataFrame) -> None:
    for fam in ("roofline_time", "roofline_gbdt"):
        cls = PREDICTORS.get(fam)
        for t in ("train_time_robust_s", "train_cpu_s", "train_time_s"):
            assert cls.supports(Target.of(t)), (fam, t)
        pred = cls(seed=0).fit(pred_rows, Target.of("train_time_robust_s"))
        assert (pred.predict(pred_rows) > 0).all()

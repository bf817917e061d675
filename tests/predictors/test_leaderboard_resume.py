"""A leaderboard resumes: finished cells are saved as they end, a rerun skips them and gives the same board, and a
rerun on another corpus or configuration is refused in one line unless it restarts."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from narch.cli import app
from narch.predictors.cell_store import FOLDER, CellStoreError
from narch.predictors.leaderboard import LeaderboardConfig, run_leaderboard

FAMILIES = ("mean", "ridge", "roofline_time")
METRIC_COLS = ["spearman", "kendall_tau", "mae", "rmse"]


def _cfg(corpus: Path, out: Path, **kw: object) -> LeaderboardConfig:
    return LeaderboardConfig(corpus=corpus, out=out, predictors=FAMILIES, seeds=2, trials=1, sizes=(4, 8),
                             freeze=False, **kw)  # type: ignore[arg-type]


def _metrics(cells: pl.DataFrame) -> pl.DataFrame:
    keys = ["target", "predictor", "size_label", "seed"]
    return cells.select(*keys, *METRIC_COLS).sort(keys)


def test_an_interrupted_board_resumes_to_the_same_result(pred_corpus: Path, tmp_path: Path) -> None:
    whole = run_leaderboard(_cfg(pred_corpus, tmp_path / "whole"))
    n = whole.cells.height
    seen: list[str] = []

    def stop_after_three(desc: str, k: int) -> None:
        seen.append(desc)
        if len(seen) == 3:
            raise KeyboardInterrupt

    out = tmp_path / "resumed"
    with pytest.raises(KeyboardInterrupt):
        run_leaderboard(_cfg(pred_corpus, out), progress=stop_after_three)
    assert len(list((out / FOLDER).rglob("n*-seed*-trials*.json"))) == 3, "each finished cell is on disk"
    descs: list[str] = []
    res = run_leaderboard(_cfg(pred_corpus, out), progress=lambda d, k: descs.append(d))
    assert sum("(saved)" in d for d in descs) == 3 and len(descs) == n
    assert _metrics(res.cells).equals(_metrics(whole.cells)), "resumed cells give the uninterrupted board"
    again: list[str] = []
    run_leaderboard(_cfg(pred_corpus, out), progress=lambda d, k: again.append(d))
    assert all("(saved)" in d for d in again), "a finished board reruns from its cells alone"


def test_another_corpus_or_split_is_refused_unless_restarted(pred_corpus: Path, tmp_path: Path) -> None:
    out = tmp_path / "lb"
    run_leaderboard(_cfg(pred_corpus, out))
    splits_before = {p.name: p.read_bytes() for p in (out / "splits").rglob("*.json")}
    with pytest.raises(CellStoreError, match=r"another configuration or corpus \(changed: splits\).*--restart"):
        run_leaderboard(_cfg(pred_corpus, out, test_frac=0.3))
    assert {p.name: p.read_bytes() for p in (out / "splits").rglob("*.json")} == splits_before, "nothing rewritten"
    res = run_leaderboard(_cfg(pred_corpus, out, test_frac=0.3, restart=True))
    fp = json.loads((out / FOLDER / "fingerprint.json").read_text())
    assert res.cells.height > 0 and set(fp) == {"version", "splits", "where", "values"}


def test_cli_refusal_is_one_line(pred_corpus: Path, tmp_path: Path) -> None:
    out = tmp_path / "lb"
    base = ["leaderboard", "--corpus", str(pred_corpus), "--out", str(out), "--predictors", "mean,ridge",
            "--seeds", "2", "--trials", "0", "--sizes", "4", "--no-freeze"]
    runner = CliRunner()
    assert runner.invoke(app, base).exit_code == 0
    bad = runner.invoke(app, [*base, "--max-test", "3"])
    assert bad.exit_code != 0 and len(bad.output.strip().splitlines()) == 1 and "--restart" in bad.output, bad.output
    assert runner.invoke(app, [*base, "--max-test", "3", "--restart"]).exit_code == 0


def test_a_target_without_values_names_the_target_and_column(pred_corpus: Path, tmp_path: Path) -> None:
    from narch.predictors.leaderboard import plan_leaderboard

    cfg = LeaderboardConfig(corpus=pred_corpus, out=tmp_path / "lb", targets=("energy_j",), predictors=("mean",))
    with pytest.raises(ValueError, match=r"target 'energy_j': 0 of the corpus's \d+ ok rows have a usable value in "
                                         r"column 'energy_j', so 0 architectures are too few to split"):
        plan_leaderboard(cfg)


def test_quick_budget_keeps_slow_families_to_the_whole_pool_and_skips_the_ensemble(pred_corpus: Path,
                                                                                     tmp_path: Path) -> None:
    from narch.predictors.leaderboard import QUICK_TRIALS, plan_leaderboard

    cfg = LeaderboardConfig(corpus=pred_corpus, out=tmp_path / "q", targets=("val_acc",), quick=True, trials=10)
    plan = plan_leaderboard(cfg)
    fams = plan.targets["val_acc"].families
    assert "ensemble" not in fams and {"gin", "lstm_embedding", "ridge"} <= set(fams)
    assert cfg.runs_at("gin", 256, largest=256) and not cfg.runs_at("gin", 16, largest=256), "the pool only"
    assert cfg.runs_at("ridge", 16, largest=256)
    assert cfg.trials_for("gin") == 0 and cfg.trials_for("ridge") == QUICK_TRIALS
    named = LeaderboardConfig(corpus=pred_corpus, out=tmp_path / "n", targets=("val_acc",), quick=True,
                              predictors=("ensemble", "ridge"), family_trials={"ridge": 7})
    assert "ensemble" in plan_leaderboard(named).targets["val_acc"].families, "named: it runs"
    assert named.trials_for("ridge") == 7, "an explicit budget wins"

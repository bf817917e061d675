"""`narch search` end to end on a tiny real corpus and a ridge predictor frozen from it (``conftest.frozen``);
config errors."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from narch.cli import app
from narch.dataset_builder.corpus import read_corpus


def test_search_writes_the_report(frozen: Path, tmp_path: Path) -> None:
    out = tmp_path / "search"
    res = CliRunner().invoke(app, ["search", "--predictor", str(frozen), "--out", str(out), "--strategy",
                                   "random,a2c,evolution", "--budget", "40", "--seeds", "2", "--batch", "8",
                                   "--episode-len", "3", "--hardware-compare", "t4,h200", "--compare-seeds", "1"])
    assert res.exit_code == 0, res.output
    for name in ("best_so_far.parquet", "best_so_far.png", "final.parquet", "pareto_front.parquet",
                 "hypervolume.parquet", "best_networks.json", "provenance.json", "config.json",
                 "hardware_compare/hardware_compare.parquet", "hardware_compare/hardware_compare.png"):
        assert (out / name).is_file(), name
    curves = pl.read_parquet(out / "best_so_far.parquet")
    assert set(curves["strategy"]) == {"random", "a2c", "evolution"} and curves["query"].max() == 40
    hc = pl.read_parquet(out / "hardware_compare/hardware_compare.parquet")
    assert hc.height == 2 and {"time_s_t4", "time_s_h200"} <= set(hc.columns)
    prov = json.loads((out / "provenance.json").read_text())
    assert prov["git_rev"] and prov["host"] and prov["command"].startswith("narch ")


@pytest.mark.slow
def test_verify_top_trains_for_real_and_records_lineage(frozen: Path, tmp_path: Path) -> None:
    out = tmp_path / "search"
    res = CliRunner().invoke(app, ["search", "--predictor", str(frozen), "--out", str(out), "--strategy", "random",
                                   "--budget", "20", "--seeds", "1", "--episode-len", "2", "--verify-top", "2",
                                   "--verify-strategies", "random", "--verify-seeds", "2"])
    assert res.exit_code == 0, res.output
    ver = pl.read_parquet(out / "verify/verify.parquet")
    assert ver.height == 2 and (ver["status"] == "ok").all() and (ver["seeds_ok"] == 2).all()
    assert (ver["val_acc_min"] <= ver["val_acc"]).all() and (ver["val_acc"] <= ver["val_acc_max"]).all()
    rows = read_corpus(out / "verify/corpus")
    assert rows.height == 4 and rows["seed"].n_unique() == 2, "each network once per training seed"
    assert rows["parent_arch_id"].null_count() < rows.height and rows["move"].null_count() < rows.height
    summary = pl.read_parquet(out / "verify/verify_summary.parquet").row(0, named=True)
    assert summary["strategy"] == "random" and summary["networks"] == 2 and summary["runs"] == 4
    assert summary["best_measured"] == ver["val_acc"].max() and summary["corpus_best"] >= summary["corpus_p99"]


@pytest.mark.parametrize(
    ("toml", "needle"),
    [("[reward]\nbogus = 1\n", "unknown key 'reward.bogus'"),
     ("[reward.size]\nthreshold_bytes = -5\n", 'r.toml: reward config: reward.size.threshold_bytes (or "median") '
      "must be a finite number > 0, got -5"),
     ("[reward]\nw_acc = 0\n[reward.size]\nweight = 0\n[reward.time]\nweight = 0\n", "all zero")],
)
def test_reward_config_errors_are_one_line_and_non_zero(frozen: Path, tmp_path: Path, toml: str, needle: str) -> None:
    f = tmp_path / "r.toml"
    f.write_text(toml)
    res = CliRunner().invoke(app, ["search", "--predictor", str(frozen), "--out", str(tmp_path / "o"),
                                   "--reward", str(f), "--budget", "5", "--seeds", "1", "--strategy", "random"])
    assert res.exit_code == 2
    lines = [x for x in res.output.splitlines() if x.strip()]
    assert len(lines) == 1 and needle in lines[0] and lines[0].startswith("narch: error:")


def test_unknown_strategy_is_an_error(frozen: Path, tmp_path: Path) -> None:
    res = CliRunner().invoke(app, ["search", "--predictor", str(frozen), "--out", str(tmp_path / "o"),
                                   "--strategy", "bogus", "--budget", "5"])
    assert res.exit_code == 2 and "strategy 'bogus' is unknown" in res.output

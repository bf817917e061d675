"""The search as a library call: typed results from one session, no file read back, one provenance record."""

from __future__ import annotations

import re
from pathlib import Path

import polars as pl
import pytest

from narch.controller.run import SearchRun, execute
from narch.controller.session import SearchConfig, prepare
from narch.controller.verify import pick_top
from narch.core.provenance import PROVENANCE_KEYS
from narch.dataset_builder.corpus import CorpusError, read_corpus


def test_execute_returns_the_typed_run_with_core_provenance(frozen: Path, tiny_corpus: Path, tmp_path: Path) -> None:
    cfg = SearchConfig(predictor=frozen, out=tmp_path / "s", strategies=("random", "evolution"), budget=20, seeds=2,
                       batch=8, episode_len=2, hardware_compare=("t4",), compare_seeds=1, command="narch test")
    run = execute(cfg, rows=read_corpus(tiny_corpus))
    assert isinstance(run, SearchRun) and run.verification is None
    assert set(run.final["strategy"]) == {"random", "evolution"}
    assert run.search.history.height == pl.read_parquet(cfg.out / "history.parquet").height
    assert all(p.is_file() for p in run.search.plots)
    assert run.hardware is not None and run.hardware.plot.is_file() and "arch_json" not in run.hardware.shown.columns
    assert set(run.hardware.searches) == {"t4"}
    assert set(PROVENANCE_KEYS) | {"torch_threads"} <= set(run.provenance)
    assert run.provenance["command"] == "narch test"
    assert set(run.summary()) == {"final", "hypervolume", "hardware_compare", "provenance"}


def test_prepare_reuses_a_loaded_predictor_for_another_target(frozen: Path, tmp_path: Path) -> None:
    cfg = SearchConfig(predictor=frozen, out=tmp_path, strategies=("random",))
    first = prepare(cfg)
    other = prepare(cfg, hardware="h200", loaded=first.loaded)
    assert other.scorer is first.scorer and other.rows is first.rows
    assert other.reward.time_source == "roofline" and other.reward.device == "h200"


def test_a_missing_corpus_names_the_predictor_and_the_reader_s_reason(frozen: Path, tmp_path: Path) -> None:
    cfg = SearchConfig(predictor=frozen, out=tmp_path, strategies=("random",), corpus=tmp_path / "gone")
    with pytest.raises(CorpusError, match=rf"of predictor {re.escape(str(frozen))} cannot be read \(.*no manifest "
                                          r"\(is .*gone a corpus\?\)\): pass --corpus"):
        prepare(cfg)


def test_pick_top_takes_the_best_distinct_networks_of_each_strategy() -> None:
    hist = pl.DataFrame({"strategy": ["a", "a", "a", "b"], "arch_id": ["x", "x", "y", "z"],
                         "reward": [0.5, 0.9, 0.7, 0.1], "arch_json": ["{}"] * 4})
    top = pick_top(hist, ("a", "b", "c"), 2)
    assert [(r["strategy"], r["arch_id"], r["reward"]) for r in top] == [("a", "x", 0.9), ("a", "y", 0.7),
                                                                          ("b", "z", 0.1)]


def test_predictions_stay_inside_the_predictor_s_training_labels(frozen: Path, tmp_path: Path) -> None:
    import json

    import numpy as np

    from narch.controller.objectives import Objectives
    from narch.controller.session import label_ranges, load_predictor
    from narch.search_space import plan_networks
    from narch.testing.toy import CTX, ToyScorer

    lp = load_predictor(frozen, None)
    ranges = label_ranges(lp)
    entry = json.loads((frozen / "manifest.json").read_text())["entries"]["val_acc"]
    assert ranges["val_acc"] == tuple(entry["metrics"]["label_range"]), "the freeze records the range"
    ok = lp.rows
    assert ranges["val_acc"] == (ok["val_acc"].min(), ok["val_acc"].max())
    nets = [p.net for p in plan_networks(40, 3)]
    toy = ToyScorer()  # its accuracies overshoot a narrow range
    obj = Objectives(toy, CTX, label_ranges={"val_acc": (0.5, 0.6), "train_time_s": (0.2, 0.3)})
    s = obj(nets)
    raw = toy.predict(nets)
    assert (s.acc >= 0.5).all() and (s.acc <= 0.6).all() and (s.time_s >= 0.2).all() and (s.time_s <= 0.3).all()
    assert np.any(raw["val_acc"] > 0.6) or np.any(raw["val_acc"] < 0.5), "the clamp was exercised"


def test_a_search_where_every_strategy_saturates_warns() -> None:
    from narch.controller.run import saturation

    def final(mins: list[float], maxs: list[float]) -> pl.DataFrame:
        return pl.DataFrame({"strategy": [f"s{i}" for i in range(len(mins))], "min": mins, "max": maxs})

    warning = saturation(final([0.992, 0.992, 0.992], [0.992, 0.992, 0.992]))
    assert warning is not None and "same best reward 0.992 in every seed (3 strategies)" in warning
    assert saturation(final([0.99, 0.992], [0.992, 0.992])) is None  # one seed of one strategy fell short
    assert saturation(final([0.95, 0.97], [0.96, 0.98])) is None
    assert saturation(final([0.992], [0.992])) is None  # one strategy: nothing to rank

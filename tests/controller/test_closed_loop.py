"""The closed loop end to end on the tiny corpus: 2 rounds of 2 real trainings, refits that change the predictor's
fingerprint, new rows in the loop's own corpus, resume after the last finished round; and its pure parts."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest

from narch.controller.closed_loop import STATE, LoopConfig, choose, random_best, run_loop
from narch.controller.env import Evaluation
from narch.controller.session import SearchConfig
from narch.dataset_builder.corpus import read_corpus
from narch.predictors.artefacts import load_artefact, read_manifest
from narch.search_space import SEEDS


def test_a_closed_loop_trains_refits_and_resumes(frozen: Path, tiny_corpus: Path, tmp_path: Path) -> None:
    cfg = SearchConfig(predictor=frozen, out=tmp_path / "s", strategies=("evolution",), budget=20, seeds=1,
                       batch=8, episode_len=2)
    res = run_loop(cfg, LoopConfig(rounds=2, per_round=2), "evolution")
    corpus = res.folder / "corpus"
    rows = read_corpus(corpus)
    base = set(read_corpus(tiny_corpus)["arch_id"])
    assert rows.height == 4 and rows["arch_id"].n_unique() == 4 and not base & set(rows["arch_id"])
    assert sorted(res.trained["arch_id"]) == sorted(rows["arch_id"])
    prints = [read_manifest(frozen)["corpus_fingerprint"]]
    prints += [read_manifest(res.folder / "predictors" / f"round_{r}")["corpus_fingerprint"] for r in (1, 2)]
    assert len(set(prints)) == 3, "each refit sees the corpus plus what the loop measured"
    art = load_artefact(res.folder / "predictors" / "round_2")
    assert {t: p.name for t, p in art.predictors.items()} == {"val_acc": "ridge", "train_time_s": "ridge"}
    assert res.rounds["trainings"].to_list() == [2, 4] and res.rounds["best_measured"].is_not_null().all()
    assert res.plot.is_file() and (res.folder / "loop.md").is_file()
    # round 1 searches from the seed network; round 2 from the best network round 1 measured (--loop-start best)
    state = json.loads((res.folder / STATE).read_text())
    first = res.trained.filter(res.trained["round"] == 1).sort("val_acc", descending=True)
    assert state["rounds"][0]["start"] == SEEDS[cfg.start].arch_id
    assert state["rounds"][1]["start"] == first["arch_id"][0]
    # a rerun finds both rounds done and trains nothing more; one more round continues from the last predictor
    again = run_loop(cfg, LoopConfig(rounds=2, per_round=2), "evolution")
    assert again.rounds.equals(res.rounds) and read_corpus(corpus).height == 4
    more = run_loop(cfg, LoopConfig(rounds=3, per_round=2), "evolution")
    state = json.loads((res.folder / STATE).read_text())
    assert more.rounds.height == 3 and read_corpus(corpus).height == 6
    assert state["rounds"][2]["predictor"] == str(res.folder / "predictors" / "round_2")


def _ev(arch_id: str, reward: float, std: float) -> Evaluation:
    return Evaluation(0, arch_id, "{}", reward, reward, std, 1.0, 1.0, 1.0, 0.0)


def test_choose_skips_measured_networks_and_adds_the_exploration_bonus() -> None:
    hist = [_ev("a", 0.9, 0.0), _ev("b", 0.8, 0.2), _ev("c", 0.85, 0.0), _ev("a", 0.9, 0.0), _ev("m", 0.99, 0.0)]
    assert [p["arch_id"] for p in choose(hist, {"m"}, 2, 0.0)] == ["a", "c"]
    assert [p["arch_id"] for p in choose(hist, {"m"}, 2, 1.0)] == ["b", "a"]  # 0.8 + 0.2 beats 0.9
    no_std = [_ev("a", 0.9, float("nan")), _ev("b", 0.8, float("nan")), _ev("c", 0.85, float("nan"))]
    assert [p["arch_id"] for p in choose(no_std, set(), 2, 1.0)] == ["a", "c"]  # a family without a std: no bonus


def test_random_best_is_the_exact_expected_maximum() -> None:
    v = np.array([0.3, 0.9, 0.5, 0.7, 0.1])
    for n in range(1, 6):
        exact = np.mean([max(c) for c in itertools.combinations(v, n)])
        assert random_best(v, n) == pytest.approx(exact)
    assert random_best(v, 99) == pytest.approx(0.9)


def test_bad_loop_settings_fail_in_one_line() -> None:
    with pytest.raises(ValueError, match="--per-round"):
        LoopConfig(per_round=0)
    with pytest.raises(ValueError, match="--explore"):
        LoopConfig(explore=float("nan"))
    with pytest.raises(ValueError, match="--loop-start must be one of best, seed"):
        LoopConfig(start="worst")

"""Every strategy improves over its start on a toy scorer of real features, within one query budget."""

from __future__ import annotations

import numpy as np
import pytest

from narch.controller.search import history_frame, known_strategies, run_one
from narch.search_space import SEEDS
from tests.controller.toy import toy_setup

FAST = ["random", "evolution", "local", "a2c", "reinforce", "tpe", "nsga2"]


def test_every_registered_strategy_is_covered() -> None:
    assert sorted(FAST) == known_strategies()


@pytest.mark.parametrize("strategy", FAST)
def test_strategy_improves_over_its_start_within_the_budget(strategy: str) -> None:
    scorer, obj, reward, moves, _ = toy_setup()
    r = run_one(strategy, objectives=obj, reward=reward, moves=moves, start=SEEDS["mnist1d_cnn"], budget=120,
                seed=0, episode_len=4, batch=8, params={"envs": 8} if strategy in ("a2c", "reinforce") else None)
    rewards = np.array([e.reward for e in r.history])
    assert len(r.history) <= 120 and scorer.seen == len(r.history), "every query is one scorer call, none repeated"
    assert len({e.arch_id for e in r.history}) == len(r.history)
    assert rewards.max() > rewards[0] + 1e-3, f"{strategy} never beat the start network"
    df = history_frame([r])
    assert (np.diff(df["best_reward"].to_numpy()) >= 0).all()


def test_runs_are_deterministic_under_a_seed() -> None:
    out = []
    for _ in range(2):
        _, obj, reward, moves, _ = toy_setup()
        r = run_one("evolution", objectives=obj, reward=reward, moves=moves, start=SEEDS["tiny"], budget=60, seed=3)
        out.append([e.arch_id for e in r.history])
    assert out[0] == out[1]


def test_moves_carry_lineage_into_the_history() -> None:
    _, obj, reward, moves, _ = toy_setup()
    r = run_one("random", objectives=obj, reward=reward, moves=moves, start=SEEDS["tiny"], budget=30, seed=0)
    edges = [(e.parent_arch_id, e.move) for e in r.history[1:]]
    assert all(p is not None and m is not None for p, m in edges)
    from narch.search_space import Move, Network, apply_move

    known = {e.arch_id: e.arch_json for e in r.history}
    for e in r.history[1:]:
        if e.parent_arch_id in known:
            child = apply_move(Network.from_json(known[e.parent_arch_id]), Move.from_json(e.move))  # type: ignore[arg-type]
            assert child.arch_id == e.arch_id

"""Every registered strategy passes the packaged conformance suite (narch.testing.strategies); lineage of moves."""

from __future__ import annotations

from typing import Any

import pytest

from narch.controller.search import known_strategies, run_one
from narch.search_space import SEEDS, Move, Network, apply_move
from narch.testing.strategies import StrategyTestCase
from tests.controller.toy import toy_setup

BUILT_IN = {"random", "evolution", "local", "a2c", "ppo", "reinforce", "tpe", "nsga2"}


def test_every_built_in_strategy_is_registered() -> None:
    assert known_strategies() == sorted(known_strategies())
    assert set(known_strategies()) >= BUILT_IN


@pytest.mark.parametrize("name", known_strategies())
class TestEveryStrategy(StrategyTestCase):
    """The suite over every registered name (plugins installed in this environment included)."""

    @pytest.fixture
    def strategy_name(self, name: str) -> str:
        return name

    @pytest.fixture
    def strategy_params(self, strategy_name: str) -> dict[str, Any]:
        return {"envs": 8} if strategy_name in ("a2c", "ppo", "reinforce") else {}


def test_moves_carry_lineage_into_the_history() -> None:
    _, obj, reward, moves, _ = toy_setup()
    r = run_one("random", objectives=obj, reward=reward, moves=moves, start=SEEDS["tiny"], budget=30, seed=0)
    edges = [(e.parent_arch_id, e.move) for e in r.history[1:]]
    assert all(p is not None and m is not None for p, m in edges)
    known = {e.arch_id: e.arch_json for e in r.history}
    # a random walk queries every step, so each network's parent was queried before it
    assert all(e.parent_arch_id in known for e in r.history[1:]), [e.parent_arch_id for e in r.history]
    for e in r.history[1:]:
        child = apply_move(Network.from_json(known[e.parent_arch_id]), Move.from_json(e.move))  # type: ignore[arg-type,index]
        assert child.arch_id == e.arch_id

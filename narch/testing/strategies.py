"""``StrategyTestCase``: what every registered search strategy must do, for built-in strategies and plugins alike.

A plugin's tests subclass it and name the strategy (optuna's ``SamplerTestCase`` pattern)::

    from narch.testing.strategies import StrategyTestCase

    class TestAnnealing(StrategyTestCase):
        @pytest.fixture
        def strategy_name(self) -> str:
            return "annealing"

The strategy runs through the one search loop (``narch.controller.search.run_one``) on the toy scorer
(``narch.testing.toy``: real legal moves, the real evaluator, cache and budget) and must beat its start within the
budget, never spend a query twice, stop at the budget, and repeat itself under a seed. Imports pytest.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from narch.controller.search import RunResult, history_frame, known_strategies, run_one
from narch.controller.strategies import STRATEGIES
from narch.search_space import SEEDS
from narch.testing.toy import toy_setup


class StrategyTestCase:
    """The conformance tests of one strategy; subclasses supply the ``strategy_name`` fixture."""

    @pytest.fixture
    def strategy_name(self) -> str:
        raise NotImplementedError("a StrategyTestCase subclass supplies a strategy_name fixture (a registered name)")

    @pytest.fixture
    def strategy_params(self, strategy_name: str) -> dict[str, Any]:
        """``StrategyContext.params`` for the runs (override to keep a slow strategy small)."""
        return {}

    @staticmethod
    def run(strategy: str, params: dict[str, Any], *, budget: int, seed: int = 0, start: str = "mnist1d_cnn",
            batch: int = 8) -> tuple[RunResult, int]:
        """One run on a fresh toy scorer; returns it with the number of networks the scorer saw."""
        scorer, obj, reward, moves, _ = toy_setup()
        r = run_one(strategy, objectives=obj, reward=reward, moves=moves, start=SEEDS[start], budget=budget,
                    seed=seed, episode_len=4, batch=batch, params=params or None)
        return r, scorer.seen

    # tests ------------------------------------------------------------------------------------------------------
    def test_registered_under_its_name(self, strategy_name: str) -> None:
        assert STRATEGIES.get(strategy_name).name == strategy_name  # type: ignore[attr-defined]
        assert strategy_name in known_strategies()

    def test_improves_over_its_start_within_the_budget(self, strategy_name: str,
                                                       strategy_params: dict[str, Any]) -> None:
        r, seen = self.run(strategy_name, strategy_params, budget=120)
        rewards = np.array([e.reward for e in r.history])
        assert len(r.history) <= 120 and seen == len(r.history), "every query is one scorer call, none repeated"
        assert len({e.arch_id for e in r.history}) == len(r.history)
        assert rewards.max() > rewards[0] + 1e-3, f"{strategy_name} never beat the start network"
        assert (np.diff(history_frame([r])["best_reward"].to_numpy()) >= 0).all()

    def test_stops_at_a_budget_that_cuts_a_batch(self, strategy_name: str, strategy_params: dict[str, Any]) -> None:
        # 13 is not a multiple of the batch: the last tell gets fewer rewards than networks asked for.
        r, seen = self.run(strategy_name, strategy_params, budget=13, start="tiny")
        assert seen == len(r.history) == 13

    def test_runs_are_deterministic_under_a_seed(self, strategy_name: str, strategy_params: dict[str, Any]) -> None:
        a, _ = self.run(strategy_name, strategy_params, budget=40, seed=3, start="tiny")
        b, _ = self.run(strategy_name, strategy_params, budget=40, seed=3, start="tiny")
        assert [e.arch_id for e in a.history] == [e.arch_id for e in b.history]

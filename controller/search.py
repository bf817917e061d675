"""One search loop with one query budget, run for every strategy and seed."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

import polars as pl

from narch.controller import rl, tpe  # noqa: F401  (registers a2c, reinforce, tpe, nsga2)
from narch.controller.env import Evaluation, Evaluator, Moves
from narch.controller.objectives import Objectives
from narch.controller.reward import RewardConfig
from narch.controller.strategies import STRATEGIES, StrategyContext
from narch.search_space import Network


@dataclass
class RunResult:
    """One strategy x seed: its evaluator history and counters."""

    strategy: str
    seed: int
    history: list[Evaluation]
    env_steps: int
    wall_s: float
    extra: dict[str, Any] = field(default_factory=dict)


def run_one(strategy: str, *, objectives: Objectives, reward: RewardConfig, moves: Moves, start: Network,
            budget: int, seed: int, episode_len: int = 8, batch: int = 16, max_steps_factor: int = 50,
            stall_steps: int = 5000, params: dict[str, Any] | None = None, demos: tuple[Any, ...] = ()) -> RunResult:
    """Run a strategy until the budget is spent, or it stalls: ``stall_steps`` proposals in a row that were all
    networks already scored (a collapsed policy revisits for free), or ``max_steps_factor`` x budget proposals."""
    ev = Evaluator(objectives, reward, budget=budget, lineage=moves.lineage)
    ev.evaluate([start])
    ctx = StrategyContext(start, moves, ev, seed, episode_len, dict(params or {}), demos)
    strat = STRATEGIES.get(strategy)(ctx)
    steps, t0, last_new, stalled = 0, time.perf_counter(), 0, False
    while not ev.exhausted and steps < max_steps_factor * budget:
        nets = strat.ask(batch)
        if not nets:
            break
        before = ev.queries
        rewards = ev.evaluate(nets)
        strat.tell(nets[: len(rewards)], rewards)
        steps += len(rewards)
        if ev.queries > before:
            last_new = steps
        elif steps - last_new >= stall_steps:
            stalled = True
            break
    extra = {"updates": getattr(strat, "updates", None), "stalled": stalled,
             "pretrain": getattr(strat, "pretrained", None), "restarts": getattr(strat, "restarts", None)}
    return RunResult(strategy, seed, list(ev.history), steps, time.perf_counter() - t0, extra)


def history_frame(results: list[RunResult]) -> pl.DataFrame:
    """Every query of every run: strategy, seed, query index, reward, objectives, best so far."""
    frames = []
    for r in results:
        if not r.history:
            continue
        df = pl.DataFrame([asdict(e) for e in r.history])
        frames.append(df.with_columns(pl.lit(r.strategy).alias("strategy"), pl.lit(r.seed).alias("seed"),
                                      pl.col("reward").cum_max().alias("best_reward")))
    return pl.concat(frames) if frames else pl.DataFrame()


def known_strategies() -> list[str]:
    """Every registered strategy, sorted: the built-in ones (imported above) and plugins (entry points, ``--plugin``
    modules loaded so far). What "all" means; never a list written by hand."""
    return STRATEGIES.names()

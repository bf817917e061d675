"""Search strategies behind one ask/tell interface, and the baselines that walk the same moves as the controller.

``ask(n)`` proposes networks (``n`` is a hint: the A2C controller proposes one child per environment) and
``tell(nets, rewards)`` returns their rewards (possibly fewer than asked when the budget ran out). Every strategy
starts from the same seed network, already scored, and draws moves from the same ``Moves`` (legal-move masks).
"""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

import numpy as np

from narch.controller.env import Evaluator, Moves
from narch.core.registry import Registry
from narch.search_space import Network


@dataclass
class StrategyContext:
    """What every strategy gets: the start network, the shared moves, the evaluator (read-only use) and a seed."""

    start: Network
    moves: Moves
    evaluator: Evaluator
    seed: int
    episode_len: int = 8
    params: dict[str, Any] = field(default_factory=dict)
    demos: tuple[Any, ...] = ()  # (parent Network, Move) edits that raised the measured reward (controller.pretrain)


class Strategy(Protocol):
    """One search strategy: ``ask`` proposes networks, ``tell`` hands back their rewards."""

    name: ClassVar[str]

    def __init__(self, ctx: StrategyContext) -> None: ...

    def ask(self, n: int) -> list[Network]: ...

    def tell(self, nets: list[Network], rewards: np.ndarray) -> None: ...


# Plugin packages register strategies through the "narch.strategies" entry-point group (narch/core/registry.py).
STRATEGIES: Registry[Strategy] = Registry("strategy", group="narch.strategies")


@STRATEGIES.register("random")
class RandomMoves:
    """Parallel random walks of ``episode_len`` moves from the start, uniform at every head (an untrained policy)."""

    def __init__(self, ctx: StrategyContext) -> None:
        self.ctx = ctx
        self.rng = random.Random(ctx.seed)
        self.walkers: list[tuple[Network, int]] = []

    def ask(self, n: int) -> list[Network]:
        while len(self.walkers) < n:
            self.walkers.append((self.ctx.start, 0))
        out = []
        for k in range(n):
            net, t = self.walkers[k]
            if t >= self.ctx.episode_len:
                net, t = self.ctx.start, 0
            m = self.ctx.moves.random_move(self.rng, net)
            child = net if m is None else self.ctx.moves.child(net, m)
            self.walkers[k] = (child, t + 1)
            out.append(child)
        return out

    def tell(self, nets: list[Network], rewards: np.ndarray) -> None:
        pass


@STRATEGIES.register("evolution")
class RegularizedEvolution:
    """Aging evolution (Real et al. 2019): tournament of ``sample`` from a population of ``population``, one random
    legal move as mutation, the oldest member dies. The first population is random walks from the start."""

    def __init__(self, ctx: StrategyContext) -> None:
        self.ctx = ctx
        self.rng = random.Random(ctx.seed)
        self.population_size = int(ctx.params.get("population", 50))
        self.sample = int(ctx.params.get("sample", 10))
        self.population: deque[tuple[Network, float]] = deque()

    def ask(self, n: int) -> list[Network]:
        moves = self.ctx.moves
        if len(self.population) < self.population_size:
            return [moves.random_walk(self.rng, self.ctx.start, self.rng.randint(1, self.ctx.episode_len))
                    for _ in range(n)]
        out = []
        for _ in range(n):
            parent = max(self.rng.sample(list(self.population), self.sample), key=lambda p: p[1])[0]
            m = moves.random_move(self.rng, parent)
            out.append(parent if m is None else moves.child(parent, m))
        return out

    def tell(self, nets: list[Network], rewards: np.ndarray) -> None:
        for net, r in zip(nets, rewards, strict=True):
            self.population.append((net, float(r)))
            if len(self.population) > self.population_size:
                self.population.popleft()


@STRATEGIES.register("local")
class LocalSearch:
    """Hill climbing over the move neighbourhood: neighbours in random order, move to the best improving batch
    member; at a local optimum (every neighbour scored, none better) restart from a random walk of the start."""

    def __init__(self, ctx: StrategyContext) -> None:
        self.ctx = ctx
        self.rng = random.Random(ctx.seed)
        ev = ctx.evaluator.known(ctx.start)
        self.current, self.current_r = ctx.start, ev.reward if ev else -np.inf
        self.queue = self._neighbours(self.current)

    def _neighbours(self, net: Network) -> list[Network]:
        moves = self.ctx.moves
        kids = [moves.child(net, m) for m in moves.legal(net)]
        self.rng.shuffle(kids)
        return kids

    def ask(self, n: int) -> list[Network]:
        if not self.queue:
            self.current = self.ctx.moves.random_walk(self.rng, self.ctx.start, self.ctx.episode_len)
            self.current_r = -np.inf
            self.queue = [self.current, *self._neighbours(self.current)]
        out, self.queue = self.queue[:n], self.queue[n:]
        return out

    def tell(self, nets: list[Network], rewards: np.ndarray) -> None:
        if len(rewards) == 0:
            return
        k = int(np.argmax(rewards))
        if rewards[k] > self.current_r:
            if nets[k] != self.current:
                self.current = nets[k]
                self.queue = self._neighbours(self.current)
            self.current_r = float(rewards[k])

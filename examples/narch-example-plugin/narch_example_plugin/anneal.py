"""``annealing``: simulated annealing over the shared moves (``narch.controller.env.Moves``).

Each proposal is one random legal move from the current network. A better child is always accepted, a worse one
with probability exp(Δreward / T); the temperature T starts at ``t0`` and is multiplied by ``cooling`` after every
scored network (both from the strategy's params). A network without legal moves restarts from a random walk of
the start.
"""

from __future__ import annotations

import math
import random

import numpy as np

from narch.controller.strategies import STRATEGIES, StrategyContext
from narch.search_space import Network


@STRATEGIES.register("annealing")
class Annealing:
    """Simulated annealing: random moves, worse children accepted with a probability that cools geometrically."""

    def __init__(self, ctx: StrategyContext) -> None:
        self.ctx = ctx
        self.rng = random.Random(ctx.seed)
        known = ctx.evaluator.known(ctx.start)
        self.current = ctx.start
        self.current_r = known.reward if known is not None else -np.inf
        self.temperature = float(ctx.params.get("t0", 0.02))
        self.cooling = float(ctx.params.get("cooling", 0.995))

    def ask(self, n: int) -> list[Network]:
        out = []
        for _ in range(n):
            move = self.ctx.moves.random_move(self.rng, self.current)
            if move is None:
                out.append(self.ctx.moves.random_walk(self.rng, self.ctx.start, self.ctx.episode_len))
            else:
                out.append(self.ctx.moves.child(self.current, move))
        return out

    def tell(self, nets: list[Network], rewards: np.ndarray) -> None:
        for net, r in zip(nets, rewards, strict=True):
            delta = float(r) - self.current_r
            if delta >= 0 or self.rng.random() < math.exp(delta / max(self.temperature, 1e-12)):
                self.current, self.current_r = net, float(r)
            self.temperature *= self.cooling

"""``first_improvement``: a first-improvement hill climber over the shared moves (``narch.controller.env.Moves``).

It scores the current network's neighbours in a random order and moves to the first one (in proposal order) that
beats it; at a local optimum (every neighbour scored, none better) it restarts from a random walk of the start.
"""

from __future__ import annotations

import random

import numpy as np

from narch.controller.strategies import STRATEGIES, StrategyContext
from narch.search_space import Network


@STRATEGIES.register("first_improvement")
class FirstImprovement:
    """Hill climbing that takes the first improving neighbour instead of the best of a batch (``local``)."""

    def __init__(self, ctx: StrategyContext) -> None:
        self.ctx = ctx
        self.rng = random.Random(ctx.seed)
        known = ctx.evaluator.known(ctx.start)
        self.current = ctx.start
        self.current_r = known.reward if known is not None else -np.inf
        self.queue = self._neighbours(ctx.start)

    def _neighbours(self, net: Network) -> list[Network]:
        kids = [self.ctx.moves.child(net, m) for m in self.ctx.moves.legal(net)]
        self.rng.shuffle(kids)
        return kids

    def ask(self, n: int) -> list[Network]:
        if not self.queue:  # a local optimum: restart
            self.current = self.ctx.moves.random_walk(self.rng, self.ctx.start, self.ctx.episode_len)
            self.current_r = -np.inf
            self.queue = [self.current, *self._neighbours(self.current)]
        out, self.queue = self.queue[:n], self.queue[n:]
        return out

    def tell(self, nets: list[Network], rewards: np.ndarray) -> None:
        for net, r in zip(nets, rewards, strict=True):
            if r > self.current_r:
                if net != self.current:
                    self.current = net
                    self.queue = self._neighbours(net)
                self.current_r = float(r)
                return

"""The search environment: one query budget over a cached evaluator, and the move machinery every strategy shares.

``Evaluator`` turns networks into rewards. Every distinct architecture is scored once (the cache is keyed by
``arch_id``) and each first scoring costs one query of the budget; repeats are free. It keeps the history of
queries (what best-so-far curves and Pareto fronts are drawn from). ``Moves`` gives legal moves, their trie
(the controller's masks) and random moves drawn the way an untrained policy would (uniform at every head), with an
optional guard that masks children outside the predictor's training range.
"""

from __future__ import annotations

import random
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from narch.controller.actions import TrieBuilder, TrieNode, build_trie, resolve
from narch.controller.masks import MoveTable
from narch.controller.objectives import Objectives
from narch.controller.reward import RewardConfig
from narch.search_space import Move, MoveVocab, Network, apply_move
from narch.search_space.trace import trace_table


@dataclass(frozen=True, slots=True)
class Evaluation:
    """One scored architecture."""

    query: int
    arch_id: str
    arch_json: str
    reward: float
    acc: float
    acc_std: float
    size_bytes: float
    time_s: float
    params: float
    wall_s: float
    parent_arch_id: str | None = None
    move: str | None = None


class BudgetExhausted(Exception):
    """Raised by strategies that cannot continue without a query."""


class Evaluator:
    """Scores networks through the objectives and the reward, once per arch_id, within ``budget`` queries."""

    def __init__(self, objectives: Objectives, reward: RewardConfig, *, budget: int,
                 lineage: Callable[[str], tuple[str, Move] | None] | None = None) -> None:
        if budget < 1:
            raise ValueError(f"--budget must be >= 1, got {budget}")
        self.objectives, self.reward_cfg, self.budget = objectives, reward, budget
        self.lineage = lineage
        self.cache: dict[str, Evaluation] = {}
        self.history: list[Evaluation] = []
        self.calls = 0
        self._t0 = time.perf_counter()

    @property
    def queries(self) -> int:
        return len(self.history)

    @property
    def remaining(self) -> int:
        return self.budget - self.queries

    @property
    def exhausted(self) -> bool:
        return self.remaining <= 0

    def known(self, net: Network) -> Evaluation | None:
        return self.cache.get(net.arch_id)

    def evaluate(self, nets: Sequence[Network]) -> np.ndarray:
        """Rewards of ``nets`` in order; stops before the first new network the budget cannot pay for."""
        self.calls += 1
        ids = [n.arch_id for n in nets]
        new: dict[str, Network] = {}
        n_ok = len(nets)
        for k, (a, net) in enumerate(zip(ids, nets, strict=True)):
            if a in self.cache or a in new:
                continue
            if len(new) >= self.remaining:
                n_ok = k
                break
            new[a] = net
        if new:
            batch = list(new.values())
            s = self.objectives(batch)
            r = self.reward_cfg.reward(s.acc, s.size_bytes, s.time_s, s.acc_std)
            wall = time.perf_counter() - self._t0
            for j, (a, net) in enumerate(new.items()):
                edge = self.lineage(a) if self.lineage is not None else None
                ev = Evaluation(self.queries + 1, a, net.to_json(), float(r[j]), float(s.acc[j]),
                                float(s.acc_std[j]) if s.acc_std is not None else float("nan"), float(s.size_bytes[j]),
                                float(s.time_s[j]), float(s.params[j]), wall,
                                edge[0] if edge else None, edge[1].to_json() if edge else None)
                self.cache[a] = ev
                self.history.append(ev)
        return np.asarray([self.cache[a].reward for a in ids[:n_ok]], dtype=np.float64)

    def best(self) -> Evaluation:
        return max(self.history, key=lambda e: e.reward)


@dataclass(frozen=True, slots=True)
class RangeGuard:
    """The predictor's training range; children outside it are masked when the guard is on."""

    min_params: float
    max_params: float
    max_depth: int
    input_shape: tuple[int, ...]
    n_classes: int

    def allows(self, net: Network) -> bool:
        return self.allows_many([net])[0]

    def allows_many(self, nets: Sequence[Network]) -> list[bool]:
        """``allows`` of each network, their parameters counted on one batched trace."""
        if not nets:
            return []
        params = trace_table(nets, self.input_shape, self.n_classes).total_params.tolist()
        return [self.min_params <= p <= self.max_params and len(n.layers) <= self.max_depth
                for n, p in zip(nets, params, strict=True)]


class Moves:
    """Legal moves, tries and children of networks, cached; shared by every strategy of a run."""

    def __init__(self, vocab: MoveVocab | None = None, *, in_channels: int = 1, guard: RangeGuard | None = None,
                 max_entries: int = 50_000) -> None:
        self.vocab = vocab or MoveVocab()
        self.table = MoveTable(self.vocab, in_channels=in_channels, max_entries=max_entries)
        self.builder = TrieBuilder(self.table)
        self.guard = guard
        self.max_entries = max_entries
        self._tries: OrderedDict[Network, TrieNode | None] = OrderedDict()
        self._children: OrderedDict[tuple[Network, Move], Network] = OrderedDict()
        self._lineage: OrderedDict[str, tuple[str, Move]] = OrderedDict()

    def lineage(self, arch_id: str) -> tuple[str, Move] | None:
        """A (parent arch_id, move) that produced this network, if a strategy made it by a move."""
        return self._lineage.get(arch_id)

    def legal(self, net: Network) -> list[Move]:
        moves = self.table.moves(net)
        if self.guard is not None:
            ok = self.guard.allows_many([self.child(net, m) for m in moves])
            moves = [m for m, keep in zip(moves, ok, strict=True) if keep]
        return moves

    def trie(self, net: Network) -> TrieNode | None:
        """The trie of legal moves (None: no legal move)."""
        if net in self._tries:
            self._tries.move_to_end(net)
            return self._tries[net]
        t = self.builder.build(net) if self.guard is None else build_trie(self.legal(net), self.vocab, net)
        self._tries[net] = t
        if len(self._tries) > self.max_entries:
            self._tries.popitem(last=False)
        return t

    def child(self, net: Network, move: Move) -> Network:
        key = (net, move)
        c = self._children.get(key)
        if c is None:
            c = self._children[key] = apply_move(net, move)
            if len(self._children) > 4 * self.max_entries:
                self._children.popitem(last=False)
            if c.arch_id not in self._lineage:
                self._lineage[c.arch_id] = (net.arch_id, move)
                if len(self._lineage) > 10 * self.max_entries:
                    self._lineage.popitem(last=False)
        return c

    def random_move(self, rng: random.Random, net: Network) -> Move | None:
        """Uniform at every head of the trie: the distribution of an untrained policy."""
        node = self.trie(net)
        if node is None:
            return None
        ins_pos = -1
        while True:
            k = rng.choice(list(node.children))
            if node.head == "ins_pos":
                ins_pos = k
            nxt = node.children[k]
            if not isinstance(nxt, TrieNode):
                return resolve(nxt, ins_pos)
            node = nxt

    def random_walk(self, rng: random.Random, net: Network, steps: int) -> Network:
        for _ in range(steps):
            m = self.random_move(rng, net)
            if m is None:
                break
            net = self.child(net, m)
        return net



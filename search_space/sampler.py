"""Seeded sampling of networks and random walks of moves, for corpus plans with edit trajectories."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from narch.search_space.layer import Layer, Op
from narch.search_space.moves import Move, MoveKind, MoveVocab, candidate_moves, try_move
from narch.search_space.seeds import SEEDS
from narch.search_space.spec import Network


@dataclass(frozen=True, slots=True)
class SamplerBounds:
    """Configurable bounds of the random sampler."""

    min_blocks: int = 1
    max_blocks: int = 4
    channels: tuple[int, ...] = (8, 16, 32, 64)
    kernels: tuple[int, ...] = (1, 3, 5, 7)
    p_stride2: float = 0.3
    p_pool: float = 0.3
    p_residual: float = 0.25
    p_dropout: float = 0.15
    max_dense: int = 2
    dense_units: tuple[int, ...] = (32, 64, 128)
    dropout_pcts: tuple[int, ...] = (10, 20, 30)
    max_downsample: int = 16


def sample_network(rng: random.Random, bounds: SamplerBounds | None = None) -> Network:
    """A random CNN: conv blocks (optional residual pair, pooling, dropout), then up to max_dense dense layers."""
    b = bounds or SamplerBounds()
    layers: list[Layer] = []
    factor = 1
    for _ in range(rng.randint(b.min_blocks, b.max_blocks)):
        c = rng.choice(b.channels)
        stride = 2 if factor * 2 <= b.max_downsample and rng.random() < b.p_stride2 else 1
        factor *= stride
        layers.append(Layer(Op.CONV, channels=c, kernel=rng.choice(b.kernels), stride=stride))
        if rng.random() < b.p_residual:
            start = len(layers) - 1
            layers.append(Layer(Op.CONV, channels=c, kernel=rng.choice(b.kernels)))
            layers.append(Layer(Op.ADD, inputs=(start, start + 1)))
        if factor * 2 <= b.max_downsample and rng.random() < b.p_pool:
            k = 2
            factor *= k
            layers.append(Layer(rng.choice((Op.MAXPOOL, Op.AVGPOOL)), kernel=k, stride=k))
        if rng.random() < b.p_dropout:
            layers.append(Layer(Op.DROPOUT, dropout_pct=rng.choice(b.dropout_pcts)))
    for _ in range(rng.randint(0, b.max_dense)):
        layers.append(Layer(Op.DENSE, units=rng.choice(b.dense_units)))
        if rng.random() < b.p_dropout:
            layers.append(Layer(Op.DROPOUT, dropout_pct=rng.choice(b.dropout_pcts)))
    return Network(tuple(layers))


def random_move(rng: random.Random, net: Network, vocab: MoveVocab) -> tuple[Move, Network] | None:
    """A uniformly drawn kind, then a uniformly drawn legal move of that kind (None if none is legal)."""
    by_kind: dict[MoveKind, list[Move]] = {}
    for m in candidate_moves(net, vocab):
        by_kind.setdefault(m.kind, []).append(m)
    kinds = sorted(by_kind)
    rng.shuffle(kinds)
    for kind in kinds:
        moves = by_kind[kind]
        rng.shuffle(moves)
        for m in moves:
            child = try_move(net, m, vocab)
            if child is not None:
                return m, child
    return None


def random_walk(rng: random.Random, start: Network, steps: int, vocab: MoveVocab | None = None) -> list[Network]:
    """The networks visited by ``steps`` random legal moves from ``start`` (start excluded)."""
    vocab = vocab or MoveVocab()
    out, net = [], start
    for _ in range(steps):
        step = random_move(rng, net, vocab)
        if step is None:
            break
        net = step[1]
        out.append(net)
    return out


@dataclass(frozen=True, slots=True)
class PlannedNet:
    """A network to profile, with the edit that made it from its parent (if any)."""

    net: Network
    parent_arch_id: str | None = None
    move: str | None = None


@dataclass(frozen=True, slots=True)
class PlanConfig:
    """How a build plan mixes fresh samples and edits of earlier networks."""

    p_edit: float = 0.5
    bounds: SamplerBounds = field(default_factory=SamplerBounds)
    vocab: MoveVocab = field(default_factory=MoveVocab)
    seed_names: tuple[str, ...] = tuple(sorted(SEEDS))


def plan_networks(n: int, seed: int, config: PlanConfig | None = None) -> list[PlannedNet]:
    """n distinct networks, deterministic in ``seed``: fresh samples and one-move edits of seeds or earlier picks."""
    cfg = config or PlanConfig()
    rng = random.Random(seed)
    seeds = [SEEDS[name] for name in cfg.seed_names]
    plan: list[PlannedNet] = []
    seen: set[str] = set()
    attempts = 0
    while len(plan) < n:
        attempts += 1
        if attempts > 50 * n + 100:
            raise RuntimeError(f"could not plan {n} distinct networks (got {len(plan)})")
        item: PlannedNet | None
        if rng.random() < cfg.p_edit:
            parents = seeds + [p.net for p in plan]
            parent = rng.choice(parents)
            step = random_move(rng, parent, cfg.vocab)
            item = None if step is None else PlannedNet(step[1], parent.arch_id, step[0].to_json())
        else:
            item = PlannedNet(sample_network(rng, cfg.bounds))
        if item is not None and item.net.arch_id not in seen:
            seen.add(item.net.arch_id)
            plan.append(item)
    return plan

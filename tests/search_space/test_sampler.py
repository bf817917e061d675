"""The seeded sampler, random walks and build plans with edit trajectories."""

from __future__ import annotations

import random
from dataclasses import replace

import pytest

from narch.search_space import (
    SEEDS,
    Move,
    MoveVocab,
    Network,
    Op,
    PlanConfig,
    SamplerBounds,
    SpecError,
    apply_move,
    infer_shapes,
    legal_moves,
    plan_networks,
    random_walk,
    sample_network,
)


def _as_tuples(plan: list) -> list[tuple[str, str | None, str | None]]:
    return [(p.net.to_json(), p.parent_arch_id, p.move) for p in plan]


@pytest.mark.parametrize("seed", [0, 1, 12345])
def test_plan_is_deterministic_in_seed(seed: int) -> None:
    assert _as_tuples(plan_networks(40, seed)) == _as_tuples(plan_networks(40, seed))


def test_plan_differs_between_seeds() -> None:
    a = {p.net.arch_id for p in plan_networks(30, 0)}
    b = {p.net.arch_id for p in plan_networks(30, 1)}
    assert a != b


def test_plan_is_not_affected_by_the_global_rng() -> None:
    random.seed(1)
    a = _as_tuples(plan_networks(20, 4))
    random.seed(2)
    random.random()
    assert _as_tuples(plan_networks(20, 4)) == a


def test_a_longer_plan_extends_a_shorter_one() -> None:
    # Growing --archs for the same seed keeps every network already planned (so a corpus can be extended).
    assert _as_tuples(plan_networks(60, 9))[:25] == _as_tuples(plan_networks(25, 9))


@pytest.mark.parametrize("seed", [0, 3])
def test_plan_ids_are_distinct(seed: int) -> None:
    plan = plan_networks(150, seed)
    assert len(plan) == 150
    ids = [p.net.arch_id for p in plan]
    assert len(set(ids)) == len(ids)


@pytest.mark.parametrize("seed", [0, 5])
def test_edits_reproduce_from_their_parent(seed: int) -> None:
    plan = plan_networks(120, seed)
    known: dict[str, Network] = {net.arch_id: net for net in SEEDS.values()}
    edits = 0
    for p in plan:
        if p.parent_arch_id is None:
            assert p.move is None
        else:
            assert p.move is not None
            # The parent is a seed or an earlier planned network, never a later one.
            assert p.parent_arch_id in known, p.parent_arch_id
            move = Move.from_json(p.move)
            assert apply_move(known[p.parent_arch_id], move) == p.net
            assert move.to_json() == p.move
            edits += 1
        known[p.net.arch_id] = p.net
    assert 0.3 * len(plan) < edits < 0.7 * len(plan)  # p_edit = 0.5


def test_edit_children_respect_the_vocabulary_limits() -> None:
    vocab = MoveVocab()
    children = [p.net for p in plan_networks(80, 2) if p.parent_arch_id is not None]
    assert len(children) >= 20  # p_edit = 0.5: about 40 of 80
    for net in children:
        assert len(net.layers) <= vocab.max_layers
        assert len(infer_shapes(net, limits=vocab.limits())) == len(net.layers)  # raises SpecError past a limit
    deepest = max(children, key=lambda n: len(n.layers))
    with pytest.raises(SpecError, match="layers"):  # the check bites: one layer fewer allowed is refused
        infer_shapes(deepest, limits=replace(vocab.limits(), max_layers=len(deepest.layers) - 1))


def test_p_edit_extremes() -> None:
    assert all(p.parent_arch_id is None for p in plan_networks(30, 0, PlanConfig(p_edit=0.0)))
    plan = plan_networks(30, 0, PlanConfig(p_edit=1.0))
    assert all(p.parent_arch_id is not None for p in plan)


def test_edits_from_chosen_seeds_only() -> None:
    cfg = PlanConfig(p_edit=1.0, seed_names=("tiny",))
    known = {SEEDS["tiny"].arch_id}
    for p in plan_networks(15, 0, cfg):
        assert p.parent_arch_id in known
        known.add(p.net.arch_id)


def test_plan_fails_loudly_when_the_space_is_too_small() -> None:
    bounds = SamplerBounds(
        min_blocks=1,
        max_blocks=1,
        channels=(8,),
        kernels=(3,),
        p_stride2=0,
        p_pool=0,
        p_residual=0,
        p_dropout=0,
        max_dense=0,
    )
    assert plan_networks(1, 0, PlanConfig(p_edit=0.0, bounds=bounds))[0].net.layers == (
        Network.from_dict({"layers": [{"op": "conv", "channels": 8, "kernel": 3}]}).layers
    )
    with pytest.raises(RuntimeError, match=r"could not plan 2 distinct networks \(got 1\)"):
        plan_networks(2, 0, PlanConfig(p_edit=0.0, bounds=bounds))


@pytest.mark.parametrize("seed", range(5))
def test_sample_network_respects_bounds(seed: int) -> None:
    bounds = SamplerBounds(max_blocks=3, channels=(4, 12), kernels=(1, 5), max_downsample=4, dense_units=(7,))
    rng = random.Random(seed)
    for _ in range(40):
        net = sample_network(rng, bounds)
        convs = [layer for layer in net.layers if layer.op == Op.CONV]
        assert 1 <= len(convs) <= 2 * bounds.max_blocks
        assert {layer.channels for layer in convs} <= set(bounds.channels)
        assert {layer.kernel for layer in convs} <= set(bounds.kernels)
        assert {layer.units for layer in net.layers if layer.op == Op.DENSE} <= {7}
        assert sum(layer.op == Op.DENSE for layer in net.layers) <= bounds.max_dense
        shapes = infer_shapes(net)
        assert max(s.factor for s in shapes if not s.flat) <= bounds.max_downsample
        # Dense layers come last: nothing spatial after the first flat tensor.
        first_flat = next((i for i, s in enumerate(shapes) if s.flat), len(shapes))
        assert all(s.flat for s in shapes[first_flat:])


def test_sample_network_is_deterministic_in_the_rng() -> None:
    a = [sample_network(random.Random(7)) for _ in range(3)]
    assert len({n.arch_id for n in a}) == 1
    rng = random.Random(7)
    assert sample_network(rng) == a[0]
    assert len({sample_network(rng).arch_id for _ in range(10)}) > 1


@pytest.mark.parametrize("name", sorted(SEEDS))
def test_random_walk_steps_are_legal_moves(name: str) -> None:
    vocab = MoveVocab()
    walk = random_walk(random.Random(0), SEEDS[name], 6, vocab)
    assert len(walk) == 6
    prev = SEEDS[name]
    for net in walk:
        assert any(child == net for _, child in legal_moves(prev, vocab))
        prev = net
    assert walk == random_walk(random.Random(0), SEEDS[name], 6, vocab)


def test_random_walk_stops_when_no_move_is_legal() -> None:
    # One layer, no removal, no room to grow, and its only scalable attribute has a single value: no legal move.
    vocab = MoveVocab(max_layers=1, allow_remove=False, conv_channels=(8,), conv_kernels=(3,))
    assert random_walk(random.Random(0), SEEDS["tiny"], 5, vocab) == []

"""Property tests: walks of legal moves from any seed stay valid, build, and train on 1-D and 2-D inputs.

Every network reached checks the spec against the torch model: parameter count, per-layer output shapes
(hooked on the model's body), output shape, and gradients reaching exactly the layers the output depends on.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Iterator

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch.nn import functional as F

from narch.dataset_builder.model import build_model
from narch.search_space import (
    SEEDS,
    Move,
    MoveVocab,
    Network,
    apply_move,
    concrete_shapes,
    count_params,
    legal_moves,
    sample_network,
    validate,
)

VOCAB = MoveVocab()
INPUT_SHAPES = [(1, 40), (1, 8, 8), (3, 16, 16)]
N_CLASSES = 10
BATCH = 2  # batch-norm in training mode needs more than one value per channel at a 1x1 map
SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(autouse=True, scope="module")
def one_thread() -> Iterator[None]:
    """Tiny models run fastest on one thread; more threads on a busy 2-core machine are ~10x slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@functools.lru_cache(maxsize=4096)
def _legal(net: Network) -> list[tuple[Move, Network]]:
    # Walks revisit the seeds and their first children often; enumerating once per network keeps examples cheap.
    return legal_moves(net, VOCAB)


@st.composite
def walks(draw: st.DrawFn, max_steps: int = 6) -> tuple[str, list[Move], Network]:
    """A seed name, a sequence of legal moves drawn from legal_moves, and the network they reach."""
    name = draw(st.sampled_from(sorted(SEEDS)))
    net = SEEDS[name]
    moves = []
    for _ in range(draw(st.integers(0, max_steps))):
        options = _legal(net)
        if not options:
            break
        move, net = draw(st.sampled_from(options))
        moves.append(move)
    return name, moves, net


def live_layers(net: Network) -> set[int]:
    """Layers the output depends on (a layer no later layer reads, other than the last, is dead)."""
    live, todo = set(), [len(net.layers) - 1]
    while todo:
        i = todo.pop()
        if i < 0 or i in live:
            continue
        live.add(i)
        todo.extend(net.layers[i].inputs or (i - 1,))
    return live


def check_builds_and_trains(net: Network, input_shape: tuple[int, ...]) -> None:
    """Build, run forward and backward, and compare the model against the spec's shapes and size."""
    validate(net, input_shape=input_shape, n_classes=N_CLASSES)
    torch.manual_seed(0)
    model = build_model(net, input_shape, N_CLASSES).train()
    assert count_params(net, input_shape, N_CLASSES) == sum(p.numel() for p in model.parameters())

    seen: list[tuple[int, ...]] = []
    hooks = [m.register_forward_hook(lambda _m, _i, out: seen.append(tuple(out.shape[1:]))) for m in model.body]
    x = torch.randn(BATCH, *input_shape)
    out = model(x)
    for h in hooks:
        h.remove()
    assert out.shape == (BATCH, N_CLASSES)
    assert seen == concrete_shapes(net, input_shape)

    loss = F.cross_entropy(out, torch.arange(BATCH) % N_CLASSES)
    loss.backward()
    assert torch.isfinite(loss)
    assert model.head.weight.grad is not None
    live = live_layers(net)
    for i, mod in enumerate(model.body):
        for p in mod.parameters():
            if i in live:
                assert p.grad is not None and torch.isfinite(p.grad).all(), (i, net.to_json())
            else:
                assert p.grad is None, (i, net.to_json())

    model.eval()
    with torch.no_grad():
        assert model(x[:1]).shape == (1, N_CLASSES)


@SETTINGS
@given(walks())
def test_walks_of_legal_moves_build_and_train(walk: tuple[str, list[Move], Network]) -> None:
    name, moves, net = walk
    validate(net, limits=VOCAB.limits())
    replayed = SEEDS[name]
    for move in moves:
        replayed = apply_move(replayed, Move.from_json(move.to_json()))
    assert replayed == net
    assert Network.from_json(net.to_json()) == net
    for shape in INPUT_SHAPES:
        check_builds_and_trains(net, shape)


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_sampled_networks_build_and_train(seed: int) -> None:
    net = sample_network(random.Random(seed))
    for shape in INPUT_SHAPES:
        check_builds_and_trains(net, shape)


@settings(max_examples=15, deadline=None)
@given(walks(max_steps=4))
def test_every_legal_move_of_a_walked_network_reproduces(walk: tuple[str, list[Move], Network]) -> None:
    _, _, net = walk
    for move, child in legal_moves(net, VOCAB):
        validate(child, limits=VOCAB.limits())
        assert apply_move(net, move) == child


@pytest.mark.parametrize("name", sorted(SEEDS))
@pytest.mark.parametrize("shape", INPUT_SHAPES, ids=["1d", "2d", "2d-rgb"])
def test_seeds_build_and_train(name: str, shape: tuple[int, ...]) -> None:
    check_builds_and_trains(SEEDS[name], shape)

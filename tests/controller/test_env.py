"""Fast legal moves equal search_space's, masks never admit an illegal move, the evaluator's cache and budget."""

from __future__ import annotations

import random

import numpy as np
import pytest

from narch.controller.actions import TrieNode, resolve
from narch.controller.env import Moves, RangeGuard
from narch.controller.masks import MoveTable
from narch.search_space import (
    SEEDS,
    Move,
    MoveKind,
    MoveVocab,
    Network,
    Op,
    SpecError,
    conv,
    dense,
    legal_moves,
    maxpool,
    random_walk,
    sample_network,
    sep_conv,
    trace_network,
)
from narch.search_space.moves import try_move
from tests.controller.toy import CTX, toy_setup


def _networks(n_random: int = 40, walk: int = 10) -> list:
    rng = random.Random(7)
    nets = list(SEEDS.values()) + [sample_network(rng) for _ in range(n_random)]
    for s in SEEDS.values():
        nets += random_walk(rng, s, walk)
    return nets


@pytest.mark.parametrize("vocab", [MoveVocab(), MoveVocab(max_layers=10, max_downsample=4, allow_remove=False)])
def test_fast_legal_moves_equal_search_space_legal_moves(vocab: MoveVocab) -> None:
    table = MoveTable(vocab)
    for net in _networks():
        if len(net.layers) > vocab.max_layers:
            continue
        try:
            table.shapes(net)
        except ValueError:
            continue  # the network itself breaks this vocabulary's limits
        assert set(table.moves(net)) == {m for m, _ in legal_moves(net, vocab)}, net.to_json()


def test_fast_legal_moves_respect_grouped_convs() -> None:
    # A grouped conv's groups must divide what it reads: inserts before it and scales of what it reads must keep so.
    # (legal_moves does not know the input's channels; the table does: one here, so a remove that leaves a grouped
    # conv reading the input is legal there only)
    def expected(net: Network) -> set[Move]:
        return {m for m, child in legal_moves(net, MoveVocab()) if shape_ok(child)}

    def shape_ok(child: Network) -> bool:
        try:
            trace_network(child, (1, 16), 2)
        except SpecError:
            return False
        return True

    table = MoveTable(MoveVocab())
    net = Network((conv(8), *sep_conv(8, 16, dilation=2), conv(16, groups=4, dilation=3), maxpool(2), dense(32)))
    moves = set(table.moves(net))
    assert moves == expected(net)
    assert Move(MoveKind.REMOVE, 0) not in moves and Move(MoveKind.REMOVE, 0) in MoveTable(in_channels=8).moves(net)
    # 12 channels in groups of 12 and 3: no width of the vocabulary (8..128) keeps them divisible
    net = Network((conv(12), conv(12, groups=12), conv(12, groups=3, dilation=2), maxpool(2), dense(32)))
    moves = set(table.moves(net))
    assert moves == expected(net)
    assert not [m for m in moves if m.kind is MoveKind.SCALE and m.attr == "channels" and m.at <= 2]
    inserts_at_1 = [m.layer for m in moves if m.kind is MoveKind.INSERT and m.at == 1]
    assert inserts_at_1 and all(x is not None and x.op is not Op.CONV for x in inserts_at_1)
    assert Move(MoveKind.SCALE, 2, attr="kernel", value=5) in moves


def _leaves(node: TrieNode, pos: int = -1) -> list:
    out = []
    for k, child in node.children.items():
        p = k if node.head == "ins_pos" else pos
        out += _leaves(child, p) if isinstance(child, TrieNode) else [resolve(child, p)]
    return out


def test_trie_holds_exactly_the_legal_moves_and_random_moves_are_legal() -> None:
    moves = Moves()
    rng = random.Random(0)
    for net in _networks(10, 6):
        if len(net.layers) > moves.vocab.max_layers:
            continue
        trie = moves.trie(net)
        assert trie is not None
        assert set(_leaves(trie)) == set(moves.table.moves(net))
        for _ in range(20):
            m = moves.random_move(rng, net)
            assert m is not None and try_move(net, m, moves.vocab) is not None


def test_every_masked_choice_leads_to_a_legal_move() -> None:
    """Masks are exact: at every decision point each allowed child has a legal completion, so illegal moves are
    never sampled (a trie node exists only for prefixes of legal moves)."""
    moves = Moves()

    def check(node: TrieNode) -> None:
        assert node.children, "an allowed choice without legal completion"
        for child in node.children.values():
            if isinstance(child, TrieNode):
                check(child)

    for net in _networks(10, 4):
        if len(net.layers) <= moves.vocab.max_layers:
            check(moves.trie(net))  # type: ignore[arg-type]


def test_evaluator_caches_per_arch_id_and_counts_the_budget() -> None:
    scorer, _, _, _, ev = toy_setup(budget=3)
    a, b, c, d = SEEDS["tiny"], SEEDS["lenet"], SEEDS["allconv"], SEEDS["vgg_tiny"]
    r1 = ev.evaluate([a, b, a])
    assert len(r1) == 3 and r1[0] == r1[2] and ev.queries == 2
    ev.evaluate([a, b])
    assert ev.queries == 2 and scorer.seen == 2, "repeats are free and never reach the scorer"
    r3 = ev.evaluate([c, a, d])  # c costs the last query; d cannot be paid for
    assert len(r3) == 2 and ev.queries == 3 and ev.exhausted
    assert [e.query for e in ev.history] == [1, 2, 3]


def test_range_guard_masks_children_outside_the_training_range() -> None:
    net = SEEDS["mnist1d_cnn"]
    from narch.search_space import count_params

    p0 = count_params(net, CTX.input_shape, CTX.n_classes)
    guard = RangeGuard(min_params=0, max_params=p0 * 1.5, max_depth=16, input_shape=CTX.input_shape, n_classes=10)
    guarded, free = Moves(guard=guard), Moves()
    kept = guarded.legal(net)
    assert 0 < len(kept) < len(free.legal(net))
    assert all(count_params(guarded.child(net, m), CTX.input_shape, 10) <= p0 * 1.5 for m in kept)
    rng = random.Random(1)
    for _ in range(30):
        m = guarded.random_move(rng, net)
        assert m in kept
    assert np.isfinite(p0)

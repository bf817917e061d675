"""Moves: pure functions returning valid networks or raising MoveError; the enumeration of legal moves."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from narch.search_space import (
    SEEDS,
    Layer,
    Move,
    MoveError,
    MoveKind,
    MoveVocab,
    Network,
    Op,
    SpecError,
    add,
    apply_move,
    avgpool,
    candidate_moves,
    conv,
    dense,
    dropout,
    infer_shapes,
    insert,
    insert_add,
    legal_moves,
    maxpool,
    remove,
    scale,
)

RES = SEEDS["resnet_tiny"]  # conv conv conv add(0,2) conv/2 conv conv add(4,6)


def test_move_error_is_a_spec_error() -> None:
    assert issubclass(MoveError, SpecError)


# --- insert -------------------------------------------------------------------------------------------------------


def test_insert_at_start_middle_and_end() -> None:
    net = Network((conv(8), conv(16)))
    assert insert(net, 0, conv(4)).layers == (conv(4), conv(8), conv(16))
    assert insert(net, 1, maxpool(2)).layers == (conv(8), maxpool(2), conv(16))
    assert insert(net, 2, dense(32)).layers == (conv(8), conv(16), dense(32))


def test_insert_is_pure() -> None:
    before = RES.to_json()
    insert(RES, 3, dropout(10))
    assert RES.to_json() == before


def test_insert_shifts_later_add_inputs() -> None:
    child = insert(RES, 1, dropout(10))
    assert child.layers[0] == RES.layers[0]
    assert child.layers[1] == dropout(10)
    assert child.layers[4] == add(0, 3)  # was add(0, 2): layer 2 moved to 3, layer 0 stayed
    assert child.layers[8] == add(5, 7)  # was add(4, 6)
    assert len(child) == len(RES) + 1


def test_insert_right_after_an_add_input_keeps_the_reference() -> None:
    # Inserting at 3 places the new layer between conv 2 and add(0, 2); the add still reads conv 2 explicitly.
    child = insert(RES, 3, dropout(10))
    assert child.layers[3] == dropout(10)
    assert child.layers[4] == add(0, 2)
    assert child.layers[8] == add(5, 7)


def test_insert_before_layer_zero_shifts_everything() -> None:
    child = insert(RES, 0, conv(32))
    assert child.layers[4] == add(1, 3)
    assert child.layers[8] == add(5, 7)


def test_insert_keeps_network_input_references() -> None:
    net = Network((conv(1), add(-1, 0)))
    child = insert(net, 0, conv(1, 5))
    assert child.layers == (conv(1, 5), conv(1), add(-1, 1))


@pytest.mark.parametrize("at", [-1, 9, 100])
def test_insert_position_out_of_range(at: int) -> None:
    with pytest.raises(MoveError, match=rf"insert at {at}: position must be in 0\.\.8"):
        insert(RES, at, conv(8))


def test_insert_that_breaks_a_rule_is_a_move_error_naming_the_layer() -> None:
    # A channel change between conv 1 and conv 2 is fine; between conv 2 and the add it breaks the join.
    assert insert(RES, 3, conv(16)).layers[4] == add(0, 2)  # dangling branch: the add still reads conv 2
    with pytest.raises(
        MoveError, match=r"insert conv at 1: layer 4: add cannot join layer 0 \(32 ch, /1\) with layer 3 \(32 ch, /2\)"
    ):
        insert(RES, 1, conv(32, 3, 2))
    with pytest.raises(MoveError, match=r"insert dense at 1: layer 2: conv cannot read a flat tensor"):
        insert(RES, 1, dense(32))
    with pytest.raises(MoveError, match=r"insert conv at 0: layer 0: conv channels must be in 1\.\.1024, got 0"):
        insert(RES, 0, conv(0))


# --- insert_add ---------------------------------------------------------------------------------------------------


def test_insert_add_places_the_join_after_b_and_shifts() -> None:
    net = Network((conv(8), conv(8), conv(8), add(0, 2), conv(8)))
    child = insert_add(net, 1, 2)
    assert child.layers == (conv(8), conv(8), conv(8), add(1, 2), add(0, 2), conv(8))


def test_insert_add_on_resnet_shifts_the_later_add() -> None:
    child = insert_add(RES, 5, 6)
    assert child.layers[7] == add(5, 6)
    assert child.layers[8] == add(4, 6)  # reads conv 6 explicitly, not the new add
    child = insert_add(RES, 0, 1)
    assert child.layers[2] == add(0, 1)
    assert child.layers[4] == add(0, 3)
    assert child.layers[8] == add(5, 7)


def test_insert_add_with_the_network_input() -> None:
    net = Network((conv(1), conv(1)))
    assert insert_add(net, -1, 1).layers == (conv(1), conv(1), add(-1, 1))


@pytest.mark.parametrize(("a", "b"), [(2, 2), (3, 2), (-2, 1), (0, 8), (0, -1)])
def test_insert_add_bad_indices(a: int, b: int) -> None:
    with pytest.raises(MoveError, match=rf"insert_add\({a}, {b}\): need -1 <= a < b < 8"):
        insert_add(RES, a, b)


def test_insert_add_shapes_differ() -> None:
    with pytest.raises(MoveError, match=r"insert_add\(0, 4\): layer 5: add cannot join layer 0 .* shapes differ"):
        insert_add(RES, 0, 4)


# --- scale --------------------------------------------------------------------------------------------------------


def test_scale_each_attribute() -> None:
    net = Network((conv(8, 3), maxpool(3, 1), dense(32), dropout(10)))
    assert scale(net, 0, "channels", 16).layers[0] == conv(16, 3)
    assert scale(net, 0, "kernel", 5).layers[0] == conv(8, 5)
    assert scale(net, 2, "units", 64).layers[2] == dense(64)
    assert scale(net, 3, "dropout_pct", 50).layers[3] == dropout(50)


def test_scale_keeps_the_rest() -> None:
    child = scale(RES, 5, "kernel", 7)
    assert [i for i, (x, y) in enumerate(zip(RES.layers, child.layers, strict=True)) if x != y] == [5]


def test_scale_errors() -> None:
    with pytest.raises(MoveError, match=r"scale layer 8: no such layer \(network has 8\)"):
        scale(RES, 8, "channels", 8)
    with pytest.raises(MoveError, match=r"scale layer -1: no such layer"):
        scale(RES, -1, "channels", 8)
    with pytest.raises(MoveError, match=r"scale layer 3: add has no scalable 'channels'"):
        scale(RES, 3, "channels", 8)
    with pytest.raises(MoveError, match=r"scale layer 0: conv has no scalable 'stride'"):
        scale(RES, 0, "stride", 2)
    with pytest.raises(MoveError, match=r"scale layer 0: channels is already 32"):
        scale(RES, 0, "channels", 32)
    with pytest.raises(MoveError, match=r"scale layer 0 channels=16: layer 3: add cannot join"):
        scale(RES, 0, "channels", 16)
    with pytest.raises(MoveError, match=r"scale layer 0 kernel=4: layer 0: conv kernel must be one of"):
        scale(RES, 0, "kernel", 4)


# --- remove -------------------------------------------------------------------------------------------------------


def test_remove_shifts_later_add_inputs() -> None:
    net = Network((conv(8), dropout(10), conv(8), conv(8), add(0, 3), conv(8), add(4, 5)))
    child = remove(net, 1)
    assert child.layers == (conv(8), conv(8), conv(8), add(0, 2), conv(8), add(3, 4))


def test_remove_the_last_layer() -> None:
    assert remove(SEEDS["lenet"], 5).layers == SEEDS["lenet"].layers[:5]


def test_remove_refused_while_a_later_add_reads_the_layer() -> None:
    with pytest.raises(MoveError, match=r"remove layer 2: layer 3 \(add\) reads it"):
        remove(RES, 2)
    with pytest.raises(MoveError, match=r"remove layer 0: layer 3 \(add\) reads it"):
        remove(RES, 0)
    with pytest.raises(MoveError, match=r"remove layer 6: layer 7 \(add\) reads it"):
        remove(RES, 6)


def test_remove_refused_while_a_single_input_layer_reads_it() -> None:
    net = Network((conv(8), conv(16), Layer(Op.CONV, channels=8, kernel=3, inputs=(0,))))
    with pytest.raises(MoveError, match=r"remove layer 0: layer 2 \(conv\) reads it"):
        remove(net, 0)


def test_remove_then_insert_restores() -> None:
    child = remove(RES, 5)
    assert insert(child, 5, RES.layers[5]) == RES


def test_remove_errors() -> None:
    with pytest.raises(MoveError, match=r"remove layer 9: no such layer"):
        remove(RES, 9)
    with pytest.raises(MoveError, match=r"remove layer 0: .*a network needs at least one layer"):
        remove(SEEDS["tiny"], 0)
    with pytest.raises(MoveError, match=r"remove layer 4: layer 7 \(add\) reads it"):
        remove(RES, 4)
    net = Network((conv(8), conv(16), conv(8), maxpool(3, 1), add(0, 3)))
    with pytest.raises(
        MoveError, match=r"remove layer 2: layer 3: add cannot join layer 0 \(8 ch, /1\) with layer 2 \(16"
    ):
        remove(net, 2)


# --- Move objects -------------------------------------------------------------------------------------------------


MOVES = [
    Move(MoveKind.INSERT, 3, dropout(10)),
    Move(MoveKind.INSERT, 0, conv(16, 5, 2)),
    Move(MoveKind.INSERT, 1, avgpool(3, 1)),
    Move(MoveKind.INSERT, 2, add(0, 1)),
    Move(MoveKind.INSERT_ADD, 6, other=5),
    Move(MoveKind.INSERT_ADD, 2, other=-1),
    Move(MoveKind.SCALE, 4, attr="channels", value=128),
    Move(MoveKind.REMOVE, 5),
]


@pytest.mark.parametrize("move", MOVES, ids=lambda m: m.to_json())
def test_move_json_round_trip(move: Move) -> None:
    back = Move.from_json(move.to_json())
    assert back == move
    assert back.to_json() == move.to_json()


def test_move_json_is_canonical() -> None:
    assert Move(MoveKind.SCALE, 4, attr="channels", value=128).to_json() == (
        '{"at":4,"attr":"channels","kind":"scale","value":128}'
    )
    assert Move(MoveKind.INSERT_ADD, 6, other=5).to_json() == '{"at":6,"kind":"insert_add","other":5}'
    assert Move(MoveKind.REMOVE, 5).to_json() == '{"at":5,"kind":"remove"}'


def test_apply_move_dispatches() -> None:
    assert apply_move(RES, Move(MoveKind.INSERT, 3, dropout(10))) == insert(RES, 3, dropout(10))
    assert apply_move(RES, Move(MoveKind.INSERT_ADD, 6, other=5)) == insert_add(RES, 5, 6)
    assert apply_move(RES, Move(MoveKind.SCALE, 5, attr="channels", value=128)) == scale(RES, 5, "channels", 128)
    assert apply_move(RES, Move(MoveKind.REMOVE, 5)) == remove(RES, 5)
    with pytest.raises(MoveError, match="insert: the move carries no layer"):
        apply_move(RES, Move(MoveKind.INSERT, 3))


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("{", r"move: malformed JSON at line 1 column 2"),
        ("[]", r"move: expected a JSON object, got list"),
        ("{}", r"move: unknown kind None"),
        ('{"kind":"warp","at":0}', r"move: unknown kind 'warp' \(known: insert, insert_add, scale, remove\)"),
        ('{"kind":["remove"],"at":0}', r"move: unknown kind \['remove'\]"),
        ('{"kind":"remove"}', r"move remove: missing field\(s\) \['at'\], unexpected field\(s\) \[\]"),
        ('{"kind":"insert","at":0}', r"move insert: missing field\(s\) \['layer'\]"),
        ('{"kind":"scale","at":0,"attr":"kernel"}', r"move scale: missing field\(s\) \['value'\]"),
        ('{"kind":"remove","at":0,"other":1}', r"move remove: .*unexpected field\(s\) \['other'\]"),
        ('{"kind":"remove","at":"0"}', r"move remove: field 'at' must be an integer, got '0'"),
        ('{"kind":"remove","at":1.0}', r"move remove: field 'at' must be an integer"),
        ('{"kind":"insert_add","at":3,"other":true}', r"move insert_add: field 'other' must be an integer"),
        ('{"kind":"scale","at":0,"attr":3,"value":8}', r"move scale: field 'attr' must be a string"),
        ('{"kind":"insert","at":0,"layer":{"op":"x"}}', r"move insert: layer 0: unknown op 'x'"),
        ('{"kind":"insert","at":0,"layer":[]}', r"move insert: layer 0: expected an object"),
    ],
)
def test_move_from_bad_json_is_a_move_error(text: str, match: str) -> None:
    with pytest.raises(MoveError, match=match):
        Move.from_json(text)


def test_insert_move_without_a_layer_has_no_json() -> None:
    with pytest.raises(MoveError, match="insert: the move carries no layer"):
        Move(MoveKind.INSERT, 0).to_json()


# --- legal moves --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(SEEDS))
def test_legal_moves_validate_and_reproduce(name: str) -> None:
    net = SEEDS[name]
    vocab = MoveVocab()
    moves = legal_moves(net, vocab)
    assert moves, name
    limits = vocab.limits()
    for move, child in moves:
        infer_shapes(child, limits=limits)
        assert apply_move(net, move) == child
        assert Move.from_json(move.to_json()) == move
        assert child != net


@pytest.mark.parametrize("name", sorted(SEEDS))
def test_legal_moves_are_exactly_the_candidates_that_validate(name: str) -> None:
    net = SEEDS[name]
    vocab = MoveVocab()
    legal = {m for m, _ in legal_moves(net, vocab)}
    for move in candidate_moves(net, vocab):
        try:
            infer_shapes(apply_move(net, move), limits=vocab.limits())
            ok = True
        except SpecError:
            ok = False
        assert (move in legal) == ok, move


def test_legal_moves_cover_every_kind_on_resnet() -> None:
    kinds = Counter(m.kind for m, _ in legal_moves(RES))
    assert set(kinds) == set(MoveKind)


def test_vocab_limits_are_respected() -> None:
    vocab = MoveVocab(max_layers=len(RES))
    assert not any(m.kind in (MoveKind.INSERT, MoveKind.INSERT_ADD) for m, _ in legal_moves(RES, vocab))
    vocab = MoveVocab(allow_remove=False)
    assert not any(m.kind == MoveKind.REMOVE for m, _ in legal_moves(RES, vocab))
    # mnist1d_cnn already downsamples by 8; under max_downsample=8 no stride-2 conv or pool can be inserted.
    def inserts(max_downsample: int) -> list[Move]:
        legal = legal_moves(SEEDS["mnist1d_cnn"], MoveVocab(max_downsample=max_downsample))
        return [m for m, _ in legal if m.kind == MoveKind.INSERT]

    capped = inserts(8)
    assert capped and all(m.layer is not None and m.layer.stride == 1 for m in capped)
    assert any(m.layer is not None and m.layer.stride == 2 for m in inserts(64))  # the cap is what removes them


def test_single_layer_network_cannot_be_removed_to_nothing() -> None:
    assert not any(m.kind == MoveKind.REMOVE for m in candidate_moves(SEEDS["tiny"], MoveVocab()))


def test_pool_kernel_scale_is_reachable() -> None:
    # SCALABLE lists the pooling kernel, so some pool-kernel scale should be legal on a network with pooling.
    moves = [m for m, _ in legal_moves(SEEDS["lenet"]) if m.kind == MoveKind.SCALE and m.at in (1, 3)]
    assert moves
    for m in moves:
        child = apply_move(SEEDS["lenet"], m)
        assert child.layers[m.at].kernel == m.value


def _read_by_someone(net: Network) -> list[int]:
    """Layers read by a later layer (explicitly or as its implicit predecessor), plus the last one."""
    read = {len(net.layers) - 1}
    for i, layer in enumerate(net.layers):
        read.update(layer.inputs or (i - 1,))
    return sorted(read - {-1})


@pytest.mark.xfail(
    strict=True,
    reason="known: a layer inserted right before a layer with explicit inputs (an add) is read by nobody; "
    "about 5% of plan_networks(3000, 1) carry such a dead layer (params and latency, no effect on the output)",
)
@pytest.mark.parametrize(
    "child",
    [insert(RES, 3, conv(16)), insert_add(Network((conv(8), conv(8), add(0, 1))), 0, 1)],
    ids=["insert-before-add", "insert_add-before-add"],
)
def test_moves_leave_no_dead_layer(child: Network) -> None:
    assert _read_by_someone(child) == list(range(len(child.layers)))


@pytest.mark.parametrize("name", sorted(SEEDS))
def test_every_candidate_move_applies_or_raises_move_error(name: str) -> None:
    net = SEEDS[name]
    outcomes: Counter[str] = Counter()
    for move in candidate_moves(net, MoveVocab(max_layers=48, max_downsample=1024)):
        try:
            apply_move(net, move)
            outcomes["ok"] += 1
        except MoveError:
            outcomes["refused"] += 1
    assert outcomes["ok"] > 0


ANY_LAYER = st.builds(
    Layer,
    op=st.sampled_from(list(Op)),
    channels=st.integers(-1, 40),
    kernel=st.integers(-1, 10),
    stride=st.integers(0, 4),
    units=st.integers(-1, 40),
    dropout_pct=st.integers(-1, 100),
    inputs=st.lists(st.integers(-3, 10), max_size=3).map(tuple),
)
ANY_MOVE = st.builds(
    Move,
    kind=st.sampled_from(list(MoveKind)),
    at=st.integers(-3, 12),
    layer=st.none() | ANY_LAYER | st.sampled_from(MoveVocab().insertable_layers()),
    other=st.integers(-3, 12),
    attr=st.sampled_from(["channels", "kernel", "units", "dropout_pct", "stride", "inputs", "op", "bogus"]),
    value=st.integers(-2, 300),
)


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(sorted(SEEDS)), ANY_MOVE)
def test_any_move_yields_a_valid_network_or_a_move_error(name: str, move: Move) -> None:
    try:
        child = apply_move(SEEDS[name], move)
    except MoveError:
        return
    assert Network.from_json(child.to_json()) == child

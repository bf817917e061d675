"""Fuzzed JSON: parsing a network or a move either round-trips or raises the one error type, never anything else.

Inputs are valid networks and moves with a few random mutations (a field set to a random value, deleted or
added), so both outcomes occur often.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from narch.search_space import SEEDS, Move, MoveError, Network, SpecError, legal_moves, plan_networks

NETS = [net.to_dict() for net in SEEDS.values()] + [p.net.to_dict() for p in plan_networks(20, 0)]
MOVES = [json.loads(m.to_json()) for name in ("resnet_tiny", "lenet") for m, _ in legal_moves(SEEDS[name])[::7]]
KEYS = ["op", "channels", "kernel", "stride", "units", "dropout_pct", "inputs", "kind", "at", "layer", "other"]
KEYS += ["attr", "value", "schema", "layers", "padding"]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 70),
    st.floats(-2, 70, allow_nan=False),
    st.sampled_from(["conv", "add", "dense", "maxpool", "avgpool", "dropout", "insert", "scale", "kernel", "x", ""]),
)
values = st.recursive(
    scalars, lambda c: st.lists(c, max_size=3) | st.dictionaries(st.sampled_from(KEYS), c, max_size=3)
)


def _mutate(draw: st.DrawFn, obj: dict[str, Any]) -> None:
    """Set, delete or add one key of obj or of a dict nested in it."""
    targets = [obj] + [x for v in obj.values() for x in (v if isinstance(v, list) else [v]) if isinstance(x, dict)]
    target = draw(st.sampled_from(targets))
    action = draw(st.sampled_from(["set", "delete", "add"]))
    if action == "add" or not target:
        target[draw(st.sampled_from(KEYS))] = draw(values)
    elif action == "set":
        target[draw(st.sampled_from(sorted(target)))] = draw(values)
    else:
        del target[draw(st.sampled_from(sorted(target)))]


@st.composite
def mutated(draw: st.DrawFn, pool: list[dict[str, Any]]) -> Any:
    obj = copy.deepcopy(draw(st.sampled_from(pool)))
    for _ in range(draw(st.integers(0, 2))):
        _mutate(draw, obj)
    return obj


FUZZ = settings(max_examples=200, deadline=None)


@FUZZ
@given(mutated(NETS) | values)
def test_network_parse_round_trips_or_raises_spec_error(d: Any) -> None:
    try:
        net = Network.from_json(json.dumps(d))
    except SpecError:
        return
    assert Network.from_json(net.to_json()) == net
    assert Network.from_dict(json.loads(net.to_json())).arch_id == net.arch_id


@FUZZ
@given(mutated(MOVES) | values)
def test_move_parse_round_trips_or_raises_move_error(d: Any) -> None:
    try:
        move = Move.from_json(json.dumps(d))
    except MoveError:
        return
    assert Move.from_json(move.to_json()) == move
    assert json.loads(move.to_json())["kind"] == d["kind"]

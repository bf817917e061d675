"""Golden values: a change of the canonical JSON form (and so of every arch_id) must be noticed here."""

from __future__ import annotations

import hashlib
import json

import pytest

from narch.search_space import SCHEMA_VERSION, SCHEMA_VERSIONS, SEEDS, Network, conv, dense, sep_conv

RESNET_TINY_JSON = (
    '{"layers":['
    '{"channels":32,"dropout_pct":0,"inputs":[],"kernel":3,"op":"conv","stride":1,"units":0},'
    '{"channels":32,"dropout_pct":0,"inputs":[],"kernel":3,"op":"conv","stride":1,"units":0},'
    '{"channels":32,"dropout_pct":0,"inputs":[],"kernel":3,"op":"conv","stride":1,"units":0},'
    '{"channels":0,"dropout_pct":0,"inputs":[0,2],"kernel":1,"op":"add","stride":1,"units":0},'
    '{"channels":64,"dropout_pct":0,"inputs":[],"kernel":3,"op":"conv","stride":2,"units":0},'
    '{"channels":64,"dropout_pct":0,"inputs":[],"kernel":3,"op":"conv","stride":1,"units":0},'
    '{"channels":64,"dropout_pct":0,"inputs":[],"kernel":3,"op":"conv","stride":1,"units":0},'
    '{"channels":0,"dropout_pct":0,"inputs":[4,6],"kernel":1,"op":"add","stride":1,"units":0}'
    '],"schema":1}'
)

GOLDEN_IDS = {
    "resnet_tiny": "f4d497cedb33e27c",
    "lenet": "d3ad8e172bcb20c9",
}

# Schema 2 (grouped or dilated convs): every conv layer carries groups and dilation, other layers do not.
SEPARABLE_JSON = (
    '{"layers":['
    '{"channels":8,"dilation":1,"dropout_pct":0,"groups":1,"inputs":[],"kernel":3,"op":"conv","stride":1,"units":0},'
    '{"channels":8,"dilation":2,"dropout_pct":0,"groups":8,"inputs":[],"kernel":3,"op":"conv","stride":1,"units":0},'
    '{"channels":16,"dilation":1,"dropout_pct":0,"groups":1,"inputs":[],"kernel":1,"op":"conv","stride":1,"units":0},'
    '{"channels":0,"dropout_pct":0,"inputs":[],"kernel":1,"op":"dense","stride":1,"units":32}'
    '],"schema":2}'
)
SEPARABLE_ID = "609494daf2ffc0d9"


def test_schema_versions_are_pinned() -> None:
    # A new schema version adds a form and keeps the old ones: the golden values below must not move.
    assert SCHEMA_VERSION == 2
    assert SCHEMA_VERSIONS == (1, 2)
    assert all(net.schema == 1 for net in SEEDS.values())


def test_schema_2_canonical_json_is_pinned() -> None:
    net = Network((conv(8), *sep_conv(8, 16, dilation=2), dense(32)))
    assert net.to_json() == SEPARABLE_JSON
    assert net.arch_id == SEPARABLE_ID
    assert Network.from_json(SEPARABLE_JSON) == net


def test_resnet_tiny_canonical_json_is_pinned() -> None:
    assert SEEDS["resnet_tiny"].to_json() == RESNET_TINY_JSON


@pytest.mark.parametrize(("name", "arch_id"), sorted(GOLDEN_IDS.items()))
def test_seed_arch_id_is_pinned(name: str, arch_id: str) -> None:
    assert SEEDS[name].arch_id == arch_id


def test_arch_id_is_sha256_prefix_of_canonical_json() -> None:
    net = SEEDS["resnet_tiny"]
    assert net.arch_id == hashlib.sha256(RESNET_TINY_JSON.encode()).hexdigest()[:16]
    assert len(net.arch_id) == 16
    assert all(c in "0123456789abcdef" for c in net.arch_id)


def test_canonical_json_is_independent_of_key_order_and_spacing() -> None:
    d = json.loads(RESNET_TINY_JSON)
    shuffled = {"schema": d["schema"], "layers": [dict(reversed(list(x.items()))) for x in d["layers"]]}
    spaced = json.dumps(shuffled, indent=2)
    net = Network.from_json(spaced)
    assert net.to_json() == RESNET_TINY_JSON
    assert net.arch_id == GOLDEN_IDS["resnet_tiny"]


def test_defaulted_fields_give_the_same_id() -> None:
    # A layer that omits fields at their defaults is the same network as one that spells them out.
    sparse = {
        "layers": [
            {"op": "conv", "channels": 32, "kernel": 3},
            {"op": "conv", "channels": 32, "kernel": 3},
            {"op": "conv", "channels": 32, "kernel": 3},
            {"op": "add", "inputs": [0, 2]},
            {"op": "conv", "channels": 64, "kernel": 3, "stride": 2},
            {"op": "conv", "channels": 64, "kernel": 3},
            {"op": "conv", "channels": 64, "kernel": 3},
            {"op": "add", "inputs": [4, 6]},
        ]
    }
    assert Network.from_dict(sparse).arch_id == GOLDEN_IDS["resnet_tiny"]


def test_seed_ids_are_distinct() -> None:
    ids = [net.arch_id for net in SEEDS.values()]
    assert len(set(ids)) == len(ids)


def test_one_field_changes_the_id() -> None:
    base = SEEDS["lenet"]
    d = base.to_dict()
    d["layers"][0]["channels"] += 1
    assert Network.from_dict(d).arch_id != base.arch_id

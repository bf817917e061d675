"""Grouped and dilated convs (schema 2): canonical form, old forms still read, rules, and costs equal torch's."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from narch.search_space import (
    SEEDS,
    Layer,
    Network,
    Op,
    SpecError,
    add,
    conv,
    dense,
    maxpool,
    sep_conv,
    trace_network,
    validate,
)
from tests.search_space.test_golden import GOLDEN_IDS, RESNET_TINY_JSON
from tests.search_space.test_properties import one_thread  # noqa: F401 (autouse: one torch thread)
from tests.search_space.test_trace import _check_against_torch

# A cell in the DARTS style: a separable conv, a dilated conv and a plain one, joined by an add.
CELL = Network((conv(16), *sep_conv(16, 16, dilation=1), conv(16, 3, dilation=2), add(2, 3),
                conv(32, 5, 2, groups=4, dilation=3), maxpool(2), dense(24)))


def test_plain_networks_keep_their_schema_1_json_and_id() -> None:
    assert json.loads(SEEDS["resnet_tiny"].to_json())["schema"] == 1
    assert SEEDS["resnet_tiny"].to_json() == RESNET_TINY_JSON
    assert "groups" not in RESNET_TINY_JSON and "dilation" not in RESNET_TINY_JSON
    assert {n: SEEDS[n].arch_id for n in GOLDEN_IDS} == GOLDEN_IDS
    # spelling the defaults out, in either schema, is the same network
    d = json.loads(RESNET_TINY_JSON)
    for x in d["layers"]:
        if x["op"] == "conv":
            x.update(groups=1, dilation=1)
    assert Network.from_dict({**d, "schema": 2}).arch_id == GOLDEN_IDS["resnet_tiny"]


def test_a_grouped_network_round_trips_in_schema_2() -> None:
    d = json.loads(CELL.to_json())
    assert d["schema"] == 2 and CELL.schema == 2
    convs = [x for x in d["layers"] if x["op"] == "conv"]
    assert all({"groups", "dilation"} <= set(x) for x in convs)  # every conv layer carries both keys
    assert not any("groups" in x or "dilation" in x for x in d["layers"] if x["op"] != "conv")
    assert [(x["groups"], x["dilation"]) for x in convs] == [(1, 1), (16, 1), (1, 1), (1, 2), (4, 3)]
    back = Network.from_json(CELL.to_json())
    assert back == CELL and back.arch_id == CELL.arch_id
    assert Network.from_json(json.dumps(d, indent=1)).to_json() == CELL.to_json()
    plain = Network(tuple(replace(x, groups=1, dilation=1) for x in CELL.layers))
    assert plain.schema == 1 and plain.arch_id != CELL.arch_id


def test_sep_conv_is_a_depthwise_then_a_pointwise_conv() -> None:
    dw, pw = sep_conv(12, 20, 5, 2, dilation=2)
    assert (dw.op, dw.channels, dw.kernel, dw.stride, dw.groups, dw.dilation) == (Op.CONV, 12, 5, 2, 12, 2)
    assert (pw.op, pw.channels, pw.kernel, pw.groups, pw.dilation) == (Op.CONV, 20, 1, 1, 1)


def test_grouping_divides_params_and_flops_and_dilation_changes_neither() -> None:
    def body(layer: Layer) -> tuple[int, int]:
        lt = trace_network(Network((conv(24), layer)), (1, 32), 2).layers[1]
        return lt.weights, lt.macs

    w, macs = body(conv(24, 3))
    assert body(conv(24, 3, groups=4)) == (w // 4, macs // 4)
    assert body(conv(24, 3, groups=24)) == (24 * 3, 32 * 24 * 3)  # depthwise: one 3-tap filter per channel
    assert body(conv(24, 3, dilation=4)) == (w, macs)
    t = trace_network(CELL, (1, 40), 10)
    assert [lt.out_shape for lt in t.layers][:5] == [(16, 40)] * 5  # 'same' padding at every dilation


@pytest.mark.parametrize("input_shape", [(1, 40), (2, 17), (3, 9, 7)], ids=["1d", "1d-2ch", "2d"])
def test_grouped_and_dilated_networks_trace_like_the_torch_model(input_shape: tuple[int, ...]) -> None:
    _check_against_torch(CELL, input_shape)
    _check_against_torch(Network((conv(6, 3, 2, dilation=3), *sep_conv(6, 12, 7, 2, dilation=2), dense(8))),
                         input_shape)


def test_a_grouped_conv_on_the_input_is_checked_against_the_input_channels() -> None:
    net = Network((conv(6, 3, groups=3), conv(6, groups=6)))  # constructible: the input's channels are unknown
    assert trace_network(net, (3, 10), 2).layers[0].weights == 6 * 1 * 3
    _check_against_torch(net, (3, 8, 8))
    with pytest.raises(SpecError, match=r"^layer 0: conv groups 3 must divide its 2 input channels$"):
        trace_network(net, (2, 10), 2)
    with pytest.raises(SpecError, match=r"^layer 0: conv groups 3 must divide its 1 input channels$"):
        validate(net, input_shape=(1, 10))


@pytest.mark.parametrize(
    ("layers", "match"),
    [
        ([conv(8), conv(8, groups=3)], r"layer 1: conv groups 3 must divide its 8 output channels"),
        ([conv(6), conv(8, groups=4)], r"layer 1: conv groups 4 must divide its 6 input channels"),
        ([conv(8), conv(8, groups=0)], r"layer 1: conv groups 0 must divide its 8 output channels"),
        ([conv(8), conv(8, groups=-2)], r"layer 1: conv groups -2 must divide its 8 output channels"),
        ([conv(8), conv(8, dilation=0)], r"layer 1: conv dilation must be in 1..8, got 0"),
        ([conv(8), conv(8, dilation=9)], r"layer 1: conv dilation must be in 1..8, got 9"),
        ([conv(8), Layer(Op.MAXPOOL, kernel=2, stride=2, groups=2)],
         r"layer 1: maxpool does not use 'groups' \(must stay 1, got 2\)"),
        ([conv(8), Layer(Op.DENSE, units=4, dilation=2)],
         r"layer 1: dense does not use 'dilation' \(must stay 1, got 2\)"),
        ([conv(8), Layer(Op.CONV, channels=8, kernel=3, groups=2.0)],  # type: ignore[arg-type]
         r"layer 1: field 'groups' must be an integer, got 2.0"),
    ],
)
def test_bad_groups_and_dilation_are_one_line_errors_naming_the_layer(layers: list[Layer], match: str) -> None:
    with pytest.raises(SpecError, match=match) as info:
        Network(tuple(layers))
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("layer", "match"),
    [
        ({"op": "conv", "channels": 8, "groups": 2}, r"layer 1: field\(s\) \['groups'\] need schema 2"),
        ({"op": "conv", "channels": 8, "dilation": 1}, r"layer 1: field\(s\) \['dilation'\] need schema 2"),
    ],
)
def test_schema_1_json_may_not_name_the_new_fields(layer: dict, match: str) -> None:
    with pytest.raises(SpecError, match=match):
        Network.from_dict({"schema": 1, "layers": [{"op": "conv", "channels": 8}, layer]})


def test_json_fields_of_schema_2_are_parsed_as_integers() -> None:
    with pytest.raises(SpecError, match=r"layer 0: field 'dilation' must be an integer, got '2'"):
        Network.from_dict({"schema": 2, "layers": [{"op": "conv", "channels": 8, "dilation": "2"}]})
    net = Network.from_dict({"layers": [{"op": "conv", "channels": 8, "groups": 1, "dilation": 2}]})  # no schema
    assert net.layers[0].dilation == 2 and net.schema == 2

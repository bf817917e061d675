"""Validation: every broken rule raises SpecError with a message naming the layer and the rule."""

from __future__ import annotations

import json
from typing import Any

import pytest

from narch.search_space import (
    LIMITS,
    SEEDS,
    Layer,
    Limits,
    Network,
    Op,
    Shape,
    SpecError,
    add,
    avgpool,
    concrete_shapes,
    conv,
    count_params,
    dense,
    dropout,
    infer_shapes,
    maxpool,
    validate,
)


def _parse(layers: list[dict[str, Any]], **top: Any) -> Network:
    return Network.from_json(json.dumps({"schema": 1, "layers": layers, **top}))


def test_spec_error_is_a_value_error() -> None:
    assert issubclass(SpecError, ValueError)


# --- malformed input ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ('{"layers": [', r"arch: malformed JSON at line 1 column \d+"),
        ('{"layers": []}\n}', r"arch: malformed JSON at line 2 column 1"),
        ("", r"arch: malformed JSON at line 1 column 1"),
        ("[1, 2]", r"arch: expected a JSON object, got list"),
        ('{"layers": {}}', r"arch: 'layers' must be a list"),
        ('{"schema": 1}', r"arch: 'layers' must be a list"),
        ('{"layers": []}', r"arch: a network needs at least one layer"),
        ('{"layers": [3]}', r"layer 0: expected an object, got int"),
        ('{"layers": [{"channels": 8}]}', r"layer 0: missing field 'op'"),
    ],
)
def test_malformed_json(text: str, match: str) -> None:
    with pytest.raises(SpecError, match=match):
        Network.from_json(text)


def test_wrong_schema_version() -> None:
    with pytest.raises(SpecError, match=r"arch: schema version 3 is not supported \(this reads \[1, 2\]\)"):
        _parse([{"op": "conv", "channels": 8, "kernel": 3}], schema=3)
    for schema in ("1", 1.0, True, None):
        with pytest.raises(SpecError, match=rf"arch: schema version {schema!r} is not supported"):
            _parse([{"op": "conv", "channels": 8, "kernel": 3}], schema=schema)


def test_unknown_top_level_field() -> None:
    with pytest.raises(SpecError, match=r"arch: unknown field\(s\) \['name'\]"):
        _parse([{"op": "conv", "channels": 8, "kernel": 3}], name="x")


def test_unknown_layer_field() -> None:
    with pytest.raises(SpecError, match=r"layer 1: unknown field\(s\) \['padding'\]"):
        _parse([{"op": "conv", "channels": 8, "kernel": 3}, {"op": "conv", "channels": 8, "kernel": 3, "padding": 1}])


@pytest.mark.parametrize("op", ["warp", "Conv", "CONV", "conv2d", "", None, 3, ["conv"]])
def test_unknown_op(op: Any) -> None:
    with pytest.raises(SpecError, match=r"layer 1: unknown op .* \(known: conv, maxpool, avgpool, dense"):
        _parse([{"op": "conv", "channels": 8, "kernel": 3}, {"op": op}])


@pytest.mark.parametrize("value", [1.0, "8", True, None, [8]])
def test_non_integer_field(value: Any) -> None:
    with pytest.raises(SpecError, match=r"layer 0: field 'channels' must be an integer"):
        _parse([{"op": "conv", "channels": value, "kernel": 3}])


@pytest.mark.parametrize("inputs", [[0.0], "0", 0, [True], None])
def test_non_integer_inputs(inputs: Any) -> None:
    with pytest.raises(SpecError, match=r"layer 1: 'inputs' must be a list of integers"):
        _parse(
            [{"op": "conv", "channels": 8, "kernel": 3}, {"op": "conv", "channels": 8, "kernel": 3, "inputs": inputs}]
        )


# --- per-op rules -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("channels", [0, -1, -64, LIMITS.max_channels + 1])
def test_conv_channels_out_of_bounds(channels: int) -> None:
    with pytest.raises(SpecError, match=rf"layer 1: conv channels must be in 1\.\.1024, got {channels}"):
        Network((conv(8), conv(channels)))
    with pytest.raises(SpecError, match=rf"layer 0: conv channels must be in 1\.\.1024, got {channels}"):
        _parse([{"op": "conv", "channels": channels, "kernel": 3}])


@pytest.mark.parametrize("kernel", [0, -3, 2, 4, 8, 11, 13])
def test_conv_kernel_out_of_bounds_or_even(kernel: int) -> None:
    with pytest.raises(SpecError, match=rf"layer 0: conv kernel must be one of \(1, 3, 5, 7, 9\), got {kernel}"):
        Network((conv(8, kernel),))


@pytest.mark.parametrize("stride", [0, 3, -1])
def test_conv_stride(stride: int) -> None:
    with pytest.raises(SpecError, match=rf"layer 0: conv stride must be one of \(1, 2\), got {stride}"):
        Network((conv(8, 3, stride),))


@pytest.mark.parametrize("units", [0, -5, LIMITS.max_units + 1])
def test_dense_units_out_of_bounds(units: int) -> None:
    with pytest.raises(SpecError, match=rf"layer 1: dense units must be in 1\.\.4096, got {units}"):
        Network((conv(8), dense(units)))


@pytest.mark.parametrize("pct", [0, -10, 91, 100])
def test_dropout_out_of_bounds(pct: int) -> None:
    with pytest.raises(SpecError, match=rf"layer 1: dropout_pct must be in 1\.\.90, got {pct}"):
        Network((conv(8), dropout(pct)))


@pytest.mark.parametrize(
    ("layer", "match"),
    [
        (Layer(Op.DENSE, units=32, kernel=3), r"layer 1: dense does not use 'kernel' \(must stay 1, got 3\)"),
        (Layer(Op.DENSE, units=32, channels=8), r"layer 1: dense does not use 'channels' \(must stay 0, got 8\)"),
        (Layer(Op.CONV, channels=8, kernel=3, units=4), r"layer 1: conv does not use 'units' \(must stay 0, got 4\)"),
        (Layer(Op.CONV, channels=8, kernel=3, dropout_pct=10), r"layer 1: conv does not use 'dropout_pct'"),
        (Layer(Op.MAXPOOL, kernel=2, stride=2, channels=8), r"layer 1: maxpool does not use 'channels'"),
        (Layer(Op.DROPOUT, dropout_pct=10, stride=2), r"layer 1: dropout does not use 'stride' \(must stay 1"),
        (Layer(Op.ADD, inputs=(-1, 0), channels=8), r"layer 1: add does not use 'channels'"),
        (Layer(Op.ADD, inputs=(-1, 0), kernel=3), r"layer 1: add does not use 'kernel'"),
    ],
)
def test_unused_field_set(layer: Layer, match: str) -> None:
    with pytest.raises(SpecError, match=match):
        Network((conv(1, 3), layer))


# --- pooling ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("op", [Op.MAXPOOL, Op.AVGPOOL])
def test_pool_rules(op: Op) -> None:
    name = op.value
    ok = [Layer(op, kernel=2, stride=2), Layer(op, kernel=3, stride=3), Layer(op, kernel=3, stride=1)]
    for layer in ok:
        Network((conv(8), layer))
    with pytest.raises(SpecError, match=rf"layer 1: {name} kernel must be one of \(2, 3\), got 5"):
        Network((conv(8), Layer(op, kernel=5, stride=5)))
    with pytest.raises(SpecError, match=rf"layer 1: {name} kernel must be one of \(2, 3\), got 1"):
        Network((conv(8), Layer(op, kernel=1, stride=1)))
    with pytest.raises(SpecError, match=rf"layer 1: {name} stride must be 1 or its kernel 3, got 2"):
        Network((conv(8), Layer(op, kernel=3, stride=2)))
    with pytest.raises(SpecError, match=rf"layer 1: {name} stride must be 1 or its kernel 2, got 3"):
        Network((conv(8), Layer(op, kernel=2, stride=3)))
    with pytest.raises(SpecError, match=rf"layer 1: {name} with stride 1 needs an odd kernel, got 2"):
        Network((conv(8), Layer(op, kernel=2, stride=1)))
    with pytest.raises(SpecError, match=rf"layer 2: {name} cannot read a flat tensor flat\(16\)"):
        Network((conv(8), dense(16), Layer(op, kernel=2, stride=2)))


def test_pool_helpers_default_to_non_overlapping() -> None:
    assert maxpool(3) == Layer(Op.MAXPOOL, kernel=3, stride=3)
    assert avgpool(3, 1) == Layer(Op.AVGPOOL, kernel=3, stride=1)


# --- wiring -------------------------------------------------------------------------------------------------------


def test_add_referencing_itself() -> None:
    with pytest.raises(SpecError, match=r"layer 2: add cannot reference itself"):
        Network((conv(8), conv(8), add(0, 2)))


def test_add_referencing_a_later_layer() -> None:
    with pytest.raises(SpecError, match=r"layer 1: add references a later layer 3"):
        Network((conv(8), add(0, 3), conv(8), conv(8)))
    with pytest.raises(SpecError, match=r"layer 1: add references a later layer 2"):
        _parse([{"op": "conv", "channels": 8, "kernel": 3}, {"op": "add", "inputs": [0, 2]}])


def test_add_input_below_network_input() -> None:
    with pytest.raises(SpecError, match=r"layer 1: add input -2 is not a layer index"):
        Network((conv(8), add(-2, 0)))


@pytest.mark.parametrize("inputs", [(), (0,), (0, 1, 2)])
def test_add_needs_exactly_two_inputs(inputs: tuple[int, ...]) -> None:
    with pytest.raises(SpecError, match=r"layer 3: add joins exactly two earlier layers"):
        Network((conv(8), conv(8), conv(8), Layer(Op.ADD, inputs=inputs)))


def test_add_of_the_same_layer_twice() -> None:
    with pytest.raises(SpecError, match=r"layer 2: add must join two distinct layers, got 0 twice"):
        Network((conv(8), conv(8), add(0, 0)))


def test_add_whose_shapes_differ() -> None:
    with pytest.raises(
        SpecError, match=r"layer 2: add cannot join layer 0 \(8 ch, /1\) with layer 1 \(16 ch, /1\): shapes differ"
    ):
        Network((conv(8), conv(16), add(0, 1)))
    with pytest.raises(SpecError, match=r"layer 2: add cannot join layer 0 \(8 ch, /1\) with layer 1 \(8 ch, /2\)"):
        Network((conv(8), conv(8, 3, 2), add(0, 1)))
    with pytest.raises(SpecError, match=r"layer 3: add cannot join .* flat\(8\)"):
        Network((conv(8), dense(8), dense(8), add(0, 1)))


def test_add_of_network_input() -> None:
    net = Network((conv(1), add(-1, 0)))
    assert infer_shapes(net) == [Shape(1), Shape(1)]
    with pytest.raises(SpecError, match=r"layer 1: add cannot join layer -1 \(3 ch, /1\) with layer 0 \(1 ch, /1\)"):
        validate(net, input_shape=(3, 8, 8))


def test_conv_after_a_dense_layer() -> None:
    with pytest.raises(SpecError, match=r"layer 2: conv cannot read a flat tensor flat\(32\)"):
        Network((conv(8), dense(32), conv(8)))


@pytest.mark.parametrize("inputs", [(1,), (2,), (-2,)])
def test_explicit_input_must_be_earlier(inputs: tuple[int, ...]) -> None:
    with pytest.raises(SpecError, match=rf"layer 1: input {inputs[0]} must be an earlier layer"):
        Network((conv(8), Layer(Op.CONV, channels=8, kernel=3, inputs=inputs), conv(8)))


def test_non_add_reads_at_most_one_input() -> None:
    with pytest.raises(SpecError, match=r"layer 2: a conv reads at most one explicit input, got \(0, 1\)"):
        Network((conv(8), conv(8), Layer(Op.CONV, channels=8, kernel=3, inputs=(0, 1))))


def test_explicit_single_input_is_honoured() -> None:
    net = Network((conv(8), conv(16), Layer(Op.CONV, channels=4, kernel=3, inputs=(0,)), dense(10)))
    assert infer_shapes(net) == [Shape(8), Shape(16), Shape(4), Shape(10, flat=True)]
    # Layer 2 reads layer 0 (8 channels), not layer 1 (16 channels).
    assert count_params(net, (1, 12), 3) == (8 * 3 + 8 + 16) + (8 * 16 * 3 + 16 + 32) + (8 * 4 * 3 + 4 + 8) + (
        4 * 10 + 10
    ) + (10 * 3 + 3)


# --- limits -------------------------------------------------------------------------------------------------------


def test_empty_network() -> None:
    with pytest.raises(SpecError, match=r"arch: a network needs at least one layer"):
        Network(())


def test_depth_limit() -> None:
    Network(tuple(conv(8) for _ in range(LIMITS.max_layers)))
    with pytest.raises(SpecError, match=r"arch: 49 layers exceed the depth limit of 48"):
        Network(tuple(conv(8) for _ in range(LIMITS.max_layers + 1)))
    net = Network(tuple(conv(8) for _ in range(6)))
    with pytest.raises(SpecError, match=r"arch: 6 layers exceed the depth limit of 5"):
        validate(net, limits=Limits(max_layers=5))


def test_downsample_limit() -> None:
    net = Network(tuple(conv(8, 3, 2) for _ in range(5)))
    validate(net, limits=Limits(max_downsample=32))
    with pytest.raises(SpecError, match=r"layer 4: total downsampling 32 exceeds 16"):
        validate(net, limits=Limits(max_downsample=16))
    with pytest.raises(SpecError, match=r"layer 10: total downsampling 2048 exceeds 1024"):
        Network(tuple(conv(8, 3, 2) for _ in range(11)))


def test_size_limit() -> None:
    net = SEEDS["lenet"]
    p = count_params(net, (1, 28, 28), 10)
    assert validate(net, input_shape=(1, 28, 28), limits=Limits(max_params=p)) is net
    with pytest.raises(SpecError, match=rf"arch: {p} parameters exceed the size limit of {p - 1}"):
        validate(net, input_shape=(1, 28, 28), limits=Limits(max_params=p - 1))
    # The size depends on the input rank and channels.
    assert count_params(net, (3, 28, 28), 10) > p > count_params(net, (1, 40), 10)


def test_size_limit_default_is_checked_only_with_an_input_shape() -> None:
    big = Network((conv(1024, 9), conv(1024, 9)))
    assert validate(big) is big
    with pytest.raises(SpecError, match=r"parameters exceed the size limit of 20000000"):
        validate(big, input_shape=(3, 32, 32))


def test_tighter_limits_on_channels_and_kernels() -> None:
    net = Network((conv(64, 7),))
    with pytest.raises(SpecError, match=r"layer 0: conv channels must be in 1\.\.32, got 64"):
        validate(net, limits=Limits(max_channels=32))
    with pytest.raises(SpecError, match=r"layer 0: conv kernel must be one of \(1, 3\), got 7"):
        validate(net, limits=Limits(kernels=(1, 3)))


def test_non_layer_in_network() -> None:
    with pytest.raises(SpecError, match=r"layer 1: expected a Layer, got dict"):
        Network((conv(8), {"op": "conv"}))  # type: ignore[arg-type]


# --- shapes and parameters ----------------------------------------------------------------------------------------


def test_infer_shapes_of_lenet() -> None:
    assert infer_shapes(SEEDS["lenet"]) == [
        Shape(6),
        Shape(6, 2),
        Shape(16, 2),
        Shape(16, 4),
        Shape(120, flat=True),
        Shape(84, flat=True),
    ]


def test_concrete_shapes_use_ceil_division() -> None:
    assert concrete_shapes(SEEDS["lenet"], (1, 28, 27)) == [
        (6, 28, 27),
        (6, 14, 14),
        (16, 14, 14),
        (16, 7, 7),
        (120,),
        (84,),
    ]
    assert concrete_shapes(SEEDS["mnist1d_cnn"], (1, 40)) == [(25, 20), (25, 10), (25, 5)]
    assert concrete_shapes(Network((maxpool(3), avgpool(3, 1))), (2, 10)) == [(2, 4), (2, 4)]


def test_count_params_of_lenet_by_hand() -> None:
    # conv: weight + bias + BN affine; dense: weight + bias; head on the last layer's width.
    expected = (1 * 6 * 25 + 6 + 12) + (6 * 16 * 25 + 16 + 32) + (16 * 120 + 120) + (120 * 84 + 84) + (84 * 10 + 10)
    assert count_params(SEEDS["lenet"], (1, 28, 28), 10) == expected
    expected_1d = (1 * 6 * 5 + 6 + 12) + (6 * 16 * 5 + 16 + 32) + (16 * 120 + 120) + (120 * 84 + 84) + (84 * 5 + 5)
    assert count_params(SEEDS["lenet"], (1, 40), 5) == expected_1d


@pytest.mark.parametrize(
    ("layer", "match"),
    [
        (Layer(Op.CONV, channels=8.0, kernel=3), r"layer 1: field 'channels' must be an integer, got 8\.0"),  # type: ignore[arg-type]
        (Layer(Op.CONV, channels=8, kernel=True), r"layer 1: field 'kernel' must be an integer, got True"),
        (Layer(Op.DROPOUT, dropout_pct=10.0), r"layer 1: field 'dropout_pct' must be an integer"),  # type: ignore[arg-type]
        (Layer(Op.ADD, inputs=[-1, 0]), r"layer 1: 'inputs' must be a tuple of integers, got \[-1, 0\]"),  # type: ignore[arg-type]
        (Layer(Op.ADD, inputs=(-1.0, 0)), r"layer 1: 'inputs' must be a tuple of integers"),  # type: ignore[arg-type]
        (Layer("conv", channels=8, kernel=3), r"layer 1: op must be an Op, got 'conv'"),  # type: ignore[arg-type]
    ],
)
def test_layers_built_in_code_must_hold_ints(layer: Layer, match: str) -> None:
    # Without this check conv(8.0) would validate, get another arch_id than conv(8) and not parse back.
    with pytest.raises(SpecError, match=match):
        Network((conv(1), layer))

"""The trace against the torch model the builder makes: per-layer output shapes, parameters, model size and the
forward multiply-accumulates FlopCounterMode counts, on sampled networks and walks with 1-D and 2-D inputs."""

from __future__ import annotations

import random

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch.utils.flop_counter import FlopCounterMode

from narch.dataset_builder.model import build_model, model_size_bytes
from narch.search_space import (
    SEEDS,
    Move,
    Network,
    Op,
    SpecError,
    add,
    conv,
    dense,
    infer_shapes,
    maxpool,
    sample_network,
    trace_network,
)
from narch.search_space.trace import shape_keys
from tests.search_space.test_properties import one_thread, walks  # noqa: F401 (one_thread: autouse, one torch thread)

INPUT_SHAPES = [(1, 40), (2, 17), (1, 8, 8), (3, 9, 7)]
N_CLASSES = 7
BATCH = 2


def _check_against_torch(net: Network, input_shape: tuple[int, ...]) -> None:
    """Trace and built model agree layer by layer; an input the network cannot read fails in both."""
    try:
        t = trace_network(net, input_shape, N_CLASSES)
    except SpecError:
        with pytest.raises(SpecError):
            build_model(net, input_shape, N_CLASSES)
        return
    model = build_model(net, input_shape, N_CLASSES).eval()
    seen: list[tuple[int, ...]] = []
    hooks = [m.register_forward_hook(lambda _m, _i, out: seen.append(tuple(out.shape[1:]))) for m in model.body]
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        out = model(torch.randn(BATCH, *input_shape))
    for h in hooks:
        h.remove()
    counts = counter.get_flop_counts()

    assert out.shape == (BATCH, N_CLASSES)
    assert t.depth == len(net.layers) == len(model.body)
    assert seen == [lt.out_shape for lt in t.layers], net.to_json()
    assert t.params == sum(p.numel() for p in model.parameters())
    assert t.param_tensors == len(list(model.parameters()))
    assert t.model_size_bytes == model_size_bytes(model)
    assert t.head.params == sum(p.numel() for p in model.head.parameters())
    for i, (mod, lt) in enumerate(zip(model.body, t.layers, strict=True)):
        assert lt.params == sum(p.numel() for p in mod.parameters()), (i, net.to_json())
        assert 2 * BATCH * lt.macs == sum(counts.get(f"SpecModel.body.{i}", {}).values()), (i, net.to_json())
    assert 2 * BATCH * t.head.macs == sum(counts["SpecModel.head"].values())
    assert 2 * BATCH * t.macs == sum(counts["Global"].values())  # conv and linear are all it counts here


SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(st.integers(0, 2**32 - 1), st.sampled_from(INPUT_SHAPES))
def test_sampled_networks_trace_like_the_torch_model(seed: int, input_shape: tuple[int, ...]) -> None:
    _check_against_torch(sample_network(random.Random(seed)), input_shape)


@SETTINGS
@given(walks(max_steps=4), st.sampled_from(INPUT_SHAPES))
def test_walked_networks_trace_like_the_torch_model(walk: tuple[str, list[Move], Network],
                                                    input_shape: tuple[int, ...]) -> None:
    _check_against_torch(walk[2], input_shape)


@pytest.mark.parametrize("name", sorted(SEEDS))
def test_lean_shapes_equal_the_validated_ones(name: str) -> None:
    net = SEEDS[name]
    for c in (1, 3):
        try:
            expected = infer_shapes(net, in_channels=c)
        except SpecError:
            continue
        assert shape_keys(net, c) == expected
        t = trace_network(net, (c, 12), 10)
        assert [lt.shape for lt in t.layers] == expected
        assert all(lt.downsample == lt.shape.factor for lt in t.layers if not lt.shape.flat)


def test_an_add_of_the_input_fails_for_other_input_channels() -> None:
    net = Network((conv(1, 3), add(-1, 0)))
    assert trace_network(net, (1, 10), 2).layers[1].out_shape == (1, 10)
    with pytest.raises(SpecError, match=r"layer 1: add cannot join layer -1 \(3 ch, /1\) with layer 0"):
        trace_network(net, (3, 10), 2)


def test_a_flat_layer_keeps_the_downsampling_it_pooled_at() -> None:
    t = trace_network(Network((conv(8, 3, 2), maxpool(2), dense(16))), (1, 40), 10)
    assert [lt.out_shape for lt in t.layers] == [(8, 20), (8, 10), (16,)]
    assert [lt.downsample for lt in t.layers] == [2, 4, 4]
    assert t.layers[2].shape.factor == 1 and t.layers[2].op is Op.DENSE
    assert t.macs == 20 * 8 * 3 + 8 * 16 + 16 * 10

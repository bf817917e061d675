"""The torch builder of a spec: each op's module, 1-D and 2-D ranks, parameter counts and wiring."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch
from torch import nn

from narch.dataset_builder.model import build_model, model_size_bytes
from narch.search_space import (
    SEEDS,
    Layer,
    Network,
    Op,
    add,
    avgpool,
    concrete_shapes,
    conv,
    count_params,
    dense,
    dropout,
    maxpool,
)


@pytest.fixture(autouse=True, scope="module")
def one_thread() -> Iterator[None]:
    """Tiny models run fastest on one thread, and a busy 2-core machine makes more threads much slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _body_shapes(model: nn.Module, x: torch.Tensor) -> list[tuple[int, ...]]:
    seen: list[tuple[int, ...]] = []
    hooks = [m.register_forward_hook(lambda _m, _i, out: seen.append(tuple(out.shape[1:]))) for m in model.body]
    try:
        model(x)
    finally:
        for h in hooks:
            h.remove()
    return seen


@pytest.mark.parametrize("name", sorted(SEEDS))
@pytest.mark.parametrize("shape", [(1, 40), (1, 28, 28), (3, 32, 32), (2, 7, 5)], ids=["1d", "2d", "rgb", "odd"])
def test_seeds_match_the_spec(name: str, shape: tuple[int, ...]) -> None:
    net = SEEDS[name]
    model = build_model(net, shape, 7)
    assert sum(p.numel() for p in model.parameters()) == count_params(net, shape, 7)
    x = torch.randn(3, *shape)
    assert _body_shapes(model, x) == concrete_shapes(net, shape)
    assert model(x).shape == (3, 7)


@pytest.mark.parametrize("shape", [(1,), (1, 4, 4, 4), ()])
def test_unsupported_rank(shape: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match=r"rank -?\d is not 1 or 2"):
        build_model(SEEDS["tiny"], shape, 10)


@pytest.mark.parametrize(
    ("shape", "conv_cls", "bn_cls"), [((1, 9), nn.Conv1d, nn.BatchNorm1d), ((1, 9, 9), nn.Conv2d, nn.BatchNorm2d)]
)
def test_conv_block_is_conv_bn_relu_with_same_padding(
    shape: tuple[int, ...], conv_cls: type[nn.Module], bn_cls: type[nn.Module]
) -> None:
    model = build_model(Network((conv(4, 5, 2),)), shape, 3)
    c, bn, relu = model.body[0]
    assert isinstance(c, conv_cls) and isinstance(bn, bn_cls) and isinstance(relu, nn.ReLU)
    assert c.kernel_size == (5,) * (len(shape) - 1)
    assert c.stride == (2,) * (len(shape) - 1)
    assert c.padding == (2,) * (len(shape) - 1)
    assert c.in_channels == 1 and c.out_channels == 4


def test_pooling_modules() -> None:
    net = Network((conv(4), maxpool(2), avgpool(3), maxpool(3, 1), avgpool(3, 1)))
    model = build_model(net, (1, 12, 12), 3)
    mp, ap, mp_same, ap_same = list(model.body)[1:]
    assert isinstance(mp, nn.MaxPool2d) and mp.kernel_size == 2 and mp.stride == 2 and mp.ceil_mode
    assert isinstance(ap, nn.AvgPool2d) and ap.kernel_size == 3 and ap.stride == 3 and ap.ceil_mode
    assert isinstance(mp_same, nn.MaxPool2d) and mp_same.stride == 1 and mp_same.padding == 1
    assert isinstance(ap_same, nn.AvgPool2d) and ap_same.stride == 1 and not ap_same.count_include_pad


def test_ceil_mode_pooling_keeps_the_ragged_edge() -> None:
    net = Network((maxpool(2), avgpool(3)))
    model = build_model(net, (1, 7), 2)
    assert _body_shapes(model, torch.randn(1, 1, 7)) == [(1, 4), (1, 2)] == concrete_shapes(net, (1, 7))


def test_same_avg_pooling_excludes_the_padding() -> None:
    model = build_model(Network((avgpool(3, 1),)), (1, 5), 2)
    out = model.body[0](torch.ones(1, 1, 5))
    assert torch.equal(out, torch.ones(1, 1, 5))


def test_dense_reads_a_spatial_tensor_through_global_average_pooling() -> None:
    torch.manual_seed(0)
    model = build_model(Network((dense(5),)), (2, 6, 3), 4).eval()
    x = torch.randn(3, 2, 6, 3)
    lin = model.body[0][0]
    expected = model.head(torch.relu(lin(x.mean((2, 3)))))
    assert torch.allclose(model(x), expected, atol=1e-6)


def test_spatial_output_is_globally_pooled_before_the_head() -> None:
    torch.manual_seed(0)
    model = build_model(Network((maxpool(3, 1),)), (2, 5), 3).eval()
    x = torch.randn(4, 2, 5)
    expected = model.head(nn.functional.max_pool1d(x, 3, 1, padding=1).mean(2))
    assert torch.allclose(model(x), expected, atol=1e-6)


def test_add_sums_its_two_inputs_and_reads_the_network_input() -> None:
    torch.manual_seed(0)
    net = Network((conv(1), add(-1, 0)))
    model = build_model(net, (1, 6), 3).eval()
    x = torch.randn(4, 1, 6)
    expected = model.head((x + model.body[0](x)).mean(2))
    assert torch.allclose(model(x), expected, atol=1e-6)
    assert model.sources == [(-1,), (-1, 0)]


def test_explicit_single_input_is_wired() -> None:
    net = Network((conv(8), conv(16), Layer(Op.CONV, channels=4, kernel=3, inputs=(0,))))
    model = build_model(net, (1, 10), 2)
    assert model.body[2][0].in_channels == 8
    assert model.sources == [(-1,), (0,), (0,)]
    assert model(torch.randn(2, 1, 10)).shape == (2, 2)


def test_dropout_rate_and_eval_determinism() -> None:
    net = Network((conv(8), dropout(50), dense(16), dropout(30)))
    model = build_model(net, (1, 20), 4)
    assert [m.p for m in model.body if isinstance(m, nn.Dropout)] == [0.5, 0.3]
    model.eval()
    x = torch.randn(2, 1, 20)
    assert torch.equal(model(x), model(x))


def test_model_size_bytes_counts_parameters_and_buffers() -> None:
    model = build_model(SEEDS["lenet"], (1, 28, 28), 10)
    params = count_params(SEEDS["lenet"], (1, 28, 28), 10)
    # Two batch-norm layers: running mean and var in float32, num_batches_tracked in int64.
    bn_buffers = (6 + 16) * 2 * 4 + 2 * 8
    assert model_size_bytes(model) == params * 4 + bn_buffers


def test_backward_reaches_every_parameter() -> None:
    torch.manual_seed(0)
    model = build_model(SEEDS["resnet_tiny"], (3, 16, 16), 10).train()
    out = model(torch.randn(2, 3, 16, 16))
    nn.functional.cross_entropy(out, torch.tensor([1, 2])).backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


@pytest.mark.parametrize("size", range(1, 8))
@pytest.mark.parametrize(
    "layer",
    [maxpool(2), maxpool(3), avgpool(2), avgpool(3), maxpool(3, 1), avgpool(3, 1), conv(2, 1, 2), conv(2, 9, 2)],
    ids=lambda layer: f"{layer.op.value}{layer.kernel}s{layer.stride}",
)
def test_small_inputs_match_ceil_division(size: int, layer: Layer) -> None:
    # Windows larger than the input ('same' padding, ceil mode) still give ceil(size / stride).
    net = Network((layer,))
    for shape in [(1, size), (1, size, size + 1)]:
        model = build_model(net, shape, 2).train()
        assert _body_shapes(model, torch.randn(2, *shape)) == concrete_shapes(net, shape)

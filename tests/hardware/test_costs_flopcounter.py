"""Conv and linear FLOPs of hardware.costs equal torch's FlopCounterMode, forward and backward."""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F
from torch.utils.flop_counter import FlopCounterMode

from narch.dataset_builder.model import build_model
from narch.hardware.costs import OpClass, step_costs
from narch.search_space import Network, Op, conv, dense, maxpool, plan_networks, sep_conv

aten = torch.ops.aten
CONV_OPS = {aten.convolution, aten._convolution, aten.convolution_backward}
LINEAR_OPS = {aten.addmm, aten.mm}
BATCH = 4


def _counted(net: Network, input_shape: tuple[int, ...]) -> dict[str, int]:
    """FlopCounterMode's conv and linear FLOPs of one forward and one backward pass."""
    torch.manual_seed(0)
    model = build_model(net, input_shape, 10).train()
    x = torch.randn(BATCH, *input_shape)
    y = torch.randint(0, 10, (BATCH,))
    with FlopCounterMode(display=False) as fwd:
        loss = F.cross_entropy(model(x), y)
    with FlopCounterMode(display=False) as bwd:
        loss.backward()
    out = {}
    for tag, mode in (("fwd", fwd), ("bwd", bwd)):
        counts = mode.get_flop_counts()["Global"]
        out[f"conv_{tag}"] = sum(v for k, v in counts.items() if k in CONV_OPS)
        out[f"linear_{tag}"] = sum(v for k, v in counts.items() if k in LINEAR_OPS)
        assert sum(counts.values()) == out[f"conv_{tag}"] + out[f"linear_{tag}"], counts
    return out


def _modelled(net: Network, input_shape: tuple[int, ...]) -> dict[str, int]:
    c = step_costs(net, input_shape, 10, BATCH)
    out = {}
    for name, cls in (("conv", OpClass.CONV), ("linear", OpClass.DENSE)):
        ops = [o for o in c.ops() if o.op_class == cls]
        out[f"{name}_fwd"] = sum(o.flops_fwd for o in ops)
        out[f"{name}_bwd"] = sum(o.flops_bwd for o in ops)
    return out


NETS = [p.net for p in plan_networks(50, 7)]


@pytest.mark.parametrize("input_shape", [(1, 40), (3, 12, 10)], ids=["1d", "2d"])
@pytest.mark.parametrize("i", range(len(NETS)))
def test_sampled_networks_match_flopcounter(i: int, input_shape: tuple[int, ...]) -> None:
    net = NETS[i]
    assert _modelled(net, input_shape) == _counted(net, input_shape), net.to_json()


@pytest.mark.parametrize(
    "net",
    [
        Network((dense(16),)),  # linear on the input: no input gradient
        Network((maxpool(2), conv(8, 3))),  # conv behind a parameter-free layer: no input gradient either
        Network((conv(8, 5, 2), conv(8, 3), dense(32), dense(16))),
    ],
    ids=["dense-first", "pool-first", "mixed"],
)
def test_input_gradient_rules_match_flopcounter(net: Network) -> None:
    for shape in ((1, 40), (1, 8, 8)):
        assert _modelled(net, shape) == _counted(net, shape)


def test_grouped_and_dilated_convs_match_flopcounter_but_for_its_grouped_weight_gradient() -> None:
    # FlopCounterMode counts a conv's weight gradient as if it were ungrouped (its formula skips groups), so it
    # counts groups times the true work there; the model counts the true work (equal to the forward's).
    net = Network((conv(8, 3), *sep_conv(8, 16, 5, 2, dilation=2), conv(16, 3, groups=4, dilation=3), dense(16)))
    for shape in ((1, 40), (2, 9, 7)):
        counted, modelled = _counted(net, shape), _modelled(net, shape)
        convs = [o for o in step_costs(net, shape, 10, BATCH).ops() if o.op_class == OpClass.CONV]
        overcount = sum((layer.groups - 1) * o.flops_fwd for layer, o in zip(
            [x for x in net.layers if x.op is Op.CONV], convs, strict=True))
        assert overcount > 0
        assert modelled == counted | {"conv_bwd": counted["conv_bwd"] - overcount}


def test_per_sample_forward_flops_match_flopcounter() -> None:
    net = Network((conv(16, 5), maxpool(2), conv(32, 3, 2), dense(64)))
    c = step_costs(net, (1, 40), 10, 128)
    counted = _counted(net, (1, 40))
    assert c.matmul_flops_fwd * BATCH == counted["conv_fwd"] + counted["linear_fwd"]

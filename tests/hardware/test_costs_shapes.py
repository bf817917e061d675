"""The costs' tensor sizes and parameter tensors agree with the torch model the builder makes."""

from __future__ import annotations

import math

import pytest
import torch

from narch.dataset_builder.model import build_model
from narch.hardware.costs import step_costs
from narch.search_space import Network, avgpool, conv, maxpool, plan_networks


@pytest.mark.parametrize("shape", [(1, 40), (3, 9, 7)])
def test_layer_output_sizes_match_torch(shape: tuple[int, ...]) -> None:
    nets = [p.net for p in plan_networks(15, 5)]
    nets.append(Network((conv(8, 3), maxpool(3, 1), avgpool(3, 1), maxpool(2))))
    for net in nets:
        model = build_model(net, shape, 10)
        sizes: list[int] = []
        hooks = [m.register_forward_hook(lambda _m, _i, o, s=sizes: s.append(o[0].numel())) for m in model.body]
        model.eval()
        with torch.no_grad():
            model(torch.randn(2, *shape))
        for h in hooks:
            h.remove()
        c = step_costs(net, shape, 10, 2)
        body = [lc for lc in c.layers if lc.index >= 0]
        assert [math.prod(lc.out_shape) for lc in body] == sizes, net.to_json()
        assert c.param_tensors == len(list(model.parameters()))
        assert c.params == sum(p.numel() for p in model.parameters())

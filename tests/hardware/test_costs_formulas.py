"""Formula tests for the ops FlopCounterMode counts as zero, and the step/run totals."""

from __future__ import annotations

import math

import pytest

from narch.hardware.costs import (
    ADAMW_BYTES_PER_PARAM,
    ADAMW_FLOPS_PER_PARAM,
    OpClass,
    OpCost,
    StepCosts,
    run_costs,
    step_costs,
)
from narch.search_space import Network, add, avgpool, conv, count_params, dense, dropout, maxpool, plan_networks

N = 8


def _op(costs: StepCosts, name: str) -> OpCost:
    return next(o for o in costs.ops() if o.name == name)


def test_bn_relu_follow_every_conv_with_per_element_formulas() -> None:
    c = step_costs(Network((conv(6, 3, 2),)), (2, 10), 5, N)
    e = N * 6 * 5  # stride 2 on length 10 -> 5
    bn, relu = _op(c, "0:bn"), _op(c, "0:relu")
    assert (bn.flops_fwd, bn.flops_bwd, bn.bytes_fwd, bn.bytes_bwd) == (7 * e, 10 * e, 12 * e, 20 * e)
    assert (relu.flops_fwd, relu.flops_bwd, relu.bytes_fwd, relu.bytes_bwd) == (e, e, 8 * e, 12 * e)
    conv_op = _op(c, "0:conv")
    assert conv_op.flops_fwd == 2 * N * 6 * 5 * 2 * 3
    assert conv_op.flops_bwd == conv_op.flops_fwd  # reads the input: no input gradient
    assert conv_op.bytes_fwd == 4 * (N * 2 * 10 + 6 * 2 * 3 + 6 + e)


def test_tiled_pools_cover_each_input_element_once() -> None:
    net = Network((conv(4, 3), maxpool(3), avgpool(2)))
    c = step_costs(net, (1, 10), 3, N)
    mp, ap = _op(c, "1:maxpool"), _op(c, "2:avgpool")
    e_in, e_mid, e_out = N * 4 * 10, N * 4 * 4, N * 4 * 2  # ceil(10/3) = 4, ceil(4/2) = 2
    assert mp.flops_fwd == e_in - e_mid and mp.flops_bwd == e_mid
    assert mp.bytes_fwd == 4 * (e_in + e_mid) + 8 * e_mid
    assert ap.flops_fwd == e_mid and ap.flops_bwd == e_mid
    assert ap.bytes_fwd == 4 * (e_mid + e_out)


def test_same_pools_at_stride_one_touch_a_window_per_output() -> None:
    net = Network((conv(4, 3), maxpool(3, 1), avgpool(3, 1)))
    c = step_costs(net, (1, 6, 6), 3, N)
    e = N * 4 * 36
    assert _op(c, "1:maxpool").flops_fwd == 8 * e
    assert _op(c, "2:avgpool").flops_fwd == 9 * e


def test_parameter_free_ops_on_the_input_have_no_backward() -> None:
    net = Network((maxpool(2), dropout(20), dense(8)))
    c = step_costs(net, (1, 40), 10, N)
    for name in ("0:maxpool", "1:dropout", "2:gap"):
        o = _op(c, name)
        assert o.flops_bwd == 0 and o.bytes_bwd == 0 and o.launches_bwd == 0, name
    d = _op(c, "2:dense")
    assert d.flops_bwd == d.flops_fwd  # weight gradient only


def test_dropout_add_gap_head_loss_formulas() -> None:
    net = Network((conv(8, 3), conv(8, 3), add(0, 1), dropout(30)))
    c = step_costs(net, (1, 12), 7, N)
    e = N * 8 * 12
    a, d = _op(c, "2:add"), _op(c, "3:dropout")
    assert (a.flops_fwd, a.flops_bwd, a.bytes_fwd) == (e, e, 12 * e)
    assert (d.flops_fwd, d.flops_bwd, d.bytes_fwd, d.bytes_bwd) == (2 * e, e, 9 * e, 9 * e)
    g = _op(c, "head:gap")
    assert (g.flops_fwd, g.bytes_fwd) == (e, 4 * (e + N * 8))
    h = _op(c, "head:dense")
    assert h.flops_fwd == 2 * N * 8 * 7 and h.flops_bwd == 2 * h.flops_fwd
    loss = _op(c, "loss:cross_entropy")
    assert (loss.flops_fwd, loss.flops_bwd) == (5 * N * 7, 3 * N * 7)


def test_flat_last_layer_has_no_head_pool() -> None:
    c = step_costs(Network((conv(8, 3), dense(16))), (1, 12), 10, N)
    assert not any(o.name == "head:gap" for o in c.ops())
    assert any(o.name == "1:gap" for o in c.ops())


@pytest.mark.parametrize("plan_seed", [3, 11])
def test_params_and_optimizer_step(plan_seed: int) -> None:
    for p in plan_networks(10, plan_seed):
        for shape in ((1, 40), (3, 8, 8)):
            c = step_costs(p.net, shape, 10, N)
            assert c.params == count_params(p.net, shape, 10)
            opt = _op(c, "optimizer:adamw")
            assert opt.flops_fwd == ADAMW_FLOPS_PER_PARAM * c.params
            assert opt.bytes_fwd == ADAMW_BYTES_PER_PARAM * c.params
            convs = sum(1 for x in p.net.layers if x.op.value == "conv")
            denses = sum(1 for x in p.net.layers if x.op.value == "dense")
            assert opt.param_tensors == c.param_tensors == 4 * convs + 2 * denses + 2


def test_totals_are_sums_and_forward_is_per_sample() -> None:
    net = Network((conv(16, 5), maxpool(2), conv(32, 3, 2), dense(64), dropout(10)))
    c1, c8 = step_costs(net, (1, 40), 10, 1), step_costs(net, (1, 40), 10, 8)
    assert c8.flops_train_step == sum(o.flops for o in c8.ops())
    assert c8.bytes_train_step == sum(o.bytes for o in c8.ops())
    assert c1.flops_fwd == c8.flops_fwd  # all forward FLOPs scale with the batch
    assert c8.matmul_flops_fwd < c8.flops_fwd
    assert math.isclose(c8.arithmetic_intensity, c8.flops_train_step / c8.bytes_train_step)
    by = c8.by_class()
    assert sum(f for f, _ in by.values()) == c8.flops_train_step
    assert set(by) >= {OpClass.CONV, OpClass.BN, OpClass.POOL, OpClass.DENSE, OpClass.OPTIMIZER}


def test_run_costs_count_the_partial_last_batch() -> None:
    net = Network((conv(8, 3),))
    rc = run_costs(net, (1, 40), 10, batch_size=128, n_train=3000, epochs=5)
    assert rc.steps_per_epoch == 24 and rc.steps == 120
    assert rc.remainder is not None and rc.remainder.batch_size == 3000 - 23 * 128
    assert rc.flops_epoch == 23 * rc.full.flops_train_step + rc.remainder.flops_train_step
    assert rc.flops_run == 5 * rc.flops_epoch
    even = run_costs(net, (1, 40), 10, batch_size=100, n_train=3000, epochs=1)
    assert even.remainder is None and even.steps_per_epoch == 30


def test_bad_arguments_raise() -> None:
    with pytest.raises(ValueError, match="batch_size"):
        step_costs(Network((conv(8, 3),)), (1, 40), 10, 0)
    with pytest.raises(ValueError, match="n_train"):
        run_costs(Network((conv(8, 3),)), (1, 40), 10, batch_size=8, n_train=0, epochs=1)

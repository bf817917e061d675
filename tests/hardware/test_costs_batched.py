"""The batched cost paths (one op table for many networks) give exactly what the one-network objects give."""

from __future__ import annotations

import random

import numpy as np
import pytest

from narch.controller.env import Moves
from narch.hardware.costs import network_ops, run_costs, run_costs_many, step_costs
from narch.hardware.roofline import roofline_run, roofline_train_times, step_seconds, step_time
from narch.predictors.roofline_time import _CACHE, LATENCY_TARGETS, RUN_TARGETS, terms_for, terms_many
from narch.search_space import SEEDS, Network, SpecError, conv, dense, sample_network, sep_conv, trace_network


def _networks(shape: tuple[int, ...]) -> list[Network]:
    rng = random.Random(3)
    nets = [sample_network(rng) for _ in range(40)]
    moves, walk = Moves(), random.Random(4)
    nets += [moves.random_walk(walk, SEEDS[name], 6) for name in sorted(SEEDS)]
    nets.append(Network((*sep_conv(1, 8), conv(16, 3, 2, groups=4, dilation=2), dense(32))))
    ok = []
    for n in nets:
        try:
            trace_network(n, shape, 10)
        except SpecError:
            continue
        ok.append(n)
    return ok


TASKS = [((1, 40), 128, 3000, 10, "local", "fp32"), ((3, 16, 16), 96, 50_000, 200, "a100", "bf16"),
         ((1, 40), 64, 64, 3, "t4", "fp16")]


@pytest.mark.parametrize(("shape", "batch", "n_train", "epochs", "device", "precision"), TASKS)
def test_batched_roofline_equals_one_network_roofline(shape: tuple[int, ...], batch: int, n_train: int, epochs: int,
                                                      device: str, precision: str) -> None:
    nets = _networks(shape)
    got = roofline_train_times(nets, shape, 10, batch_size=batch, n_train=n_train, epochs=epochs, device=device,
                               precision=precision)
    want = [roofline_run(n, shape, 10, batch_size=batch, n_train=n_train, epochs=epochs, device=device,
                         precision=precision).train_time_s for n in nets]
    assert got.tolist() == want  # exactly: the same sums in the same order
    steps = step_seconds(network_ops(nets, shape, 10), batch, device, precision=precision)
    assert steps.tolist() == [step_time(step_costs(n, shape, 10, batch), device, precision=precision).time_s
                              for n in nets]


def test_batched_run_costs_equal_one_network_run_costs() -> None:
    nets = _networks((1, 40))
    for many, net in zip(run_costs_many(nets, (1, 40), 10, batch_size=100, n_train=1050, epochs=2), nets,
                         strict=True):
        assert many == run_costs(net, (1, 40), 10, batch_size=100, n_train=1050, epochs=2)


@pytest.mark.parametrize("target", RUN_TARGETS + LATENCY_TARGETS)
def test_batched_roofline_terms_equal_one_network_terms(target: str) -> None:
    nets = _networks((1, 40))
    d = {"input_shape": [1, 40], "n_classes": 10, "batch_size": 96, "n_train": 50_000, "epochs": 200,
         "latency_batch_n": 16}
    _CACHE.clear()
    many = terms_many(nets + nets[:3], target, d)  # repeats inside one batch, too
    _CACHE.clear()
    one = np.array([terms_for(n, target, d) for n in nets + nets[:3]])
    assert np.array_equal(many, one)

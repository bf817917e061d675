"""Zero-cost proxies against values computed by hand (numpy, or autograd on a separately built copy) on tiny
networks; determinism under a seed; failures become None."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from narch.dataset_builder.model import build_model
from narch.dataset_builder.zero_cost import PROXIES, Batch, minibatch, zero_cost_scores
from narch.search_space import Network, conv, dense, plan_networks

SHAPE = (1, 8)
N_CLASSES = 3


def _batch(n: int = 12, seed: int = 0) -> Batch:
    gen = torch.Generator().manual_seed(seed)
    return Batch(torch.randn(n, *SHAPE, generator=gen), torch.arange(n) % N_CLASSES)


def _model(net: Network, seed: int = 0) -> nn.Module:
    """The proxies' model, built independently: the seed's initial weights, training mode, out-of-place ReLUs."""
    torch.manual_seed(seed)
    m = build_model(net, SHAPE, N_CLASSES)
    for mod in m.modules():
        if isinstance(mod, nn.ReLU):
            mod.inplace = False
    return m.train()


def _weights(m: nn.Module) -> list[torch.Tensor]:
    return [x.weight for x in m.modules() if isinstance(x, nn.Conv1d | nn.Linear)]


NET = Network((conv(2, 3), dense(4)))


def test_static_proxies_by_hand() -> None:
    s = zero_cost_scores(NET, _batch(), SHAPE, N_CLASSES)
    # conv 1->2 k3 (6 + 2 bias), its BN (2 + 2), dense 2->4 (8 + 4), head 4->3 (12 + 3)
    assert s["zc_params"] == 6 + 2 + 4 + 8 + 4 + 12 + 3
    # MACs per example: conv 8 positions x 2 out x 3 taps; dense 2 x 4; head 4 x 3
    assert s["zc_flops"] == 2 * (8 * 2 * 3 + 2 * 4 + 4 * 3)
    m = _model(NET)
    assert s["zc_l2_norm"] == pytest.approx(sum(float(np.linalg.norm(w.detach().numpy())) for w in _weights(m)))


def test_gradient_proxies_by_hand() -> None:
    b = _batch()
    s = zero_cost_scores(NET, b, SHAPE, N_CLASSES)
    m = _model(NET)
    torch.manual_seed(0)
    loss = F.cross_entropy(m(b.x), b.y)
    loss.backward()
    ws = _weights(m)
    prods = [(w * w.grad).detach().numpy() for w in ws]
    assert s["zc_plain"] == pytest.approx(sum(p.sum() for p in prods), rel=1e-5)
    assert s["zc_snip"] == pytest.approx(sum(np.abs(p).sum() for p in prods), rel=1e-5)
    assert s["zc_grad_norm"] == pytest.approx(sum(float(w.grad.norm()) for w in ws), rel=1e-5)
    assert s["zc_snip"] > 0 and s["zc_grad_norm"] > 0


def test_grasp_is_minus_w_times_hessian_gradient() -> None:
    net = Network((dense(5), dense(4)))  # no BN: torch.func cannot run BN's in-place running statistics
    b = _batch()
    s = zero_cost_scores(net, b, SHAPE, N_CLASSES)
    m = _model(net)
    ws = _weights(m)
    flat = torch.cat([w.reshape(-1) for w in ws]).detach()
    sizes = [w.numel() for w in ws]

    def loss_of(v: torch.Tensor) -> torch.Tensor:
        chunks = torch.split(v, sizes)
        params = dict(m.named_parameters())
        names = [n for n, p in m.named_parameters() if any(p is w for w in ws)]
        swapped = {**params, **{n: c.reshape(params[n].shape) for n, c in zip(names, chunks, strict=True)}}
        return F.cross_entropy(torch.func.functional_call(m, swapped, (b.x,)), b.y)

    g = torch.func.grad(loss_of)(flat)
    h = torch.autograd.functional.hessian(loss_of, flat)
    assert s["zc_grasp"] == pytest.approx(float(-(flat * (h @ g)).sum()), rel=1e-4, abs=1e-9)


def test_naswot_and_jacov_by_hand() -> None:
    b = _batch()
    s = zero_cost_scores(NET, b, SHAPE, N_CLASSES)
    m = _model(NET)
    codes = []
    hooks = [x.register_forward_hook(lambda _m, _i, o: codes.append((o.reshape(len(b.y), -1) > 0).double().numpy()))
             for x in m.modules() if isinstance(x, nn.ReLU)]
    x = b.x.clone().requires_grad_(True)
    out = m(x)
    for hk in hooks:
        hk.remove()
    k = sum(c @ c.T + (1 - c) @ (1 - c).T for c in codes)
    assert s["zc_naswot"] == pytest.approx(np.linalg.slogdet(k)[1], rel=1e-9)
    out.sum().backward()
    jac = x.grad.reshape(len(b.y), -1).double().numpy()
    v = np.linalg.eigvalsh(np.corrcoef(jac))
    v = np.maximum(v, 0)
    assert s["zc_jacov"] == pytest.approx(-np.sum(np.log(v + 1e-5) + 1 / (v + 1e-5)), rel=1e-6)


def test_synflow_closed_form_without_nonlinearity_or_bn() -> None:
    net = Network((dense(3),))  # global mean of the input -> dense(1 -> 3) -> ReLU -> head (3 -> 3)
    s = zero_cost_scores(net, _batch(), SHAPE, N_CLASSES)
    m = _model(net)
    w1, b1 = m.body[0][0].weight.detach().abs().double(), m.body[0][0].bias.detach().abs().double()
    w2 = m.head.weight.detach().abs().double()
    # input of ones: the dense layer's input is 1; R = sum_k sum_j w2_kj (w1_j + b1_j) + sum_k b2_k
    col = w2.sum(0)  # dR/d(hidden_j) = sum_k w2_kj
    expect = float((w1[:, 0] * col).sum() + (w2 * (w1[:, 0] + b1)).sum())
    assert s["zc_synflow"] == pytest.approx(expect, rel=1e-9)


def test_deterministic_under_a_seed_and_untouched_global_rng() -> None:
    net = plan_networks(3, 1)[2].net
    b = _batch(16)
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a = zero_cost_scores(net, b, SHAPE, N_CLASSES, seed=4)
    assert torch.rand(1) == before, "the proxies leave the global random stream where it was"
    assert zero_cost_scores(net, b, SHAPE, N_CLASSES, seed=4) == a
    assert zero_cost_scores(net, b, SHAPE, N_CLASSES, seed=5) != a
    assert set(a) == {f"zc_{n}" for n in PROXIES} and all(v is not None for v in a.values())


def test_minibatch_is_fixed_by_its_seed_and_unknown_names_fail() -> None:
    x, y = torch.randn(100, *SHAPE), torch.arange(100) % 3
    assert torch.equal(minibatch(x, y, seed=1).x, minibatch(x, y, seed=1).x)
    assert not torch.equal(minibatch(x, y, seed=1).x, minibatch(x, y, seed=2).x)
    assert len(minibatch(x, y, size=8).y) == 8
    with pytest.raises(ValueError, match="unknown zero-cost proxies: magic"):
        zero_cost_scores(NET, _batch(), SHAPE, N_CLASSES, names=["magic"])


def test_a_failing_pass_gives_none_for_its_proxies_only() -> None:
    b = Batch(torch.full((4, *SHAPE), float("nan")), torch.zeros(4, dtype=torch.long))
    s = zero_cost_scores(NET, b, SHAPE, N_CLASSES)
    assert s["zc_params"] is not None and s["zc_synflow"] is not None, "data-free proxies do not read the data"
    assert s["zc_snip"] is None and s["zc_grasp"] is None and s["zc_plain"] is None, "NaN scores are None"


def test_proxies_and_their_documented_columns_agree() -> None:
    from narch.dataset_builder.schema import SCHEMA, ZC_COLUMNS, ZERO_COST

    assert [n for n, _, _ in ZERO_COST] == list(PROXIES), "schema.ZERO_COST documents every proxy, in order"
    assert all(c in SCHEMA.names for c in ZC_COLUMNS)


def test_a_build_writes_the_proxies_of_the_run_initialisation(tiny_corpus: Path) -> None:
    from narch.dataset_builder.corpus import read_corpus
    from narch.dataset_builder.tasks import load_task
    from narch.dataset_builder.train import DeviceData

    df = read_corpus(tiny_corpus).filter(pl.col("status") == "ok")
    for col in ("zc_params", "zc_snip", "zc_naswot", "zc_synflow"):
        assert df[col].null_count() == 0, col
    assert (df["zc_params"] == df["params"].cast(pl.Float64)).all(), "the model the run trained"
    row = df.row(0, named=True)
    data = DeviceData.from_task(load_task("mnist1d", n_train=row["n_train"], data_seed=0), torch.device("cpu"))
    again = zero_cost_scores(Network.from_json(row["arch_json"]), minibatch(data.x_train, data.y_train),
                             tuple(row["input_shape"]), row["n_classes"], seed=row["seed"])
    assert again == {k: row[k] for k in again}, "recomputable from the row alone"


def test_a_layer_nothing_reads_does_not_void_the_proxies() -> None:
    from narch.search_space import Layer, Op

    net = Network((conv(4), conv(6), Layer(Op.CONV, channels=4, kernel=3, inputs=(0,))))  # conv(6) is unread
    s = zero_cost_scores(net, _batch(), SHAPE, N_CLASSES)
    assert all(s[f"zc_{n}"] is not None for n in ("synflow", "snip", "grasp", "fisher", "jacov", "plain")), s

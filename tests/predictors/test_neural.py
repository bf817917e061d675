"""The neural families (lstm_embedding, gin, ensemble) and the shared network embedding."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
import torch

from narch.dataset_builder.corpus import read_corpus
from narch.predictors.base import PREDICTORS, Target
from narch.predictors.features import row_descriptors
from narch.predictors.neural.data import rows_inputs
from narch.predictors.neural.embedding import NetworkEmbedding, batch_tensors
from narch.predictors.neural.ensemble import DeepEnsemble
from narch.predictors.neural.gin import Graph
from narch.predictors.neural.training import inner_split
from narch.search_space import SEEDS, Network, sample_network
from narch.search_space.encoding import encode_networks

FAST: dict[str, dict[str, Any]] = {
    "lstm_embedding": {"epochs": 3, "min_steps": 6, "net_dim": 16, "layer_dim": 8, "hidden": 16},
    "gin": {"epochs": 3, "min_steps": 6, "hidden": 16, "head_hidden": 16},
}
NEURAL = ("lstm_embedding", "gin")


@pytest.fixture(scope="module")
def rows(tiny_corpus: Path) -> pl.DataFrame:
    return read_corpus(tiny_corpus).filter(pl.col("status") == "ok")


@pytest.fixture(scope="module")
def fitted(rows: pl.DataFrame) -> dict[str, Any]:
    return {name: PREDICTORS.get(name)(seed=3, **FAST[name]).fit(rows, Target.of("val_acc")) for name in NEURAL}


def _nets(n: int, seed: int = 0) -> list[Network]:
    rng = random.Random(seed)
    return [sample_network(rng) for _ in range(n)]


def test_registered() -> None:
    assert {"lstm_embedding", "gin", "ensemble"} <= set(PREDICTORS.names())


@pytest.mark.parametrize("name", NEURAL)
def test_fit_predict_shapes(name: str, fitted: dict[str, Any], rows: pl.DataFrame) -> None:
    pred = fitted[name].predict(rows)
    assert pred.shape == (rows.height,) and np.isfinite(pred).all()
    assert fitted[name].predict(rows.head(0)).shape == (0,)


@pytest.mark.parametrize("name", NEURAL)
def test_time_target_is_positive(name: str, rows: pl.DataFrame) -> None:
    p = PREDICTORS.get(name)(seed=0, **FAST[name]).fit(rows, Target.of("train_time_s"))
    out = p.predict(rows)
    assert (out > 0).all()
    assert p.config()["target"] == "train_time_s"


@pytest.mark.parametrize("name", NEURAL)
def test_deterministic_under_seed(name: str, fitted: dict[str, Any], rows: pl.DataFrame) -> None:
    torch.manual_seed(123)
    before = torch.rand(1)
    again = PREDICTORS.get(name)(seed=3, **FAST[name]).fit(rows, Target.of("val_acc"))
    np.testing.assert_array_equal(again.predict(rows), fitted[name].predict(rows))
    other = PREDICTORS.get(name)(seed=4, **FAST[name]).fit(rows, Target.of("val_acc"))
    assert not np.array_equal(other.predict(rows), fitted[name].predict(rows))
    torch.manual_seed(123)
    assert torch.equal(torch.rand(1), before)  # fitting forks the global RNG instead of reseeding it


@pytest.mark.parametrize("name", NEURAL)
def test_save_load_round_trip(name: str, fitted: dict[str, Any], rows: pl.DataFrame, tmp_path: Path) -> None:
    p = fitted[name]
    names = p.save(tmp_path)
    assert names == ["weights.pt"] and (tmp_path / "weights.pt").is_file()
    q = PREDICTORS.get(name).load(tmp_path, p.config())
    np.testing.assert_array_equal(q.predict(rows), p.predict(rows))


@pytest.mark.parametrize("name", NEURAL)
def test_predict_networks_matches_rows(name: str, fitted: dict[str, Any], rows: pl.DataFrame) -> None:
    p = fitted[name]
    nets = [Network.from_json(j) for j in rows["arch_json"].to_list()]
    desc = row_descriptors(rows.row(0, named=True))
    np.testing.assert_allclose(p.predict_networks(nets, desc), p.predict(rows), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", NEURAL)
def test_joint_heads(name: str, rows: pl.DataFrame, tmp_path: Path) -> None:
    p = PREDICTORS.get(name)(seed=0, aux_targets="train_time_s", **FAST[name]).fit(rows, Target.of("val_acc"))
    heads = p.predict_all(rows)
    assert set(heads) == {"val_acc", "train_time_s"}
    np.testing.assert_allclose(heads["val_acc"], p.predict(rows), rtol=1e-6)
    assert (heads["train_time_s"] > 0).all()
    p.save(tmp_path)
    q = PREDICTORS.get(name).load(tmp_path, p.config())
    np.testing.assert_array_equal(q.predict_all(rows)["train_time_s"], heads["train_time_s"])
    with pytest.raises(ValueError, match="auxiliary"):
        PREDICTORS.get(name)(seed=0, aux_targets="val_acc", **FAST[name]).fit(rows, Target.of("val_acc"))


def test_unknown_parameter_and_loss_fail(rows: pl.DataFrame) -> None:
    with pytest.raises(TypeError, match="unknown parameter"):
        PREDICTORS.get("gin")(seed=0, widht=3)
    with pytest.raises(ValueError, match="loss"):
        PREDICTORS.get("gin")(seed=0, loss="l3").fit(rows, Target.of("val_acc"))


def test_val_rows_and_report(rows: pl.DataFrame) -> None:
    seen: list[tuple[int, float]] = []
    ids = sorted(set(rows["arch_id"].to_list()))
    tr, va = rows.filter(pl.col("arch_id").is_in(ids[2:])), rows.filter(pl.col("arch_id").is_in(ids[:2]))
    p = PREDICTORS.get("lstm_embedding")(seed=0, **FAST["lstm_embedding"])
    p.fit(tr, Target.of("val_acc"), val_rows=va, report=lambda step, value: seen.append((step, value)))
    assert [s for s, _ in seen] == list(range(len(seen))) and len(seen) >= 3
    assert all(np.isfinite(v) and v >= 0 for _, v in seen)

    class Pruned(Exception):
        pass

    def prune(step: int, value: float) -> None:
        raise Pruned

    with pytest.raises(Pruned):
        p.fit(tr, Target.of("val_acc"), val_rows=va, report=prune)


def test_inner_split_keeps_architectures_whole() -> None:
    groups = np.repeat(np.arange(20), 3)
    tr, va = inner_split(groups, val_frac=0.2, seed=0)
    assert len(va) == 12 and set(groups[tr]).isdisjoint(groups[va])
    tr, va = inner_split(np.arange(5), val_frac=0.2, seed=0)
    assert len(va) == 0 and len(tr) == 5


def test_ensemble_mean_std(rows: pl.DataFrame, tmp_path: Path) -> None:
    ens = DeepEnsemble(seed=1, members=3, family="gin+lstm_embedding", member_params=FAST)
    ens.fit(rows, Target.of("val_acc"))
    mean, std = ens.predict_with_std(rows)
    members = ens.predict_members(rows)
    assert members.shape == (3, rows.height)
    np.testing.assert_allclose(mean, members.mean(axis=0))
    assert (std > 0).all()
    names = ens.save(tmp_path)
    assert sorted(names) == ["member0/weights.pt", "member1/weights.pt", "member2/weights.pt"]
    again = DeepEnsemble.load(tmp_path, ens.config())
    np.testing.assert_array_equal(again.predict(rows), mean)
    np.testing.assert_array_equal(again.predict_std(rows), std)
    nets = [Network.from_json(j) for j in rows["arch_json"].to_list()]
    m2, s2 = ens.predict_networks_with_std(nets, row_descriptors(rows.row(0, named=True)))
    np.testing.assert_allclose(m2, mean, rtol=1e-5)
    np.testing.assert_allclose(s2, std, rtol=1e-4, atol=1e-7)


def test_ensemble_rejects_bad_members() -> None:
    with pytest.raises(KeyError, match="unknown"):
        DeepEnsemble(family="nope")
    with pytest.raises(ValueError):
        DeepEnsemble(members=1)


def test_embedding_shapes_variable_length() -> None:
    nets = [SEEDS["tiny"], SEEDS["resnet_tiny"], SEEDS["lenet"], *_nets(5)]
    tokens, lengths = batch_tensors(encode_networks(nets))
    torch.manual_seed(0)
    emb = NetworkEmbedding(feature_dim=4, layer_dim=8, net_dim=12)
    out = emb(tokens, lengths)
    n = int(lengths.max())
    assert out.network.shape == (len(nets), emb.out_dim) == (8, 24)
    assert out.layers.shape == (8, n, 8) and out.states.shape == (8, n, 12)
    assert out.mask.sum().item() == int(lengths.sum())
    assert (out.states[~out.mask] == 0).all()
    # a network's embedding does not depend on the batch it sits in (padding never leaks in)
    alone = emb(*batch_tensors(encode_networks(nets[:1])))
    torch.testing.assert_close(alone.network[0], out.network[0])


def test_embedding_gradients_flow() -> None:
    nets = _nets(6, seed=1)
    tokens, lengths = batch_tensors(encode_networks(nets))
    torch.manual_seed(0)
    emb = NetworkEmbedding(feature_dim=4, layer_dim=8, net_dim=8)
    emb(tokens, lengths).network.pow(2).sum().backward()
    for name, param in emb.named_parameters():
        assert param.grad is not None and torch.isfinite(param.grad).all(), name
        assert param.grad.abs().sum() > 0, name


def test_gin_messages_follow_edges() -> None:
    batch = encode_networks([SEEDS["resnet_tiny"], SEEDS["tiny"]])
    src, lengths = torch.from_numpy(batch.sources()), torch.from_numpy(batch.lengths)
    g = Graph(src, lengths)
    assert g.n_real == 9 + 2
    h = torch.zeros(g.n_real, 1)
    h[1] = 1.0  # layer 0 of resnet_tiny
    fwd, back = g.forward_sum(h), g.backward_sum(h)
    assert fwd[:, 0].nonzero().flatten().tolist() == [2, 4]  # read by layer 1 and by the add (layer 3)
    assert back[:, 0].nonzero().flatten().tolist() == [0]  # it reads the network input
    assert g.readout(h).shape == (2, 3)


def test_rows_inputs_cover_descriptors(rows: pl.DataFrame, fitted: dict[str, Any]) -> None:
    p = fitted["gin"]
    x = rows_inputs(rows, p.side, graph=True)
    assert x.tokens.shape[0] == x.side.shape[0] == rows.height
    assert x.sources is not None and x.sources.shape[:2] == x.tokens.shape[:2]
    assert p.side.dim >= 1

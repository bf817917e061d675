"""gin_cell reads a cell benchmark's own graph (bench_cell) where rows carry it, the layer DAG elsewhere; the
NAS-Bench-201 edge-to-node conversion by hand; offered only on corpora with cells."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from narch.dataset_builder.corpus import read_corpus
from narch.dataset_builder.importers.cells import edges_to_nodes, parse_nb201
from narch.predictors.artefacts import load_artefact, save_artefact
from narch.predictors.base import PREDICTORS, Target
from narch.predictors.families import load_families, offered
from narch.predictors.neural.cell_gin import CellRowsOnly, graph_kind, layer_dag_cell, native_cell
from narch.search_space import SEEDS, Network

ROOT = Path(__file__).resolve().parents[2]
load_families()


def test_nb201_edges_become_nodes_by_hand() -> None:
    cell = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_1x1~1|+|skip_connect~0|none~1|avg_pool_3x3~2|"
    adj, ops = edges_to_nodes(parse_nb201(cell), 4)
    # nodes: input, then edges (0,1) (0,2) (0,3) (1,2) (1,3) (2,3), then output
    assert ops == ["input", "nor_conv_3x3", "nor_conv_3x3", "skip_connect", "nor_conv_1x1", "none", "avg_pool_3x3",
                   "output"]
    edges = {(i, j) for i, r in enumerate(adj) for j, v in enumerate(r) if v}
    assert edges == {(0, 1), (0, 2), (0, 3), (1, 4), (1, 5), (2, 6), (4, 6), (3, 7), (5, 7), (6, 7)}


def test_a_layer_dag_in_node_form() -> None:
    net = SEEDS["resnet_tiny"]
    edges, ops = layer_dag_cell(net.to_json())
    assert len(ops) == len(net.layers) + 1 and ops[0] == "input"
    adds = [i for i, layer in enumerate(net.layers) if layer.op.value == "add"]
    for i in adds:  # an add reads its two named inputs
        assert sorted(s for s, d in edges if d == i + 1) == sorted(k + 1 for k in net.layers[i].inputs)


@pytest.fixture(scope="module")
def nb201_rows() -> pl.DataFrame:
    df = read_corpus(ROOT / "results/corpus/nb201_cifar10").filter(pl.col("epochs") == 200)
    return df.unique("arch_id", keep="first", maintain_order=True).head(160)


def test_it_reads_the_benchmark_s_cells_and_round_trips(nb201_rows: pl.DataFrame, tmp_path: Path) -> None:
    train, test = nb201_rows.head(120), nb201_rows.tail(40)
    assert offered(PREDICTORS.get("gin_cell"), train) and graph_kind(train) == "cell"
    target = Target.of("test_acc")
    pred = PREDICTORS.get("gin_cell")(seed=0, epochs=3, min_steps=6, hidden=16, head_hidden=16).fit(train, target)
    assert pred.graph == "cell" and {"nor_conv_3x3", "skip_connect", "none", "input"} <= set(pred.vocab)
    assert native_cell(train["bench_cell"][0])[1][0] == "input"
    yhat = pred.predict(test)
    assert yhat.shape == (40,) and np.isfinite(yhat).all()
    save_artefact(tmp_path / "a", {"test_acc": pred}, fingerprint="x" * 64)
    art = load_artefact(tmp_path / "a")
    np.testing.assert_array_equal(art.predict(test)["test_acc"], yhat)
    with pytest.raises(CellRowsOnly, match="cannot score a network alone"):
        pred.predict_networks([Network.from_json(test["arch_json"][0])], {})


def test_it_is_not_offered_on_a_corpus_without_cells(nb201_rows: pl.DataFrame) -> None:
    assert not offered(PREDICTORS.get("gin_cell"), nb201_rows.drop("bench_cell"))
    assert not offered(PREDICTORS.get("gin_cell"), nb201_rows.with_columns(pl.lit(None, pl.String).alias("bench_cell")))


def test_pretraining_sees_architectures_only_and_starts_the_fit_from_its_encoder(nb201_rows: pl.DataFrame,
                                                                                 tmp_path: Path) -> None:
    from narch.predictors.families import fit_extras
    from narch.predictors.neural import pretraining

    train, test = nb201_rows.head(40), nb201_rows.tail(40)
    cls = PREDICTORS.get("gin_cell_ssl")
    extras = fit_extras(cls, nb201_rows)
    assert set(extras["unlabeled"].columns) <= set(pretraining.ARCH_COLUMNS)  # no label reaches the family
    assert "test_acc" not in extras["unlabeled"].columns and extras["unlabeled"]["arch_id"].is_unique().all()
    assert fit_extras(PREDICTORS.get("gbdt"), nb201_rows) == {}  # families that do not pretrain get nothing
    kw = dict(epochs=3, min_steps=6, hidden=16, head_hidden=16, pretrain_epochs=3, pretrain_rows=100)
    target = Target.of("test_acc")
    pred = cls(seed=0, **kw).fit(train, target, **extras)
    assert pred._body is not None and set(pred._body) == {"embed", "convs"}
    body = pred._body
    again = cls(seed=0, **kw).fit(train, target, **extras)
    assert again._body is body, "pretraining does not depend on the labels: cached per unlabeled set and seed"
    np.testing.assert_array_equal(again.predict(test), pred.predict(test))  # deterministic
    plain = cls(seed=0, **kw).fit(train, target)  # no unlabeled rows (a conformance run): plain gin_cell
    assert plain._body is None
    y = pretraining.property_targets(extras["unlabeled"])
    assert y.shape == (extras["unlabeled"].height, 2) and np.allclose(np.nanmean(y, axis=0), 0, atol=1e-9)
    save_artefact(tmp_path / "a", {"test_acc": pred}, fingerprint="x" * 64)
    np.testing.assert_array_equal(load_artefact(tmp_path / "a").predict(test)["test_acc"], pred.predict(test))

"""Importers of public corpora: cell mapping on hand-checked cells, each importer on the real files shipped as
package data, and bad input through `narch import` (one-line error, non-zero exit, nothing written)."""

from __future__ import annotations

import json
import random
import shutil
from dataclasses import replace
from importlib.resources import files
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import torch
from typer.testing import CliRunner

from narch.cli import app
from narch.dataset_builder.corpus import read_corpus, read_manifest
from narch.dataset_builder.importers import (
    CellFormatError,
    SourceError,
    UnmappableCell,
    nb101_network,
    nb201_network,
    prepare_import,
    run_import,
)
from narch.dataset_builder.importers.nb101 import unpad
from narch.dataset_builder.importers.sources import EXTERNAL_ENV, SOURCES, Source, external_dir, sha256_file
from narch.dataset_builder.importers.writer import SIDECAR
from narch.dataset_builder.model import build_model
from narch.search_space import Layer, Network, add, avgpool, conv, maxpool

EXTERNAL = Path(str(files("narch.data") / "external"))  # the public files, shipped with the package
runner = CliRunner()
ALL_CONV3 = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|"
ALL_SKIP = "|skip_connect~0|+|skip_connect~0|skip_connect~1|+|skip_connect~0|skip_connect~1|skip_connect~2|"
NB201_MAPPED = 15_625 - 341  # 341 cells have an identically zero output


# --- the cell mapping on hand-checked cells ---------------------------------------------------------------------


def _at(layer: Layer, src: int) -> Layer:
    """The layer reading an explicit earlier layer."""
    return replace(layer, inputs=(src,))


def test_nb201_all_conv3x3_cell() -> None:
    c = conv(16, 3)
    # node1 = conv(n0); node2 = conv(n0) + conv(n1); node3 = conv(n0) + conv(n1) + conv(n2)
    want = Network((c, c, _at(c, 0), _at(c, 1), add(2, 3), _at(c, 0), _at(c, 1), _at(c, 4), add(5, 6), add(8, 7)))
    m = nb201_network(ALL_CONV3)
    assert m.net == want
    assert m.notes == {}


def test_nb201_skip_only_cell_is_the_stem() -> None:
    m = nb201_network(ALL_SKIP)
    assert m.net == Network((conv(16, 3),))
    assert m.notes == {"self_add": 3}  # x+x at node 2, x+x+x at node 3


def test_nb201_pool_skip_and_dead_node() -> None:
    m = nb201_network("|nor_conv_3x3~0|+|none~0|none~1|+|avg_pool_3x3~0|skip_connect~1|none~2|")
    # node 2 is zero (both inputs none); node 3 = avgpool(n0) + n1, n1 = conv(n0)
    want = Network((conv(16, 3), conv(16, 3), _at(avgpool(3, 1), 0), add(2, 1)))  # terms in node order
    assert m.net == want
    assert m.notes == {"zero_node": 1}
    dead = nb201_network("|nor_conv_3x3~0|+|none~0|none~1|+|nor_conv_1x1~0|none~1|none~2|")
    assert dead.net == Network((conv(16, 3), conv(16, 1)))
    assert dead.notes == {"dead_node": 1, "zero_node": 1}


def test_nb201_zero_output_and_bad_strings() -> None:
    with pytest.raises(UnmappableCell) as e:
        nb201_network("|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|none~2|")
    assert e.value.reason == "zero_output"
    with pytest.raises(UnmappableCell):  # node 2 feeds the output but is itself zero
        nb201_network("|none~0|+|none~0|none~1|+|none~0|none~1|nor_conv_3x3~2|")
    for bad in ("|conv~0|+|none~0|none~1|+|none~0|none~1|none~2|", "|none~0|+|none~0|", "|none~1|+|a|b|+|c|d|e|"):
        with pytest.raises(CellFormatError):
            nb201_network(bad)


def test_nb101_cell() -> None:
    adj = [
        [0, 1, 0, 0, 1, 1, 0],
        [0, 0, 1, 0, 0, 0, 0],
        [0, 0, 0, 1, 0, 0, 1],
        [0, 0, 0, 0, 0, 1, 0],
        [0, 0, 0, 0, 0, 1, 0],
        [0, 0, 0, 0, 0, 0, 1],
        [0, 0, 0, 0, 0, 0, 0],
    ]
    ops = ["input", "conv3x3-bn-relu", "maxpool3x3", "conv3x3-bn-relu", "conv3x3-bn-relu", "conv1x1-bn-relu", "output"]
    m = nb101_network(adj, ops)
    c3 = conv(128, 3)
    want = Network(
        (
            c3,  # 0 stem = input
            c3,  # 1 node 1
            maxpool(3, 1),  # 2 node 2
            c3,  # 3 node 3
            _at(c3, 0),  # 4 node 4 reads the input
            add(0, 3),  # 5 node 5's inputs: n0 + n3 + n4
            add(5, 4),
            conv(128, 1),  # 7 node 5
            add(2, 7),  # 8 output = n2 + n5 (concat approximated by a sum)
        )
    )
    assert m.net == want


def test_nb101_padding_pruning_and_errors() -> None:
    adj = [[0, 1, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]]
    a, o = unpad([[*r, 0] for r in adj] + [[0] * 5], [-1, 0, 1, -2, -3], "t")
    assert o == ["input", "conv3x3-bn-relu", "conv1x1-bn-relu", "output"] and len(a) == 4
    with pytest.raises(UnmappableCell) as e:
        nb101_network(a, o)  # nothing reaches the output
    assert e.value.reason == "disconnected_output"
    a[1][3] = 1  # input -> n1 -> output; n2 is dead
    m = nb101_network(a, o)
    assert m.net == Network((conv(128, 3), conv(128, 3))) and m.notes == {"dead_node": 1}
    with pytest.raises(CellFormatError):
        nb101_network([[0, 0], [1, 0]], ["input", "output"])  # a backward edge
    with pytest.raises(CellFormatError):
        nb101_network([[0, 1, 0], [0, 0, 1], [0, 0, 0]], ["input", "conv5x5", "output"])


# --- each importer on the real files ----------------------------------------------------------------------------


def _rows_build(df: pl.DataFrame, k: int = 12, n_classes: int = 10) -> None:
    """Every arch_json parses; a sample builds and runs forward."""
    nets = {a: Network.from_json(j) for a, j in df.select("arch_id", "arch_json").unique().iter_rows()}
    assert all(n.arch_id == a for a, n in nets.items())
    for a in random.Random(0).sample(sorted(nets), min(k, len(nets))):
        model = build_model(nets[a], (3, 32, 32), n_classes)
        assert model(torch.zeros(2, 3, 32, 32)).shape == (2, n_classes)


def _sidecar_rows(corpus: Path) -> list[tuple[str, int]]:
    """(source file, source row) of every row in the part order read_corpus uses."""
    meta = json.loads((corpus / SIDECAR).read_text())
    out = []
    for name in sorted(meta["parts"]):
        for start, stop in meta["parts"][name]["source_rows"]:
            out += [(meta["parts"][name]["source"], i) for i in range(start, stop)]
    return out


@pytest.fixture(scope="module")
def nb201_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("imp") / "nb201_cifar10"
    run_import(prepare_import("nb201", out, dataset="cifar10"))
    return out


def test_nb201_import(nb201_corpus: Path) -> None:
    df = read_corpus(nb201_corpus)
    counts = dict(df.group_by("epochs").len().iter_rows())
    assert counts == {200: NB201_MAPPED, 12: NB201_MAPPED}
    assert df["status"].unique().to_list() == ["ok"] and df["task"].unique().to_list() == ["nb201-cifar10"]
    assert df.filter(pl.col("epochs") == 200)["val_acc"].null_count() == NB201_MAPPED
    assert df["test_acc"].is_between(0.05, 1.0).all() and df["test_acc"].max() > 0.94
    assert df.filter(pl.col("epochs") == 12)["val_acc"].is_between(0.05, 1.0).all()
    assert df.group_by("epochs").agg(pl.col("protocol_hash").n_unique())["protocol_hash"].to_list() == [1, 1]
    assert df["protocol_hash"].n_unique() == 2
    assert (df["n_train"] == 50_000).all() and df["input_shape"][0].to_list() == [3, 32, 32]
    man = read_manifest(nb201_corpus)
    src = EXTERNAL / "nb201" / "nb201_test_accuracy_200ep.csv"
    assert man.protocol["sources"][0]["sha256"] == sha256_file(src)
    assert set(man.protocol["budget_protocol_hashes"].values()) == set(df["protocol_hash"].unique())
    _rows_build(df)
    # join back to the NAS-Bench-201 index through import.json
    where = _sidecar_rows(nb201_corpus)
    assert len(where) == df.height
    csv = pl.read_csv(src)
    for r in random.Random(1).sample(range(df.height), 20):
        file, i = where[r]
        if file == src.name:
            assert df["test_acc"][r] == pytest.approx(csv["cifar10_test_acc"][i] / 100)
            assert nb201_network(csv["arch_str"][i]).net.arch_id == df["arch_id"][r]
    meta = json.loads((nb201_corpus / SIDECAR).read_text())
    assert meta["skipped"] == {"zero_output": 2 * 341}


def test_nb201_rerun_is_a_no_op(nb201_corpus: Path) -> None:
    parts = sorted(nb201_corpus.glob("*.parquet"))
    res = runner.invoke(app, ["import", "nb201", "--out", str(nb201_corpus)])
    assert res.exit_code == 0, res.output
    assert "already imported" in res.output
    assert sorted(nb201_corpus.glob("*.parquet")) == parts


def test_help_latency_import(tmp_path: Path) -> None:
    devices = ["1080ti_1", "titan_rtx_256", "pixel2"]
    preps = run_import(prepare_import("help-latency", tmp_path, devices=devices))
    assert [p.out.name for p in preps] == devices
    bs1 = read_corpus(tmp_path / "1080ti_1")
    assert bs1.height == NB201_MAPPED and bs1["latency_bs1_ms"].is_between(0.1, 1e4).all()
    assert bs1["latency_bsN_ms"].null_count() == bs1.height and (bs1["device_kind"] == "cuda").all()
    big = read_corpus(tmp_path / "titan_rtx_256")
    assert (big["latency_batch_n"] == 256).all() and big["latency_bs1_ms"].null_count() == big.height
    phone = read_corpus(tmp_path / "pixel2")
    assert (phone["device_kind"] == "mobile").all() and (phone["device_name"] == "pixel2").all()
    assert (phone["n_classes"] == 100).all() and phone["task"][0] == "nb201-cifar100"
    _rows_build(phone, k=4, n_classes=100)


def test_nb101_import(tmp_path: Path) -> None:
    run_import(prepare_import("nb101", tmp_path / "nb101"))
    df = read_corpus(tmp_path / "nb101")
    assert df.height == 4000 and sorted(df["epochs"].unique().to_list()) == [4, 12, 36, 108]
    assert df["arch_id"].n_unique() == 1000 and df["val_acc"].is_between(0.0, 1.0).all()
    t = df.filter(pl.col("epochs") == 108)["train_time_s"]
    assert t.null_count() == 0 and t.is_between(100, 10_000).all()
    assert df.filter(pl.col("epochs") != 108)["train_time_s"].null_count() == 3000
    assert (df["params"] > 0).all() and (df["device_kind"] == "tpu").all()
    assert df.group_by("epochs").agg(pl.col("val_acc").mean()).sort("epochs")["val_acc"].is_sorted()
    _rows_build(df)


def test_ecnas_import(tmp_path: Path) -> None:
    run_import(prepare_import("ecnas", tmp_path))
    want = {
        "ecnas_4v_quadro_rtx6000_all_budgets": 1092,
        "ecnas_4v_quadrortx6000": 91,
        "ecnas_4v_rtx3060": 88,
        "ecnas_4v_rtx3090": 91,
        "ecnas_4v_titanxp": 91,
        "ecnas_5v_4ep": 2532,
    }
    frames: dict[str, Any] = {name: read_corpus(tmp_path / name) for name in want}
    assert {k: v.height for k, v in frames.items()} == want
    for name, df in frames.items():
        assert df["train_time_s"].is_between(10, 20_000).all(), name
        assert df["energy_j"].is_between(1e3, 1e7).all(), name
        assert (df["wall_time_s"] >= df["train_time_s"]).all(), name
        assert df["val_acc"].is_between(0, 1).all() and df["test_acc"].is_between(0, 1).all()
        if name != "ecnas_4v_quadro_rtx6000_all_budgets":
            assert df["epochs"].unique().to_list() == [4] and df["seed"].null_count() == df.height
    allb = frames["ecnas_4v_quadro_rtx6000_all_budgets"]
    assert dict(allb.group_by("seed").len().iter_rows()) == {0: 364, 1: 364, 2: 364}
    assert allb.select("arch_id", "epochs", "seed").is_unique().all()
    assert (frames["ecnas_4v_rtx3060"]["device_name"] == "NVIDIA GeForce RTX 3060").all()
    _rows_build(frames["ecnas_5v_4ep"], k=4)


# --- bad input through the CLI ----------------------------------------------------------------------------------


def _fails(args: list[str], *expect: str) -> None:
    res = runner.invoke(app, ["import", *args])
    assert res.exit_code != 0, res.output
    msg = res.output.strip()
    assert len(msg.splitlines()) == 1 and msg.startswith("narch: error:"), msg
    for e in expect:
        assert e in msg, msg


def test_bad_input_writes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "out"
    _fails(["nb201", "--src", str(tmp_path / "missing.csv"), "--out", str(out)], "no such file")
    wrong = tmp_path / "wrong.csv"
    wrong.write_text("nb201_index,arch_str,unique_str,cifar10_acc\n0,x,y,1.0\n")
    _fails(["nb201", "--src", str(wrong), "--out", str(out)], "missing column", "cifar10_test_acc")
    _fails(["nb201", "--dataset", "mnist", "--out", str(out)], "unknown NAS-Bench-201 data set 'mnist'")
    _fails(["help-latency", "--devices", "1080ti_1,tpu_v9", "--out", str(out)], "tpu_v9")
    _fails(["nb101", "--dataset", "cifar10", "--out", str(out)], "--dataset applies to nb201 only")
    _fails(["ecnas", "--src", str(wrong), "--out", str(out)], "not a known EC-NAS file")
    bad_json = tmp_path / "nb101.json"
    bad_json.write_text(json.dumps({"key": ["a"]}))
    _fails(["nb101", "--src", str(bad_json), "--out", str(out)], "missing field")
    bad_cell = tmp_path / "ecnas_5v_4ep.csv"
    src = (EXTERNAL / "ecnas" / "ecnas_5v_4ep.csv").read_text().splitlines()
    bad_cell.write_text("\n".join([src[0], src[1].replace("conv3x3-bn-relu", "conv7x7-bn-relu", 1)]) + "\n")
    _fails(["ecnas", "--src", str(bad_cell), "--out", str(out)], "unknown op 'conv7x7-bn-relu'")
    assert not out.exists()
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    _fails(["nb101", "--out", str(a_file)], "not a folder")


def test_out_holding_another_import_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "c"
    assert (
        runner.invoke(
            app, ["import", "ecnas", "--src", str(EXTERNAL / "ecnas" / "ecnas_4v_rtx3060.csv"), "--out", str(out)]
        ).exit_code
        == 0
    )
    before = sorted(p.name for p in out.iterdir())
    _fails(["ecnas", "--src", str(EXTERNAL / "ecnas" / "ecnas_4v_rtx3090.csv"), "--out", str(out)], "protocol")
    assert sorted(p.name for p in out.iterdir()) == before
    (out / SIDECAR).unlink()  # as if the first import had been killed before finishing
    _fails(["ecnas", "--src", str(EXTERNAL / "ecnas" / "ecnas_4v_rtx3060.csv"), "--out", str(out)], "unfinished")


# --- where the public files are found ---------------------------------------------------------------------------


def test_public_files_ship_inside_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(EXTERNAL_ENV, raising=False)
    assert external_dir() == EXTERNAL and EXTERNAL.is_relative_to(Path(str(files("narch"))))
    readme = (EXTERNAL / "README.md").read_text()
    for src in SOURCES.values():
        assert src.locate() == (EXTERNAL / src.path).resolve()
        assert src.upstream.split()[0] in readme, f"{src.path}: its upstream is not credited in the README"
    with pytest.raises(SourceError) as e:
        Source("nb201/gone.csv", "someone/somewhere @ 1234567", "MIT").locate()
    assert f"searched the packaged data folder {EXTERNAL}" in str(e.value) and "someone/somewhere" in str(e.value)


def test_missing_file_names_the_folder_searched_and_the_upstream(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mine, out = tmp_path / "mine", tmp_path / "out"
    nb101 = SOURCES["nb101"]
    (mine / "nb101").mkdir(parents=True)
    shutil.copy(EXTERNAL / nb101.path, mine / nb101.path)
    monkeypatch.setenv(EXTERNAL_ENV, str(mine))
    assert nb101.locate() == (mine / nb101.path).resolve()  # a user's own copies replace the packaged ones
    searched = f"searched ${EXTERNAL_ENV} {mine.resolve()}"
    _fails(["nb201", "--out", str(out)], searched, "v-tao/nats-bench-landscape", "--src")
    _fails(["ecnas", "--out", str(out)], searched, "PedramBakh/EC-NAS-Bench")
    monkeypatch.delenv(EXTERNAL_ENV)
    _fails(["help-latency", "--src", str(mine), "--out", str(out)], f"searched {mine}", "HayeonLee/HELP")
    assert not out.exists()


def test_import_nb201_works_with_no_arguments(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(EXTERNAL_ENV, raising=False)
    res = runner.invoke(app, ["import", "nb201"])
    assert res.exit_code == 0, res.output
    assert "runs/nb201_cifar10: 30568 rows written" in res.output
    assert read_corpus(tmp_path / "runs" / "nb201_cifar10").height == 30_568
    res = runner.invoke(app, ["import", "table", "--src", "x.csv"])
    assert res.exit_code != 0 and "import table needs --out" in res.output

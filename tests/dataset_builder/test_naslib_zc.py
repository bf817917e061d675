"""NASLib's precomputed zero-cost scores in imported corpora: the rows of the networks NASLib scored get its values
(in our units), every other row stays null, no other column changes, a rerun writes nothing, and the folder stays a
finished import whose rows still join back to their source rows."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from typer.testing import CliRunner

from narch.cli import app
from narch.dataset_builder.corpus import CorpusError, read_corpus
from narch.dataset_builder.importers import nb101
from narch.dataset_builder.importers.naslib_zc import (
    NASLIB,
    _value,
    fill_from_naslib,
    nb201_arch_str,
    read_naslib,
)
from narch.dataset_builder.importers.nb101 import prepare_nb101
from narch.dataset_builder.importers.nb201 import DATASETS, prepare_nb201
from narch.dataset_builder.importers.sources import SOURCES, SourceError, external_dir
from narch.dataset_builder.importers.writer import SIDECAR, write_import
from narch.dataset_builder.schema import ZC_COLUMNS

SUBSET = 400  # NAS-Bench-201 cells 0..399: 292 networks, 63 of them scored by NASLib on CIFAR-10
PIN_201 = ("(2, 3, 4, 2, 2, 4)", "8d4648340373909b", 117)  # NASLib key, arch_id, NAS-Bench-201 index
PIN_101 = (  # the one NASLib cell among NAS-Bench-101's 1k sample
    "(0, 0, 1, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 1, 0, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, "
    "0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 4, 3, 3, 2, 2, 1)",
    "ce01920baf01baa9",
)


def _naslib(name: str) -> dict[str, Any]:
    return json.loads((external_dir() / "naslib_zc" / name).read_text())


def _snapshot(d: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(d.iterdir()) if p.is_file()}


@pytest.fixture
def nb201_src(tmp_path: Path) -> Path:
    src = tmp_path / "nb201_200ep.csv"
    pl.read_csv(SOURCES["nb201_200ep"].locate(), n_rows=SUBSET).write_csv(src)
    return src


@pytest.fixture
def nb201(tmp_path: Path, nb201_src: Path) -> Path:
    out = tmp_path / "nb201"
    write_import(prepare_nb201(out, dataset="cifar10", src=nb201_src))
    return out


def test_naslib_data_sets_are_the_importers_tasks() -> None:
    assert set(NASLIB) == {ds.task for ds in DATASETS.values()} | {nb101.TASK}
    # by hand: edges (1,2) none, (1,3) skip, (1,4) 3x3, (2,3) 3x3, (2,4) 3x3, (3,4) none
    assert nb201_arch_str((1, 0, 2, 2, 2, 1)) == (
        "|none~0|+|skip_connect~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|none~2|"
    )


def test_values_in_our_units_and_naslib_stand_ins_for_no_score_are_null() -> None:
    assert _value("params", {"score": 0.5, "time": 1.0}, "x") == 500_000.0
    assert _value("flops", 3.0, "x") == 6e6  # millions of multiply-accumulates -> FLOPs
    assert _value("synflow", 2.0, "x") == math.exp(2.0) and _value("synflow", 0.0, "x") == 0.0
    assert _value("synflow", -math.log(1e8), "x") is None  # NASLib's -1e8 for a NaN, through its log
    assert _value("jacov", -1e8, "x") is None and _value("naswot", {"score": -math.inf}, "x") is None
    with pytest.raises(SourceError, match="x: snip is 'a', not a number"):
        _value("snip", "a", "x")


def test_nb201_scored_networks_get_naslib_values_and_nothing_else_changes(nb201: Path, nb201_src: Path) -> None:
    before = read_corpus(nb201)
    f = fill_from_naslib(nb201)
    after = read_corpus(nb201)
    other = [c for c in before.columns if c not in ZC_COLUMNS]
    assert after.select(other).equals(before.select(other)), "the same rows in the same order, no other value changed"

    key, arch_id, index = PIN_201
    entry = _naslib("zc_nasbench201_725.json")["cifar10"][key]
    pinned = after.with_row_index().filter(pl.col("arch_id") == arch_id)
    n = pinned.height
    assert n >= 1
    assert pinned["zc_synflow"].to_list() == [math.exp(entry["synflow"]["score"])] * n  # NASLib stores its log
    assert pinned["zc_params"].to_list() == [entry["params"]["score"] * 1e6] * n
    assert pinned["zc_flops"].to_list() == [entry["flops"]["score"] * 2e6] * n
    assert pinned["zc_naswot"].to_list() == [entry["nwot"]["score"]] * n
    assert pinned["zc_snip"].to_list() == [entry["snip"]["score"]] * n
    assert pinned["zc_zen"].null_count() == n, "a proxy NASLib lacks stays null"

    scored = after["arch_id"].is_in(f.scores.frame["arch_id"].implode())
    rest = after.filter(~scored)
    assert rest.height > 0 and all(rest[c].null_count() == rest.height for c in ZC_COLUMNS)
    assert f.matched == after.filter(scored)["arch_id"].n_unique() == 63
    assert f.rows_filled == after.height - rest.height
    assert (f.scores.cells, f.scores.unmappable) == (725, 1)

    files = _snapshot(nb201)
    again = fill_from_naslib(nb201)
    assert (again.matched, again.rows_filled) == (63, 0)
    assert _snapshot(nb201) == files, "a rerun writes nothing"

    assert prepare_nb201(nb201, dataset="cifar10", src=nb201_src).done, "still a finished import"
    meta = json.loads((nb201 / SIDECAR).read_text())
    (part,) = meta["parts"].values()
    source_rows = [i for seg in part["segments"] for a, b in seg["source_rows"] for i in range(a, b)]
    assert len(source_rows) == after.height
    assert index in {source_rows[i] for i in pinned["index"]}, "rows join back to their NAS-Bench-201 index"
    assert meta["zero_cost_source"]["file"] == "zc_nasbench201_725.json"


def test_cli_nb101_fills_the_one_shared_cell_and_reruns_as_a_no_op(tmp_path: Path) -> None:
    out = tmp_path / "nb101"
    write_import(prepare_nb101(out))
    runner = CliRunner()
    res = runner.invoke(app, ["zc", "--corpus", str(out), "--from-naslib"])
    assert res.exit_code == 0, res.output
    assert len(res.output.strip().splitlines()) == 1 and "1 networks matched, 4 rows filled" in res.output

    key, arch_id = PIN_101
    entry = _naslib("zc_nasbench101_500.json")["nasbench101"]["cifar10"][key]
    df = read_corpus(out)
    pinned, rest = df.filter(pl.col("arch_id") == arch_id), df.filter(pl.col("arch_id") != arch_id)
    assert pinned["epochs"].sort().to_list() == [4, 12, 36, 108]
    assert pinned["zc_synflow"].to_list() == [math.exp(entry["synflow"])] * 4
    assert pinned["zc_params"].to_list() == [entry["params"] * 1e6] * 4
    assert pinned["zc_naswot"].null_count() == 4, "the NAS-Bench-101 file has no nwot"
    assert all(rest[c].null_count() == rest.height for c in ZC_COLUMNS)

    again = runner.invoke(app, ["zc", "--corpus", str(out), "--from-naslib"])
    assert again.exit_code == 0 and "1 networks matched, 0 rows filled" in again.output
    assert prepare_nb101(out).done


def test_bad_naslib_input_is_named(nb201: Path, tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match="task 'mnist1d' has no NASLib zero-cost scores"):
        read_naslib("mnist1d")
    bad = tmp_path / "zc.json"
    bad.write_text(json.dumps({"cifar10": {"(9, 9)": {"snip": 1.0}}}))
    with pytest.raises(SourceError, match=r"cifar10 cell \(9, 9\): expected 6 op indices"):
        fill_from_naslib(nb201, src=bad)
    bad.write_text(json.dumps({"cifar100": {}}))
    with pytest.raises(SourceError, match="no data set 'cifar10'"):
        fill_from_naslib(nb201, src=bad)
    with pytest.raises(SourceError, match=r"nope\.json: no such file"):
        fill_from_naslib(nb201, src=tmp_path / "nope.json")
    assert read_corpus(nb201)[ZC_COLUMNS[0]].null_count() == read_corpus(nb201).height, "nothing was filled"

"""Bring your own benchmark: a hand-written cell benchmark, as layer lists (CSV) and as cells (Parquet: NAS-Bench-201
strings; JSONL: op matrices and NAS-Bench-101 adjacencies) with a user op mapping that has a separable and a dilated
conv, through `narch import table`; the two forms give the same corpus, and a quick leaderboard ranks it. Bad input
fails in one line naming the file, the row and the rule, and writes nothing."""

from __future__ import annotations

import csv
import json
import math
import random
from dataclasses import replace
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from typer.testing import CliRunner

from narch.cli import app
from narch.dataset_builder.corpus import read_corpus, read_manifest
from narch.dataset_builder.importers.writer import SIDECAR
from narch.query import open_corpus
from narch.search_space import Layer, Network, add, avgpool, conv, maxpool, sep_conv, trace_network
from tests.conftest import readme_blocks

runner = CliRunner()
C, SHAPE, CLASSES = 16, (3, 16, 16), 10
OPS: dict[str, Any] = {
    "none": "none",
    "skip_connect": "skip",
    "conv_3x3": [{"op": "conv", "channels": "C", "kernel": 3}],
    "conv_1x1": [{"op": "conv", "channels": "C", "kernel": 1}],
    "sep_conv_3x3": [{"op": "conv", "channels": "C", "kernel": 3, "groups": "C"},
                     {"op": "conv", "channels": "C", "kernel": 1}],
    "dil_conv_3x3": [{"op": "conv", "channels": "C", "kernel": 3, "dilation": 2}],
    "avg_pool_3x3": [{"op": "avgpool", "kernel": 3, "stride": 1}],
}
LAYERS: dict[str, tuple[Layer, ...]] = {  # the same ops written with the spec's constructors
    "skip_connect": (),
    "conv_3x3": (conv(C, 3),),
    "conv_1x1": (conv(C, 1),),
    "sep_conv_3x3": sep_conv(C, C, 3),
    "dil_conv_3x3": (conv(C, 3, dilation=2),),
    "avg_pool_3x3": (avgpool(3, 1),),
}
FIRST = ("conv_3x3", "conv_1x1", "sep_conv_3x3", "dil_conv_3x3", "avg_pool_3x3")
SHORTCUT = ("skip_connect", "conv_1x1", "sep_conv_3x3", "dil_conv_3x3", "conv_3x3")
CELLS = random.Random(0).sample([(a, b, c) for a in FIRST for b in FIRST for c in SHORTCUT], 40)
ZERO_CELL = "|none~0|+|none~0|none~1|"  # its output is zero: skipped and counted


def _cell_string(a: str, b: str, c: str) -> str:
    """A 3-node cell: node 1 = a(node 0); node 2 = c(node 0) + b(node 1)."""
    return f"|{a}~0|+|{c}~0|{b}~1|"


def _expected(a: str, b: str, c: str) -> Network:
    """The layer DAG of that cell, written by hand: stem, a, then node 2's terms in node order, then their sum."""
    layers: list[Layer] = [conv(C, 3)]

    def chain(op: str, src: int) -> int:
        for x in LAYERS[op]:
            layers.append(x if src == len(layers) - 1 else replace(x, inputs=(src,)))
            src = len(layers) - 1
        return src

    n1 = chain(a, 0)
    t_c = chain(c, 0)
    t_b = chain(b, n1)
    layers.append(add(t_c, t_b))
    return Network(tuple(layers))


def _metrics(net: Network) -> dict[str, float]:
    """Synthetic labels, monotone in the network's true forward work (so a FLOPs baseline ranks them)."""
    macs = trace_network(net, SHAPE, CLASSES).macs
    return {"val_pct": round(50 + 45 * (1 - math.exp(-macs / 2e6)), 4), "time_ms": round(200 + macs * 1e-4, 4)}


def _config(arch: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "name": "toy-cells",
        "task": "toy-cells-16px",
        "data": {"n_train": 5000, "n_classes": CLASSES, "input_shape": list(SHAPE)},
        "training": {"epochs": 20, "batch_size": 64, "optimizer": "sgd", "lr": 0.05},
        "device": {"kind": "cuda", "name": "a GPU of the benchmark's authors"},
        "arch": arch,
        "metrics": {"val_acc": {"column": "val_pct", "scale": 0.01},
                    "train_time_s": {"column": "time_ms", "scale": 0.001}},
        **extra,
    }


EDGES = {"form": "edges", "column": "cell", "channels": C, "ops": OPS}


def _write(path: Path, obj: Any) -> Path:
    path.write_text(json.dumps(obj))
    return path


def _import(src: Path, config: Path, out: Path) -> str:
    r = runner.invoke(app, ["import", "table", "--src", str(src), "--out", str(out), "--config", str(config)])
    assert r.exit_code == 0, r.output
    return r.output


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The benchmark in both forms, imported: the cells from Parquet, the layer lists from CSV."""
    d = tmp_path_factory.mktemp("byob")
    rows = [{"cell": _cell_string(*abc), **_metrics(_expected(*abc))} for abc in CELLS]
    rows.insert(3, {"cell": ZERO_CELL, "val_pct": 10.0, "time_ms": 100.0})
    rows = [{"idx": 1000 + i, **r} for i, r in enumerate(rows)]  # the benchmark's own index
    pl.DataFrame(rows).write_parquet(d / "cells.parquet")
    with (d / "layers.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, ["arch", "val_pct", "time_ms"])
        w.writeheader()
        for abc in CELLS:
            net = _expected(*abc)
            w.writerow({"arch": net.to_json(), **_metrics(net)})
    out = {"cells": d / "cells_corpus", "layers": d / "layers_corpus", "dir": d}
    cfg = _config(EDGES, index_column="idx", name_column="cell")
    printed = _import(d / "cells.parquet", _write(d / "cells.json", cfg), out["cells"])
    assert "40 rows written; skipped: zero_output 1; approximated: none" in printed
    _import(d / "layers.csv", _write(d / "layers.json", _config({"form": "layers", "column": "arch"})), out["layers"])
    return out


def test_cells_map_as_written_by_hand_and_both_forms_give_one_corpus(bench: dict[str, Path]) -> None:
    cells, layers = read_corpus(bench["cells"]), read_corpus(bench["layers"])
    assert cells.height == layers.height == 40
    want = [_expected(*abc) for abc in CELLS]
    assert cells["arch_id"].to_list() == [n.arch_id for n in want] == layers["arch_id"].to_list()
    assert cells["bench_index"].to_list() == [1000 + i + (i >= 3) for i in range(40)]
    cols = ["arch_id", "arch_json", "val_acc", "train_time_s", "params", "flops_fwd", "model_size_bytes",
            "flops_train_step", "task", "n_train", "n_classes", "input_shape", "epochs", "device_kind"]
    assert cells.select(cols).equals(layers.select(cols))
    row = cells.row(0, named=True)
    assert row["val_acc"] == pytest.approx(_metrics(want[0])["val_pct"] / 100)
    assert row["train_time_s"] == pytest.approx(_metrics(want[0])["time_ms"] / 1000)
    assert (row["task"], row["n_train"], row["input_shape"], row["epochs"]) == ("toy-cells-16px", 5000, [3, 16, 16], 20)
    assert (row["status"], row["device_kind"], row["batch_size"], row["lr"]) == ("ok", "cuda", 64, 0.05)
    assert 0.5 < cells["val_acc"].min() < cells["val_acc"].max() < 0.95  # type: ignore[operator]


def test_the_query_api_finds_a_network_by_the_benchmarks_index_and_name(bench: dict[str, Path]) -> None:
    corpus = open_corpus(bench["cells"])
    cell, want = _cell_string(*CELLS[5]), _expected(*CELLS[5])
    (s,) = corpus.lookup(cell).settings
    assert s["val_acc"].mean == pytest.approx(_metrics(want)["val_pct"] / 100) and s["val_acc"].unit == "fraction"
    assert corpus.arch_id(1006) == corpus.arch_id(cell) == want.arch_id  # row 5 of the cells is row 6 of the file
    assert read_corpus(bench["layers"])["bench_index"].null_count() == 40


def test_separable_and_dilated_convs_cost_what_they_are(bench: dict[str, Path]) -> None:
    rows = read_corpus(bench["cells"])
    sep = next(i for i, abc in enumerate(CELLS) if "sep_conv_3x3" in abc)
    d = json.loads(rows["arch_json"][sep])
    assert d["schema"] == 2 and any(x.get("groups") == C for x in d["layers"])
    t = trace_network(Network.from_json(rows["arch_json"][sep]), SHAPE, CLASSES)
    assert rows["params"][sep] == t.params and rows["model_size_bytes"][sep] == t.model_size_bytes
    assert [lt.weights for lt in t.layers if lt.op.value == "conv" and lt.weights == 3 * 3 * C]  # depthwise 3x3
    # the same cell with a plain 3x3 conv in place of each separable one costs more (3*3*C*C against 3*3*C + C*C)
    plain = _expected(*("conv_3x3" if op == "sep_conv_3x3" else op for op in CELLS[sep]))
    assert t.params < trace_network(plain, SHAPE, CLASSES).params
    dil = next(i for i, abc in enumerate(CELLS) if "dil_conv_3x3" in abc)
    assert any(x.dilation == 2 for x in Network.from_json(rows["arch_json"][dil]).layers)


def test_sidecar_and_manifest_name_the_sources_and_a_rerun_is_a_no_op(bench: dict[str, Path]) -> None:
    meta = json.loads((bench["cells"] / SIDECAR).read_text())
    assert meta["import"] == "table toy-cells" and meta["skipped"] == {"zero_output": 1}
    (part,) = meta["parts"].values()
    assert part["source"] == "cells.parquet" and part["source_rows"] == [[0, 3], [4, 41]]
    protocol = read_manifest(bench["cells"]).protocol
    assert [s["file"] for s in protocol["sources"]] == ["cells.parquet", "cells.json"]
    assert protocol["config"]["arch"]["ops"]["sep_conv_3x3"] == OPS["sep_conv_3x3"]
    before = sorted(p.name for p in bench["cells"].iterdir())
    printed = _import(bench["dir"] / "cells.parquet", bench["dir"] / "cells.json", bench["cells"])
    assert "already imported" in printed and sorted(p.name for p in bench["cells"].iterdir()) == before


def test_a_quick_leaderboard_ranks_the_imported_benchmark(bench: dict[str, Path]) -> None:
    out = bench["dir"] / "lb"
    r = runner.invoke(app, ["leaderboard", "--corpus", str(bench["cells"]), "--out", str(out), "--target", "val_acc",
                            "--predictors", "mean,flops,ridge", "--seeds", "1", "--trials", "0", "--quick",
                            "--no-freeze"])
    assert r.exit_code == 0, r.output
    board = pl.read_parquet(out / "leaderboard.parquet")
    assert set(board["predictor"]) == {"mean", "flops", "ridge"} and set(board["target"]) == {"val_acc"}
    full = board.filter(pl.col("size") == pl.col("size").max())
    assert full["size"][0] == 32 and set(full["n_test"]) == {8}  # 40 architectures, 8 held out
    tau = dict(zip(full["predictor"], full["kendall_tau_mean"], strict=True))
    assert tau["flops"] > 0.95  # the labels are monotone in the true FLOPs: the mapped costs must be right
    assert tau["mean"] == 0.0
    md = (out / "leaderboard.md").read_text()
    assert "Largest training size: 32 architectures" in md and "| flops |" in md


def test_node_cells_and_op_matrices_from_jsonl(tmp_path: Path) -> None:
    adj = [[0, 1, 1, 0], [0, 0, 0, 1], [0, 0, 0, 1], [0, 0, 0, 0]]
    ops = {"conv3x3": [{"op": "conv", "channels": "C", "kernel": 3}],
           "sep5x5": [{"op": "conv", "channels": "C", "kernel": 5, "groups": "C"},
                      {"op": "conv", "channels": "C*2", "kernel": 1}, {"op": "conv", "channels": "C", "kernel": 1}],
           "maxpool": [{"op": "maxpool", "kernel": 3, "stride": 1}], "zero": "none"}
    rows = [{"adj": adj, "ops": ["input", "sep5x5", "maxpool", "output"], "acc": 0.91, "t": 12.5, "seed": 3},
            {"adj": adj, "ops": ["input", "conv3x3", "zero", "output"], "acc": 0.88, "t": 10.0, "seed": 4}]
    src = tmp_path / "nodes.jsonl"
    src.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    cfg = _config({"form": "nodes", "column": "adj", "ops_column": "ops", "channels": 8, "ops": ops,
                   "stem": [{"op": "conv", "channels": "C", "kernel": 3, "stride": 2}]}, seed_column="seed")
    cfg["metrics"] = {"test_acc": "acc", "train_time_s": "t"}
    _import(src, _write(tmp_path / "nodes.json", cfg), tmp_path / "nodes")
    got = read_corpus(tmp_path / "nodes")
    stem = conv(8, 3, 2)
    sep = (conv(8, 5, groups=8), conv(16, 1), conv(8, 1))
    want0 = Network((stem, *sep, replace(maxpool(3, 1), inputs=(0,)), add(3, 4)))
    want1 = Network((stem, conv(8, 3)))  # node 2 is zero: the output is node 1 alone
    assert got["arch_id"].to_list() == [want0.arch_id, want1.arch_id]
    assert got["seed"].to_list() == [3, 4] and got["test_acc"].to_list() == [0.91, 0.88]
    assert got["val_acc"].null_count() == 2
    meta = json.loads((tmp_path / "nodes" / SIDECAR).read_text())
    assert meta["approximations"] == {"zero_node": 1}

    matrix = [[None, "conv_3x3", "skip_connect"], [None, None, "dil_conv_3x3"], [None, None, None]]
    src = tmp_path / "matrix.jsonl"
    src.write_text(json.dumps({"cell": matrix, "val_pct": 70.0, "time_ms": 300.0}) + "\n")
    _import(src, _write(tmp_path / "matrix.json", _config(EDGES)), tmp_path / "matrix")
    (arch_id,) = read_corpus(tmp_path / "matrix")["arch_id"].to_list()
    assert arch_id == _expected("conv_3x3", "dil_conv_3x3", "skip_connect").arch_id


def test_per_row_epochs_give_per_budget_protocols(tmp_path: Path) -> None:
    nets = [Network((conv(8),)), Network((conv(16), maxpool(2)))]
    src = _table(tmp_path / "b.jsonl", [{"arch": json.loads(n.to_json()), "ep": e, "val_pct": 60 + e / 10, "time_ms": e}
                                        for n in nets for e in (12, 200)])
    cfg = _config({"form": "layers", "column": "arch"}, epochs_column="ep")
    del cfg["training"]["epochs"]
    _import(src, _write(tmp_path / "b.json", cfg), tmp_path / "b")
    rows = read_corpus(tmp_path / "b")
    assert rows["epochs"].to_list() == [12, 200, 12, 200]
    hashes = read_manifest(tmp_path / "b").protocol["budget_protocol_hashes"]
    assert rows["protocol_hash"].to_list() == [hashes["12"], hashes["200"]] * 2 and hashes["12"] != hashes["200"]


def test_the_readme_sample_config_imports_a_table(tmp_path: Path) -> None:
    (block,) = readme_blocks("### Bring your own benchmark", lang="json")
    cfg = _write(tmp_path / "bench.json", json.loads(block))
    with (tmp_path / "bench.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, ["index", "arch_str", "valid_acc_pct", "train_seconds"])
        w.writeheader()
        w.writerow({"index": 0, "arch_str": "|sep_conv_3x3~0|+|skip_connect~0|dil_conv_3x3~1|",
                    "valid_acc_pct": 91.5, "train_seconds": 3600})
        w.writerow({"index": 1, "arch_str": "|max_pool_3x3~0|+|none~0|sep_conv_3x3~1|", "valid_acc_pct": 88.0,
                    "train_seconds": 3000})
    assert "2 rows written" in _import(tmp_path / "bench.csv", cfg, tmp_path / "mybench")
    rows = read_corpus(tmp_path / "mybench")
    assert rows["val_acc"].to_list() == [0.915, 0.88] and rows["bench_arch"][1].startswith("|max_pool_3x3~0|")


# --- bad input: one line naming the file, the row and the rule; nothing written -------------------------------


def _fails(src: Path, config: Path, out: Path, *expect: str) -> None:
    r = runner.invoke(app, ["import", "table", "--src", str(src), "--out", str(out), "--config", str(config)])
    assert r.exit_code == 2, r.output
    msg = r.output.strip()
    assert len(msg.splitlines()) == 1 and msg.startswith("narch: error:"), msg
    for e in expect:
        assert e in msg, msg
    assert not out.exists()


def _table(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


def test_bad_rows_name_the_file_the_row_and_the_rule(tmp_path: Path) -> None:
    cfg, out = _write(tmp_path / "c.json", _config(EDGES)), tmp_path / "out"
    good = {"cell": _cell_string(*CELLS[0]), "val_pct": 70.0, "time_ms": 300.0}
    cases = [
        ({"cell": "|conv_3x3~0|+|conv_3x3~0|conv_7x7~1|"}, ["row 1:", "unknown op 'conv_7x7'", "known: none"]),
        ({"val_pct": 170.0}, ["row 1:", "val_acc = 1.7", "'val_pct' x 0.01", "must be in [0, 1]"]),
        ({"time_ms": -5}, ["row 1:", "train_time_s = -0.005", "must be finite and >= 0"]),
        ({"val_pct": "high"}, ["row 1:", "column 'val_pct' = 'high' is not a number"]),
        ({"cell": [[None, "conv_3x3"], ["conv_1x1", None]]}, ["row 1:", "edge 1->0 breaks the upper-triangular"]),
        ({"cell": "|conv_3x3~1|"}, ["row 1:", "node 1 edge 0 must read node 0"]),
        ({"cell": None}, ["row 1:", "column 'cell' is empty"]),
    ]
    for change, expect in cases:
        src = _table(tmp_path / "t.jsonl", [good, {**good, **change}])
        _fails(src, cfg, out, str(src), *expect)
    src = _table(tmp_path / "t.jsonl", [good, {"cell": good["cell"], "val_pct": 1.0}])
    _fails(src, cfg, out, "row 1: missing column(s) ['time_ms']")
    csv_src = tmp_path / "t.csv"
    csv_src.write_text("cell,val_pct\nx,1\n")
    _fails(csv_src, cfg, out, str(csv_src), "missing column(s) ['time_ms']")
    nodes = _write(tmp_path / "n.json", _config({"form": "nodes", "column": "adj", "ops_column": "ops", "channels": 8,
                                                  "ops": {"conv3x3": OPS["conv_3x3"]}}))
    bad_adj = {"adj": [[0, 1], [1, 0]], "ops": ["input", "output"], "val_pct": 50, "time_ms": 1}
    _fails(_table(tmp_path / "n.jsonl", [bad_adj]), nodes, out, "row 0:", "edge 1->0 breaks the upper-triangular")
    _fails(_table(tmp_path / "n.jsonl", [{**bad_adj, "adj": [[0, 2], [0, 0]]}]), nodes, out, "row 0:",
           "adjacency[0][1] must be 0 or 1, got 2")
    bad_op = {**bad_adj, "adj": [[0, 1, 0], [0, 0, 1], [0, 0, 0]], "ops": ["input", "conv5x5", "output"]}
    _fails(_table(tmp_path / "n.jsonl", [bad_op]), nodes, out, "row 0:", "node 1 has unknown op 'conv5x5'")
    layers = _write(tmp_path / "l.json", _config({"form": "layers", "column": "arch"}))
    grouped = Network((conv(6, 3, groups=3),)).to_json()  # constructible, but its 3 groups do not divide 1 channel
    rows = [{"arch": Network((conv(8),)).to_json(), "val_pct": 50, "time_ms": 1},
            {"arch": json.dumps({"layers": [{"op": "conv", "channels": 8, "kernel": 4}]}), "val_pct": 50, "time_ms": 1},
            {"arch": grouped, "val_pct": 50, "time_ms": 1}]
    _fails(_table(tmp_path / "l.jsonl", rows[:2]), layers, out, "row 1:", "conv kernel must be one of")
    shape1 = _write(tmp_path / "l1.json", {**_config({"form": "layers", "column": "arch"}),
                                           "data": {"n_train": 10, "n_classes": 2, "input_shape": [1, 40]}})
    _fails(_table(tmp_path / "l.jsonl", [rows[0], rows[2]]), shape1, out, "row 1:",
           "layer 0: conv groups 3 must divide its 1 input channels")


@pytest.mark.parametrize(
    ("change", "expect"),
    [
        ({"arch": {**EDGES, "ops": {**OPS, "wide": [{"op": "conv", "channels": "C*2", "kernel": 1}]}}},
         ["arch.ops.wide: must keep the cell's shape (16 ch, /1)", "makes (32 ch, /1)"]),
        ({"arch": {**EDGES, "ops": {**OPS, "bad": [{"op": "conv", "channels": "C", "kernel": 3, "groups": 3}]}}},
         ["arch.ops.bad: layer 0: conv groups 3 must divide its 16 output channels"]),
        ({"arch": {**EDGES, "ops": {**OPS, "x": [{"op": "conv", "channels": "2C"}]}}},
         ["arch.ops.x[0].channels: '2C' is neither an integer nor 'C'"]),
        ({"arch": {**EDGES, "ops": {**OPS, "x": [{"op": "add", "inputs": [0, 1]}]}}}, ["no 'add', no 'inputs'"]),
        ({"arch": {**EDGES, "form": "graph"}}, ["arch.form: expected one of layers, nodes, edges"]),
        ({"metrics": {"val_accuracy": "val_pct"}}, ["metrics.val_accuracy: not a numeric corpus column"]),
        ({"metrics": {"task": "val_pct"}}, ["metrics.task: not a numeric corpus column"]),
        ({"data": {"n_train": 10, "n_classes": 2}}, ["data.input_shape: expected [C, L] or [C, H, W]"]),
        ({"training": {}}, ["training.epochs: expected an integer >= 1"]),
        ({"epochs_column": "ep"}, ["give either training.epochs or epochs_column"]),
        ({"colour": "red"}, ["config: unknown key(s) ['colour']"]),
    ],
)
def test_bad_configs_name_the_key(change: dict[str, Any], expect: list[str], tmp_path: Path) -> None:
    cfg = _write(tmp_path / "c.json", {**_config(EDGES), **change})
    src = _table(tmp_path / "t.jsonl", [{"cell": _cell_string(*CELLS[0]), "val_pct": 70.0, "time_ms": 300.0}])
    _fails(src, cfg, tmp_path / "out", str(cfg), *expect)


def test_table_needs_its_config_and_the_config_needs_a_table(tmp_path: Path) -> None:
    r = runner.invoke(app, ["import", "table", "--out", str(tmp_path / "o"), "--src", str(tmp_path / "t.csv")])
    assert r.exit_code == 2 and "a table import needs --src (the table) and --config" in r.output
    r = runner.invoke(app, ["import", "nb101", "--out", str(tmp_path / "o"), "--config", str(tmp_path / "c.json")])
    assert r.exit_code == 2 and "--config applies to table only, not nb101" in r.output

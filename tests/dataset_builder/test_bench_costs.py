"""The whole benchmark networks' params and FLOPs (importers/bench_costs.py) against the benchmarks' own counts and a
torch build, and the backfill that gives finished imports the benchmark index, name, params and FLOPs."""

from __future__ import annotations

import json
import random
import shutil
from importlib.resources import files
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode
from typer.testing import CliRunner

from narch.cli import app
from narch.dataset_builder.corpus import read_corpus
from narch.dataset_builder.importers import nb201_network, prepare_import, run_import
from narch.dataset_builder.importers.backfill import BENCH_COLUMNS, source_rows
from narch.dataset_builder.importers.bench_costs import nb101_cost, nb201_cost
from narch.dataset_builder.importers.cells import parse_nb201
from narch.dataset_builder.importers.naslib_zc import nb201_arch_str
from narch.dataset_builder.importers.nb101 import unpad

EXTERNAL = Path(str(files("narch.data") / "external"))
ALL_CONV3 = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|"
NB201_SHAPES = {"cifar10": (10, 32), "cifar100": (100, 32), "ImageNet16-120": (120, 16)}
runner = CliRunner()


def _score(entry: object) -> float:
    return float(entry["score"] if isinstance(entry, dict) else entry)  # type: ignore[index]


def test_nb201_params_equal_naslibs_count_for_every_scored_cell() -> None:
    data = json.loads((EXTERNAL / "naslib_zc" / "zc_nasbench201_725.json").read_text())
    for ds, (n_classes, hw) in NB201_SHAPES.items():
        for key, entry in data[ds].items():
            ops = tuple(int(x) for x in key.strip("()").split(","))
            cost = nb201_cost(nb201_arch_str(ops), n_classes=n_classes, hw=hw)
            assert cost.params == round(_score(entry["params"]) * 1e6), (ds, key)


def test_nb201_all_conv3x3_by_hand() -> None:
    # stem 464; cells 5 x 6 x (9C^2 + 2C) at C = 16, 32, 64; the two ResNet blocks; last BN 128; classifier 650
    assert nb201_cost(ALL_CONV3, n_classes=10, hw=32).params == 1_531_546
    # every 3x3 edge costs 9 C^2 HW = 2,359,296 MACs at each stage; 90 of them, the stem and the two blocks
    macs = 90 * 2_359_296 + 3 * 16 * 9 * 1024 + 2 * (9 * 2 * 16 * 16 * 16 * 16 + 9 * 32 * 32 * 256 + 16 * 32 * 256)
    macs += 640
    assert nb201_cost(ALL_CONV3, n_classes=10, hw=32).flops_fwd == 2 * macs


class _ReLUConvBN(nn.Sequential):
    def __init__(self, c_in: int, c_out: int, k: int, stride: int = 1) -> None:
        super().__init__(nn.ReLU(), nn.Conv2d(c_in, c_out, k, stride, k // 2, bias=False), nn.BatchNorm2d(c_out))


class _Cell(nn.Module):  # xautodl's InferCell, C_in == C_out, stride 1
    def __init__(self, arch_str: str, c: int) -> None:
        super().__init__()
        self.edges = parse_nb201(arch_str)
        k = {"nor_conv_3x3": 3, "nor_conv_1x1": 1}
        self.ops = nn.ModuleDict({f"{i}_{j}": _ReLUConvBN(c, c, k[op]) if op in k else
                                  nn.AvgPool2d(3, 1, 1, count_include_pad=False) if op == "avg_pool_3x3" else
                                  nn.Identity() for (i, j), op in self.edges.items()})

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes = [x]
        for j in (1, 2, 3):
            terms = [self.ops[f"{i}_{j}"](nodes[i]) for i in range(j) if self.edges[(i, j)] != "none"]
            nodes.append(sum(terms) if terms else torch.zeros_like(x))  # type: ignore[arg-type]
        return nodes[3]


class _Block(nn.Module):  # xautodl's ResNetBasicblock, stride 2
    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.a, self.b = _ReLUConvBN(c_in, c_out, 3, 2), _ReLUConvBN(c_out, c_out, 3)
        self.down = nn.Sequential(nn.AvgPool2d(2, 2), nn.Conv2d(c_in, c_out, 1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.b(self.a(x)) + self.down(x)


def _tiny_network(arch_str: str, n_classes: int) -> nn.Module:
    layers: list[nn.Module] = [nn.Conv2d(3, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16)]
    for c in (16, 32, 64):
        if c > 16:
            layers.append(_Block(c // 2, c))
        layers += [_Cell(arch_str, c) for _ in range(5)]
    layers += [nn.BatchNorm2d(64), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, n_classes)]
    return nn.Sequential(*layers)


def test_nb201_cost_equals_a_torch_build_of_the_network() -> None:
    ops = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
    rng = random.Random(0)
    cells = [ALL_CONV3] + ["|{}~0|+|{}~0|{}~1|+|{}~0|{}~1|{}~2|".format(*rng.choices(ops, k=6)) for _ in range(4)]
    for arch_str in cells:
        for n_classes, hw in NB201_SHAPES.values():
            model = _tiny_network(arch_str, n_classes).eval()
            with FlopCounterMode(display=False) as fc:
                model(torch.zeros(1, 3, hw, hw))
            cost = nb201_cost(arch_str, n_classes=n_classes, hw=hw)
            assert cost.params == sum(p.numel() for p in model.parameters()), arch_str
            assert cost.flops_fwd == fc.get_total_flops(), arch_str


def test_nb101_and_ecnas_params_equal_the_files_trainable_parameters() -> None:
    d = json.loads((EXTERNAL / "nb101" / "nb101_1k_with_train_time.json").read_text())
    for i, want in enumerate(d["trainable_parameters"]):
        adj, ops = unpad(d["adjacency"][i], d["operations"][i], f"cell {i}")
        assert nb101_cost(adj, ops).params == want, i
    for path in sorted((EXTERNAL / "ecnas").glob("*.csv")):
        df = pl.read_csv(path, schema_overrides={"adjacency": pl.String}).unique("module_hash")
        for r in df.iter_rows(named=True):
            n, a = int(r["num_vertices"]), r["adjacency"]
            adj = [[int(a[i * n + j]) for j in range(n)] for i in range(n)]
            assert nb101_cost(adj, r["ops"].split(",")).params == r["trainable_parameters"], (path.name, r)


@pytest.fixture(scope="module")
def nb201(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bench") / "nb201"
    run_import(prepare_import("nb201", out, dataset="cifar10"))
    return out


def test_imported_rows_carry_the_benchmark_index_name_and_whole_network_costs(nb201: Path) -> None:
    df = read_corpus(nb201)
    assert df.select(BENCH_COLUMNS).null_count().row(0) == (0,) * len(BENCH_COLUMNS)
    csv = pl.read_csv(EXTERNAL / "nb201" / "nb201_test_accuracy_200ep.csv")
    where = source_rows(nb201)
    for r in random.Random(2).sample(range(df.height), 30):
        i = where[r][1]
        assert df["bench_index"][r] == i and df["bench_arch"][r] == csv["arch_str"][i]
        assert nb201_network(csv["arch_str"][i]).net.arch_id == df["arch_id"][r]
        assert df["params"][r] == nb201_cost(csv["arch_str"][i], n_classes=10, hw=32).params
        assert json.loads(df["bench_cell"][r])["ops"][0] == "input"


def test_a_finished_import_without_the_columns_gains_them_and_keeps_what_is_there(nb201: Path,
                                                                               tmp_path: Path) -> None:
    old = tmp_path / "old"
    shutil.copytree(nb201, old)
    rows = 0
    for part in sorted(old.glob("part-*.parquet")):  # as a corpus imported before those columns existed
        t = pq.read_table(part)
        for c in ("bench_index", "bench_arch", "bench_cell", "flops_fwd"):
            i = t.schema.get_field_index(c)
            t = t.set_column(i, t.schema.field(i), pa.nulls(t.num_rows, t.schema.field(i).type))
        i = t.schema.get_field_index("params")  # a value that is there stays
        t = t.set_column(i, t.schema.field(i), pa.array([7] * t.num_rows, t.schema.field(i).type))
        pq.write_table(t, part)
        rows += t.num_rows
    res = runner.invoke(app, ["import", "nb201", "--out", str(old)])
    assert res.exit_code == 0, res.output
    assert f"{rows} rows gained" in res.output
    got, want = read_corpus(old), read_corpus(nb201)
    cols = ("bench_index", "bench_arch", "bench_cell", "flops_fwd")
    assert got.select(cols).equals(want.select(cols))
    assert (got["params"] == 7).all() and got["arch_id"].equals(want["arch_id"])
    res = runner.invoke(app, ["import", "nb201", "--out", str(old)])
    assert res.exit_code == 0 and "nothing written" in res.output

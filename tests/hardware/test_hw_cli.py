"""`narch roofline`, `narch hardware bench` and `narch hardware compare` through the typer app."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from narch.cli import app
from narch.hardware.bench import run_bench, save_bench, summary_lines
from narch.hardware.catalogue import bench_cache_path, local_device
from narch.search_space import SEEDS

runner = CliRunner()


@pytest.mark.parametrize("name", sorted(SEEDS))
def test_roofline_for_every_seed_on_five_devices_and_local(name: str) -> None:
    res = runner.invoke(app, ["roofline", "--arch", name, "--task", "mnist1d",
                              "--devices", "t4,a100,h100,h200,l4,local"])
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    for key in ("t4", "a100", "h100", "h200", "l4", "local"):
        row = next(line for line in lines if line.startswith(key + " "))
        assert any(b in row for b in ("compute", "memory", "launch"))
        dominating = row.split()[5]
        assert ":" in dominating or dominating in ("data", "head", "loss", "optimizer")


def test_roofline_from_a_file_and_2d_task(tmp_path: Path) -> None:
    f = tmp_path / "net.json"
    f.write_text(SEEDS["lenet"].to_json())
    res = runner.invoke(app, ["roofline", "--arch", str(f), "--task", "cifar10", "--devices", "v100,rtx4090"])
    assert res.exit_code == 0, res.output
    assert "(3, 32, 32)" in res.output and "rtx4090" in res.output


def test_roofline_errors_are_one_line() -> None:
    res = runner.invoke(app, ["roofline", "--arch", "nope", "--task", "mnist1d"])
    assert res.exit_code == 2 and "nope" in res.output
    res = runner.invoke(app, ["roofline", "--arch", "tiny", "--devices", "b300"])
    assert res.exit_code == 2 and "b300" in res.output


def test_quick_bench_is_cached_and_feeds_local(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lines: list[str] = []
    result = run_bench(quick=True, cuda=False, command="test", log=lines.append)
    counts = result["cpu"]["threads"]
    assert lines[0].startswith("benchmarking the CPU at ") and len(lines) == 1 + 4 * len(counts)
    for t in counts:  # one line per stage as it ends, with its figure and how long it took
        stages = [ln for ln in lines if ln.startswith(f"cpu {t} thread")]
        assert [ln.split(": ")[1] for ln in stages] == ["fp32 matmul 512^3", "stream bandwidth", "launch overhead",
                                                        "training-step overhead"]
        assert "GFLOP/s" in stages[0] and "GB/s" in stages[1] and all(ln.endswith(" s)") for ln in stages)
    m = result["cpu"]["threads"]["1"]
    for key in ("matmul_flops", "copy_bytes_per_s", "triad_bytes_per_s", "launch_overhead_s",
                "train_launch_overhead_s", "train_step_overhead_s"):
        assert m[key] >= 0
    assert m["matmul_flops"] > 0 and m["triad_bytes_per_s"] > 0
    assert save_bench(result, results_dir=None, cache_path=tmp_path / "no" / "b.json") == []  # quick: not cached
    paths = save_bench(result, results_dir=tmp_path / "results", cache_path=tmp_path / "cache" / "b.json",
                       cache=True)
    assert all(p.is_file() for p in paths)
    saved = json.loads(paths[1].read_text())
    assert {"command", "host", "cpu_model", "git_rev", "created_at"} <= set(saved["provenance"])
    dev = local_device(threads=1, bench=saved)
    assert dev.peak("fp32") == pytest.approx(m["matmul_flops"])
    assert dev.launch_overhead_s == pytest.approx(m["train_launch_overhead_s"])
    assert summary_lines(saved)
    monkeypatch.setenv("NARCH_CACHE_DIR", str(tmp_path / "home"))
    (default,) = save_bench(result, cache=True)  # no results folder unless named; the cache keyed by the machine
    assert default == bench_cache_path(result["provenance"]) and default.parent == tmp_path / "home"


def test_bench_command_writes_cache_and_results(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NARCH_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    res = runner.invoke(app, ["hardware", "bench", "--quick"])  # by default into runs/, never results/
    assert res.exit_code == 0, res.output
    assert "GFLOP/s" in res.stdout and "fp32 matmul" in res.stderr and "stream bandwidth" in res.stderr
    assert list((tmp_path / "runs" / "hardware").glob("bench_*.json")) and not (tmp_path / "cache").exists()
    assert not (tmp_path / "results").exists()
    res = runner.invoke(app, ["hardware", "bench", "--quick", "--cache", "--out", str(tmp_path / "res")])
    assert res.exit_code == 0, res.output
    assert list((tmp_path / "cache").glob("bench-*.json"))


def test_compare_command_on_a_missing_corpus(tmp_path: Path) -> None:
    res = runner.invoke(app, ["hardware", "compare", "--corpus", str(tmp_path / "none"), "--out", str(tmp_path)])
    assert res.exit_code == 2 and "no manifest" in res.output and res.output.startswith("narch: error:")


@pytest.mark.gpu
def test_cuda_bench() -> None:
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    result = run_bench(quick=True, cuda=True, command="test")
    assert result["cuda"]["threads"]["1"]["matmul_flops"] > 0

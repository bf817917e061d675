"""scripts/gpu_check: the shell script parses, and its report's checks (the CUDA branch included) judge correctly.

The CUDA checks are exercised on a CPU corpus whose device and NVML columns are overwritten with plausible values:
this tests the checker, not a GPU (none is available to CI)."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
from pathlib import Path
from types import ModuleType

import polars as pl
import pytest

from narch.core.errors import SettingError
from narch.core.files import atomic_write_json
from narch.dataset_builder.corpus import MANIFEST, read_corpus, write_part
from narch.hardware.catalogue import CATALOGUE
from narch.hardware.compare import compare_rows
from narch.hardware.compare_report import write_report
from narch.hardware.costs import run_costs
from narch.search_space import Network
from tests.conftest import build_tiny

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"


def _report() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gpu_check_report", SCRIPTS / "gpu_check_report.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def cpu_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four networks (compare's least), one epoch of 8 steps (the first 5 are timing warm-up, so step times
    exist)."""
    return build_tiny(tmp_path_factory.mktemp("gpu_check") / "c", archs=4, n_train=1024)


def _as_cuda(df: pl.DataFrame, *, energy_j: float = 50.0) -> pl.DataFrame:
    return df.with_columns(
        device_kind=pl.lit("cuda"),
        device_name=pl.lit("NVIDIA H200"),
        driver=pl.lit("570.00"),
        cuda_version=pl.lit("12.8"),
        energy_j=pl.col("train_time_s") * 150.0 if energy_j > 0 else pl.lit(0.0),
        power_w_mean=pl.lit(150.0),
        power_w_max=pl.lit(210.0),
        gpu_util_pct_mean=pl.lit(35.0),
        sm_clock_mhz_mean=pl.lit(1980.0),
        gpu_mem_used_bytes_max=pl.lit(2_000_000_000, dtype=pl.Int64),
    )


def test_script_parses_and_prints_help() -> None:
    subprocess.run(["bash", "-n", str(SCRIPTS / "gpu_check")], check=True)
    res = subprocess.run([str(SCRIPTS / "gpu_check"), "--help"], capture_output=True, text=True, check=True)
    assert "--smoke" in res.stdout
    bad = subprocess.run([str(SCRIPTS / "gpu_check"), "--device", "tpu"], capture_output=True, text=True)
    assert bad.returncode == 2 and "cuda or cpu" in bad.stderr


DEAD_COUNTER = {"c1: energy_j > 0", "c1: energy ~ mean power x train time"}


@pytest.mark.parametrize(("energy_j", "fails"), [(50.0, set()), (0.0, DEAD_COUNTER)])
def test_cuda_checks_pass_on_sane_columns_and_catch_a_dead_energy_counter(
    cpu_corpus: Path, tmp_path: Path, energy_j: float, fails: set[str]
) -> None:
    report = _report()
    corpus = tmp_path / "corpus_c1"
    corpus.mkdir()
    shutil.copy(cpu_corpus / MANIFEST, corpus / MANIFEST)
    write_part(corpus, _as_cuda(read_corpus(cpu_corpus), energy_j=energy_j).to_dicts())
    epochs = int(read_corpus(corpus)["epochs"][0])
    checks = report.corpus_checks(read_corpus(corpus), name="c1", device="cuda", epochs=epochs)
    assert {c["check"] for c in checks if c["passed"] is False} == fails
    assert not any(c["passed"] is None for c in checks), "on CUDA no check is skipped"


@pytest.mark.parametrize(
    ("value", "expect"),
    [("4,8", "must include 1"), ("1,x", "comma list"), ("1,,4", "comma list"), ("0,1", "comma list"),
     ("1,65", "within 1..64"), ("", "comma list")],
)
def test_a_bad_concurrency_list_is_a_one_line_error(tmp_path: Path, value: str, expect: str) -> None:
    out = tmp_path / "o"
    res = subprocess.run([str(SCRIPTS / "gpu_check"), "--device", "cpu", "--smoke", "--concurrency", value,
                          "--out", str(out)], capture_output=True, text=True)
    assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1, res.stderr
    assert expect in res.stderr and "--concurrency" in res.stderr
    assert not out.exists(), "nothing is written before the options are checked"


def test_the_report_parses_the_same_levels() -> None:
    report = _report()
    assert report.levels("8, 1,4,4") == (1, 4, 8)
    for bad in ("4,8", "1,x", "1,0", "1,65", ","):
        with pytest.raises(SettingError, match="--concurrency"):
            report.levels(bad)


def _bench(*, cuda: bool) -> dict[str, object]:
    """A micro-benchmark result in `narch hardware bench`'s layout, with plausible figures."""
    cpu = {"matmul_flops": 60e9, "triad_bytes_per_s": 12e9, "launch_overhead_s": 6e-6}
    gpu = {"matmul_flops": 51e12, "matmul_tf32_flops": 380e12, "matmul_bf16_flops": 700e12,
           "triad_bytes_per_s": 4.1e12, "launch_overhead_s": 5e-6}
    return {"provenance": {"host": "h", "created_at": "2026-01-01T00:00:00Z", "cuda_name": "NVIDIA H200"},
            "cpu": {"threads": {"1": cpu, "2": cpu}},
            "cuda": {"threads": {"1": gpu}, "name": "NVIDIA H200"} if cuda else None}


def test_mfu_of_the_median_network_on_a_real_corpus(cpu_corpus: Path) -> None:
    report = _report()
    df = read_corpus(cpu_corpus)
    mfu = report.median_network_mfu(df, _bench(cuda=False), device="cpu")
    ok = df.filter(pl.col("status") == "ok").sort("flops_fwd", "arch_id")
    row = ok.row((ok.height - 1) // 2, named=True)
    assert mfu["arch_id"] == row["arch_id"], "the median by forward FLOPs"
    rc = run_costs(Network.from_json(row["arch_json"]), tuple(row["input_shape"]), row["n_classes"],
                   batch_size=row["batch_size"], n_train=row["n_train"], epochs=row["epochs"])
    assert mfu["flops_run"] == rc.flops_run and mfu["steps"] == rc.steps == row["train_steps"]
    assert mfu["achieved_flops_per_s"] == pytest.approx(rc.flops_run / row["train_time_s"])
    [peak] = mfu["peaks"]  # a CPU has no spec-table entry
    assert (peak["source"], peak["dtype"], peak["peak_flops"]) == ("micro-benchmark", "fp32", 60e9)
    assert peak["mfu"] == pytest.approx(mfu["achieved_flops_per_s"] / 60e9)
    checks = {c["check"]: c["passed"] for c in report.mfu_checks(mfu, device="cpu")}
    assert checks["MFU: cost model's step FLOPs = the corpus's flops_train_step"] is True
    assert checks["MFU vs the spec table peak"] is None


@pytest.mark.parametrize(("train_time_s", "passed"), [(None, True), (1e-9, False)])
def test_cuda_mfu_is_judged_against_the_benchmark_and_the_spec_table(
    cpu_corpus: Path, train_time_s: float | None, passed: bool
) -> None:
    report = _report()
    df = _as_cuda(read_corpus(cpu_corpus))
    if train_time_s is not None:  # an impossible time: more FLOP/s than the device has
        df = df.with_columns(train_time_s=pl.lit(train_time_s))
    mfu = report.median_network_mfu(df, _bench(cuda=True), device="cuda")
    by_source = {p["source"]: p for p in mfu["peaks"]}
    assert by_source["micro-benchmark"]["peak_flops"] == 380e12, "convolutions run on TF32 under PyTorch defaults"
    assert by_source["spec table"]["peak_flops"] == CATALOGUE["h200"].peak("tf32")
    judged = [c for c in report.mfu_checks(mfu, device="cuda") if c["check"].startswith("MFU vs")]
    assert len(judged) == 2 and all(c["passed"] is passed for c in judged), judged


def test_roofline_vs_measured_reuses_what_compare_writes(cpu_corpus: Path, tmp_path: Path) -> None:
    report = _report()
    df = read_corpus(cpu_corpus)
    cmp = compare_rows(df, name="c1", transfer_to=())
    write_report(cmp, tmp_path / "compare")
    got = report.roofline_vs_measured(tmp_path / "compare" / "report.json", df)
    raw = got["compare_raw"]
    rows = cmp.rows
    assert raw["n"] == rows.height == df.height
    assert raw["median_ratio_predicted_to_measured"] == pytest.approx(
        (rows["raw_s"] / rows["measured_s"]).median(), rel=1e-5)
    assert raw["median_ape_pct"] == pytest.approx(cmp.metrics["raw_all"]["median_ape_pct"], rel=1e-4)
    col = got["corpus_column"]
    assert col["median_ratio_predicted_to_measured"] == pytest.approx(
        (df["roofline_train_time_s"] / df["train_time_s"]).median())
    checks = report.roofline_checks(got)
    assert all(c["passed"] is None for c in checks if "Spearman" in c["check"]), "too few networks to rank"


def _stats(*, n: int = 48, ratio: float = 1.4, rho: float = 0.8) -> dict[str, object]:
    return {"n": n, "median_ratio_predicted_to_measured": ratio, "spearman": rho, "median_ape_pct": 30.0}


@pytest.mark.parametrize(
    ("compare_raw", "fails"),
    [(_stats(), set()), (_stats(ratio=400.0), {"median predicted/measured"}), (_stats(rho=-0.3), {"Spearman"}),
     (None, {"absent"})],
)
def test_roofline_checks_judge_ratio_and_rank(compare_raw: dict[str, object] | None, fails: set[str]) -> None:
    report = _report()
    stats = {"corpus_column": _stats(ratio=0.9)} | ({"compare_raw": compare_raw} if compare_raw else {})
    checks = report.roofline_checks(stats)
    failed = {c["check"] + " " + c["detail"] for c in checks if c["passed"] is False}
    assert len(failed) == len(fails) and all(any(f in c for c in failed) for f in fails), failed
    assert all("compare's" in c for c in failed)
    assert not any(c["passed"] is None for c in checks), "48 networks are enough to rank"


def _builds(util: float | None) -> list[dict[str, object]]:
    return [{"build": f"c{c}", "nets_per_hour_steady": 900 * c ** 0.5, "speedup_vs_c1": c ** 0.5,
             "gpu_util_pct_sampled": util, "samples": 40} for c in (1, 4, 8)]


@pytest.mark.parametrize(
    ("device", "util", "passed"), [("cuda", 55.0, True), ("cuda", None, False), ("cpu", None, None)]
)
def test_every_level_has_its_rate_and_utilisation(device: str, util: float | None, passed: bool | None) -> None:
    report = _report()
    checks = report.throughput_checks(_builds(util), (1, 4, 8), device=device)
    rates = [c["passed"] for c in checks if "networks/hour" in c["check"]]
    utils = [c["passed"] for c in checks if "utilisation" in c["check"]]
    assert rates == [True] * 3 and utils == [passed] * 3
    missing = report.throughput_checks(_builds(util)[:2], (1, 4, 8), device=device)
    assert [c["passed"] for c in missing if "c8: networks/hour" in c["check"]] == [False]


def test_the_report_writes_every_level_mfu_and_roofline(cpu_corpus: Path, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """The report end to end on a gpu_check folder of real corpora (c2 is c1's rows marked concurrency 2)."""
    report = _report()
    df = read_corpus(cpu_corpus)
    for name, conc in (("c1", 1), ("c2", 2)):
        corpus = tmp_path / f"corpus_{name}"
        corpus.mkdir()
        shutil.copy(cpu_corpus / MANIFEST, corpus / MANIFEST)
        write_part(corpus, df.with_columns(concurrency=pl.lit(conc, dtype=pl.Int64)).to_dicts())
    (tmp_path / "bench").mkdir()
    atomic_write_json(tmp_path / "bench" / "bench_h.json", _bench(cuda=False))
    write_report(compare_rows(df, name="c1", transfer_to=()), tmp_path / "compare")
    argv = ["gpu_check_report.py", str(tmp_path), "--device", "cpu", "--concurrency", "1,2",
            "--epochs", str(df["epochs"][0])]
    monkeypatch.setattr("sys.argv", argv)
    report.main()
    s = json.loads((tmp_path / "summary.json").read_text())
    assert s["concurrency"] == [1, 2] and [b["build"] for b in s["builds"]] == ["c1", "c2"]
    assert [b["speedup_vs_c1"] for b in s["builds"]] == [1.0, 1.0], "the same rows, the same steady rate"
    assert s["mfu_median_network"]["peaks"][0]["source"] == "micro-benchmark"
    assert set(s["roofline_vs_measured"]) == {"compare_raw", "corpus_column"}
    checks = {c["check"]: c["passed"] for c in s["checks"]}
    assert checks["c2: networks/hour (steady) and speed-up measured"] is True
    assert checks["c2: same networks as c1"] is True and checks["c2: concurrency column = 2"] is True
    md = (tmp_path / "SUMMARY.md").read_text()
    assert "## MFU of the median network" in md and "## Roofline-predicted vs measured" in md

"""scripts/gpu_check: the shell script parses, and its report's checks (the CUDA branch included) judge correctly.

The CUDA checks are exercised on a CPU corpus whose device and NVML columns are overwritten with plausible values:
this tests the checker, not a GPU (none is available to CI)."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
from pathlib import Path
from types import ModuleType

import polars as pl
import pytest

from narch.dataset_builder.corpus import MANIFEST, read_corpus, write_part
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
    """Three networks, one epoch of 8 steps (the first 5 are timing warm-up, so step times exist)."""
    return build_tiny(tmp_path_factory.mktemp("gpu_check") / "c", archs=3, n_train=1024)


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

"""Every committed corpus and frozen predictor under results/ still loads through today's readers (behaviour kept
across refactors): corpora pass the manifest and schema checks, artefacts their sha256s, and predict finite values."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from narch.dataset_builder.corpus import read_manifest, scan_corpus
from narch.predictors.artefacts import load_artefact
from narch.search_space import SEEDS, Network

RESULTS = Path(__file__).resolve().parents[1] / "results"
CORPORA = sorted({p.parent for n in ("_manifest.json", "manifest.json") for p in RESULTS.rglob(n)
                  if any(p.parent.glob("*.parquet"))})
ARTEFACTS = sorted(p.parent for p in RESULTS.rglob("manifest.json") if not any(p.parent.glob("*.parquet")))


def test_committed_corpora_use_the_current_file_names() -> None:
    """pandas and pyarrow read a corpus folder only when its non-Parquet files start with '_' (narch corpus migrate)."""
    old = [c for c in CORPORA if (c / "manifest.json").is_file()]
    assert not old, f"run narch corpus migrate on {', '.join(map(str, old))}"


def _id(p: Path) -> str:
    return str(p.relative_to(RESULTS))


@pytest.mark.parametrize("folder", CORPORA, ids=_id)
def test_committed_corpus_reads(folder: Path) -> None:
    manifest = read_manifest(folder)
    ok = scan_corpus(folder).filter(pl.col("status") == "ok").select("arch_id", "arch_json", "task").head(20).collect()
    assert ok.height > 0
    assert manifest.task in set(ok["task"])
    for arch_id, arch_json in zip(ok["arch_id"], ok["arch_json"], strict=True):
        assert Network.from_json(arch_json).arch_id == arch_id  # the canonical form (and so every id) is kept


def test_results_hold_corpora_and_artefacts() -> None:
    assert len(CORPORA) >= 10 and len(ARTEFACTS) >= 5


@pytest.mark.parametrize("folder", ARTEFACTS, ids=_id)
def test_committed_frozen_predictor_loads_and_predicts(folder: Path) -> None:
    art = load_artefact(folder)
    descriptors = art.manifest.get("descriptors")
    if not descriptors:
        return  # an artefact frozen without a task description (the search's fallback) needs one from its user
    preds = art.predict_networks([SEEDS["lenet"], SEEDS["resnet_tiny"]], descriptors)
    for target, values in preds.items():
        assert values.shape == (2,) and np.isfinite(values).all(), target


CLEAN = RESULTS / "corpus" / "mnist1d_clean"
TIMING = ("train_time_s", "train_cpu_s", "train_time_robust_s", "core_share", "other_cpu_cores", "load_avg_1m_before",
          "speed_probe_s", "timing_tries", "train_steps", "step_cpu_s_curve", "step_time_s_curve")


def test_clean_reference_corpus_has_timing_columns_and_repeats() -> None:
    """The MNIST-1D reference with clean time labels (issue 11; scripts/clean_reference_corpus.sh)."""
    from narch.dataset_builder.contention import QUIET_OTHER_CORES
    from narch.dataset_builder.corpus import read_corpus

    ok = read_corpus(CLEAN).filter(pl.col("status") == "ok")
    assert ok["arch_id"].n_unique() >= 3000, "the reference plan: at least 3,000 networks"
    assert set(ok["n_train"]) >= {300, 1000, 3000}, "the data-set-size rows"
    assert ok["device_name"].null_count() == 0, "a time label means nothing without the device it was timed on"
    for col in TIMING:
        assert ok[col].null_count() == 0, f"an ok row lacks {col}"
    assert (ok["step_cpu_s_curve"].list.len() == ok["train_steps"]).all()
    assert (ok["train_time_robust_s"] <= ok["train_cpu_s"] * 1.001).all(), "the label is a minimum, not a sum"
    repeats = ok.group_by("arch_id", "n_train").agg(pl.col("seed").n_unique().alias("seeds"))
    assert repeats.filter(pl.col("seeds") >= 3).height >= 100, "the noise floor: 100 networks with 3 seeds"
    contended = (ok["other_cpu_cores"] >= QUIET_OTHER_CORES).mean()
    assert contended <= 0.02, f"{contended:.1%} of the kept timings saw other work (--wait-quiet retimes them)"

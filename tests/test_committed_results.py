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
CORPORA = sorted(p.parent for p in RESULTS.rglob("manifest.json") if any(p.parent.glob("*.parquet")))
ARTEFACTS = sorted(p.parent for p in RESULTS.rglob("manifest.json") if not any(p.parent.glob("*.parquet")))


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

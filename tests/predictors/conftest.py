"""A tiny real corpus shared by the predictor tests (built once per session in a temp folder)."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from narch.dataset_builder.corpus import read_corpus
from tests.conftest import build_tiny


@pytest.fixture(scope="session")
def pred_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Twenty MNIST-1D networks, one epoch on 256 examples, two training seeds for a few of them."""
    out = tmp_path_factory.mktemp("pred") / "mnist1d"
    build_tiny(out, archs=20, n_train=256)
    return out


@pytest.fixture(scope="session")
def pred_rows(pred_corpus: Path) -> pl.DataFrame:
    return read_corpus(pred_corpus).filter(pl.col("status") == "ok")

"""A ridge predictor frozen (through the one freeze path) from the tiny corpus, shared by the search tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from narch.dataset_builder.corpus import read_corpus
from narch.predictors.freeze import freeze


@pytest.fixture(scope="session")
def frozen(tiny_corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("pred") / "frozen"
    freeze(read_corpus(tiny_corpus), ["val_acc", "train_time_s"], out=out, corpus=tiny_corpus, command="test",
           family="ridge")
    return out

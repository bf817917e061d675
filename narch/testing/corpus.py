"""A tiny real corpus for conformance tests: a few MNIST-1D networks trained for one epoch, built in a temp folder.

Real training (seconds on one CPU thread), not a fixture file: the suites then see the same columns, descriptors and
label noise as a corpus a user builds. Rows are cached per process, so every suite in one session builds it once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
import pytest

from narch.dataset_builder.build import BuildConfig, prepare_build, run_build
from narch.dataset_builder.corpus import read_corpus
from narch.dataset_builder.protocol import Protocol

_ROWS: dict[tuple[int, int, int, int], pl.DataFrame] = {}


def build_tiny_corpus(out: Path, *, task: str = "mnist1d", archs: int = 16, n_train: int | None = 256,
                      epochs: int = 1, seed: int = 0, threads: int | None = 1, **kw: Any) -> Path:
    """Train ``archs`` networks of ``task`` for ``epochs`` on ``n_train`` examples (None: the whole training set)
    into the corpus folder ``out`` (created or resumed); ``kw``: any other ``BuildConfig`` field (backend, shard,
    concurrency, timeout_s, ...)."""
    cfg = BuildConfig(task=task, out=out, archs=archs, seed=seed, protocol=Protocol(epochs=epochs), n_train=n_train,
                      threads=threads, **kw)
    run_build(prepare_build(cfg))
    return out


def tiny_corpus_rows(tmp_path_factory: pytest.TempPathFactory, *, archs: int = 16, n_train: int = 256,
                     epochs: int = 1, seed: int = 0) -> pl.DataFrame:
    """The ok rows of a tiny corpus, built on first use in this process and cached."""
    key = (archs, n_train, epochs, seed)
    if key not in _ROWS:
        out = build_tiny_corpus(tmp_path_factory.mktemp("narch-corpus") / "mnist1d", archs=archs, n_train=n_train,
                                epochs=epochs, seed=seed)
        _ROWS[key] = read_corpus(out).filter(pl.col("status") == "ok")
    return _ROWS[key]

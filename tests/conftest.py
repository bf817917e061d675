"""Shared fixtures: tiny real corpora in tmp_path, CUDA skip marker."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from narch.dataset_builder.build import BuildConfig, prepare_build, run_build
from narch.dataset_builder.protocol import Protocol


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """`gpu` tests skip cleanly without CUDA."""
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


def build_tiny(
    out: Path,
    *,
    task: str = "mnist1d",
    archs: int = 6,
    epochs: int = 1,
    n_train: int | None = 512,
    seed: int = 0,
    **kw: object,
) -> Path:
    """A real corpus of a few networks trained for an epoch on a small training set."""
    cfg = BuildConfig(
        task=task, out=out, archs=archs, seed=seed, protocol=Protocol(epochs=epochs), n_train=n_train, threads=1, **kw
    )  # type: ignore[arg-type]
    run_build(prepare_build(cfg))
    return out


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Six MNIST-1D networks, one epoch on 512 examples (read-only for tests)."""
    return build_tiny(tmp_path_factory.mktemp("corpus") / "mnist1d")

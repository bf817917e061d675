"""Shared fixtures: tiny real corpora in tmp_path, CUDA skip marker, the README's code blocks."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import torch

from narch.testing.corpus import build_tiny_corpus


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """`gpu` tests skip cleanly without CUDA."""
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


def build_tiny(out: Path, *, archs: int = 6, n_train: int | None = 512, **kw: Any) -> Path:
    """The tests' tiny real corpus: ``narch.testing.build_tiny_corpus`` with six networks on 512 examples by
    default (``kw``: its other options and any ``BuildConfig`` field)."""
    return build_tiny_corpus(out, archs=archs, n_train=n_train, **kw)


def readme_blocks(heading: str, lang: str = "python") -> list[str]:
    """The ``lang`` code blocks of the README section under ``heading`` (e.g. ``### Querying``), up to the next
    heading of level 2 or 3, so a test can run what the README shows."""
    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = text[text.index(f"{heading}\n"):]
    section = section[:re.search(r"\n#{2,3} ", section[3:]).start() + 3]  # type: ignore[union-attr]
    return re.findall(rf"```{lang}\n(.*?)```", section, flags=re.S)


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Six MNIST-1D networks, one epoch on 512 examples (read-only for tests)."""
    return build_tiny(tmp_path_factory.mktemp("corpus") / "mnist1d")

"""Shared fixtures: tiny real corpora in tmp_path, CUDA skip marker, the README's code blocks."""

from __future__ import annotations

import re
from collections.abc import Iterator
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


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """A real S3-compatible server (moto in server mode) on 127.0.0.1 for the session; skips without moto."""
    pytest.importorskip("moto.server", reason="needs moto[server] (the cluster extra)")
    pytest.importorskip("s3fs", reason="needs s3fs (the cluster extra)")
    from narch.testing.object_store import moto_server

    with moto_server() as endpoint:
        yield endpoint


@pytest.fixture(params=["local", "s3"])
def corpus_at(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where a test's corpus goes: a local folder, or a prefix of a fresh bucket on the loopback S3 server (the same
    suite runs on both)."""
    if request.param == "local":
        return str(tmp_path / "corpus")
    request.getfixturevalue("s3_endpoint")
    from narch.testing.object_store import new_bucket

    return f"{new_bucket()}/corpora/mnist1d"

"""A corpus folder reads with other tools: pyarrow's dataset discovery (what pandas.read_parquet(folder) uses), with
units and meanings in every field's metadata; older corpora (manifest.json) still read and migrate."""

from __future__ import annotations

import shutil
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from narch.cli import app
from narch.core.files import atomic_write_json
from narch.dataset_builder.compaction import compact_corpus
from narch.dataset_builder.corpus import (
    LEGACY_NAMES,
    MANIFEST,
    CorpusError,
    corpus_file,
    existing_keys,
    migrate_names,
    part_files,
    read_corpus,
    read_manifest,
)
from narch.dataset_builder.importers.writer import SIDECAR
from narch.dataset_builder.schema import COLUMNS
from tests.conftest import build_tiny


@pytest.fixture
def busy_corpus(tiny_corpus: Path, tmp_path: Path) -> Path:
    """The tiny corpus with every non-Parquet file a corpus can hold: a compaction journal, an import sidecar."""
    corpus = tmp_path / "c"
    shutil.copytree(tiny_corpus, corpus)
    compact_corpus(corpus)
    atomic_write_json(corpus / SIDECAR, {"parts": {}})
    return corpus


def _legacy(corpus: Path) -> Path:
    """The corpus as written before the rename: manifest.json and import.json."""
    for new, old in LEGACY_NAMES.items():
        if (corpus / new).exists():
            (corpus / new).rename(corpus / old)
    return corpus


def test_pyarrow_dataset_discovery_reads_only_the_parts(busy_corpus: Path) -> None:
    names = {p.name for p in busy_corpus.iterdir()}
    assert {MANIFEST, "_compaction.json", SIDECAR} <= names
    want = read_corpus(busy_corpus)
    assert pq.read_table(busy_corpus).num_rows == want.height  # pandas' pyarrow engine calls this
    assert ds.dataset(busy_corpus, format="parquet").count_rows() == want.height
    assert pl.read_parquet(busy_corpus / "*.parquet").height == want.height


def test_pandas_reads_a_corpus_folder(busy_corpus: Path) -> None:
    pd = pytest.importorskip("pandas")
    df = pd.read_parquet(busy_corpus)
    want = read_corpus(busy_corpus)
    assert len(df) == want.height and sorted(df["arch_id"]) == sorted(want["arch_id"])


def test_every_field_carries_its_unit_and_meaning(busy_corpus: Path, tiny_corpus: Path) -> None:
    parts = [*part_files(tiny_corpus), *part_files(busy_corpus)]  # as built, and merged by a compaction
    for part in parts:
        schema = pq.read_schema(part)
        for name, _, unit, meaning in COLUMNS:
            assert schema.field(name).metadata == {b"unit": unit.encode(), b"description": meaning.encode()}, name
    assert pq.read_schema(parts[0]).field("train_time_s").metadata[b"unit"] == b"s"


def test_created_at_parses_as_the_data_card_shows(tiny_corpus: Path) -> None:
    df = pl.read_parquet(tiny_corpus / "*.parquet").with_columns(pl.col("created_at").str.to_datetime(time_zone="UTC"))
    assert isinstance(df.schema["created_at"], pl.Datetime) and df["created_at"].null_count() == 0
    assert df["created_at"].dt.year().min() >= 2024


def test_a_legacy_corpus_reads_resumes_and_migrates(busy_corpus: Path) -> None:
    corpus = _legacy(busy_corpus)
    assert corpus_file(corpus, MANIFEST).name == "manifest.json"
    assert corpus_file(corpus, SIDECAR).name == "import.json"
    before = read_corpus(corpus)
    build_tiny(corpus)  # resumes: the manifest is found, nothing trained again, no second manifest written
    assert read_corpus(corpus).height == before.height and not (corpus / MANIFEST).exists()
    with pytest.raises(pa.ArrowInvalid, match=r"Parquet magic bytes not found"):
        pq.read_table(corpus)  # what pandas trips on before the migration

    res = CliRunner().invoke(app, ["corpus", "migrate", str(corpus)])
    assert res.exit_code == 0 and "manifest.json -> _manifest.json, import.json -> _import.json" in res.output
    assert migrate_names(corpus) == [] and not (corpus / "manifest.json").exists()
    assert read_manifest(corpus).task == "mnist1d" and len(existing_keys(corpus)) == before.height
    assert pq.read_table(corpus).num_rows == before.height


def test_migrate_refuses_a_folder_with_both_names_or_none(busy_corpus: Path, tmp_path: Path) -> None:
    shutil.copy(busy_corpus / MANIFEST, busy_corpus / "manifest.json")
    with pytest.raises(CorpusError, match=r"both manifest\.json and _manifest\.json"):
        migrate_names(busy_corpus)
    with pytest.raises(CorpusError, match="no manifest"):
        migrate_names(tmp_path)

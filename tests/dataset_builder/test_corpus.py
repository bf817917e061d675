"""The Parquet corpus: atomic parts, schema checks, corrupt parts, manifests."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import polars as pl
import pytest

from narch.dataset_builder.compaction import compact_corpus
from narch.dataset_builder.corpus import (
    MANIFEST,
    CorpusError,
    Manifest,
    create_corpus,
    open_corpus,
    part_files,
    read_corpus,
    read_manifest,
    rows_to_table,
    scan_corpus,
    write_part,
)
from narch.dataset_builder.protocol import protocol_digest
from narch.dataset_builder.schema import COLUMNS, SCHEMA

REQUIRED = [
    "arch_id",
    "arch_json",
    "parent_arch_id",
    "move",
    "task",
    "n_train",
    "seed",
    "epochs",
    "val_acc",
    "test_acc",
    "val_acc_curve",
    "train_time_s",
    "params",
    "model_size_bytes",
    "peak_mem_bytes",
    "latency_bs1_ms",
    "device_name",
    "status",
    "error",
]


def _manifest(task: str = "mnist1d", epochs: int = 1) -> Manifest:
    protocol = {"epochs": epochs}
    return Manifest(task=task, protocol=protocol, protocol_hash=protocol_digest(protocol), search_space_version="1.1",
                    builder_version="0")


def test_schema_has_the_columns_later_issues_rely_on() -> None:
    assert set(REQUIRED) <= set(SCHEMA.names)
    assert len({c[0] for c in COLUMNS}) == len(COLUMNS)


def test_tiny_corpus_reads_with_polars_glob(tiny_corpus: Path) -> None:
    df = pl.read_parquet(f"{tiny_corpus}/*.parquet")
    assert df.height == 6
    assert set(REQUIRED) <= set(df.columns)
    assert df["arch_id"].n_unique() == 6
    assert (df["status"] == "ok").all()
    assert all(len(c) == 1 for c in df["val_acc_curve"].to_list())


def test_write_and_read_round_trip(tmp_path: Path) -> None:
    create_corpus(tmp_path, _manifest())
    write_part(tmp_path, [{"arch_id": "a", "status": "ok", "val_acc": 0.5, "val_acc_curve": [0.4, 0.5]}])
    write_part(tmp_path, [{"arch_id": "b", "status": "error", "error": "boom"}])
    df = read_corpus(tmp_path)
    assert sorted(df["arch_id"].to_list()) == ["a", "b"]
    assert df.filter(pl.col("arch_id") == "b")["error"].item() == "boom"
    assert not list(tmp_path.glob("*.tmp"))


def test_unknown_column_is_refused(tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match="not in the corpus schema"):
        rows_to_table([{"arch_id": "a", "bogus_col": 1}])


def test_temp_files_of_writers_in_flight_are_not_parts(tmp_path: Path) -> None:
    create_corpus(tmp_path, _manifest())
    write_part(tmp_path, [{"arch_id": "a", "status": "ok"}])
    (tmp_path / ".part-x.parquet.1234.tmp").write_bytes(b"PAR1 half written")
    assert read_corpus(tmp_path).height == 1


def test_corrupt_part_is_named_and_skippable(tiny_corpus: Path, tmp_path: Path) -> None:
    corpus = tmp_path / "c"
    shutil.copytree(tiny_corpus, corpus)
    victim = part_files(corpus)[2]
    data = victim.read_bytes()
    victim.write_bytes(data[: len(data) // 2])
    with pytest.raises(CorpusError, match=victim.name):
        read_corpus(corpus)
    assert read_corpus(corpus, skip_corrupt=True).height == 5


def test_part_with_another_schema_is_refused(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    create_corpus(tmp_path, _manifest())
    pq.write_table(pa.table({"arch_id": ["x"]}), tmp_path / "part-foreign.parquet")
    with pytest.raises(CorpusError, match=r"part-foreign\.parquet: schema differs"):
        read_corpus(tmp_path)


def test_manifest_with_another_schema_version_is_refused(tmp_path: Path) -> None:
    create_corpus(tmp_path, _manifest())
    d = json.loads((tmp_path / MANIFEST).read_text())
    d["corpus_schema_version"] = 99
    (tmp_path / MANIFEST).write_text(json.dumps(d))
    with pytest.raises(CorpusError, match="schema version 99"):
        read_manifest(tmp_path)


def test_open_corpus_refuses_other_task_and_protocol(tmp_path: Path) -> None:
    create_corpus(tmp_path, _manifest())
    with pytest.raises(CorpusError, match="holds task 'mnist1d'"):
        open_corpus(tmp_path, _manifest(task="digits"))
    with pytest.raises(CorpusError, match="another protocol"):
        open_corpus(tmp_path, _manifest(epochs=2))
    open_corpus(tmp_path, _manifest())


def test_compact_merges_parts_and_keeps_rows(tiny_corpus: Path, tmp_path: Path) -> None:
    corpus = tmp_path / "c"
    shutil.copytree(tiny_corpus, corpus)
    before = read_corpus(corpus).sort("arch_id")
    done = compact_corpus(corpus)
    assert done.merged == 6 and done.path is not None and part_files(corpus) == [done.path]
    after = read_corpus(corpus).sort("arch_id")
    assert after.equals(before)
    assert pl.read_parquet(f"{corpus}/*.parquet").height == 6
    again = compact_corpus(corpus)
    assert (again.merged, again.path, again.recovered, again.removed) == (0, None, "", 0)
    assert sorted(p.name for p in corpus.iterdir()) == ["_compaction.json", MANIFEST, done.path.name]


def test_crash_mid_compaction_leaves_no_duplicates_now_or_after_the_next(tiny_corpus: Path, tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    corpus = tmp_path / "c"
    shutil.copytree(tiny_corpus, corpus)
    saved = {p.name: p.read_bytes() for p in part_files(corpus)}
    merged = compact_corpus(corpus).path
    for name, data in saved.items():  # as if the process died before deleting the merged parts
        (corpus / name).write_bytes(data)
    assert merged is not None and pq.read_schema(merged).metadata
    df = read_corpus(corpus)
    assert df.height == 6 and df["arch_id"].n_unique() == 6
    assert scan_corpus(corpus).select(pl.len()).collect().item() == 6  # the lazy scan drops them too
    done = compact_corpus(corpus)  # deletes what the merged part covers instead of saying "nothing to compact"
    assert done.removed == 6 and done.path is None and part_files(corpus) == [merged]
    write_part(corpus, [{**df.row(0, named=True), "arch_id": "0123456789abcdef"}])  # the next build's network
    assert compact_corpus(corpus).merged == 2
    df = read_corpus(corpus)
    assert df.height == 7 and df["arch_id"].n_unique() == 7
    assert pl.read_parquet(f"{corpus}/*.parquet").height == 7  # a plain glob too: nothing hidden is left


def test_scan_is_lazy_and_read_is_its_collect(tiny_corpus: Path, tmp_path: Path) -> None:
    lf = scan_corpus(tiny_corpus)
    assert isinstance(lf, pl.LazyFrame)
    assert lf.collect().equals(read_corpus(tiny_corpus))
    ok = lf.filter(pl.col("status") == "ok").select("arch_id", "val_acc").collect()
    assert ok.height == 6 and ok.columns == ["arch_id", "val_acc"]
    create_corpus(tmp_path / "empty", _manifest())
    empty = scan_corpus(tmp_path / "empty").collect()
    assert empty.height == 0 and empty.columns == SCHEMA.names


def test_scan_checks_manifest_and_parts_before_collect(tiny_corpus: Path, tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match="no manifest"):
        scan_corpus(tmp_path)
    corpus = tmp_path / "c"
    shutil.copytree(tiny_corpus, corpus)
    victim = part_files(corpus)[0]
    victim.write_bytes(b"not parquet")
    with pytest.raises(CorpusError, match=victim.name):
        scan_corpus(corpus)
    assert scan_corpus(corpus, skip_corrupt=True).collect().height == 5

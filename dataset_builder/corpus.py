"""The Parquet corpus: manifest.json plus part files written atomically; the only module that writes Parquet."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from narch.core.errors import NarchError
from narch.core.files import atomic_write_bytes, fsync_dir, read_json
from narch.dataset_builder.schema import ADDED, CORPUS_SCHEMA_VERSION, KEY_COLUMNS, SCHEMA

MANIFEST = "manifest.json"
REPLACES_KEY = b"narch_replaces"
_POLARS_SCHEMA = pl.from_arrow(SCHEMA.empty_table()).schema


class CorpusError(NarchError, ValueError):
    """A corpus that cannot be read or written as asked; the message names the file and the rule."""


@dataclass(frozen=True)
class Manifest:
    """What every row of a corpus shares: schema, search-space version, task and training protocol."""

    task: str
    protocol: dict[str, Any]
    protocol_hash: str
    search_space_version: str
    builder_version: str
    corpus_schema_version: int = CORPUS_SCHEMA_VERSION
    created_at: str = ""
    data_dir: str | None = None

    def to_json(self) -> str:
        return json.dumps(self.__dict__, indent=2, sort_keys=True) + "\n"


def read_manifest(corpus_dir: str | Path) -> Manifest:
    """The manifest of a corpus, checked for its schema version."""
    path = Path(corpus_dir) / MANIFEST
    d = read_json(path, error=CorpusError, missing=f"no manifest (is {corpus_dir} a corpus?)")
    if not isinstance(d, dict):
        raise CorpusError(f"{path}: a manifest is a JSON object")
    version = d.get("corpus_schema_version")
    if version != CORPUS_SCHEMA_VERSION:
        raise CorpusError(
            f"{path}: corpus schema version {version!r} is not supported (this reader reads {CORPUS_SCHEMA_VERSION})"
        )
    try:
        return Manifest(**d)
    except TypeError as e:
        raise CorpusError(f"{path}: unexpected manifest fields ({e})") from None


def open_corpus(corpus_dir: str | Path, manifest: Manifest) -> None:
    """Check an existing corpus matches ``manifest`` (task and protocol); a new folder is not created here."""
    path = Path(corpus_dir)
    if not (path / MANIFEST).exists():
        if path.exists() and any(path.glob("*.parquet")):
            raise CorpusError(f"{path}: holds parquet files but no {MANIFEST}")
        return
    old = read_manifest(path)
    if old.task != manifest.task:
        raise CorpusError(f"{path}: corpus holds task {old.task!r}, not {manifest.task!r}; use another --out")
    if old.protocol_hash != manifest.protocol_hash:
        diff = {k: (old.protocol.get(k), v) for k, v in manifest.protocol.items() if old.protocol.get(k) != v}
        raise CorpusError(f"{path}: corpus was built with another protocol {diff} (old, new); use another --out")


def create_corpus(corpus_dir: str | Path, manifest: Manifest) -> None:
    """Create the folder and its manifest (atomically) unless it exists; call open_corpus first."""
    path = Path(corpus_dir)
    path.mkdir(parents=True, exist_ok=True)
    if not (path / MANIFEST).exists():
        atomic_write_bytes(path / MANIFEST, lambda f: f.write(manifest.to_json().encode()))


def rows_to_table(rows: list[dict[str, Any]]) -> pa.Table:
    """Rows (dicts) cast to the corpus schema; unknown keys are an error, missing columns null."""
    unknown = sorted({k for r in rows for k in r} - set(SCHEMA.names))
    if unknown:
        raise CorpusError(f"rows carry columns not in the corpus schema: {unknown}")
    return pa.Table.from_pylist(rows, schema=SCHEMA)


def key_part_name(key: tuple[Any, ...]) -> str:
    """The part name of the one run with this key (KEY_COLUMNS order): rewriting it replaces, never duplicates."""
    digest = hashlib.sha256(json.dumps([str(k) for k in key]).encode()).hexdigest()[:16]
    return f"part-{key[0]}-{digest}.parquet"


def write_part(corpus_dir: str | Path, rows: list[dict[str, Any]], *, name: str | None = None) -> Path:
    """Write rows as one part file, atomically. Without ``name`` a unique one per writer (shards never collide);
    with one (see key_part_name) a retried run overwrites its own part instead of adding a duplicate row."""
    table = rows_to_table(rows)
    if name is None:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
        name = f"part-{stamp}-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}.parquet"
    path = Path(corpus_dir) / name
    atomic_write_bytes(path, lambda f: pq.write_table(table, f, compression="zstd"))
    return path


def part_files(corpus_dir: str | Path) -> list[Path]:
    """The corpus's part files (temp files of writers in flight are not parts)."""
    return sorted(Path(corpus_dir).glob("*.parquet"))


def check_part(path: Path) -> list[str]:
    """Raise CorpusError naming the part when it is unreadable or its schema differs; return the parts it replaces."""
    try:
        schema = pq.ParquetFile(path).schema_arrow  # opens the footer: truncated files fail here
    except (OSError, pa.ArrowException) as e:
        raise CorpusError(f"{path}: corrupt part file ({type(e).__name__}: {str(e)[:120]})") from None
    if not _conforms(schema.remove_metadata()):
        want, got = set(SCHEMA.names), set(schema.names)
        detail = f"missing {sorted(want - got - ADDED)}, extra {sorted(got - want)}" if want != got else \
            "column types differ"
        raise CorpusError(f"{path}: schema differs from corpus schema v{CORPUS_SCHEMA_VERSION} ({detail})")
    replaces = (schema.metadata or {}).get(REPLACES_KEY)
    return json.loads(replaces) if replaces else []


def _conforms(schema: pa.Schema) -> bool:
    """The corpus schema, or it without a trailing run of later-added columns (parts written before them)."""
    n = len(schema)
    return n >= len(SCHEMA) - len(ADDED) and schema.equals(pa.schema(list(SCHEMA)[:n]))


def conform(table: pa.Table) -> pa.Table:
    """A part's table with the later-added columns it lacks as nulls, in corpus-schema order."""
    for field in list(SCHEMA)[table.num_columns:]:
        table = table.append_column(field, pa.nulls(table.num_rows, type=field.type))
    return table.cast(SCHEMA)


def live_parts(corpus_dir: str | Path, *, skip_corrupt: bool = False) -> tuple[list[Path], list[Path]]:
    """(readable parts, corrupt parts). Parts a compacted part replaces (left by a crash mid-compaction) are dropped."""
    good, bad, replaced = [], [], set()
    for p in part_files(corpus_dir):
        try:
            replaced.update(check_part(p))
            good.append(p)
        except CorpusError:
            if not skip_corrupt:
                raise
            bad.append(p)
    return [p for p in good if p.name not in replaced], bad


def scan_corpus(corpus_dir: str | Path, *, skip_corrupt: bool = False) -> pl.LazyFrame:
    """A lazy scan of every row: the manifest and each part's schema are checked now, parts a compacted part
    replaces are left out (no duplicates after a crash), and a corrupt part raises CorpusError naming it unless
    ``skip_corrupt`` (then it is left out)."""
    read_manifest(corpus_dir)
    good, _ = live_parts(corpus_dir, skip_corrupt=skip_corrupt)
    if not good:
        return pl.LazyFrame(schema=_POLARS_SCHEMA)
    return pl.scan_parquet([str(p) for p in good], schema=_POLARS_SCHEMA, missing_columns="insert")


def read_corpus(corpus_dir: str | Path, *, skip_corrupt: bool = False) -> pl.DataFrame:
    """All rows, eagerly: ``scan_corpus(...).collect()``."""
    return scan_corpus(corpus_dir, skip_corrupt=skip_corrupt).collect()


def compact_corpus(corpus_dir: str | Path) -> tuple[int, Path | None]:
    """Merge every part into one, atomically; the merged part names the parts it replaces, so a crash before they
    are deleted leaves readers (scan_corpus) with no duplicates. Returns (parts merged, new part)."""
    read_manifest(corpus_dir)
    parts, _ = live_parts(corpus_dir)
    if len(parts) < 2:
        return 0, None
    table = pa.concat_tables([conform(pq.read_table(p)) for p in parts])
    table = table.replace_schema_metadata({REPLACES_KEY: json.dumps([p.name for p in parts])})
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
    path = Path(corpus_dir) / f"part-{stamp}-compact-{uuid.uuid4().hex[:8]}.parquet"
    atomic_write_bytes(path, lambda f: pq.write_table(table, f, compression="zstd"))
    for p in parts:
        p.unlink()
    fsync_dir(Path(corpus_dir))
    return len(parts), path


def corrupt_parts(corpus_dir: str | Path) -> list[tuple[Path, str]]:
    """Parts that fail check_part, with the reason."""
    out = []
    for p in part_files(corpus_dir):
        try:
            check_part(p)
        except CorpusError as e:
            out.append((p, str(e)))
    return out


def existing_keys(corpus_dir: str | Path, *, skip_corrupt: bool = False) -> set[tuple[Any, ...]]:
    """Keys (arch, task, n_train, protocol, seed, device kind) already in the corpus, whatever their status."""
    if not (Path(corpus_dir) / MANIFEST).exists():
        return set()
    keys = scan_corpus(corpus_dir, skip_corrupt=skip_corrupt).select(KEY_COLUMNS).collect()
    return set(keys.iter_rows())

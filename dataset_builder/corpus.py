"""The Parquet corpus: a manifest plus part files written atomically; the only module that writes Parquet.

The folder's files other than parts start with an underscore (``_manifest.json``, ``_compaction.json``, an
import's ``_import.json``, locks) or a dot (temp files), the names pyarrow's dataset discovery skips by default
(``ignore_prefixes``), so ``pandas.read_parquet(folder)`` and ``pyarrow.dataset.dataset(folder)`` read the parts
alone, as ``folder/*.parquet`` globs do in polars and duckdb. Corpora written before keep ``manifest.json`` and
``import.json``: they are read (and rewritten) under those names until ``migrate_names`` renames them.

The live parts are the folder's ``*.parquet`` files less those a merged part covers (its key-value metadata lists
them, as a Delta/Iceberg commit lists the files it removes); while a compaction runs its journal
(``_compaction.json``, see compaction.py) names the merged part, and readers list the folder again when the journal
changed under them or a part vanished (a seqlock), so a reader never sees old and merged parts together and keeps
working while a compaction deletes what it merged. Every part read is checked against the manifest: schema, task
and protocol hash (from the row-group statistics, a scan of the two columns where they do not settle it).

The folder may be a local path or a URL of an object store (``s3://bucket/prefix``): every function here works on
the folder through ``narch.core.store`` (list, read, write whole or not at all, delete, lock), so one set of rules
serves both. Parts are handed out as ``Path`` locally and as ``StorePath`` (its ``name``) on an object store.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import polars as pl
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq

from narch.core.errors import NarchError
from narch.core.store import LocalStore, Location, Store, StorePath, open_store
from narch.dataset_builder.protocol import protocol_digest
from narch.dataset_builder.schema import ADDED, CORPUS_SCHEMA_VERSION, KEY_COLUMNS, SCHEMA

MANIFEST = "_manifest.json"
# The names corpora written before kept their non-Parquet files under (pyarrow tried to read them as parts).
LEGACY_NAMES = {MANIFEST: "manifest.json", "_import.json": "import.json"}
REPLACES_KEY = b"narch_replaces"  # a merged part's metadata: the part names it covers (JSON list)
JOURNAL = "_compaction.json"  # the last compaction: state (running, done, rolled_back), seq, merged, replaces
KEY_PART = re.compile(r"part-[0-9a-f]{16}-[0-9a-f]{16}\.parquet")  # key_part_name's names: rewritten by retries
_TRIES = 5  # listings of a folder that a compaction keeps changing, before giving up
T = TypeVar("T")
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
        return json.dumps(self.__dict__, indent=2, sort_keys=True, allow_nan=False) + "\n"  # strict: NaN raises


def corpus_file(corpus_dir: Location, name: str) -> Path:
    """The path of the corpus's non-Parquet file ``name`` (read and rewritten there): its legacy name (LEGACY_NAMES)
    where the corpus holds only that one, else ``name`` itself. Local folders only (``corpus_name`` serves any)."""
    return Path(corpus_dir) / corpus_name(open_store(corpus_dir), name)


def corpus_name(store: Store, name: str) -> str:
    """The name the corpus keeps its non-Parquet file ``name`` under (its legacy name where only that one is there)."""
    legacy = LEGACY_NAMES.get(name)
    if legacy is not None and not store.exists(name) and store.exists(legacy):
        return legacy
    return name


def is_corpus(folder: Location) -> bool:
    """Whether the folder holds a corpus manifest (under either name)."""
    store = open_store(folder)
    return store.exists(corpus_name(store, MANIFEST))


def migrate_names(corpus_dir: Location) -> list[tuple[str, str]]:
    """Rename a corpus's legacy non-Parquet files to the names pyarrow's discovery skips; the (old, new) pairs
    renamed. Run it while nothing writes into the corpus (a writer of an older version looks for the old names)."""
    store = open_store(corpus_dir)
    if not is_corpus(store):
        raise CorpusError(f"{store.root}: no manifest (is it a corpus?)")
    done = []
    for new, old in LEGACY_NAMES.items():
        if not store.exists(old):
            continue
        if store.exists(new):
            raise CorpusError(f"{store.root}: holds both {old} and {new}; keep one")
        store.rename(old, new)
        done.append((old, new))
    if done:
        store.sync()
    return done


def read_manifest(corpus_dir: Location) -> Manifest:
    """The manifest of a corpus, checked for its schema version."""
    store = open_store(corpus_dir)
    name = corpus_name(store, MANIFEST)
    path = store.show(name)
    d = store.read_json(name, error=CorpusError, missing=f"no manifest (is {store.root} a corpus?)")
    if not isinstance(d, dict):
        raise CorpusError(f"{path}: a manifest is a JSON object")
    version = d.get("corpus_schema_version")
    if version != CORPUS_SCHEMA_VERSION:
        raise CorpusError(
            f"{path}: corpus schema version {version!r} is not supported (this reader reads {CORPUS_SCHEMA_VERSION})"
        )
    if not isinstance(d.get("protocol"), dict):
        raise CorpusError(f"{path}: the protocol is not a JSON object")
    digest = protocol_digest(d["protocol"])
    if d.get("protocol_hash") != digest:
        raise CorpusError(f"{path}: the protocol does not match its protocol_hash {d.get('protocol_hash')!r} (it "
                          f"hashes to {digest!r}): the manifest was edited")
    try:
        return Manifest(**d)
    except TypeError as e:
        raise CorpusError(f"{path}: unexpected manifest fields ({e})") from None


def open_corpus(corpus_dir: Location, manifest: Manifest) -> None:
    """Check an existing corpus matches ``manifest`` (task and protocol); a new folder is not created here."""
    store = open_store(corpus_dir)
    path = store.root
    if not is_corpus(store):
        if store.is_folder() and store.names("*.parquet"):
            raise CorpusError(f"{path}: holds parquet files but no {MANIFEST}")
        return
    old = read_manifest(store)
    if old.task != manifest.task:
        raise CorpusError(f"{path}: corpus holds task {old.task!r}, not {manifest.task!r}; use another --out")
    if old.protocol_hash != manifest.protocol_hash:
        diff = {k: (old.protocol.get(k), v) for k, v in manifest.protocol.items() if old.protocol.get(k) != v}
        raise CorpusError(f"{path}: corpus was built with another protocol {diff} (old, new); use another --out")


def create_corpus(corpus_dir: Location, manifest: Manifest) -> None:
    """Create the folder and its manifest (atomically) unless it exists; call open_corpus first."""
    store = open_store(corpus_dir)
    if not isinstance(store, LocalStore):
        if not is_corpus(store):
            store.write(MANIFEST, lambda f: f.write(manifest.to_json().encode()))
        return
    path = store.root
    made = [p for p in (path, *path.parents) if not p.exists()]  # what this call creates, deepest first
    path.mkdir(parents=True, exist_ok=True)
    if not is_corpus(path):
        try:
            store.write(MANIFEST, lambda f: f.write(manifest.to_json().encode()))
        except BaseException:  # disk full, read-only, Ctrl-C: leave no empty corpus folder behind
            for p in made:
                try:
                    p.rmdir()
                except OSError:  # not empty (another writer's): keep it
                    break
            raise


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


def run_lock_name(key: tuple[Any, ...]) -> str:
    """The name of the lock a writer holds while it trains and writes the run with this key (not a part)."""
    return f"_{key_part_name(key).removesuffix('.parquet')}.lock"


def run_lock_path(corpus_dir: str | Path, key: tuple[Any, ...]) -> Path:
    """The advisory lock file of the run with this key in a local corpus folder."""
    return Path(corpus_dir) / run_lock_name(key)


def write_part(corpus_dir: Location, rows: list[dict[str, Any]], *, name: str | None = None) -> Any:
    """Write rows as one part file, atomically. Without ``name`` a unique one per writer (shards never collide);
    with one (see key_part_name) a retried run overwrites its own part instead of adding a duplicate row."""
    table = rows_to_table(rows)
    if name is None:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
        name = f"part-{stamp}-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}.parquet"
    store = open_store(corpus_dir)
    store.write(name, lambda f: pq.write_table(table, f, compression="zstd"))
    return store.handle(name)


def part_files(corpus_dir: Location) -> list[Any]:
    """The corpus's part files (temp files of writers in flight are not parts)."""
    store = open_store(corpus_dir)
    return [store.handle(n) for n in store.names("*.parquet")]


def read_part(part: Path | StorePath, **kw: Any) -> pa.Table:
    """``pq.read_table`` of a part as list_parts hands it out (a local path, or a file of an object store)."""
    if isinstance(part, StorePath):
        fs, path = part.store.arrow()
        return pq.read_table(path(part.name), filesystem=fs, **kw)
    return pq.read_table(part, **kw)


def check_part(path: Path | StorePath) -> list[str]:
    """Raise CorpusError naming the part when it is unreadable or its schema differs; return the parts it replaces."""
    try:
        if isinstance(path, StorePath):
            with path.store.open_input(path.name) as f:
                schema = pq.ParquetFile(f).schema_arrow
        else:
            schema = pq.ParquetFile(path).schema_arrow  # opens the footer: truncated files fail here
    except FileNotFoundError:
        raise  # gone since the folder was listed (a compaction deleted it): the caller lists again
    except (OSError, pa.ArrowException) as e:
        raise CorpusError(f"{path}: corrupt part file ({type(e).__name__}: {str(e)[:120]})") from None
    if not _conforms(schema.remove_metadata()):
        want, got = set(SCHEMA.names), set(schema.names)
        detail = f"missing {sorted(want - got - ADDED)}, extra {sorted(got - want)}" if want != got else \
            "column types differ"
        raise CorpusError(f"{path}: schema differs from corpus schema v{CORPUS_SCHEMA_VERSION} ({detail})")
    try:
        replaces = json.loads((schema.metadata or {}).get(REPLACES_KEY, b"[]"))
    except ValueError:
        replaces = None
    if not isinstance(replaces, list) or not all(isinstance(n, str) for n in replaces):
        raise CorpusError(f"{path}: malformed {REPLACES_KEY.decode()} metadata (expected a list of part names)")
    return replaces


def _conforms(schema: pa.Schema) -> bool:
    """The corpus schema, or it without a trailing run of later-added columns (parts written before them)."""
    n = len(schema)
    return n >= len(SCHEMA) - len(ADDED) and schema.equals(pa.schema(list(SCHEMA)[:n]))


def conform(table: pa.Table) -> pa.Table:
    """A part's table with the later-added columns it lacks as nulls, in corpus-schema order."""
    for field in list(SCHEMA)[table.num_columns:]:
        table = table.append_column(field, pa.nulls(table.num_rows, type=field.type))
    return table.cast(SCHEMA)


@dataclass(frozen=True)
class Listing:
    """One consistent view of a corpus folder's parts (``Path`` locally, ``StorePath`` on an object store)."""

    live: list[Any]  # the parts to read
    hidden: list[Any]  # parts a merged part covers (left by a crash or a late writer): never read
    corrupt: list[tuple[Any, str]]  # unreadable or of another schema, with the reason (only with skip_corrupt)
    covered: frozenset[str]  # every part name the merged parts cover


def read_journal(corpus_dir: Location, data: bytes | None = None) -> dict[str, Any] | None:
    """The compaction journal (``data``: its bytes, already read), checked; None when no compaction ever ran."""
    store = open_store(corpus_dir)
    if data is None:
        data = _journal_bytes(store)
    if data is None:
        return None
    try:
        j = json.loads(data)
        ok = j["state"] in ("running", "done", "rolled_back") and isinstance(j["seq"], int)
        ok = ok and all(_plain_part_name(n) for n in [j["merged"], *j.get("replaces", [])])
    except (ValueError, TypeError, KeyError):
        ok = False
    if not ok:
        raise CorpusError(f"{store.show(JOURNAL)}: malformed compaction journal (expected state, seq, merged and "
                          f"part names)")
    return j


def _plain_part_name(name: object) -> bool:
    return isinstance(name, str) and name.endswith(".parquet") and Path(name).name == name and name[0] not in "./"


def _journal_bytes(store: Store) -> bytes | None:
    try:
        return store.read_bytes(JOURNAL)
    except FileNotFoundError:
        return None


def _names(store: Store, journal: bytes | None) -> list[str]:
    """Part names in the folder; a running compaction's merged part is added when it exists by the end of the
    listing (the parts it replaces may be gone from the listing already)."""
    names = set(store.names("*.parquet"))
    j = read_journal(store, journal)
    if j is not None and j["state"] == "running" and store.exists(j["merged"]):
        names.add(j["merged"])
    return sorted(names)


def _consistent(store: Store, view: Callable[[list[str]], T]) -> T:
    """``view(names)`` over one consistent listing: listed again when the compaction journal changed meanwhile or a
    part vanished (FileNotFoundError) before it was read."""
    for attempt in range(_TRIES):
        before = _journal_bytes(store)
        try:
            out = view(_names(store, before))
        except FileNotFoundError:
            out = None
        if out is not None and _journal_bytes(store) == before:
            return out
        time.sleep(0.01 * 2**attempt)
    raise CorpusError(f"{store.root}: the parts changed under {_TRIES} listings in a row (compactions running?)")


def list_parts(corpus_dir: Location, manifest: Manifest | None = None, *, skip_corrupt: bool = False) -> Listing:
    """The live, hidden and corrupt parts, consistently. With ``manifest`` every live part's task and protocol hash
    are checked against it (a foreign part raises CorpusError naming it, with or without ``skip_corrupt``)."""
    store = open_store(corpus_dir)

    def view(names: list[str]) -> Listing:
        good, corrupt, covered = [], [], set()
        for p in (store.handle(n) for n in names):
            try:
                covered.update(check_part(p))
                good.append(p)
            except CorpusError as e:
                if not skip_corrupt:
                    raise
                corrupt.append((p, str(e)))
        live = [p for p in good if p.name not in covered]
        if manifest is not None:
            for p in live:
                check_origin(p, manifest)
        return Listing(live, [p for p in good if p.name in covered], corrupt, frozenset(covered))

    return _consistent(store, view)


def _allowed(manifest: Manifest) -> dict[str, set[str]]:
    """Values the rows of a corpus may hold: its task, its protocol hash (an import's per-budget hashes too)."""
    budgets = manifest.protocol.get("budget_protocol_hashes")
    hashes = {manifest.protocol_hash, *(budgets.values() if isinstance(budgets, dict) else ())}
    return {"task": {manifest.task}, "protocol_hash": hashes}


def _distinct(path: Path | StorePath, meta: pq.FileMetaData, column: str) -> set[str]:
    """Distinct non-null values of a string column: from the row-group statistics, by a scan of the column where
    they do not settle it (min differs from max, or no statistics)."""
    values: set[str] = set()
    for i in range(meta.num_row_groups):
        rg = meta.row_group(i)
        chunks = [rg.column(j) for j in range(rg.num_columns) if rg.column(j).path_in_schema == column]
        stats = chunks[0].statistics if chunks else None
        if stats is not None and stats.has_null_count and stats.null_count == rg.num_rows:
            continue
        if stats is None or not stats.has_min_max or stats.min != stats.max:
            return {v for v in read_part(path, columns=[column])[column].unique().to_pylist() if v is not None}
        values.add(stats.min)
    return values


def check_origin(path: Path | StorePath, manifest: Manifest) -> None:
    """Raise CorpusError naming a part whose rows hold another task or protocol than the manifest (a foreign part
    copied in); rows without a task or protocol hash (null) are not foreign."""
    if isinstance(path, StorePath):
        with path.store.open_input(path.name) as f:
            meta = pq.ParquetFile(f).metadata
    else:
        meta = pq.ParquetFile(path).metadata
    for column, allowed in _allowed(manifest).items():
        foreign = _distinct(path, meta, column) - allowed
        if foreign:
            raise CorpusError(f"{path}: a foreign part: it holds {column} {sorted(foreign)[0]!r}, the corpus "
                              f"{sorted(allowed)[0]!r}; move it out of the folder")


def scan_corpus(corpus_dir: Location, *, skip_corrupt: bool = False) -> pl.LazyFrame:
    """A lazy scan of every row: the manifest and each part's schema, task and protocol hash are checked now,
    parts a merged part covers are left out (no duplicates after a crash), and a corrupt part raises CorpusError
    naming it unless ``skip_corrupt`` (then it is left out; a foreign part is refused either way). The scan reads
    the parts listed now: collect it soon, or use read_corpus, which scans again when a compaction deleted one.
    On an object store it scans a ``pyarrow.dataset`` of the parts over the store's filesystem."""
    store = open_store(corpus_dir)
    good = list_parts(store, read_manifest(store), skip_corrupt=skip_corrupt).live
    if not good:
        return pl.LazyFrame(schema=_POLARS_SCHEMA)
    if isinstance(store, LocalStore):
        return pl.scan_parquet([str(p) for p in good], schema=_POLARS_SCHEMA, missing_columns="insert")
    fs, path = store.arrow()
    dataset = pads.dataset([path(p.name) for p in good], schema=SCHEMA, format="parquet", filesystem=fs)
    return pl.scan_pyarrow_dataset(dataset)


def read_corpus(corpus_dir: Location, *, skip_corrupt: bool = False) -> pl.DataFrame:
    """All rows, eagerly: ``scan_corpus(...).collect()``, scanned again when a compaction deleted a part between
    the scan and the collect."""
    return _collect(corpus_dir, skip_corrupt=skip_corrupt)


def _collect(corpus_dir: Location, *, skip_corrupt: bool, columns: tuple[str, ...] | None = None) -> pl.DataFrame:
    for attempt in range(_TRIES):
        lf = scan_corpus(corpus_dir, skip_corrupt=skip_corrupt)
        try:
            return (lf if columns is None else lf.select(columns)).collect()
        except FileNotFoundError:
            time.sleep(0.01 * 2**attempt)
        except pl.exceptions.ComputeError as e:  # a pyarrow dataset's vanished part, raised through polars
            if "FileNotFoundError" not in str(e) and "not found" not in str(e).lower():
                raise
            time.sleep(0.01 * 2**attempt)
    raise CorpusError(f"{corpus_dir}: parts were deleted under {_TRIES} reads in a row (compactions running?)")


def corrupt_parts(corpus_dir: Location) -> list[tuple[Any, str]]:
    """Parts that fail check_part, with the reason."""
    return list_parts(corpus_dir, skip_corrupt=True).corrupt


def existing_keys(corpus_dir: Location, *, skip_corrupt: bool = False) -> set[tuple[Any, ...]]:
    """Keys (arch, task, n_train, protocol, seed, device kind) already in the corpus, whatever their status."""
    if not is_corpus(corpus_dir):
        return set()
    return set(_collect(corpus_dir, skip_corrupt=skip_corrupt, columns=KEY_COLUMNS).iter_rows())


def holds_key(corpus_dir: Location, key: tuple[Any, ...]) -> bool:
    """Whether the run with this key (KEY_COLUMNS order) is stored, whatever its status: its own part, or a row of
    a merged or imported part. What a writer holding the run's lock checks just before it trains."""
    store = open_store(corpus_dir)
    if store.exists(key_part_name(key)):
        return True
    filters = [(c, "==", v) for c, v in zip(KEY_COLUMNS, key, strict=True)]

    def holds(p: Path | StorePath) -> bool:
        try:
            return read_part(p, columns=list(KEY_COLUMNS), filters=filters).num_rows > 0
        except FileNotFoundError:
            raise
        except (OSError, pa.ArrowException):
            return False  # a corrupt part is not read (and a reader refuses or skips it)

    return _consistent(store, lambda names: any(holds(store.handle(n)) for n in names if not KEY_PART.fullmatch(n)))

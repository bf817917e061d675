"""Prepared imports and their writing: manifest, a few large part files, and an ``_import.json`` sidecar.

An importer first prepares everything in memory (parse, check, map cells, build rows); nothing touches the output
folder until every prepared import of a command has passed, so bad input writes nothing.

The sidecar ``_import.json`` (``import.json`` in corpora imported before; not a part file, readers ignore it)
records, for each part, the source file and the source row numbers of its rows in order (as half-open ranges), so
every row joins back to its upstream index (the NAS-Bench-201 index, the NAS-Bench-101 / EC-NAS row) even where
isomorphic cells share an arch_id. It also holds the counts of skipped and approximated cells. It is written last:
its presence marks a finished import. A compaction (``narch corpus compact``, or a fill of the zero-cost columns)
merges parts in name order; ``update_sidecar`` then gives the merged part ``segments``, the entries of the parts it
replaced in row order.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from narch.core.files import atomic_write_json
from narch.core.provenance import builder_version, now_iso, provenance
from narch.dataset_builder.corpus import (
    Manifest,
    check_part,
    corpus_file,
    create_corpus,
    list_parts,
    open_corpus,
    part_files,
    rows_to_table,
    write_part,
)
from narch.dataset_builder.importers.cells import CELL_MAPPING_VERSION
from narch.search_space import SEARCH_SPACE_VERSION

SourceColumns = Callable[[str, int], dict[str, Any]]
"""(source file name, source row number) -> the columns of the rows from that source row."""

SIDECAR = "_import.json"  # corpus.LEGACY_NAMES: older imports keep import.json (corpus_file finds either)
NOTE = (
    "parts[name].source_rows: the source row number of each row of that part, in order, as half-open [start, stop) "
    "ranges (for NAS-Bench-201 files the row number is the NAS-Bench-201 index); a part merged by a compaction has "
    "segments instead: such entries (source, source_rows) in its row order"
)
PART_ROWS = 20_000
ROW_PROVENANCE = ("host", "git_rev", "builder_version", "created_at")  # the provenance keys that are corpus columns


def hash16(d: dict[str, Any]) -> str:
    """sha256 of canonical JSON, 16 hex digits (as Protocol.protocol_hash)."""
    return hashlib.sha256(json.dumps(d, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:16]


def budget_protocols(protocol: dict[str, Any], epochs: list[int]) -> dict[int, str]:
    """Per-budget protocol hashes: rows trained for different epochs differ in protocol, hence in key."""
    return {e: hash16({**protocol, "epochs": e}) for e in epochs}


@dataclass
class RowGroup:
    """Rows from one source file, in source order, with each row's source row number."""

    source_file: str
    rows: list[dict[str, Any]] = field(default_factory=list)
    source_rows: list[int] = field(default_factory=list)


@dataclass
class PreparedImport:
    """One corpus to write: checked rows, manifest and report; ``done`` when the same import is already there."""

    name: str
    out: Path
    manifest: Manifest
    groups: list[RowGroup]
    skipped: dict[str, int]
    notes: dict[str, int]
    unmapped: dict[str, dict[str, Any]]
    done_rows: int | None = None  # set when the same import is already there
    bench: SourceColumns | None = None  # per source row, the columns a finished import may lack (importers.backfill)
    filled: int = 0  # rows of a finished import that the backfill gave a value

    @property
    def done(self) -> bool:
        return self.done_rows is not None

    @property
    def n_rows(self) -> int:
        return self.done_rows if self.done_rows is not None else sum(len(g.rows) for g in self.groups)


def make_manifest(task: str, protocol: dict[str, Any]) -> Manifest:
    """The manifest of an imported corpus; the protocol names the sources (sha256 inside) and the cell mapping."""
    protocol = {**protocol, "cell_mapping_version": CELL_MAPPING_VERSION}
    return Manifest(
        task=task,
        protocol=protocol,
        protocol_hash=hash16(protocol),
        search_space_version=SEARCH_SPACE_VERSION,
        builder_version=builder_version(),
        created_at=now_iso(),
    )


def provenance_columns(created_at: str) -> dict[str, Any]:
    """Columns every imported row shares: an ok status and the provenance of the import (not the measurement)."""
    prov = provenance(created_at=created_at)
    return {"status": "ok", "parent_arch_id": None, "move": None} | {k: prov[k] for k in ROW_PROVENANCE}


def _sidecar(out: Path) -> dict[str, Any]:
    try:
        return json.loads(corpus_file(out, SIDECAR).read_text())
    except (OSError, json.JSONDecodeError):
        return {}


def already_imported(name: str, out: Path, manifest: Manifest) -> PreparedImport | None:
    """A finished import of the same sources and mapping in ``out`` (then nothing is to do), else None.

    Raises CorpusError when ``out`` holds another task or protocol, ValueError when it holds parts of an
    unfinished import or is not a folder.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"{out}: exists and is not a folder")
    open_corpus(out, manifest)
    if not out.is_dir() or not part_files(out):
        return None
    old = _sidecar(out)
    try:
        finished = old.get("protocol_hash") == manifest.protocol_hash and bool(_rekeyed(out, old.get("parts", {})))
    except ValueError:
        finished = False
    if not finished:
        raise ValueError(
            f"{out}: holds part files of an unfinished or different import; use another --out or remove the folder"
        )
    return PreparedImport(
        name, out, manifest, [], old.get("skipped", {}), old.get("approximations", {}), {}, done_rows=old["rows"]
    )


def _entries(entry: dict[str, Any]) -> list[dict[str, Any]]:
    return entry.get("segments", [entry])


def _rekeyed(out: Path, parts: dict[str, Any]) -> dict[str, Any]:
    """The sidecar's entries for the live parts. A part a compaction merged (listing the parts it replaces, sorted:
    the order it concatenated them in) gets ``segments``; ValueError for a part whose rows it cannot account for."""
    rekeyed: dict[str, Any] = {}
    for p in list_parts(out).live:
        if p.name in parts:
            rekeyed[p.name] = parts[p.name]
            continue
        merged = [n for n in check_part(p) if n in parts]
        entry = {"segments": [e for n in merged for e in _entries(parts[n])]}
        rows = sum(b - a for e in entry["segments"] for a, b, *_ in e["source_rows"])
        if not merged or rows != pq.ParquetFile(p).metadata.num_rows:
            raise ValueError(f"{out}: {SIDECAR} does not say where the rows of {p.name} come from")
        rekeyed[p.name] = entry
    return rekeyed


def update_sidecar(out: Path, **extra: Any) -> bool:
    """Rewrite the sidecar for the live parts (after a compaction) with ``extra`` keys added; whether it changed."""
    old = _sidecar(out)
    new = {**old, **extra, "parts": _rekeyed(out, old.get("parts", {}))}
    if new == old:
        return False
    new["note"] = NOTE
    atomic_write_json(corpus_file(out, SIDECAR), new, indent=None, separators=(",", ":"))
    return True


def finish_prepare(prep: PreparedImport) -> PreparedImport:
    """Check every row against the schema, before anything is written."""
    for g in prep.groups:
        rows_to_table(g.rows)  # unknown columns and wrong types fail here
    return prep


def _ranges(indices: list[int]) -> list[list[int]]:
    """Half-open [start, stop) runs of consecutive integers."""
    runs: list[list[int]] = []
    for i in indices:
        if runs and runs[-1][1] == i:
            runs[-1][1] = i + 1
        else:
            runs.append([i, i + 1])
    return runs


def write_import(prep: PreparedImport, *, part_rows: int = PART_ROWS) -> list[Path]:
    """Create the corpus and write its rows in parts of at most ``part_rows``; the sidecar last."""
    if prep.done:
        return []
    open_corpus(prep.out, prep.manifest)  # an existing corpus must hold the same task and protocol
    create_corpus(prep.out, prep.manifest)
    written: list[Path] = []
    parts: dict[str, Any] = {}
    for g in prep.groups:
        for start in range(0, len(g.rows), part_rows):
            path = write_part(prep.out, g.rows[start : start + part_rows])
            written.append(path)
            parts[path.name] = {
                "source": g.source_file,
                "source_rows": _ranges(g.source_rows[start : start + part_rows]),
            }
    sidecar = {
        "import": prep.name,
        "protocol_hash": prep.manifest.protocol_hash,
        "rows": prep.n_rows,
        "skipped": prep.skipped,
        "approximations": prep.notes,
        "unmapped": prep.unmapped,
        "parts": parts,
        "note": NOTE,
    }
    atomic_write_json(corpus_file(prep.out, SIDECAR), sidecar, indent=None, separators=(",", ":"))
    return written

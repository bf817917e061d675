"""Compaction: merge a corpus's parts into one, correct under a crash at any moment and alongside readers, builds
and other compactions.

Ideas taken, and why:
- A journal written before anything changes (SQLite's rollback journal; a Delta Lake commit naming the files it
  removes): ``_compaction.json`` names the merged part and the parts it replaces. Every compaction starts with
  recovery: when the journal says ``running``, a complete merged part rolls forward (the parts it replaces are
  deleted), a missing one rolls back (nothing was replaced yet). Delta's full log of live files was not taken:
  builds (shards, pool and Ray workers on other nodes) write parts without coordinating, and a plain glob of a
  compacted folder must keep reading right (the data card's examples), so the folder stays the truth and the
  journal only covers compaction.
- Write-once names, and a merged part that lists what it covers (its Parquet key-value metadata; Iceberg's
  manifests list live files the same way): readers hide covered parts, so old and merged parts are never read
  together, even after a crash between the merged part's rename and the deletions. The list carries forward every
  key-named part (a run's own part, which a late writer - a retry, a second build - may write again) through later
  compactions, so such a late part stays hidden; the next compaction deletes it instead of merging it.
- A seqlock on the journal (as SQLite's WAL readers check the index header): readers read it before and after
  listing and list again when it changed or a part vanished (corpus.list_parts).
- An advisory flock (``_compaction.lock``, released when the holder dies) serialises compactions: a second one
  waits, or with ``wait=False`` says another compaction holds the lock. On an object store the same lock is a lease
  (``narch.core.store.lease_lock``: generations created with put-if-absent, a heartbeat; a dead holder's lock is
  taken over after one lease), and the merged part's write is one PUT, visible whole or not at all, so the same
  steps hold there: every file operation goes through the folder's ``Store``.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from narch.core.locks import LockBusy
from narch.core.store import Location, Store, open_store
from narch.dataset_builder.corpus import (
    JOURNAL,
    KEY_PART,
    REPLACES_KEY,
    CorpusError,
    Listing,
    Manifest,
    check_part,
    conform,
    list_parts,
    read_journal,
    read_manifest,
    read_part,
)

LOCK = "_compaction.lock"


@dataclass(frozen=True)
class Compaction:
    """What a compaction did."""

    merged: int  # parts merged into ``path``
    path: Any  # the new part (a Path, or a StorePath on an object store); None when there was nothing to compact
    recovered: str = ""  # what recovery did with an interrupted compaction, if it found one
    removed: int = 0  # covered parts deleted (a crash's leftovers, late writers)


Fill = Callable[[pa.Table], pa.Table]


def fill_nulls(values: pl.DataFrame, *, on: Sequence[str], columns: Sequence[str]) -> Fill:
    """A Fill that sets the null cells of ``columns`` from ``values`` (one row per key ``on``; null keys match) and
    keeps every value that is there, every other column and the row order (_import.json maps rows by position)."""
    keys = list(on)
    new = {c: f"{c}__new" for c in columns}

    def fill(table: pa.Table) -> pa.Table:
        df = pl.from_arrow(table)
        assert isinstance(df, pl.DataFrame)
        v = values.select(*keys, *columns).unique(keys, keep="first", maintain_order=True).rename(new)
        v = v.with_columns(*(pl.col(k).cast(df.schema[k]) for k in keys))
        out = df.join(v, on=keys, how="left", nulls_equal=True, maintain_order="left")
        out = out.with_columns(*(pl.coalesce(c, n).alias(c) for c, n in new.items()))
        return out.drop(list(new.values())).to_arrow()

    return fill


def compact_corpus(corpus_dir: Location, *, wait: bool = True, fill: Fill | None = None) -> Compaction:
    """Finish or roll back an interrupted compaction, delete covered parts, then merge every live part into one.
    Holds the corpus's compaction lock throughout; ``wait`` False raises CorpusError when another holds it.
    ``fill`` adds derived values to the merged rows (``narch zc``: null zero-cost columns filled in; it must never
    change a value that is there), and merges even a single live part."""
    d = open_store(corpus_dir)
    manifest = read_manifest(d)
    try:
        with d.lock(LOCK, wait=wait):
            return _compact(d, manifest, fill)
    except LockBusy:
        raise CorpusError(f"{d.root}: another compaction holds the lock ({LOCK}); try again when it has finished"
                          ) from None


def recover(corpus_dir: Location) -> str:
    """Finish (merged part complete) or roll back (merged part missing) the compaction a journal says is running;
    what was done, or "" when none was. The caller holds the compaction lock."""
    store = open_store(corpus_dir)
    j = read_journal(store)
    if j is None or j["state"] != "running":
        return ""
    merged = j["merged"]
    for tmp in store.names(f".{merged}.*.tmp"):  # the merged part's temp file, if it died writing it
        store.delete(tmp)
    try:
        check_part(store.handle(merged))
        complete = True
    except (CorpusError, FileNotFoundError):
        complete = False
    if complete:
        gone = [n for n in j["replaces"] if store.delete(n)]
        note = f"finished an interrupted compaction ({len(gone)} replaced parts deleted)"
    else:
        store.delete(merged)
        note = "rolled back an interrupted compaction (its merged part was never complete)"
    store.sync()
    _journal(store, {"state": "done" if complete else "rolled_back", "seq": j["seq"], "merged": j["merged"]})
    return note


def _compact(d: Store, manifest: Manifest, fill: Fill | None = None) -> Compaction:
    note = recover(d)
    listing = list_parts(d, manifest)
    removed = sum(_unlink(p) for p in listing.hidden)
    if removed:
        d.sync()
    if len(listing.live) < (1 if fill else 2):
        return Compaction(0, None, note, removed)
    table = pa.concat_tables([conform(read_part(p)) for p in listing.live])
    if fill is not None:
        table = conform(fill(table))
    replaces = [p.name for p in listing.live]
    table = table.replace_schema_metadata({REPLACES_KEY: json.dumps(_covers(listing))})
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
    name = f"part-{stamp}-compact-{uuid.uuid4().hex[:8]}.parquet"
    last = read_journal(d)
    seq = 1 + (last["seq"] if last else 0)
    _journal(d, {"state": "running", "seq": seq, "merged": name, "replaces": replaces})
    try:
        d.write(name, lambda f: pq.write_table(table, f, compression="zstd"))
    except BaseException:  # disk full, Ctrl-C: nothing was replaced; undo now rather than at the next compaction
        d.delete(name)
        _journal(d, {"state": "rolled_back", "seq": seq, "merged": name})
        raise
    for p in listing.live:
        _unlink(p)
    d.sync()
    _journal(d, {"state": "done", "seq": seq, "merged": name})
    return Compaction(len(replaces), d.handle(name), note, removed)


def _covers(listing: Listing) -> list[str]:
    """What the new merged part covers: every part it merges, and the key-named parts the merged ones cover (a late
    writer may write those again; other names are written once)."""
    return sorted({p.name for p in listing.live} | {n for n in listing.covered if KEY_PART.fullmatch(n)})


def _journal(d: Store, entry: dict[str, Any]) -> None:
    text = json.dumps(entry, sort_keys=True, allow_nan=False) + "\n"  # as atomic_write_json(indent=None) writes it
    d.write(JOURNAL, lambda f: f.write(text.encode()))


def _unlink(part: Any) -> bool:
    """Delete a part as list_parts hands it out (``Path.unlink`` locally); whether it was there."""
    if isinstance(part, Path):
        try:
            part.unlink()
        except FileNotFoundError:
            return False
        return True
    return part.store.delete(part.name)

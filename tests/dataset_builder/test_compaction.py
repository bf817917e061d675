"""Fault injection on corpus writes: kills at the moment a merged part appears, compactions racing each other, reads,
builds and late writers; foreign parts and edited manifests. Real subprocesses where a process dies or races."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest

from narch.core.locks import LockBusy, hold_lock
from narch.dataset_builder.compaction import LOCK, compact_corpus
from narch.dataset_builder.corpus import (
    JOURNAL,
    MANIFEST,
    CorpusError,
    Manifest,
    create_corpus,
    key_part_name,
    part_files,
    read_corpus,
    read_journal,
    read_manifest,
    write_part,
)
from narch.dataset_builder.protocol import Protocol, protocol_digest
from narch.dataset_builder.schema import KEY_COLUMNS
from tests.conftest import build_tiny

PROTOCOL = Protocol(epochs=1)
ROOT = Path(__file__).resolve().parents[2]


def _manifest(task: str = "mnist1d", protocol: Protocol = PROTOCOL) -> Manifest:
    return Manifest(task=task, protocol=protocol.to_dict(), protocol_hash=protocol.protocol_hash,
                    search_space_version="1", builder_version="0")


def _fake(out: Path, n: int, *, start: int = 0, task: str = "mnist1d", protocol: Protocol = PROTOCOL) -> None:
    """``n`` one-row parts named by key, as runs write them (no training: these tests are about files)."""
    create_corpus(out, _manifest(task, protocol))
    for i in range(start, start + n):
        row = {"arch_id": f"{i:016x}", "task": task, "n_train": 8, "protocol_hash": protocol.protocol_hash, "seed": 0,
               "device_kind": "cpu", "status": "ok"}
        write_part(out, [row], name=key_part_name(tuple(row[k] for k in KEY_COLUMNS)))


def _counts(out: Path) -> tuple[int, int]:
    """(rows, distinct keys)."""
    df = read_corpus(out)
    return df.height, df.select(KEY_COLUMNS).n_unique()


def _narch(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "narch.cli", *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=300)


# The compaction CLI with Path.unlink exiting the process once it has deleted ``argv[2]`` parquet files: a SIGKILL
# at the moment the merged part has appeared and part of what it replaces is gone.
KILL_AFTER_UNLINKS = """
import os, sys
from pathlib import Path
deleted, unlink = 0, Path.unlink
def dying_unlink(self, *a, **k):
    global deleted
    if self.suffix == ".parquet":
        if deleted == int(sys.argv[2]):
            os._exit(9)
        deleted += 1
    return unlink(self, *a, **k)
Path.unlink = dying_unlink
from narch.cli import app
app(["corpus", "compact", sys.argv[1]])
"""


def test_kill_when_the_merged_part_appears_then_compact_build_compact(tiny_corpus: Path, tmp_path: Path) -> None:
    corpus = tmp_path / "c"
    shutil.copytree(tiny_corpus, corpus)
    killed = subprocess.run([sys.executable, "-c", KILL_AFTER_UNLINKS, str(corpus), "3"], cwd=ROOT,
                            capture_output=True, text=True, timeout=300)
    assert killed.returncode == 9, killed.stderr
    assert len(part_files(corpus)) == 4 and read_journal(corpus)["state"] == "running"  # merged + 3 old
    assert _counts(corpus) == (6, 6)  # read right after the crash
    again = _narch("corpus", "compact", str(corpus))
    assert again.returncode == 0 and "finished an interrupted compaction (3 replaced parts deleted)" in again.stdout
    assert len(part_files(corpus)) == 1
    build_tiny(corpus, archs=7)  # one more network than the tiny corpus (same plan, same settings)
    assert _narch("corpus", "compact", str(corpus)).returncode == 0
    assert _counts(corpus) == (7, 7)
    assert pl.read_parquet(f"{corpus}/*.parquet").height == 7  # a plain glob too


# Dies inside the merged part's atomic write, before its rename: nothing was replaced yet.
KILL_BEFORE_RENAME = """
import os, sys
real = os.replace
def dying_replace(src, dst):
    if "-compact-" in str(dst):
        os._exit(9)
    return real(src, dst)
os.replace = dying_replace
from narch.cli import app
app(["corpus", "compact", sys.argv[1]])
"""


def test_kill_before_the_merged_part_appears_rolls_back(tmp_path: Path) -> None:
    corpus = tmp_path / "c"
    _fake(corpus, 6)
    killed = subprocess.run([sys.executable, "-c", KILL_BEFORE_RENAME, str(corpus)], cwd=ROOT, capture_output=True,
                            text=True, timeout=300)
    assert killed.returncode == 9, killed.stderr
    assert read_journal(corpus)["state"] == "running" and list(corpus.glob(".part-*-compact-*.tmp"))
    assert _counts(corpus) == (6, 6)
    done = compact_corpus(corpus)
    assert done.recovered.startswith("rolled back") and done.merged == 6
    assert not list(corpus.glob("*.tmp")) and _counts(corpus) == (6, 6) and len(part_files(corpus)) == 1


def test_two_compactions_at_once_one_waits(tmp_path: Path) -> None:
    corpus = tmp_path / "c"
    _fake(corpus, 200)
    procs = [subprocess.Popen([sys.executable, "-m", "narch.cli", "corpus", "compact", str(corpus)], cwd=ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [(p.wait(timeout=300), *p.communicate()) for p in procs]
    assert [rc for rc, _, _ in results] == [0, 0], results
    said = sorted(out.strip().rsplit(": ", 1)[-1].split(" into ")[0] for _, out, _ in results)
    assert said == ["merged 200 parts", "nothing to compact"]
    assert _counts(corpus) == (200, 200) and pl.read_parquet(f"{corpus}/*.parquet").height == 200


def test_compaction_without_waiting_says_the_lock_is_held(tmp_path: Path) -> None:
    corpus = tmp_path / "c"
    _fake(corpus, 3)
    with hold_lock(corpus / LOCK), pytest.raises(CorpusError, match="another compaction holds the lock"):
        compact_corpus(corpus, wait=False)
    assert len(part_files(corpus)) == 3 and not (corpus / LOCK).exists()  # released and removed
    assert compact_corpus(corpus, wait=False).merged == 3


def test_a_dead_holder_releases_its_lock(tmp_path: Path) -> None:
    lock = tmp_path / "x.lock"
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from narch.core.locks import hold_lock\n"
                               "with hold_lock(sys.argv[1]):\n print('held', flush=True); time.sleep(600)", str(lock)],
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    with pytest.raises(LockBusy), hold_lock(lock, wait=False):
        pass
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    with hold_lock(lock, timeout_s=10):
        assert lock.exists()
    assert not lock.exists()


READER = """
import json, sys, time
from narch.dataset_builder.corpus import read_corpus
from narch.dataset_builder.schema import KEY_COLUMNS
reads = errors = duplicated = 0
last = ""
end = time.monotonic() + float(sys.argv[2])
while time.monotonic() < end:
    try:
        df = read_corpus(sys.argv[1])
    except Exception as e:
        errors += 1
        last = f"{type(e).__name__}: {e}"
        continue
    reads += 1
    duplicated += df.height != df.select(KEY_COLUMNS).n_unique()
print(json.dumps({"reads": reads, "errors": errors, "duplicated": duplicated, "last": last}))
"""


def test_reads_during_compactions_never_fail_nor_duplicate(tmp_path: Path) -> None:
    corpus = tmp_path / "c"
    _fake(corpus, 300)
    reader = subprocess.Popen([sys.executable, "-c", READER, str(corpus), "12"], cwd=ROOT, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    time.sleep(3)  # the reader is up and reading
    compactions = 0
    while reader.poll() is None:
        compactions += compact_corpus(corpus).path is not None
        _fake(corpus, 40, start=1000 + 40 * compactions)
    out, err = reader.communicate()
    seen = json.loads(out)
    assert seen["errors"] == 0 and seen["duplicated"] == 0 and seen["reads"] > 0, (seen, err)
    assert compactions >= 2
    assert _counts(corpus) == (300 + 40 * compactions, 300 + 40 * compactions)


def test_a_late_writer_never_brings_a_covered_part_back(tmp_path: Path) -> None:
    corpus = tmp_path / "c"
    _fake(corpus, 5)
    compact_corpus(corpus)
    _fake(corpus, 2)  # a late writer of two stored keys (a retried run, a build that listed the folder earlier)
    assert _counts(corpus) == (5, 5)
    _fake(corpus, 1, start=100)  # a new network
    done = compact_corpus(corpus)
    assert done.removed == 2 and done.merged == 2
    _fake(corpus, 2)  # late again, now that the part that held those rows has itself been merged
    assert _counts(corpus) == (6, 6)
    assert compact_corpus(corpus).removed == 2
    assert _counts(corpus) == (6, 6) and pl.read_parquet(f"{corpus}/*.parquet").height == 6


@pytest.mark.parametrize(("task", "protocol", "what"), [("digits", PROTOCOL, "task 'digits'"),
                                                        ("mnist1d", Protocol(epochs=2), "protocol_hash")])
def test_a_foreign_part_is_refused_naming_it(tmp_path: Path, task: str, protocol: Protocol, what: str) -> None:
    corpus, other = tmp_path / "c", tmp_path / "other"
    _fake(corpus, 3)
    _fake(other, 1, task=task, protocol=protocol)
    shutil.copy(part_files(other)[0], corpus / "part-copied.parquet")
    for read in (read_corpus, lambda c: read_corpus(c, skip_corrupt=True), compact_corpus):
        with pytest.raises(CorpusError, match=rf"part-copied\.parquet: a foreign part: it holds {what}") as e:
            read(corpus)
        assert len(str(e.value).splitlines()) == 1
    assert len(part_files(corpus)) == 4  # the compaction merged nothing


def test_an_import_may_hold_its_budgets_protocol_hashes(tmp_path: Path) -> None:
    protocol = {"source": "x", "budget_protocol_hashes": {"12": "a" * 16, "200": "b" * 16}}
    create_corpus(tmp_path, Manifest(task="t", protocol=protocol, protocol_hash=protocol_digest(protocol),
                                     search_space_version="1", builder_version="0"))
    write_part(tmp_path, [{"arch_id": "x", "task": "t", "protocol_hash": h} for h in ("a" * 16, "b" * 16)])
    assert read_corpus(tmp_path).height == 2
    write_part(tmp_path, [{"arch_id": "y", "task": "t", "protocol_hash": "c" * 16}])
    with pytest.raises(CorpusError, match="a foreign part: it holds protocol_hash 'cccc"):
        read_corpus(tmp_path)


@pytest.mark.parametrize("edit", [{"epochs": 50}, {"lr": 0.1}])
def test_a_manifest_whose_protocol_was_edited_is_refused(tmp_path: Path, edit: dict[str, object]) -> None:
    _fake(tmp_path, 1)
    d = json.loads((tmp_path / MANIFEST).read_text())
    d["protocol"].update(edit)
    (tmp_path / MANIFEST).write_text(json.dumps(d))
    with pytest.raises(CorpusError, match="the protocol does not match its protocol_hash"):
        read_manifest(tmp_path)
    d["protocol"] = "epochs=1"
    (tmp_path / MANIFEST).write_text(json.dumps(d))
    with pytest.raises(CorpusError, match="the protocol is not a JSON object"):
        read_corpus(tmp_path)


def test_a_tampered_journal_cannot_delete_outside_the_corpus(tmp_path: Path) -> None:
    corpus, victim = tmp_path / "c", tmp_path / "victim.parquet"
    _fake(corpus, 2)
    victim.write_bytes(b"keep me")
    entry = {"state": "running", "seq": 1, "merged": part_files(corpus)[0].name, "replaces": ["../victim.parquet"]}
    (corpus / JOURNAL).write_text(json.dumps(entry))
    with pytest.raises(CorpusError, match="malformed compaction journal"):
        compact_corpus(corpus)
    assert victim.exists()


@pytest.mark.slow
def test_compactions_during_a_build(tmp_path: Path) -> None:
    corpus = tmp_path / "c"
    args = ["build", "--archs", "6", "--epochs", "1", "--n-train", "256", "--threads", "1", "--quiet",
            "--out", str(corpus)]
    build = subprocess.Popen([sys.executable, "-m", "narch.cli", *args], cwd=ROOT, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    merges = 0
    while build.poll() is None:
        if corpus.is_dir() and (corpus / MANIFEST).exists():
            merges += compact_corpus(corpus).path is not None
        time.sleep(0.2)
    _, err = build.communicate()
    assert build.returncode == 0, err
    assert merges >= 1, "no compaction overlapped the build; give it more work"
    assert _counts(corpus) == (6, 6)
    again = _narch(*args)
    assert again.returncode == 0 and "0 trained" in again.stdout and "6 already present" in again.stdout


@pytest.mark.slow
def test_two_builds_into_one_folder_train_each_network_once(tmp_path: Path) -> None:
    corpus = tmp_path / "c"
    args = [sys.executable, "-m", "narch.cli", "build", "--archs", "4", "--epochs", "1", "--n-train", "256",
            "--threads", "1", "--quiet", "--out", str(corpus)]
    procs = [subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    outs = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    trained = [int(out.split(": ", 1)[1].split(" trained")[0]) for out, _ in outs]
    assert sum(trained) == 4, outs
    assert _counts(corpus) == (4, 4)
    assert not list(corpus.glob("_*.lock"))

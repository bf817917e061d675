"""A corpus on an object store keeps the local folder's guarantees: one suite, run on a local folder and on a real
S3-compatible server on the loopback address (moto in server mode; no mock of the client). Builds, compactions and
kills are real, the kills in real subprocesses."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

import polars as pl
import pyarrow.dataset as pads
import pytest
from typer.testing import CliRunner

from narch.cli import app
from narch.core.store import open_store
from narch.dataset_builder.compaction import LOCK, compact_corpus
from narch.dataset_builder.corpus import (
    JOURNAL,
    CorpusError,
    check_part,
    part_files,
    read_corpus,
    read_journal,
)
from narch.dataset_builder.schema import KEY_COLUMNS
from tests.conftest import build_tiny
from tests.dataset_builder.test_compaction import _fake

ROOT = Path(__file__).resolve().parents[2]
BUILD = ["build", "--task", "mnist1d", "--archs", "3", "--epochs", "1", "--n-train", "128", "--threads", "1",
         "--quiet"]


def _glob_rows(at: str) -> int:
    """Rows of a plain ``pyarrow.dataset`` of the folder (no narch reader): ``_``-prefixed files are skipped."""
    store = open_store(at)
    fs, path = store.arrow()
    return pads.dataset(path("").rstrip("/"), format="parquet", filesystem=fs).count_rows()


def _python(code: str, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code, *args], cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env=env)


def test_build_read_compact_resume(corpus_at: str) -> None:
    build_tiny(corpus_at, archs=3, n_train=128)
    assert len(part_files(corpus_at)) == 3
    first = read_corpus(corpus_at)
    assert first.height == 3 and set(first["status"]) == {"ok"}
    done = compact_corpus(corpus_at)
    assert done.merged == 3 and [p.name for p in part_files(corpus_at)] == [done.path.name]
    assert read_corpus(corpus_at).sort("arch_id").equals(first.sort("arch_id"))
    assert read_journal(corpus_at)["state"] == "done"
    build_tiny(corpus_at, archs=4, n_train=128)  # resumes: the three stored runs are skipped, one is trained
    df = read_corpus(corpus_at)
    assert df.height == 4 and df.select(KEY_COLUMNS).n_unique() == 4
    assert _glob_rows(corpus_at) == 4


# The build CLI with Parquet writes cut short: the second part's writer dies half-way through its bytes (inside the
# temp file locally; before the one PUT on the object store), the way a SIGKILL lands mid-part.
DIE_MID_PART = """
import io, os, sys
import pyarrow.parquet as pq
from narch.dataset_builder import corpus
written, real = 0, pq.write_table
def dying(table, where, **kw):
    global written
    written += 1
    if written == 2:
        buf = io.BytesIO(); real(table, buf, **kw)
        where.write(buf.getvalue()[: len(buf.getvalue()) // 2]); where.flush()
        os._exit(9)
    return real(table, where, **kw)
corpus.pq.write_table = dying
from narch.cli import app
app(sys.argv[1:])
"""


def test_a_build_killed_mid_part_resumes_to_exactly_the_plan(corpus_at: str, monkeypatch: pytest.MonkeyPatch
                                                             ) -> None:
    monkeypatch.setenv("NARCH_LEASE_S", "2")  # the dead run's lock on the object store lapses after 2 s
    killed = _python(DIE_MID_PART, *BUILD, "--out", corpus_at)
    assert killed.returncode == 9, killed.stderr
    parts = part_files(corpus_at)
    assert len(parts) == 1  # the first part, whole; nothing of the second
    for p in parts:
        check_part(p)
    assert read_corpus(corpus_at).height == 1
    again = _python("import sys; from narch.cli import app; app(sys.argv[1:])", *BUILD, "--out", corpus_at)
    assert again.returncode == 0, again.stderr
    assert "2 trained" in again.stdout and "1 already present" in again.stdout
    df = read_corpus(corpus_at)
    assert df.height == 3 and df["arch_id"].n_unique() == 3 and set(df["status"]) == {"ok"}


def test_a_put_cut_mid_body_stores_nothing(s3_endpoint: str) -> None:
    """What makes a part whole or absent on the store: a PUT whose sender dies mid-body never becomes an object."""
    from narch.testing.object_store import new_bucket

    at = f"{new_bucket()}/c"
    _fake(at, 2)
    body = open_store(at).read_bytes(part_files(at)[0].name)
    url = urlparse(s3_endpoint)

    def put(name: str, data: bytes) -> None:
        """A raw HTTP PUT announcing the whole body and sending ``data``, then the connection closes."""
        head = f"PUT /{at.removeprefix('s3://')}/{name} HTTP/1.1\r\nHost: {url.netloc}\r\n"
        with socket.create_connection((url.hostname, url.port)) as s:
            s.sendall(f"{head}Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + data)
            s.settimeout(10)
            with contextlib.suppress(OSError):
                s.recv(1024)  # the server's answer, or the end of a connection it drops

    put("_whole.bin", body)  # the same raw request, whole: it is stored (so the absence below means something)
    put("part-cut.parquet", body[: len(body) // 2])
    store = open_store(at)
    assert store.read_bytes("_whole.bin") == body
    assert not store.exists("part-cut.parquet")
    assert read_corpus(at).height == 2


# The compaction CLI dying once it has deleted ``argv[2]`` of the parts it merged: the merged part is there, part of
# what it replaces is gone, the journal still says running.
DIE_AFTER_DELETES = """
import os, sys
from pathlib import Path
from narch.core.store import FsspecStore
deleted, unlink, delete = 0, Path.unlink, FsspecStore.delete
def count(name):
    global deleted
    if name.endswith(".parquet"):
        if deleted == int(sys.argv[2]):
            os._exit(9)
        deleted += 1
def dying_unlink(self, *a, **k):
    count(self.name)
    return unlink(self, *a, **k)
def dying_delete(self, name):
    count(name)
    return delete(self, name)
Path.unlink, FsspecStore.delete = dying_unlink, dying_delete
from narch.cli import app
app(["corpus", "compact", sys.argv[1]])
"""


def test_a_compaction_killed_after_its_merged_part_appears_is_finished(corpus_at: str,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NARCH_LEASE_S", "2")
    _fake(corpus_at, 6)
    killed = _python(DIE_AFTER_DELETES, corpus_at, "2")
    assert killed.returncode == 9, killed.stderr
    assert len(part_files(corpus_at)) == 5 and read_journal(corpus_at)["state"] == "running"  # merged + 4 old
    df = read_corpus(corpus_at)
    assert df.height == 6 and df.select(KEY_COLUMNS).n_unique() == 6  # right after the crash: no duplicates
    done = compact_corpus(corpus_at)  # waits out the dead compaction's lock (a lease on the object store)
    assert done.recovered == "finished an interrupted compaction (4 replaced parts deleted)"
    assert len(part_files(corpus_at)) == 1 and read_corpus(corpus_at).height == 6 and _glob_rows(corpus_at) == 6


def test_two_compactions_at_once_one_waits(corpus_at: str) -> None:
    _fake(corpus_at, 30)
    cmd = [sys.executable, "-m", "narch.cli", "corpus", "compact", corpus_at]
    procs = [subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    results = [(p.wait(timeout=300), *p.communicate()) for p in procs]
    assert [rc for rc, _, _ in results] == [0, 0], results
    said = sorted(out.strip().rsplit(": ", 1)[-1].split(" into ")[0] for _, out, _ in results)
    assert said == ["merged 30 parts", "nothing to compact"]
    df = read_corpus(corpus_at)
    assert df.height == 30 and df.select(KEY_COLUMNS).n_unique() == 30


HOLD = """
import sys, time
from narch.core.store import open_store
with open_store(sys.argv[1]).lock(sys.argv[2]):
    print("held", flush=True)
    time.sleep(600)
"""


def test_a_dead_holder_loses_its_lock(corpus_at: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NARCH_LEASE_S", "2")
    _fake(corpus_at, 3)
    holder = subprocess.Popen([sys.executable, "-c", HOLD, corpus_at, LOCK], cwd=ROOT, stdout=subprocess.PIPE,
                              text=True)
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    time.sleep(3)  # past one lease: a live holder's heartbeat keeps the lock
    with pytest.raises(CorpusError, match="another compaction holds the lock"):
        compact_corpus(corpus_at, wait=False)
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    assert compact_corpus(corpus_at).merged == 3  # the dead holder's lock is taken over (at once locally)


def test_leaderboard_and_search_read_the_corpus_where_it_is(corpus_at: str, tmp_path: Path) -> None:
    build_tiny(corpus_at, archs=6, n_train=128)
    runner = CliRunner()
    board = tmp_path / "lb"
    r = runner.invoke(app, ["leaderboard", "--corpus", corpus_at, "--out", str(board), "--predictors", "mean,ridge",
                            "--seeds", "1", "--trials", "0", "--sizes", "4", "--no-all"])
    assert r.exit_code == 0, r.output
    cells = pl.read_parquet(board / "leaderboard.parquet")
    assert set(cells["predictor"]) == {"mean", "ridge"}
    frozen = json.loads((board / "frozen" / "manifest.json").read_text())
    assert frozen["corpus"] == corpus_at  # the URL as given (a Path would fold its //)
    r = runner.invoke(app, ["search", "--predictor", str(board / "frozen"), "--out", str(tmp_path / "s"),
                            "--strategy", "random", "--budget", "10", "--seeds", "1", "--batch", "4",
                            "--episode-len", "2"])
    assert r.exit_code == 0, r.output
    assert "random: final best reward" in r.output


def test_the_journal_and_locks_stay_out_of_the_parts(corpus_at: str) -> None:
    _fake(corpus_at, 2)
    compact_corpus(corpus_at)
    store = open_store(corpus_at)
    assert store.exists(JOURNAL) and store.names("*.parquet") == [p.name for p in part_files(corpus_at)]
    assert _glob_rows(corpus_at) == 2


def test_corpus_info_reads_the_store(corpus_at: str) -> None:
    _fake(corpus_at, 2)
    r = CliRunner().invoke(app, ["corpus", "info", corpus_at])
    assert r.exit_code == 0, r.output
    assert "parts: 2" in r.output and "rows: 2" in r.output


def test_a_missing_bucket_or_scheme_is_one_line_naming_it(s3_endpoint: str) -> None:
    cases = {"s3://no-such-bucket-narch/c": "s3://no-such-bucket-narch/c: --out cannot be written "
                                            "(no-such-bucket-narch does not exist)",
             "nosuchscheme://b/c": "nosuchscheme://b/c: cannot open its filesystem"}
    for url, said in cases.items():
        r = _python("import sys; from narch.cli import app; app(sys.argv[1:])", *BUILD, "--out", url)
        lines = [x for x in (r.stdout + r.stderr).splitlines() if x.strip()]
        assert r.returncode == 2 and len(lines) == 1 and said in lines[0], (url, lines)


def test_a_lease_lock_lets_one_holder_in_at_a_time(s3_endpoint: str) -> None:
    import threading

    from narch.testing.object_store import new_bucket

    store = open_store(f"{new_bucket()}/c")
    inside, overlaps, entered = [0], [0], [0]

    def worker() -> None:
        for _ in range(3):
            with store.lock("x.lock"):
                inside[0] += 1
                overlaps[0] += inside[0] > 1
                time.sleep(0.05)
                entered[0] += 1
                inside[0] -= 1

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert entered[0] == 12 and overlaps[0] == 0
    generations = store.entries("_locks/x.lock")
    assert len(generations) == 1 and json.loads(store.read_bytes(f"_locks/x.lock/{next(iter(generations))}")
                                                )["state"] == "released"

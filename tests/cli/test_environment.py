"""A hostile environment (disk full, read-only, permission denied) gives one line naming the path, exit 2, no
traceback, and nothing half-written: no empty corpus folder, no part, no stored row for a run the disk refused.

Real subprocesses. Write errors are injected through a ``sitecustomize`` on PYTHONPATH (files whose name matches a
glob fail to write with the given errno); a small tmpfs is used too where this process may mount one.
"""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from narch.dataset_builder.corpus import part_files, read_corpus

SITECUSTOMIZE = '''
"""Test-only: writes to files whose name matches NARCH_FAULT_NAME fail with NARCH_FAULT_ERRNO."""
import errno, fnmatch, os, pathlib

_PATTERN = os.environ.get("NARCH_FAULT_NAME")
_ERRNO = getattr(errno, os.environ.get("NARCH_FAULT_ERRNO", "ENOSPC"))
_open = pathlib.Path.open


class _Refused:
    def __init__(self, f):
        self._f = f

    def write(self, data):
        raise OSError(_ERRNO, os.strerror(_ERRNO))

    def __getattr__(self, name):
        return getattr(self._f, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._f.close()


def _open_faulty(self, mode="r", *args, **kwargs):
    f = _open(self, mode, *args, **kwargs)
    if _PATTERN and any(c in mode for c in "wax") and fnmatch.fnmatch(self.name, _PATTERN):
        return _Refused(f)
    return f


pathlib.Path.open = _open_faulty
'''

BUILD = ["build", "--quiet", "--archs", "1", "--epochs", "1", "--n-train", "128", "--threads", "1"]
PART = ".part-*"  # the temp file of a part being written
MANIFEST_TMP = "._manifest.json*"


def narch(args: list[str], *, site: Path | None = None, fault: str | None = None, code: str = "ENOSPC"
          ) -> subprocess.CompletedProcess[str]:
    """Run the CLI in a fresh process, with writes to ``fault``-matching files failing with errno ``code``."""
    env = dict(os.environ)
    if site is not None and fault is not None:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(site), env.get("PYTHONPATH")) if p)
        env |= {"NARCH_FAULT_NAME": fault, "NARCH_FAULT_ERRNO": code}
    env.pop("NARCH_DEBUG", None)
    return subprocess.run([sys.executable, "-m", "narch.cli", *args], capture_output=True, text=True, env=env,
                          timeout=300, check=False)


def one_line_error(res: subprocess.CompletedProcess[str], *expect: str) -> str:
    assert res.returncode == 2, (res.returncode, res.stderr)
    assert "Traceback" not in res.stderr, res.stderr
    errors = [ln for ln in res.stderr.splitlines() if ln.startswith("narch: error:")]
    assert len(errors) == 1, res.stderr
    others = [ln for ln in res.stderr.splitlines() if ln.strip() and not ln.startswith(("narch: error:", "warning:"))]
    assert not others, res.stderr
    for e in expect:
        assert e in errors[0], errors[0]
    return errors[0]


@pytest.fixture
def site(tmp_path: Path) -> Path:
    d = tmp_path / "site"
    d.mkdir()
    (d / "sitecustomize.py").write_text(SITECUSTOMIZE)
    return d


def test_disk_full_at_the_manifest_leaves_no_folder(tmp_path: Path, site: Path) -> None:
    out = tmp_path / "new" / "corpus"
    res = narch([*BUILD, "--out", str(out)], site=site, fault=MANIFEST_TMP)
    one_line_error(res, f"{out}/_manifest.json: no space left on device")
    assert not (tmp_path / "new").exists(), "the folders made for the corpus go again"


@pytest.mark.parametrize(("code", "problem"), [("ENOSPC", "no space left on device"),
                                               ("EROFS", "read-only file system"),
                                               ("EACCES", "permission denied")])
def test_a_refused_part_after_training_stores_nothing(tmp_path: Path, site: Path, code: str, problem: str) -> None:
    out = tmp_path / "corpus"
    res = narch([*BUILD, "--out", str(out)], site=site, fault=PART, code=code)
    line = one_line_error(res, str(out), ".parquet: " + problem)
    assert "/." not in line, "the part meant is named, not its temp file"
    assert part_files(out) == [] and not list(out.glob(".*.tmp")), "no row, no temp file"
    if code != "ENOSPC":
        return
    again = narch([*BUILD, "--out", str(out)])  # the network was never stored: it trains now, as ok
    assert again.returncode == 0, again.stderr
    assert "1 trained (ok 1), 0 already present" in again.stdout
    assert read_corpus(out)["status"].to_list() == ["ok"]


def test_disk_full_writing_a_data_card_keeps_the_old_one(tiny_corpus: Path, tmp_path: Path, site: Path) -> None:
    card = tmp_path / "DATACARD.md"
    card.write_text("old card\n")
    res = narch(["corpus", "datacard", str(tiny_corpus), "--out", str(card)], site=site, fault=".DATACARD.md*")
    one_line_error(res, f"{card}: no space left on device")
    assert card.read_text() == "old card\n" and sorted(p.name for p in tmp_path.iterdir()) == ["DATACARD.md", "site"]


def test_disk_full_during_compaction_keeps_every_part(tiny_corpus: Path, tmp_path: Path, site: Path) -> None:
    corpus = tmp_path / "c"
    shutil.copytree(tiny_corpus, corpus)
    before = sorted(p.name for p in part_files(corpus))
    res = narch(["corpus", "compact", str(corpus)], site=site, fault=PART)
    one_line_error(res, "no space left on device", str(corpus))
    assert sorted(p.name for p in part_files(corpus)) == before
    assert read_corpus(corpus).height == 6


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    """A 64 KiB tmpfs (skipped where this process may not mount one)."""
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    if shutil.which("mount") is None or os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root and mount(8)")
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mnt)], capture_output=True,
                          check=False)
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {made.stderr.decode().strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def _fill(mnt: Path, *, leave: int) -> None:
    """Fill the file system, then free ``leave`` bytes: room for a manifest, none for a part (~20 KB)."""
    filler = mnt / "filler"
    with filler.open("wb", buffering=0) as f:
        try:
            while True:
                f.write(b"\0" * 4096)
        except OSError as e:
            assert e.errno == errno.ENOSPC
    os.truncate(filler, filler.stat().st_size - leave)


def test_a_really_full_disk(small_fs: Path) -> None:
    _fill(small_fs, leave=12 * 1024)
    out = small_fs / "corpus"
    res = narch([*BUILD, "--out", str(out)])
    one_line_error(res, f"{out}/part-", "no space left on device")
    assert part_files(out) == [] and not list(out.glob(".*.tmp"))


def test_a_read_only_disk_is_refused_before_any_work(small_fs: Path) -> None:
    subprocess.run(["mount", "-o", "remount,ro", str(small_fs)], check=True)
    res = narch([*BUILD, "--out", str(small_fs / "corpus")])
    one_line_error(res, f"{small_fs}/corpus: --out cannot be written ({small_fs} is on a read-only file system)")

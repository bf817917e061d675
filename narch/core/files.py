"""Atomic writes and checksums: every result file and artefact folder goes through here.

A file: temp file in the same folder, fsync, rename (``atomic_write_bytes`` and its wrappers). A folder written as a
unit (a frozen predictor): ``publish_dir``, whose protocol is in its docstring.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, Protocol

from narch.core.locks import hold_lock


def fsync_dir(path: Path) -> None:
    """Make a rename in ``path`` durable (a no-op where directories cannot be opened)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_bytes(path: str | Path, write: Callable[[IO[bytes]], Any]) -> None:
    """Write through a temp file in the same folder, fsync, rename: readers see all of the file or none of it."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with tmp.open("wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:  # disk full, read-only, no permission: name the file meant, not the temp file (or none)
        if e.errno is None:
            raise
        raise OSError(e.errno, e.strerror, str(path)) from e  # OSError picks the errno's subclass
    finally:
        tmp.unlink(missing_ok=True)
    fsync_dir(path.parent)


class Figure(Protocol):
    """What ``atomic_savefig`` needs of a figure (matplotlib's ``Figure``; the core imports no matplotlib)."""

    def savefig(self, fname: Any, **kw: Any) -> Any: ...


def atomic_savefig(fig: Figure, path: str | Path, **kw: Any) -> None:
    """``fig.savefig(path, **kw)``, atomically; the format is the path's suffix unless ``kw`` names one."""
    kw.setdefault("format", Path(path).suffix.lstrip(".") or "png")
    atomic_write_bytes(path, lambda f: fig.savefig(f, **kw))


def atomic_write_text(path: str | Path, text: str) -> None:
    """``Path.write_text``, atomically (UTF-8)."""
    data = text.encode()
    atomic_write_bytes(path, lambda f: f.write(data))


def _finite(obj: Any) -> Any:
    """NaN and infinities become null: strict JSON readers reject bare ``NaN``. A numpy (or torch) scalar becomes
    its Python number first, not its ``str``."""
    if getattr(obj, "ndim", None) == 0 and callable(getattr(obj, "item", None)):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_finite(v) for v in obj]
    return obj


def atomic_write_json(path: str | Path, obj: Any, *, indent: int | None = 2, sort_keys: bool = True,
                      separators: tuple[str, str] | None = None) -> None:
    """Strict JSON (non-finite floats as null, unknown types as ``str``), written atomically, newline-terminated."""
    text = json.dumps(_finite(obj), indent=indent, sort_keys=sort_keys, default=str, allow_nan=False,
                      separators=separators)
    atomic_write_text(path, text + "\n")


def parse_json(text: str, *, error: type[Exception], what: str) -> Any:
    """``json.loads``; malformed text raises ``error`` naming ``what``, the line and the column."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise error(f"{what}: malformed JSON at line {e.lineno} column {e.colno}: {e.msg}") from None
    except RecursionError:
        raise error(f"{what}: JSON nested too deeply to parse") from None
    except ValueError as e:  # a number of thousands of digits (Python's int conversion limit)
        raise error(f"{what}: unreadable JSON ({str(e).split(':')[0].lower()})") from None


def read_json(path: str | Path, *, error: type[Exception], missing: str = "no such file") -> Any:
    """The JSON of a file that must exist and parse; otherwise ``error`` naming the path (``missing`` says why)."""
    path = Path(path)
    if not path.is_file():
        raise error(f"{path}: {missing}")
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as e:
        raise error(f"{path}: cannot be read ({e})") from None
    return parse_json(text, error=error, what=str(path))


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file's bytes, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with Path(path).open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


# Siblings of a published folder ``P`` (all in P's parent; see ``publish_dir``).
_TMP, _NEW, _OLD = ".tmp-", ".new-", ".old-"


def _sibling(path: Path, kind: str, tag: str) -> Path:
    return path.with_name(f".{path.name}{kind}{tag}")


def _siblings(path: Path, kind: str) -> list[Path]:
    """The ``kind`` siblings of ``path``, oldest first (by mtime; at most one of a kind is expected)."""
    prefix = f".{path.name}{kind}"
    try:
        names = [n for n in os.listdir(path.parent) if n.startswith(prefix)]
    except FileNotFoundError:
        return []
    found = [path.parent / n for n in names]
    return sorted(found, key=lambda p: (p.lstat().st_mtime_ns, p.name))


def _remove(path: Path) -> None:
    """Delete a file, a link (not its target) or a folder tree; gone already is fine."""
    if path.is_symlink() or path.is_file():
        path.unlink(missing_ok=True)
    elif path.exists():
        shutil.rmtree(path)


def _fsync_tree(root: Path) -> None:
    """fsync every file and folder under ``root`` (payload writers need not have)."""
    for dirpath, _, filenames in os.walk(root):
        for name in filenames:
            fd = os.open(os.path.join(dirpath, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        fsync_dir(Path(dirpath))


@contextmanager
def _publish_lock(path: Path) -> Iterator[None]:
    """An exclusive advisory lock on publishing ``path`` (``.P.lock`` beside it, removed on release; released when
    the holder dies)."""
    with hold_lock(path.with_name(f".{path.name}.lock")):
        yield


def _recover(path: Path) -> None:
    """Finish or undo an interrupted publish of ``path``; the caller holds the publish lock."""
    for tmp in _siblings(path, _TMP):
        _remove(tmp)  # never verified: a crash while it was being written
    new = _siblings(path, _NEW)
    for stale in new[:-1]:
        _remove(stale)
    if new:  # complete and verified: roll forward
        if path.exists() or path.is_symlink():
            os.rename(path, _sibling(path, _OLD, uuid.uuid4().hex[:12]))
        os.rename(new[-1], path)
    elif not (path.exists() or path.is_symlink()) and (old := _siblings(path, _OLD)):
        os.rename(old[-1], path)  # nothing newer is complete: roll back
    for old in _siblings(path, _OLD):
        _remove(old)
    fsync_dir(path.parent)


def recover_dir(path: str | Path) -> bool:
    """Finish or undo a publish of ``path`` that a crash interrupted; False (and nothing touched, no lock file
    made) when none is pending. Readers call it when ``path`` is missing, as SQLite replays a hot journal."""
    path = Path(path)
    if not any(_siblings(path, kind) for kind in (_TMP, _NEW, _OLD)):
        return False
    with _publish_lock(path):
        _recover(path)
    return True


@contextmanager
def publish_dir(path: str | Path, *, verify: Callable[[Path], Any] | None = None) -> Iterator[Path]:
    """Build a folder as a unit and swap it in for ``path``: the old one stays until the new one is complete.

    Yields an empty temporary sibling to write into; when the ``with`` body returns, ``verify(tmp)`` runs (it
    raises to refuse), and the folder is published. An exception anywhere deletes the temporary and leaves ``path``
    as it was. Protocol, for ``P`` in folder ``D`` (every step a rename within ``D``, atomic on POSIX):

    1. lock ``D/.P.lock`` (flock; released when the holder dies), then recover (below);
    2. write ``D/.P.tmp-<id>/``, verify it, fsync its files and folders;
    3. rename it to ``D/.P.new-<id>/`` (complete and verified);
    4. rename ``P`` (if any) to ``D/.P.old-<id>/``;
    5. rename ``.P.new-<id>`` to ``P``; fsync ``D``;
    6. delete ``.P.old-<id>``.

    A non-empty folder cannot be replaced by a rename, hence 4-5 with a moment between them when ``P`` is absent.
    Recovery (at every publish, and in ``recover_dir`` for readers that find ``P`` missing) deletes every ``.tmp-``
    (incomplete), renames a ``.new-`` into place (moving a present ``P`` aside first), renames an ``.old-`` back
    when ``P`` is missing and nothing is new, then deletes every ``.old-``. So after a crash at any moment, ``P`` is
    either the old folder or the new one, complete, once recovery has run. Writers of one ``P`` are serialised by
    the lock (hold it only while writing: do long computations before entering).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists() and not path.is_dir():
        raise NotADirectoryError(f"{path}: exists and is not a folder")
    tag = uuid.uuid4().hex[:12]
    tmp, new, old = (_sibling(path, kind, tag) for kind in (_TMP, _NEW, _OLD))
    with _publish_lock(path):
        _recover(path)
        tmp.mkdir()
        try:
            yield tmp
            if verify is not None:
                verify(tmp)
            _fsync_tree(tmp)
            os.rename(tmp, new)
            if path.exists() or path.is_symlink():
                os.rename(path, old)
            os.rename(new, path)
            fsync_dir(path.parent)
        except BaseException:
            _remove(tmp)
            _remove(new)
            if old.exists() and not path.exists():
                os.rename(old, path)
            raise
        _remove(old)

"""Atomic writes and checksums: every result and artefact file goes through here (temp file, fsync, rename)."""

from __future__ import annotations

import hashlib
import json
import math
import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, Protocol


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
    """NaN and infinities become null: strict JSON readers reject bare ``NaN``."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_finite(v) for v in obj]
    return obj


def atomic_write_json(path: str | Path, obj: Any, *, indent: int | None = 2, sort_keys: bool = True) -> None:
    """Strict JSON (non-finite floats as null, unknown types as ``str``), written atomically, newline-terminated."""
    text = json.dumps(_finite(obj), indent=indent, sort_keys=sort_keys, default=str, allow_nan=False)
    atomic_write_text(path, text + "\n")


def parse_json(text: str, *, error: type[Exception], what: str) -> Any:
    """``json.loads``; malformed text raises ``error`` naming ``what``, the line and the column."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise error(f"{what}: malformed JSON at line {e.lineno} column {e.colno}: {e.msg}") from None


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

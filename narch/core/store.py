"""A folder on some filesystem, as the corpus uses it: a local folder, or a prefix of an object store through fsspec.

What the corpus needs of a folder is five things: list its files, read one, write one so that readers see all of it
or none of it, delete one, and hold a named lock across processes and hosts. On a local folder they are the calls
the corpus always made (temp file, fsync, rename; ``flock``). On an object store (``s3://``, ``gs://``, ``memory://``
or any fsspec URL; ``file://`` is a local folder) a write is one PUT, which the store makes visible whole or not at
all, and a lock is a lease (narch.core.leases): there is no atomic rename and no ``flock``, so nothing else is assumed.

Why not Delta Lake or Iceberg: their commit is an atomic put-if-absent of the next log entry, which is what
a lease is built on too; what they add is a log of every live file, and the corpus keeps its folder as the
truth (write-once part names, merged parts listing the parts they cover, a compaction journal), so that builds on
many hosts write parts without coordinating and a plain glob of the folder keeps reading right. Adopting either
would be a second layout for the same corpus, with readers that a plain ``pyarrow.dataset`` of the folder no longer
serves; the design already has what they would bring.
"""

from __future__ import annotations

import fnmatch
import io
import os
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Protocol

from narch.core.errors import NarchError
from narch.core.files import atomic_write_bytes, fsync_dir, parse_json, read_json
from narch.core.leases import lease_lock
from narch.core.locks import hold_lock

Location = str | Path  # a local folder, or a URL (scheme://...)
LOCKS = "_locks"  # an object store's lease locks: _locks/<name>/<generation>
FS_HINT = "corpora on object stores need fsspec and its filesystem (s3fs, gcsfs): pip install -e '.[cluster]'"


class StoreError(NarchError, OSError):
    """A folder's filesystem cannot be opened (unknown scheme, missing package); the message says what to do."""


def is_url(location: Location) -> bool:
    """Whether ``location`` names a folder through a URL scheme (``s3://bucket/prefix``), not a local path."""
    return isinstance(location, str) and "://" in location


def as_location(text: str | Path) -> Location:
    """A command line's folder: a URL stays text (``Path`` would fold its ``//``), ``file://`` and plain paths
    become a ``Path``."""
    if isinstance(text, Path) or not is_url(text):
        return Path(text)
    if text.startswith("file://"):
        return Path(text.removeprefix("file://"))
    return text.rstrip("/")


class Store(Protocol):
    """A folder of files: the operations the corpus is written in."""

    root: Location

    def show(self, name: str) -> str:
        """The file's full path or URL, for messages."""
        ...

    def handle(self, name: str) -> Any:
        """What the corpus hands its callers for a file: a ``Path`` here, a ``StorePath`` on an object store."""
        ...

    def names(self, pattern: str = "*.parquet") -> list[str]:
        """Names of the folder's files that match a glob pattern, listed now (no cache)."""
        ...

    def exists(self, name: str) -> bool: ...

    def is_folder(self) -> bool:
        """Whether the folder itself is there (an object store's prefix: whether any file is under it)."""
        ...

    def read_bytes(self, name: str) -> bytes:
        """The file's bytes; FileNotFoundError when it is not there."""
        ...

    def read_json(self, name: str, *, error: type[Exception], missing: str) -> Any: ...

    def write(self, name: str, write: Callable[[IO[bytes]], Any]) -> None:
        """Write a file through ``write(f)``: readers see all of it or none of it."""
        ...

    def delete(self, name: str) -> bool:
        """Delete a file; whether it was there."""
        ...

    def rename(self, old: str, new: str) -> None: ...

    def sync(self) -> None:
        """Make the folder's renames and deletions durable."""
        ...

    def make(self) -> None:
        """Create the folder (and its parents) where the filesystem has folders."""
        ...

    def open_input(self, name: str) -> Any:
        """A binary file or a path pyarrow opens for reading (``pq.ParquetFile``, ``pq.read_table``)."""
        ...

    def arrow(self) -> tuple[Any, Callable[[str], str]]:
        """The filesystem for ``pyarrow.dataset`` (None: local) and the path of a name on it."""
        ...

    def lock(self, name: str, *, wait: bool = True) -> AbstractContextManager[None]:
        """Hold the lock ``name`` of this folder across processes and hosts; LockBusy when ``wait`` is False and
        another holds it."""
        ...


@dataclass(frozen=True)
class LocalStore:
    """A local folder: temp file, fsync and rename for writes, ``flock`` for locks (narch.core.files, locks)."""

    root: Path

    def show(self, name: str) -> str:
        return str(self.root / name)

    def handle(self, name: str) -> Path:
        return self.root / name

    def names(self, pattern: str = "*.parquet") -> list[str]:
        return sorted(p.name for p in self.root.glob(pattern))

    def exists(self, name: str) -> bool:
        return (self.root / name).exists()

    def is_folder(self) -> bool:
        return self.root.is_dir()

    def read_bytes(self, name: str) -> bytes:
        return (self.root / name).read_bytes()

    def read_json(self, name: str, *, error: type[Exception], missing: str) -> Any:
        return read_json(self.root / name, error=error, missing=missing)

    def write(self, name: str, write: Callable[[IO[bytes]], Any]) -> None:
        atomic_write_bytes(self.root / name, write)

    def delete(self, name: str) -> bool:
        try:
            (self.root / name).unlink()
        except FileNotFoundError:
            return False
        return True

    def rename(self, old: str, new: str) -> None:
        os.rename(self.root / old, self.root / new)

    def sync(self) -> None:
        fsync_dir(self.root)

    def make(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)

    def open_input(self, name: str) -> Path:
        return self.root / name

    def arrow(self) -> tuple[Any, Callable[[str], str]]:
        return None, self.show

    def lock(self, name: str, *, wait: bool = True) -> AbstractContextManager[None]:
        return hold_lock(self.root / name, wait=wait)


@dataclass(frozen=True)
class StorePath:
    """A file of an object-store folder, as the corpus hands it out (what callers use of a ``Path``: its name)."""

    store: FsspecStore
    name: str

    def __str__(self) -> str:
        return self.store.show(self.name)


class FsspecStore:
    """A prefix of an fsspec filesystem. A write is a single PUT of the whole file (atomic on object stores); a
    listing drops the filesystem's listing cache first, so it sees what other writers did since."""

    def __init__(self, url: str) -> None:
        try:
            import fsspec
        except ImportError:
            raise StoreError(FS_HINT) from None
        try:
            try:  # no listing cache: another host's new file must be seen at once (s3fs answers info() from it)
                self.fs, self.path = fsspec.core.url_to_fs(url, use_listings_cache=False)
            except TypeError:
                self.fs, self.path = fsspec.core.url_to_fs(url)
        except (ImportError, ValueError) as e:
            raise StoreError(f"{url}: cannot open its filesystem ({e}); {FS_HINT}") from None
        self.root: Location = url
        self.path = self.path.rstrip("/")

    def __reduce__(self) -> tuple[Any, ...]:  # travels to Ray and pool workers as its URL
        return (FsspecStore, (self.root,))

    def unreachable(self) -> str | None:
        """Why the folder cannot be used (its bucket is missing, the store cannot be reached), or None."""
        top = self.path.lstrip("/").split("/", 1)[0]
        try:
            if top and not self.fs.exists(top):
                return f"{top} does not exist"
        except OSError as e:
            return str(e) or type(e).__name__
        return None

    def _p(self, name: str) -> str:
        return f"{self.path}/{name}"

    def show(self, name: str) -> str:
        return f"{self.root}/{name}"

    def handle(self, name: str) -> StorePath:
        return StorePath(self, name)

    def _ls(self, path: str) -> list[dict[str, Any]]:
        self.fs.invalidate_cache(path)
        try:
            return list(self.fs.ls(path, detail=True, refresh=True))
        except FileNotFoundError:
            return []
        except TypeError:  # a filesystem whose ls takes no refresh
            return list(self.fs.ls(path, detail=True))
        finally:
            self.fs.invalidate_cache(path)

    def entries(self, folder: str) -> dict[str, str]:
        """The files of a subfolder, listed now: name -> a tag that changes whenever the file is rewritten (ETag)."""
        return {e["name"].rstrip("/").rsplit("/", 1)[-1]: str(e.get("ETag") or e.get("etag") or e.get("mtime")
                                                              or e.get("size"))
                for e in self._ls(self._p(folder)) if e["type"] == "file"}

    def names(self, pattern: str = "*.parquet") -> list[str]:
        found = (e["name"].rstrip("/").rsplit("/", 1)[-1] for e in self._ls(self.path) if e["type"] == "file")
        return sorted(n for n in found if fnmatch.fnmatchcase(n, pattern))

    def exists(self, name: str) -> bool:
        try:
            self.fs.info(self._p(name), refresh=True)
        except FileNotFoundError:
            return False
        except TypeError:
            return bool(self.fs.exists(self._p(name)))
        return True

    def is_folder(self) -> bool:
        return bool(self._ls(self.path))

    def read_bytes(self, name: str) -> bytes:
        return bytes(self.fs.cat_file(self._p(name)))

    def read_json(self, name: str, *, error: type[Exception], missing: str) -> Any:
        try:
            data = self.read_bytes(name)
        except FileNotFoundError:
            raise error(f"{self.show(name)}: {missing}") from None
        except OSError as e:
            raise error(f"{self.show(name)}: cannot be read ({e})") from None
        try:
            text = data.decode()
        except UnicodeDecodeError as e:
            raise error(f"{self.show(name)}: cannot be read ({e})") from None
        return parse_json(text, error=error, what=self.show(name))

    def write(self, name: str, write: Callable[[IO[bytes]], Any]) -> None:
        buf = io.BytesIO()
        write(buf)
        self.put(name, buf.getvalue())

    def put(self, name: str, data: bytes, *, create: bool = False) -> None:
        """One PUT of the whole file; ``create``: only if absent (FileExistsError otherwise), the store's
        conditional write (S3's If-None-Match)."""
        self.fs.pipe_file(self._p(name), data, **({"mode": "create"} if create else {}))

    def delete(self, name: str) -> bool:
        if not self.exists(name):  # an object store's DELETE succeeds on a missing key: ask first
            return False
        try:
            self.fs.rm_file(self._p(name))
        except FileNotFoundError:
            return False
        return True

    def rename(self, old: str, new: str) -> None:
        self.put(new, self.read_bytes(old))  # no atomic rename on an object store: copy, then delete
        self.delete(old)

    def sync(self) -> None:
        pass  # a PUT or DELETE is durable once it returns

    def make(self) -> None:
        pass  # prefixes need no creating (a missing bucket fails at the first write, naming it)

    def open_input(self, name: str) -> Any:
        return self.fs.open(self._p(name), "rb")

    def arrow(self) -> tuple[Any, Callable[[str], str]]:
        return self.fs, self._p

    def lock(self, name: str, *, wait: bool = True) -> AbstractContextManager[None]:
        return lease_lock(self, f"{LOCKS}/{name}", wait=wait)


def open_store(location: Location) -> Store:
    """The store of a folder: a URL through fsspec (``file://`` locally), anything else a local folder."""
    if isinstance(location, FsspecStore | LocalStore):
        return location
    location = as_location(location) if isinstance(location, str) else location
    if isinstance(location, Path):
        return LocalStore(location)
    return FsspecStore(location)

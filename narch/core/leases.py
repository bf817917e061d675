"""Exclusive locks on an object store, where there is neither ``flock`` nor an atomic rename: leases built on the
store's one atomic primitive, a put-if-absent (S3's ``If-None-Match: *``; fsspec's ``pipe_file(mode="create")``).

The same primitive is a Delta Lake or Iceberg commit (the next log entry, created only if absent); here it makes the
next generation of a lock, so the corpus keeps one set of rules for local folders and object stores (store.py).
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Protocol

from narch.core.locks import LockBusy

LEASE_ENV = "NARCH_LEASE_S"  # seconds a lock's heartbeat may stay unchanged before another process takes it over
DEFAULT_LEASE_S = 60.0


class LeaseStore(Protocol):
    """What a lease needs of a store (narch.core.store.FsspecStore)."""

    def show(self, name: str) -> str: ...

    def entries(self, folder: str) -> dict[str, str]: ...

    def read_bytes(self, name: str) -> bytes: ...

    def put(self, name: str, data: bytes, *, create: bool = False) -> None: ...

    def delete(self, name: str) -> bool: ...


def lease_s() -> float:
    """The lease of object-store locks (``NARCH_LEASE_S``): how long a holder's heartbeat may stay unchanged."""
    return float(os.environ.get(LEASE_ENV, DEFAULT_LEASE_S))


@contextmanager
def lease_lock(store: LeaseStore, folder: str, *, wait: bool = True) -> Iterator[None]:
    """An exclusive lock on an object store, where there is no ``flock``: generations ``folder/<n>`` created with
    put-if-absent, the highest one is the lock.

    To acquire, a process lists the generations and, when the highest is released, or stale (its heartbeat, a
    rewrite of its content every lease/4, has not changed for a whole lease as this process watched it: no clocks are
    compared across hosts), creates the next one if absent; it holds the lock when, listed again, its generation is
    still the highest (a racer that created a lower one loses and deletes it). The holder deletes older generations
    and marks its own released at the end; the highest is never deleted, so numbers only grow. A holder that dies
    keeps the lock for one lease (``wait`` False finds it busy meanwhile: staleness takes a lease of watching); one
    that stalls past its lease without dying may find the lock taken over (as with any lease): keep the lease above
    the longest pause a holder may see."""
    lease = lease_s()
    me = f"{os.uname().nodename}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    gen = _acquire(store, folder, me, wait=wait, lease=lease)
    name = f"{folder}/{gen:012d}"
    stop = threading.Event()
    beat = threading.Thread(target=_heartbeat, args=(store, name, me, stop, lease / 4), daemon=True)
    beat.start()
    try:
        yield
    finally:
        stop.set()
        beat.join()
        store.put(name, _body(me, "released", -1))


def _body(holder: str, state: str, beat: int) -> bytes:
    return json.dumps({"holder": holder, "state": state, "beat": beat, "at": time.time()}).encode()


def _generations(store: LeaseStore, folder: str) -> dict[int, str]:
    """Generation -> its tag (changes with every rewrite: the heartbeat)."""
    return {int(n): tag for n, tag in store.entries(folder).items() if n.isdigit()}


def _released(store: LeaseStore, name: str) -> bool:
    try:
        return json.loads(store.read_bytes(name)).get("state") == "released"
    except FileNotFoundError:
        return True
    except ValueError:
        return False


def _acquire(store: LeaseStore, folder: str, me: str, *, wait: bool, lease: float) -> int:
    watched: dict[int, tuple[str, float]] = {}  # generation -> (its tag, when this process first saw that tag)
    while True:
        gens = _generations(store, folder)
        top = max(gens, default=0)
        free = top == 0 or _released(store, f"{folder}/{top:012d}")
        if not free:
            tag = gens[top]
            seen = watched.get(top)
            if seen is None or seen[0] != tag:
                watched[top] = (tag, time.monotonic())
            free = time.monotonic() - watched[top][1] >= lease
        if free:
            mine = top + 1
            try:
                store.put(f"{folder}/{mine:012d}", _body(me, "held", 0), create=True)
            except FileExistsError:
                continue
            now = _generations(store, folder)
            if max(now) == mine:
                for g in now:
                    if g < mine:
                        store.delete(f"{folder}/{g:012d}")
                return mine
            store.delete(f"{folder}/{mine:012d}")  # a racer got a higher one: this generation never held the lock
            continue
        if not wait:
            raise LockBusy(f"{store.show(folder)}: held by another process")
        time.sleep(min(0.2, lease / 20))


def _heartbeat(store: LeaseStore, name: str, me: str, stop: threading.Event, every_s: float) -> None:
    beat = 0
    while not stop.wait(every_s):
        beat += 1
        with suppress(OSError):  # a network hiccup: the next beat tries again (a lease lasts four beats)
            store.put(name, _body(me, "held", beat))

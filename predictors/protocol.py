"""The evaluation protocol (NASLib-comparable): architecture splits, training-set sizes, split files with sha256.

Per seed the architectures are shuffled once: the first ``n_test`` form a disjoint test set, the rest a training
pool whose first n form the training set of size n (so sizes nest). All rows of one arch_id fall on one side.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from narch.core.files import atomic_write_text

SIZES = (16, 32, 64, 128, 256, 512, 1024)
GROUP_COLUMNS = ("arch_id", "task", "n_train", "epochs", "batch_size", "protocol_hash", "device_kind")


@dataclass(frozen=True)
class Split:
    """One seed's test set and shuffled training pool (arch_ids)."""

    seed: int
    test: tuple[str, ...]
    pool: tuple[str, ...]

    def train(self, n: int) -> tuple[str, ...]:
        if n > len(self.pool):
            raise ValueError(f"training size {n} exceeds the pool of {len(self.pool)} architectures")
        return self.pool[:n]


def make_splits(arch_ids: list[str], *, seeds: int, test_frac: float = 0.2, max_test: int = 1000,
                min_test: int = 2) -> list[Split]:
    """``seeds`` splits of the unique arch_ids (order-independent: ids are sorted before shuffling)."""
    ids = sorted(set(arch_ids))
    if len(ids) < min_test + 2:
        raise ValueError(f"{len(ids)} architectures are too few to split (need at least {min_test + 2})")
    n_test = min(max_test, max(min_test, math.ceil(test_frac * len(ids))), len(ids) - 2)
    out = []
    for s in range(seeds):
        perm = ids[:]
        random.Random(s).shuffle(perm)
        out.append(Split(s, tuple(perm[:n_test]), tuple(perm[n_test:])))
    return out


def train_sizes(pool_size: int, sizes: tuple[int, ...] = SIZES, *, include_all: bool = True) -> list[int]:
    """Sizes capped by the pool; the whole pool ("all") last."""
    out = sorted({n for n in sizes if n < pool_size})
    if include_all or not out:
        out.append(pool_size)
    return out


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def split_texts(splits: list[Split], sizes: list[int]) -> dict[str, str]:
    """The split files' names and contents: JSON lists of arch_ids (test and each training size per seed)."""
    files: dict[str, str] = {}
    for sp in splits:
        ids = {f"seed{sp.seed}_test.json": list(sp.test)}
        ids |= {f"seed{sp.seed}_train{n}.json": list(sp.train(n)) for n in sizes}
        files |= {name: json.dumps(v, indent=0) + "\n" for name, v in ids.items()}
    return files


def split_digests(splits: list[Split], sizes: list[int]) -> dict[str, str]:
    """sha256 of every split file, without writing them."""
    return {name: sha256_text(text) for name, text in split_texts(splits, sizes).items()}


def write_splits(folder: Path, splits: list[Split], sizes: list[int]) -> dict[str, str]:
    """The split files, an index and a SHA256SUMS file; returns their digests."""
    folder.mkdir(parents=True, exist_ok=True)
    digests: dict[str, str] = {}
    for name, text in split_texts(splits, sizes).items():
        atomic_write_text(folder / name, text)
        digests[name] = sha256_text(text)
    atomic_write_text(folder / "SHA256SUMS", "".join(f"{d}  {n}\n" for n, d in sorted(digests.items())))
    return digests


def verify_split_file(path: Path, digest: str) -> list[str]:
    """The arch_ids of a split file after checking its sha256."""
    text = path.read_text()
    if sha256_text(text) != digest:
        raise ValueError(f"{path}: sha256 differs from the recorded split")
    return list(json.loads(text))


def rows_of(rows: pl.DataFrame, ids: tuple[str, ...] | list[str]) -> pl.DataFrame:
    return rows.filter(pl.col("arch_id").is_in(list(ids)))


def query_groups(rows: pl.DataFrame, target: str) -> tuple[pl.DataFrame, pl.Series]:
    """One row per configuration (seeds averaged): the rows to query and their mean measured target."""
    keys = [c for c in GROUP_COLUMNS if c in rows.columns]
    r = rows.with_row_index("__idx")
    g = r.group_by(keys, maintain_order=True).agg(pl.col(target).mean().alias("__y"), pl.col("__idx").first())
    first = r.join(g.select("__idx", "__y"), on="__idx", how="inner").sort("__idx")
    return first.drop("__idx", "__y"), first["__y"]

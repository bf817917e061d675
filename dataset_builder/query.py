"""Look networks up in a corpus: its metrics per setting, with units, as mean, spread and count over training seeds.

The corpus is read once (``corpus.read_corpus``); a lookup filters those rows by ``arch_id``. A *setting* is one
(task, n_train, epochs, device_kind); within it the rows differ by training seed. A *metric* is an outcome or a cost
column of the schema (accuracies, losses, sizes, FLOPs, times, latencies, energy, zero-cost scores), not a task
descriptor, a protocol setting or a condition of the run (threads, load, core share). Only ``ok`` rows count, and
a metric is listed where at least one of them has a value (imported corpora fill few columns); ``std`` is the sample
standard deviation (ddof 1), None for a single value.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa

from narch.core.errors import NarchError
from narch.dataset_builder.corpus import CorpusError, is_corpus, read_corpus
from narch.dataset_builder.schema import COLUMNS, TIME_LABEL, UNITS
from narch.search_space import Network, SpecError

Arch = Network | str | int | Mapping[str, Any]
"""A Network, an arch_id, a network's JSON text or its dict; in an imported corpus also the benchmark's own index
(an int: NAS-Bench-201's) or name (NAS-Bench-201's arch string, NAS-Bench-101's module hash)."""
SETTING = ("task", "n_train", "epochs", "device_kind")
_NOT_METRICS = frozenset({  # descriptors, protocol and run conditions: numeric, but not outcomes of the network
    "n_train", "n_classes", "class_balance", "linear_probe_acc", "centroid_acc", "epochs", "batch_size", "lr", "seed",
    "latency_batch_n", "threads", "concurrency", "load_avg_1m", "load_avg_1m_before", "other_cpu_cores",
    "core_share", "speed_probe_s", "timing_tries", "train_steps", "bench_index",
})
METRICS = tuple(name for name, typ, _, _ in COLUMNS
                if typ in (pa.int64(), pa.float64()) and name not in _NOT_METRICS)
_ARCH_ID = re.compile(r"[0-9a-f]{16}")


class NotInCorpus(NarchError, KeyError):
    """A network the corpus holds no row of; the message names the arch_id and the corpus."""

    def __str__(self) -> str:  # KeyError's str() quotes its message
        return str(self.args[0]) if self.args else ""


@dataclass(frozen=True, slots=True)
class Metric:
    """One column's values over the training seeds of one setting."""

    name: str
    unit: str
    mean: float
    std: float | None
    count: int

    def to_dict(self) -> dict[str, Any]:
        return {"unit": self.unit, "mean": self.mean, "std": self.std, "count": self.count}


@dataclass(frozen=True, slots=True)
class Setting:
    """A network's runs under one (task, n_train, epochs, device_kind). ``time_label``: the device's training-time
    column (``schema.TIME_LABEL``), or ``train_time_s`` where the rows predate it; ``time``: its metric."""

    task: str
    n_train: int
    epochs: int
    device_kind: str
    time_label: str
    seeds: tuple[int, ...]
    statuses: dict[str, int]
    metrics: dict[str, Metric]

    def __getitem__(self, name: str) -> Metric:
        if name not in self.metrics:
            raise KeyError(f"no metric {name!r} in this setting (it has: {', '.join(self.metrics) or 'none'})")
        return self.metrics[name]

    @property
    def time(self) -> Metric | None:
        return self.metrics.get(self.time_label)

    def to_dict(self) -> dict[str, Any]:
        return {"task": self.task, "n_train": self.n_train, "epochs": self.epochs, "device_kind": self.device_kind,
                "time_label": self.time_label, "seeds": list(self.seeds), "statuses": self.statuses,
                "metrics": {k: m.to_dict() for k, m in self.metrics.items()}}


@dataclass(frozen=True)
class Record:
    """What a corpus holds of one network: its settings in (task, n_train, epochs, device_kind) order and its rows."""

    arch_id: str
    network: Network
    corpus: Path
    settings: tuple[Setting, ...]
    rows: pl.DataFrame

    def setting(self, **where: Any) -> Setting:
        """The one setting matching ``where`` (e.g. ``n_train=3000``); an empty ``where`` needs a single one."""
        hits = [s for s in self.settings if all(getattr(s, k) == v for k, v in where.items())]
        if len(hits) != 1:
            shown = "; ".join(f"{s.task} n_train={s.n_train} epochs={s.epochs} {s.device_kind}" for s in self.settings)
            raise KeyError(f"{self.arch_id}: {len(hits)} settings match {where} in {self.corpus} (it has: {shown})")
        return hits[0]

    def to_dict(self) -> dict[str, Any]:
        return {"arch_id": self.arch_id, "arch_json": self.network.to_json(), "corpus": str(self.corpus),
                "settings": [s.to_dict() for s in self.settings]}


def as_network(arch: Network | str | Mapping[str, Any]) -> Network:
    """A Network from itself, its JSON text or its dict (SpecError, one line, for anything else)."""
    if isinstance(arch, Network):
        return arch
    if isinstance(arch, Mapping):
        return Network.from_dict(dict(arch))
    if isinstance(arch, str) and arch.lstrip().startswith("{"):
        return Network.from_json(arch)
    raise SpecError(f"arch: expected a Network, its JSON text or its dict, got {_shown(arch)}")


def _shown(arch: object) -> str:
    return repr(arch)[:40] if isinstance(arch, str) else type(arch).__name__


def _stats(name: str, values: pl.Series) -> Metric | None:
    s = values.drop_nulls().cast(pl.Float64)
    s = s.filter(s.is_finite())
    if s.len() == 0:
        return None
    std = float(s.std()) if s.len() > 1 else None  # type: ignore[arg-type]
    return Metric(name, UNITS[name], float(s.mean()), std, s.len())  # type: ignore[arg-type]


def _setting(key: tuple[Any, ...], rows: pl.DataFrame) -> Setting:
    task, n_train, epochs, kind = key
    ok = rows.filter(pl.col("status") == "ok")
    metrics = {m.name: m for c in METRICS if (m := _stats(c, ok[c])) is not None}
    statuses = dict(sorted(rows.group_by("status").len().iter_rows()))
    label = TIME_LABEL.get(kind, ("train_time_s", ""))[0]
    if label not in metrics:  # rows that predate the device's label (or an unknown kind): the wall time
        label = "train_time_s"
    return Setting(task, n_train, epochs, kind, label, tuple(sorted(ok["seed"].drop_nulls().unique())), statuses,
                   metrics)


class Corpus:
    """A corpus read into memory: ``frame`` holds every row; iteration, ``len`` and ``in`` are over distinct
    arch_ids; ``lookup`` gives one network's metrics."""

    def __init__(self, path: str | Path, frame: pl.DataFrame) -> None:
        self.path = Path(path)
        self.frame = frame
        self._ids: list[str] = frame["arch_id"].unique(maintain_order=True).to_list()
        self._id_set = set(self._ids)

    def __len__(self) -> int:
        return len(self._ids)

    def __iter__(self) -> Iterator[str]:
        return iter(self._ids)

    def __contains__(self, arch: object) -> bool:
        if not isinstance(arch, Network | str | Mapping):
            return False
        try:
            return self.arch_id(arch) in self._id_set
        except SpecError:
            return False

    def __repr__(self) -> str:
        return f"Corpus({str(self.path)!r}: {len(self)} networks, {self.frame.height} rows)"

    def arch_ids(self) -> list[str]:
        """Distinct arch_ids in the order of their first row."""
        return list(self._ids)

    def networks(self) -> list[Network]:
        """Distinct networks, parsed from their rows' canonical JSON, in ``arch_ids()`` order."""
        first = self.frame.unique("arch_id", keep="first", maintain_order=True)
        return [Network.from_json(j) for j in first["arch_json"]]

    def _bench_rows(self, arch: str | int) -> pl.DataFrame | None:
        """The rows of a benchmark index or name (None when ``arch`` is neither, or the corpus has no such column)."""
        if isinstance(arch, bool) or "bench_arch" not in self.frame.columns:
            return None
        if isinstance(arch, int):
            return self.frame.filter(pl.col("bench_index") == arch)
        if _ARCH_ID.fullmatch(arch.strip()) or arch.lstrip().startswith("{"):
            return None
        return self.frame.filter(pl.col("bench_arch") == arch.strip())

    def arch_id(self, arch: Arch) -> str:
        """The arch_id of any accepted form (a string of 16 hex digits is taken as an arch_id)."""
        return self._resolve(arch)[0]

    def _resolve(self, arch: Arch) -> tuple[str, pl.DataFrame | None]:
        """The arch_id, and the rows when a benchmark index or name picked them (None: all rows of the arch_id)."""
        bench = self._bench_rows(arch) if isinstance(arch, str | int) else None
        if bench is not None and bench.height:
            return str(bench["arch_id"][0]), bench
        return self._plain_arch_id(arch), None

    def _plain_arch_id(self, arch: Arch) -> str:
        if isinstance(arch, int) and not isinstance(arch, bool):
            raise SpecError(f"arch: {arch} is not a benchmark index of {self.path}")
        if isinstance(arch, str) and not arch.lstrip().startswith("{"):
            if not _ARCH_ID.fullmatch(arch.strip()):
                raise SpecError(f"arch: {_shown(arch)} is neither an arch_id (16 hex digits), a network's JSON nor a "
                                f"benchmark index or name in {self.path}")
            return arch.strip()
        return as_network(arch).arch_id

    def lookup(self, arch: Arch) -> Record:
        """The network's settings and rows; ``NotInCorpus`` (a KeyError) when the corpus holds none of it. A benchmark
        index or name gives that benchmark network's rows only (isomorphic cells share an arch_id, not their rows)."""
        arch_id, rows = self._resolve(arch)
        if rows is None:
            rows = self.frame.filter(pl.col("arch_id") == arch_id)
        if rows.height == 0:
            raise NotInCorpus(f"{arch_id}: no such network in the corpus {self.path} ({len(self)} networks)")
        net = arch if isinstance(arch, Network) else Network.from_json(rows["arch_json"][0])
        keys = rows.select(SETTING).unique().sort(SETTING, nulls_last=True).iter_rows()
        settings = tuple(_setting(k, rows.filter(_equal(k))) for k in keys)
        return Record(arch_id, net, self.path, settings, rows)


def _equal(key: tuple[Any, ...]) -> pl.Expr:
    """Rows of one setting (a null in the key matches nulls)."""
    return pl.all_horizontal(pl.col(c).is_null() if v is None else pl.col(c) == v
                             for c, v in zip(SETTING, key, strict=True))


def open_corpus(path: str | Path) -> Corpus:
    """Read a corpus folder once; a path that is not a corpus is one CorpusError line naming it."""
    p = Path(path)
    if not p.is_dir():
        raise CorpusError(f"{p}: no such corpus folder" if not p.exists() else f"{p}: is a file, not a corpus folder")
    if not is_corpus(p):
        inner = sorted(c.name for c in p.iterdir() if c.is_dir() and is_corpus(c))
        if inner:
            raise CorpusError(f"{p}: not a corpus but a folder of {len(inner)} corpora ({', '.join(inner[:4])}"
                              f"{', ...' if len(inner) > 4 else ''}); open one of them")
    return Corpus(p, read_corpus(p))  # a missing or refused manifest: one line naming its file


__all__ = ["METRICS", "Arch", "Corpus", "Metric", "NotInCorpus", "Record", "Setting", "as_network", "open_corpus"]

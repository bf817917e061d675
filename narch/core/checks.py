"""Checks of numeric settings, shared by every config dataclass: each names the setting and the rule it breaks.

A setting is checked when its config is built, before any data, torch or Ray starts, so a bad value can never reach
a training run and be stored as that run's result. Booleans are not numbers here, and NaN and the infinities are
refused wherever a number is asked for (``nan < 0`` is False, so a plain comparison lets NaN through).
"""

from __future__ import annotations

import math
import os
from numbers import Integral, Real
from pathlib import Path
from typing import Any

from narch.core.errors import SettingError

INT64_MAX = 2**63 - 1  # the corpus stores seeds and counts as int64


def check_int(name: str, value: Any, *, low: int, high: int = INT64_MAX, error: type[Exception] = SettingError
              ) -> int:
    """``value`` if it is an integer in ``low..high``, else ``error`` naming ``name`` and the range."""
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise error(f"{name} must be an integer, got {shown(value)}")
    value = int(value)
    if not low <= value <= high:
        rule = f">= {low}" if high == INT64_MAX else f"in {low}..{high}"
        raise error(f"{name} must be {rule}, got {shown(value)}")
    return value


def check_float(name: str, value: Any, *, low: float | None = None, low_open: bool = False,
                high: float | None = None, high_open: bool = False, error: type[Exception] = SettingError) -> float:
    """``value`` as a float if it is a finite number within the bounds (``*_open``: the bound itself is out)."""
    if isinstance(value, bool) or not isinstance(value, Real):
        raise error(f"{name} must be a number, got {shown(value)}")
    try:
        v = float(value)
    except OverflowError:  # an int beyond float range
        v = math.inf
    below = low is not None and (v <= low if low_open else v < low)
    above = high is not None and (v >= high if high_open else v > high)
    if not math.isfinite(v) or below or above:
        raise error(f"{name} must be a finite number{_range(low, low_open, high, high_open)}, got {shown(value)}")
    return v


def _range(low: float | None, low_open: bool, high: float | None, high_open: bool) -> str:
    parts = []
    if low is not None:
        parts.append(f"{'>' if low_open else '>='} {low:g}")
    if high is not None:
        parts.append(f"{'<' if high_open else '<='} {high:g}")
    return (" " + " and ".join(parts)) if parts else ""


def shown(value: Any, *, limit: int = 40) -> str:
    """A value for an error message: its repr, cut short (a huge int is shown by its size, never converted)."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 128:
        return f"an integer of about {int(value.bit_length() * math.log10(2)) + 1} digits"
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def check_out_folder(name: str, path: str | Path) -> Path:
    """An output folder a command can write: a folder or not there yet, no file in its place or on the way to it,
    and the nearest existing folder writable (a read-only disk is refused before any work, not after it)."""
    path = Path(path)
    for at in (path, *path.parents):
        if not at.exists():  # also False below a file (ENOTDIR), which the next ancestor reveals
            continue
        if not at.is_dir():
            where = "is a file" if at == path else f"lies below {at}, which is a file"
            raise SettingError(f"{path}: {name} {where}, not a folder")
        if not os.access(at, os.W_OK | os.X_OK):
            why = "is on a read-only file system" if os.statvfs(at).f_flag & os.ST_RDONLY else "is not writable"
            raise SettingError(f"{path}: {name} cannot be written ({at} {why})")
        break
    return path


def csv_items(text: str | None, option: str) -> tuple[str, ...] | None:
    """The items of a comma-separated option (None when it was not given)."""
    if text is None:
        return None
    items = tuple(s.strip() for s in text.split(",") if s.strip())
    if not items:
        raise SettingError(f"{option}: empty list {text!r}")
    return items


def name_value_pairs(text: str | None, option: str) -> dict[str, str]:
    """NAME=VALUE[,NAME=VALUE] of an option (--where, --family-trials)."""
    out = {}
    for item in csv_items(text, option) or ():
        key, sep, value = item.partition("=")
        if not sep or not key or not value:
            raise SettingError(f"{option}: expected NAME=VALUE, got {item!r}")
        out[key.strip()] = value.strip()
    return out

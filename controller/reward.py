"""The multi-objective reward, configured from a TOML file.

``linear`` (the paper's shape): R = w_acc * accuracy - size penalty - time penalty, where each penalty is
piecewise-linear in the ratio x / threshold: zero up to the first knee, then ``slopes[k]`` per unit of ratio past
``knees[k]`` (slopes add up, so a second knee makes it steeper). ``mnas_soft`` / ``mnas_hard`` (MnasNet):
R = w_acc * accuracy * prod (x / threshold) ** w with w = alpha below the threshold and beta above it
(soft: alpha = beta = -0.07; hard: alpha = 0, beta = -1). A threshold of ``"median"`` takes the corpus median.
The exploitation guard subtracts ``lambda_std`` times the predictor's accuracy uncertainty, when it has one.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from narch.core.checks import check_float, shown
from narch.core.errors import NarchError

KINDS = ("linear", "mnas_soft", "mnas_hard")
TIME_SOURCES = ("predictor", "roofline")
MNAS_DEFAULTS = {"mnas_soft": (-0.07, -0.07), "mnas_hard": (0.0, -1.0)}


class RewardConfigError(NarchError, ValueError):
    """A reward file that breaks a rule; the message names the key and the rule."""


@dataclass(frozen=True, slots=True)
class Penalty:
    """Piecewise-linear penalty of one cost past a threshold (None: the corpus median)."""

    threshold: float | None = None
    weight: float = 1.0
    knees: tuple[float, ...] = (1.0,)
    slopes: tuple[float, ...] = (1.0,)
    alpha: float | None = None  # MnasNet exponents (None: the kind's default)
    beta: float | None = None

    def linear(self, x: np.ndarray) -> np.ndarray:
        """weight * sum_k slope_k * max(0, x / threshold - knee_k)."""
        assert self.threshold is not None, "resolve the threshold first"
        ratio = np.asarray(x, dtype=np.float64) / self.threshold
        out = np.zeros_like(ratio)
        for knee, slope in zip(self.knees, self.slopes, strict=True):
            out += slope * np.maximum(0.0, ratio - knee)
        return self.weight * out

    def mnas(self, x: np.ndarray, kind: str) -> np.ndarray:
        """MnasNet factor (x / threshold) ** (alpha below, beta above); weight 0 switches it off."""
        assert self.threshold is not None, "resolve the threshold first"
        if self.weight == 0:
            return np.ones_like(np.asarray(x, dtype=np.float64))
        a0, b0 = MNAS_DEFAULTS[kind]
        a = a0 if self.alpha is None else self.alpha
        b = b0 if self.beta is None else self.beta
        ratio = np.maximum(np.asarray(x, dtype=np.float64) / self.threshold, 1e-12)
        return ratio ** np.where(ratio <= 1.0, a, b)


@dataclass(frozen=True, slots=True)
class RewardConfig:
    """Weights, thresholds and shape of the reward; see the module docstring."""

    kind: str = "linear"
    w_acc: float = 1.0
    accuracy: str = "val_acc"
    size: Penalty = field(default_factory=Penalty)
    time: Penalty = field(default_factory=Penalty)
    time_source: str = "predictor"
    device: str = "local"
    lambda_std: float = 0.0
    mask_out_of_range: bool = False

    def resolved(self, *, median_size_bytes: float, median_time_s: float) -> RewardConfig:
        """Thresholds left at "median" take the corpus medians."""
        size = self.size if self.size.threshold is not None else replace(self.size, threshold=median_size_bytes)
        time = self.time if self.time.threshold is not None else replace(self.time, threshold=median_time_s)
        return replace(self, size=size, time=time)

    def reward(
        self, acc: np.ndarray, size_bytes: np.ndarray, time_s: np.ndarray, acc_std: np.ndarray | None = None
    ) -> np.ndarray:
        """Rewards of a batch (numpy in, numpy out)."""
        a = np.asarray(acc, dtype=np.float64)
        if acc_std is not None and self.lambda_std:
            a = a - self.lambda_std * np.asarray(acc_std, dtype=np.float64)
        if self.kind == "linear":
            return self.w_acc * a - self.size.linear(size_bytes) - self.time.linear(time_s)
        return self.w_acc * a * self.size.mnas(size_bytes, self.kind) * self.time.mnas(time_s, self.kind)

    def to_dict(self) -> dict[str, Any]:
        def pen(p: Penalty, unit: str) -> dict[str, Any]:
            d: dict[str, Any] = {"weight": p.weight, f"threshold_{unit}": p.threshold if p.threshold else "median",
                                 "knees": list(p.knees), "slopes": list(p.slopes)}
            if p.alpha is not None:
                d["alpha"] = p.alpha
            if p.beta is not None:
                d["beta"] = p.beta
            return d

        return {
            "reward": {"kind": self.kind, "w_acc": self.w_acc, "accuracy": self.accuracy,
                       "size": pen(self.size, "bytes"),
                       "time": {**pen(self.time, "s"), "source": self.time_source, "device": self.device}},
            "guard": {"lambda_std": self.lambda_std, "mask_out_of_range": self.mask_out_of_range},
        }


_TOP = {"reward", "guard"}
_REWARD = {"kind", "w_acc", "accuracy", "size", "time"}
_PEN = {"weight", "knees", "slopes", "alpha", "beta"}
_GUARD = {"lambda_std", "mask_out_of_range"}


def _unknown(d: Mapping[str, Any], known: set[str], where: str) -> None:
    for k in d:
        if k not in known:
            name = f"{where}.{k}" if where else k
            raise RewardConfigError(f"reward config: unknown key {name!r} (known under {where or 'top level'}: "
                                    f"{', '.join(sorted(known))})")


def _table(d: Mapping[str, Any], key: str, where: str) -> Mapping[str, Any]:
    v = d.get(key, {})
    if not isinstance(v, Mapping):
        name = f"{where}.{key}" if where else key
        raise RewardConfigError(f"reward config: {name} must be a table, got {shown(v)}")
    return v


def _number(d: Mapping[str, Any], key: str, where: str, default: float, *, nonneg: bool = False) -> float:
    """A finite number (NaN and the infinities are refused: they would make every reward NaN)."""
    return check_float(f"reward config: {where}.{key}", d.get(key, default), low=0 if nonneg else None,
                       error=RewardConfigError)


def _numbers(d: Mapping[str, Any], key: str, where: str, default: list[float]) -> tuple[float, ...]:
    """A list of finite numbers >= 0 (a string or a single number is refused, never split or wrapped)."""
    v = d.get(key, default)
    if not isinstance(v, list):
        raise RewardConfigError(f"reward config: {where}.{key} must be a list of numbers, got {shown(v)}")
    return tuple(check_float(f"reward config: {where}.{key}[{i}]", x, low=0, error=RewardConfigError)
                 for i, x in enumerate(v))


def _string(d: Mapping[str, Any], key: str, where: str, default: str) -> str:
    v = d.get(key, default)
    if not isinstance(v, str):
        raise RewardConfigError(f"reward config: {where}.{key} must be a string, got {shown(v)}")
    return v


def _penalty(d: Any, where: str, unit: str, extra: set[str]) -> Penalty:
    if not isinstance(d, Mapping):
        raise RewardConfigError(f"reward config: {where} must be a table, got {shown(d)}")
    tkey = f"threshold_{unit}"
    _unknown(d, _PEN | {tkey} | extra, where)
    t = d.get(tkey, "median")
    if t == "median":
        threshold = None
    else:
        threshold = check_float(f"reward config: {where}.{tkey} (or \"median\")", t, low=0, low_open=True,
                                error=RewardConfigError)
    knees = _numbers(d, "knees", where, [1.0])
    slopes = _numbers(d, "slopes", where, [1.0] * len(knees))
    if len(knees) != len(slopes) or not knees:
        raise RewardConfigError(f"reward config: {where}.knees and {where}.slopes need the same non-zero length")
    if list(knees) != sorted(knees):
        raise RewardConfigError(f"reward config: {where}.knees must be ascending, got {list(knees)}")
    alpha = _number(d, "alpha", where, 0.0) if "alpha" in d else None
    beta = _number(d, "beta", where, 0.0) if "beta" in d else None
    return Penalty(threshold, _number(d, "weight", where, 1.0, nonneg=True), knees, slopes, alpha, beta)


def parse_reward(doc: Mapping[str, Any]) -> RewardConfig:
    """A RewardConfig from a parsed TOML document; every broken rule raises RewardConfigError."""
    if not isinstance(doc, Mapping):
        raise RewardConfigError(f"reward config: must be a table, got {shown(doc)}")
    _unknown(doc, _TOP, "")
    r = _table(doc, "reward", "")
    g = _table(doc, "guard", "")
    _unknown(r, _REWARD, "reward")
    _unknown(g, _GUARD, "guard")
    kind = _string(r, "kind", "reward", "linear")
    if kind not in KINDS:
        raise RewardConfigError(f"reward config: reward.kind must be one of {', '.join(KINDS)}, got {kind!r}")
    size = _penalty(r.get("size", {}), "reward.size", "bytes", set())
    time_d = r.get("time", {})
    time = _penalty(time_d, "reward.time", "s", {"source", "device"})
    source = _string(time_d, "source", "reward.time", "predictor")
    if source not in TIME_SOURCES:
        raise RewardConfigError(f"reward config: reward.time.source must be one of {TIME_SOURCES}, got {source!r}")
    w_acc = _number(r, "w_acc", "reward", 1.0, nonneg=True)
    if w_acc == 0 and size.weight == 0 and time.weight == 0:
        raise RewardConfigError("reward config: reward.w_acc, reward.size.weight and reward.time.weight are all "
                                "zero: the reward would be constant")
    if kind != "linear" and w_acc == 0:
        raise RewardConfigError(f"reward config: reward.w_acc must be > 0 for kind {kind!r} (it multiplies)")
    mask = g.get("mask_out_of_range", False)
    if not isinstance(mask, bool):
        raise RewardConfigError(f"reward config: guard.mask_out_of_range must be true or false, got {shown(mask)}")
    return RewardConfig(
        kind=kind, w_acc=w_acc, accuracy=_string(r, "accuracy", "reward", "val_acc"), size=size, time=time,
        time_source=source, device=_string(time_d, "device", "reward.time", "local"),
        lambda_std=_number(g, "lambda_std", "guard", 0.0, nonneg=True), mask_out_of_range=mask,
    )


def load_reward(path: Path | None) -> RewardConfig:
    """Parse a reward TOML file (None: the defaults); every error names the file."""
    if path is None:
        return RewardConfig()
    try:
        doc = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise RewardConfigError(f"{path}: reward config is not valid TOML: {e}") from None
    except UnicodeDecodeError as e:
        raise RewardConfigError(f"{path}: reward config is not UTF-8 text (byte {e.start}: {e.reason})") from None
    except (ValueError, RecursionError) as e:  # an integer of thousands of digits, arrays nested thousands deep
        why = "nested too deeply" if isinstance(e, RecursionError) else str(e).split(":")[0].lower()
        raise RewardConfigError(f"{path}: reward config cannot be parsed ({why})") from None
    except OSError as e:
        raise RewardConfigError(f"{path}: reward config cannot be read: {e.strerror}") from None
    try:
        return parse_reward(doc)
    except RewardConfigError as e:
        raise RewardConfigError(f"{path}: {e}") from None

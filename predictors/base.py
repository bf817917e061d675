"""The predictor interface and registry shared by every family, the leaderboard and the controller."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Generic, Protocol, Self, TypeVar

import numpy as np
import polars as pl

LOG_SUFFIXES = ("_s", "_ms", "_bytes", "_j", "params", "flops_fwd", "flops_train_step")


@dataclass(frozen=True, slots=True)
class Target:
    """A column to predict; times, sizes and energies are fitted in log space (they span decades)."""

    name: str
    log: bool

    @staticmethod
    def of(name: str) -> Target:
        return Target(name, log=name.endswith(LOG_SUFFIXES))

    def forward(self, y: np.ndarray) -> np.ndarray:
        """Column values -> fitting space."""
        return np.log(np.maximum(y, 1e-12)) if self.log else np.asarray(y, dtype=np.float64)

    def inverse(self, z: np.ndarray) -> np.ndarray:
        """Fitting space -> column values."""
        return np.exp(z) if self.log else np.asarray(z, dtype=np.float64)


class Predictor(Protocol):
    """One predictor family. Fitted on corpus rows (a polars frame with ``arch_json`` and descriptor columns).

    Payloads written by ``save`` must load without running code: JSON, numpy ``.npy`` (allow_pickle=False),
    torch state dicts (``torch.load(weights_only=True)``) or a library's own text format.
    """

    name: ClassVar[str]

    def __init__(self, *, seed: int = 0, **params: Any) -> None: ...

    @staticmethod
    def search_space(trial: Any) -> dict[str, Any]:
        """Optuna hyperparameters for this family (an empty dict when it has none)."""
        ...

    def fit(self, rows: pl.DataFrame, target: Target) -> Self: ...

    def predict(self, rows: pl.DataFrame) -> np.ndarray: ...

    def save(self, folder: Path) -> list[str]:
        """Write payload files into ``folder``; return their names (the artefact manifest hashes them)."""
        ...

    @classmethod
    def load(cls, folder: Path, config: dict[str, Any]) -> Self:
        """Rebuild from payloads in ``folder`` and the config its manifest recorded."""
        ...

    def config(self) -> dict[str, Any]:
        """JSON-able hyperparameters and fitted metadata the manifest records."""
        ...


P = TypeVar("P")


class Registry(Generic[P]):
    """Name -> class; unknown names fail loudly with the known ones."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, type[P]] = {}

    def register(self, name: str) -> Callable[[type[P]], type[P]]:
        def deco(cls: type[P]) -> type[P]:
            if name in self._items:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            cls.name = name  # type: ignore[attr-defined]
            self._items[name] = cls
            return cls

        return deco

    def get(self, name: str) -> type[P]:
        try:
            return self._items[name]
        except KeyError:
            raise KeyError(f"{self.kind} {name!r} is unknown (known: {', '.join(sorted(self._items))})") from None

    def names(self) -> list[str]:
        return sorted(self._items)

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())


PREDICTORS: Registry[Predictor] = Registry("predictor")

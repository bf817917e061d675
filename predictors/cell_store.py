"""Finished leaderboard cells on disk, so a board of many CPU-hours is built over several runs.

Each (target, family, training size, seed, trial budget) cell is written atomically to ``OUT/cells/`` when it
ends (its metrics, and its test predictions for the scatter plot). A rerun of the same command skips the cells that
are there. What makes cells comparable is fingerprinted in ``OUT/cells/fingerprint.json``: the split files'
sha256 (the corpus's arch_ids, the split seeds, test fraction, test cap and sizes), a digest of every target's
training values, and the builder version. A rerun whose fingerprint differs is refused in one line unless it asks
to start over (``--restart``), which removes the old cells.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from narch.core.errors import SettingError
from narch.core.files import atomic_write_json, parse_json
from narch.core.provenance import builder_version

FOLDER = "cells"
FINGERPRINT = "fingerprint.json"
VALUE_COLUMNS = ("arch_id", "n_train", "epochs", "batch_size", "seed")  # with the target: what a fit sees


class CellStoreError(SettingError):
    """Cells of another configuration or corpus are in the output folder."""


def target_digest(rows: pl.DataFrame, target: str) -> str:
    """sha256 of a target's rows as the families see them (keys and the target's values, sorted)."""
    cols = [c for c in VALUE_COLUMNS if c in rows.columns] + [target]
    text = rows.select(cols).sort(cols, nulls_last=True).write_csv(float_precision=17)
    return hashlib.sha256(text.encode()).hexdigest()


class CellStore:
    """The cells folder of one leaderboard output folder, checked against the run's fingerprint."""

    def __init__(self, out: Path, fingerprint: dict[str, Any], *, restart: bool = False) -> None:
        self.root = out / FOLDER
        fingerprint = {"version": builder_version(), **fingerprint}
        path = self.root / FINGERPRINT
        if restart and self.root.exists():
            shutil.rmtree(self.root)
        if path.is_file():
            old = parse_json(path.read_text(), error=CellStoreError, what=str(path))
            if old != fingerprint:
                changed = sorted(k for k in set(old) | set(fingerprint) if old.get(k) != fingerprint.get(k))
                raise CellStoreError(f"{out}: its finished cells come from another configuration or corpus "
                                     f"(changed: {', '.join(changed)}); rerun with --restart to start over")
        else:
            self.root.mkdir(parents=True, exist_ok=True)
            atomic_write_json(path, fingerprint)
        self.reused = 0

    def _path(self, target: str, family: str, label: str, seed: int, trials: int) -> Path:
        return self.root / target / family / f"n{label}-seed{seed}-trials{trials}.json"

    def get(self, target: str, family: str, label: str, seed: int, trials: int
            ) -> tuple[dict[str, Any], np.ndarray | None] | None:
        """A finished cell's row and (seed 0) predictions; None when it has not run or its file is unreadable."""
        path = self._path(target, family, label, seed, trials)
        if not path.is_file():
            return None
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            return None  # a torn or foreign file: the cell runs again and overwrites it
        self.reused += 1
        yhat = data.get("yhat")
        row = {k: float("nan") if v is None else v for k, v in data["row"].items()}  # strict JSON wrote NaN as null
        return row, None if yhat is None else np.asarray(yhat, dtype=np.float64)

    def put(self, target: str, family: str, label: str, seed: int, trials: int, row: dict[str, Any],
            yhat: np.ndarray | None) -> None:
        path = self._path(target, family, label, seed, trials)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_json(path, {"row": row, "yhat": None if yhat is None else yhat.tolist()})

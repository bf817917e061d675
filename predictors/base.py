"""The predictor interface and registry shared by every family, the leaderboard and the controller."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol, Self

import numpy as np
import polars as pl

from narch.core.registry import Registry

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
    ``predictors/artefacts.py`` hashes every payload name ``save`` returns and refuses pickles and unlisted files on
    load; ``load`` reads payloads through ``predictors.payloads`` (``read_npy``, ``read_text``, ``read_json``,
    ``load_torch_state``), which refuse links and check headers first.

    ``predict`` returns values in the column's units (``target.inverse`` applied), one per row, float64.

    Optional members the leaderboard, tuner and controller use when a family has them:

    - ``supports(target) -> bool`` (classmethod): whether the family models a target; the leaderboard skips it
      otherwise and ``fit`` raises ``ValueError`` naming the target (``roofline_time`` models times only).
    - ``reports_progress: ClassVar[bool] = True`` with ``fit(rows, target, *, val_rows=None, report=None)``: the
      tuner (predictors/tuning.py) passes inner-validation rows and ``report(step, val_l1)`` (L1 in fitting space);
      ``report`` raises ``optuna.TrialPruned`` when the MedianPruner stops the trial; let it propagate.
    - ``predict_networks(nets, descriptors) -> np.ndarray``: the controller's fast path from ``Network`` objects;
      ``descriptors`` is one task description for all of them: ``input_shape`` (list), ``n_classes`` and any of
      ``n_train``, ``class_balance``, ``linear_probe_acc``, ``centroid_acc``, ``epochs``, ``batch_size``, ``lr``
      (see ``predictors.features.row_descriptors``). It must equal ``predict`` on the same rows. Without it the
      artefact builds corpus-shaped rows (slower).
    - ``predict_std(rows) -> np.ndarray``: a standard deviation per row (ensembles, uncertainty).
    - ``slow: ClassVar[bool] = True``: ``--quick`` evaluates it at the whole pool only, with its defaults;
      ``quick_skip: ClassVar[bool] = True``: ``--quick`` leaves it out unless it is named (predictors/leaderboard.py).
    - ``test_params: ClassVar[dict]``: small hyperparameters the conformance suite (``narch.testing.predictors``)
      fits with (keep it seconds).

    The controller needs >= 20,000 batched queries/s from the frozen predictor; the leaderboard freezes only a
    family that reaches it (``predictors/leaderboard.py``), measured by ``predict`` on a warm batch of 1024 rows.
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


# Plugin packages register families through the "narch.predictors" entry-point group (narch/core/registry.py).
PREDICTORS: Registry[Predictor] = Registry("predictor", group="narch.predictors")

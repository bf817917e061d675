"""Target transforms a family fits in, a tuned option (``target_transform``) of the feature-matrix families.

On top of the target's own fitting space (``Target.forward``: log for times and sizes):
- ``none``: that space as it is.
- ``rank``: the empirical CDF of the training values (piecewise linear through the sorted values), so the model
  fits ranks in [0, 1]. Its inverse interpolates back through the same values, so a prediction never leaves the
  training range and one outlier cannot dominate an L2 or L1 loss.
- ``logit``: log(y / (1 - y)) for a target inside (0, 1) (accuracies), clipped to [1e-4, 1 - 1e-4], which
  spreads the crowded top of the accuracy range. For a log-space target or values outside [0, 1] it is ``none``
  (the tuned choice does not know the target).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from narch.predictors.base import Target

TRANSFORMS = ("none", "rank", "logit")
EPS = 1e-4


@dataclass(frozen=True)
class TargetTransform:
    kind: str = "none"
    knots: np.ndarray | None = None  # rank: the sorted training values in the target's fitting space

    @staticmethod
    def fit(kind: str, z: np.ndarray, target: Target) -> TargetTransform:
        if kind not in TRANSFORMS:
            raise ValueError(f"target_transform {kind!r} is not one of {', '.join(TRANSFORMS)}")
        if kind == "logit" and (target.log or np.nanmin(z) < 0 or np.nanmax(z) > 1):
            return TargetTransform("none")  # logit of a target outside [0, 1] is the identity (the tuner's choice
            # is target-blind; failing the trial would waste it)
        if kind == "rank":
            return TargetTransform(kind, np.sort(np.asarray(z, dtype=np.float64)))
        return TargetTransform(kind)

    def _grid(self) -> np.ndarray:
        assert self.knots is not None
        return np.linspace(0.0, 1.0, len(self.knots)) if len(self.knots) > 1 else np.zeros(1)

    def forward(self, z: np.ndarray) -> np.ndarray:
        z = np.asarray(z, dtype=np.float64)
        if self.kind == "rank":
            assert self.knots is not None
            return np.interp(z, self.knots, self._grid())
        if self.kind == "logit":
            p = np.clip(z, EPS, 1 - EPS)
            return np.log(p / (1 - p))
        return z

    def inverse(self, u: np.ndarray) -> np.ndarray:
        u = np.asarray(u, dtype=np.float64)
        if self.kind == "rank":
            assert self.knots is not None
            return np.interp(np.clip(u, 0.0, 1.0), self._grid(), self.knots)
        if self.kind == "logit":
            return 1.0 / (1.0 + np.exp(-u))
        return u

    def state(self) -> dict[str, Any]:
        return {"target_transform": self.kind}


def transform_choice(trial: Any) -> dict[str, Any]:
    """The tuned target-transform option of a family's Optuna search space."""
    return {"target_transform": trial.suggest_categorical("target_transform", list(TRANSFORMS))}

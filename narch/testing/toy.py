"""A toy scorer from real features of a network (parameter count and depth), for strategy tests.

Not a mock of the pipeline: it is a deterministic, smooth function of the spec with an interior optimum in depth,
so climbing it needs real legal moves, the real evaluator, cache and budget.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from narch.controller.env import Evaluator, Moves
from narch.controller.objectives import Objectives, TaskContext
from narch.controller.reward import Penalty, RewardConfig
from narch.search_space import Network, count_params

CTX = TaskContext((1, 40), 10, 4000, 10, 128, {"n_train": 4000, "n_classes": 10, "epochs": 10, "batch_size": 128})


class ToyScorer:
    """val_acc rises with log-parameters and with depth up to 8 layers; train_time_s grows with parameters."""

    targets = ("val_acc", "train_time_s")

    def __init__(self) -> None:
        self.calls = 0
        self.seen = 0

    def predict(self, nets: Sequence[Network]) -> dict[str, np.ndarray]:
        self.calls += 1
        self.seen += len(nets)
        p = np.array([count_params(n, CTX.input_shape, CTX.n_classes) for n in nets], dtype=np.float64)
        d = np.array([len(n.layers) for n in nets], dtype=np.float64)
        acc = 0.3 + 0.08 * np.log10(p) + 0.03 * d - 0.002 * d**2
        return {"val_acc": np.clip(acc, 0.0, 1.0), "train_time_s": 0.1 + 2e-6 * p}


def toy_setup(budget: int = 200) -> tuple[ToyScorer, Objectives, RewardConfig, Moves, Evaluator]:
    scorer = ToyScorer()
    obj = Objectives(scorer, CTX)
    reward = RewardConfig(size=Penalty(threshold=4e5, weight=0.2), time=Penalty(threshold=1.0, weight=0.2))
    moves = Moves()
    return scorer, obj, reward, moves, Evaluator(obj, reward, budget=budget)

"""Training losses of the neural families (MLP, GIN, LSTM embedding), chosen by their tuned ``loss`` option.

``pairwise`` is ranking-aware: the L1 loss (which keeps predictions in the target's units) plus RankNet's pairwise
logistic loss over every pair of the minibatch whose targets differ, softplus(-sign(y_i - y_j) (p_i - p_j))
(Burges et al. 2005), the mean over those pairs. A predictor judged by Kendall tau or used to rank networks gets
a gradient for every wrongly ordered pair, not only for its absolute errors.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch.nn import functional as F


def pairwise_ranking(pred: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean pairwise logistic loss over the pairs of a batch with different targets (0 when there are none)."""
    sign = torch.sign(y[:, None] - y[None, :])
    mask = sign != 0
    if not bool(mask.any()):
        return pred.sum() * 0.0
    return F.softplus(-sign * (pred[:, None] - pred[None, :]))[mask].mean()


def l1_pairwise(pred: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return F.l1_loss(pred, y) + pairwise_ranking(pred, y)


LOSSES: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "l1": F.l1_loss,
    "mse": F.mse_loss,
    "huber": lambda a, b: F.smooth_l1_loss(a, b, beta=0.5),
    "pairwise": l1_pairwise,
}

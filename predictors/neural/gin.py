"""A graph isomorphism network over the layer DAG, in plain torch (gather/index_add, no torch_geometric)."""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn

from narch.predictors.base import PREDICTORS
from narch.predictors.neural.data import NetInputs
from narch.predictors.neural.embedding import FeatureTables, node_mask
from narch.predictors.neural.regressor import NeuralPredictor
from narch.predictors.neural.simulation import mlp_head
from narch.search_space.encoding import N_FEATURES


class Graph:
    """A padded batch flattened to its real nodes (no work on padding). A node has at most two input nodes (an
    add), so the forward aggregate is a gather of two rows and the backward one (consumers to inputs) an index_add.
    """

    def __init__(self, sources: torch.Tensor, lengths: torch.Tensor) -> None:
        b, n, _ = sources.shape
        self.batch_size = b
        real = node_mask(lengths, n).reshape(-1).nonzero().squeeze(1)  # padded positions of real nodes, in order
        self.real = real
        self.n_real = int(real.shape[0])
        pos = torch.full((b * n,), self.n_real, dtype=torch.int64, device=sources.device)
        pos[real] = torch.arange(self.n_real, device=sources.device)
        self.batch_of = real // n
        src = sources.reshape(b * n, 2)[real]
        padded_src = (self.batch_of * n).unsqueeze(1) + src.clamp_min(0)
        src = torch.where(src >= 0, pos[padded_src], self.n_real)  # n_real: a zero row
        self.src_a, self.src_b = src[:, 0].contiguous(), src[:, 1].contiguous()
        self.out_node = pos[torch.arange(b, device=sources.device) * n + lengths - 1]
        self.count = lengths.to(torch.float32).unsqueeze(1)

    def forward_sum(self, h: torch.Tensor) -> torch.Tensor:
        """For each node, the sum of its input nodes' vectors."""
        ext = torch.cat([h, h.new_zeros(1, h.shape[-1])])
        return ext[self.src_a] + ext[self.src_b]

    def backward_sum(self, h: torch.Tensor) -> torch.Tensor:
        """For each node, the sum of the vectors of the nodes that read it."""
        out = h.new_zeros(self.n_real + 1, h.shape[-1])
        out.index_add_(0, self.src_a, h).index_add_(0, self.src_b, h)
        return out[:-1]

    def readout(self, h: torch.Tensor) -> torch.Tensor:
        """Per network: sum, mean and the output node's vector."""
        total = h.new_zeros(self.batch_size, h.shape[-1]).index_add_(0, self.batch_of, h)
        return torch.cat([total, total / self.count, h[self.out_node]], dim=-1)


class GINLayer(nn.Module):
    """h' = norm(h + MLP([(1 + eps) h + Σ inputs, Σ consumers])): messages along the DAG and, separately, back."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.eps = nn.Parameter(torch.zeros(1))
        self.fwd = nn.Linear(dim, dim)
        self.back = nn.Linear(dim, dim, bias=False)
        self.out = nn.Linear(dim, dim)
        self.norm = nn.LayerNorm(dim)

    def forward(self, h: torch.Tensor, graph: Graph) -> torch.Tensor:
        z = self.fwd((1 + self.eps) * h + graph.forward_sum(h)) + self.back(graph.backward_sum(h))
        return self.norm(h + self.out(torch.relu(z)))


class GINNet(nn.Module):
    """Token lookup tables -> node vectors -> GIN layers -> sum, mean and output-node readout + side -> head."""

    def __init__(
        self, side_dim: int, *, feature_dim: int, hidden: int, n_layers: int, head_hidden: int, dropout: float,
        out_dim: int = 1,
    ) -> None:
        super().__init__()
        self.tables = FeatureTables(feature_dim)
        self.inp = nn.Linear(N_FEATURES * feature_dim, hidden)
        self.convs = nn.ModuleList(GINLayer(hidden) for _ in range(n_layers))
        self.head = mlp_head(3 * hidden + side_dim, head_hidden, out_dim=out_dim, dropout=dropout)

    def forward(self, x: NetInputs) -> torch.Tensor:
        if x.sources is None:
            raise ValueError("GINNet needs the input nodes (NetInputs.sources)")
        graph = Graph(x.sources, x.lengths)
        tokens = x.tokens.reshape(-1, N_FEATURES)[graph.real]
        h = torch.relu(self.inp(self.tables(tokens).flatten(-2)))
        for conv in self.convs:
            h = conv(h, graph)
        return self.head(torch.cat([graph.readout(h), x.side], dim=-1))


@PREDICTORS.register("gin")
class GINPredictor(NeuralPredictor):
    """GIN over the layer DAG (node = layer, plus the network input) with the data descriptors."""

    uses_graph: ClassVar[bool] = True
    DEFAULTS: ClassVar[dict[str, Any]] = {
        "feature_dim": 8,
        "hidden": 64,
        "n_layers": 3,
        "head_hidden": 128,
        "dropout": 0.0,
        "arch_scalars": False,
        "epochs": 100,
        "batch_size": 128,
        "lr": 3e-3,
        "weight_decay": 1e-4,
        "patience": 20,
        "val_frac": 0.15,
        "loss": "l1",
        "min_steps": 400,
        "aux_targets": "",
        "aux_weight": 0.5,
    }

    test_params: ClassVar[dict[str, Any]] = {"epochs": 3, "min_steps": 6, "hidden": 16, "head_hidden": 16}

    @staticmethod
    def search_space(trial: Any) -> dict[str, Any]:
        return {
            "feature_dim": trial.suggest_categorical("feature_dim", [4, 8, 16]),
            "hidden": trial.suggest_categorical("hidden", [32, 64, 128]),
            "n_layers": trial.suggest_int("n_layers", 2, 5),
            "head_hidden": trial.suggest_categorical("head_hidden", [64, 128, 256]),
            "dropout": trial.suggest_float("dropout", 0.0, 0.3),
            "arch_scalars": trial.suggest_categorical("arch_scalars", [False, True]),
            "lr": trial.suggest_float("lr", 3e-4, 1e-2, log=True),
            "weight_decay": trial.suggest_float("weight_decay", 1e-6, 1e-2, log=True),
            "loss": trial.suggest_categorical("loss", ["l1", "huber", "pairwise"]),
        }

    def _build(self, side_dim: int, out_dim: int) -> nn.Module:
        p = self.params
        return GINNet(
            side_dim, feature_dim=p["feature_dim"], hidden=p["hidden"], n_layers=p["n_layers"],
            head_hidden=p["head_hidden"], dropout=p["dropout"], out_dim=out_dim,
        )

"""``gin_cell``: a GIN over a cell benchmark's own graph, not the layer DAG it is mapped to (issue 12 item 3).

Imported cell benchmarks keep each cell as the benchmark defines it in ``bench_cell`` (JSON ``{"adjacency": A,
"ops": [...]}``, ops on nodes, input first and output last): NAS-Bench-101's and EC-NAS's cells as published;
NAS-Bench-201's ops-on-edges cells converted the usual way (dataset_builder/importers/bench_costs.py
``nb201_node_cell``: every edge becomes a node carrying its op). ``gin`` reads the mapped layer DAG, whose nodes
have at most two inputs; here a node may have any number, so messages are dense matrix products over the padded
adjacency (cells have at most a few dozen nodes). A row without a ``bench_cell`` (a built corpus) is read as its
layer DAG in the same node form (op, kernel and stride as the node label), so the family runs on any corpus; the
leaderboard row says which graph it read (``graph``: ``cell``, ``layer DAG`` or both), through the fit's report.

The op vocabulary is the training rows' (an op never seen maps to one shared unknown token). The family is
``row_only``: it reads the rows' cells, so a bare network is refused and it is never frozen for the controller.

With ``pretrain_epochs`` > 0 (``gin_cell_ssl``: 30) the encoder (op embedding and GIN layers) is first pretrained on
the corpus's unlabeled architectures to regress their label-free properties (``predictors/neural/pretraining.py``),
then fine-tuned with a fresh head on the labeled rows; the vocabulary then covers the unlabeled cells' ops too.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, ClassVar, Self

import numpy as np
import polars as pl
import torch
from torch import nn

from narch.predictors.base import PREDICTORS, Target
from narch.predictors.neural.data import SideFeatures
from narch.predictors.neural.gin import GINLayer
from narch.predictors.neural.pretraining import load_body, pretrain_body, unlabeled_view
from narch.predictors.neural.regressor import NeuralPredictor
from narch.predictors.neural.simulation import mlp_head
from narch.search_space import Network

CELL_COLUMN = "bench_cell"
UNKNOWN = "<unk>"
MIN_COVERAGE = 0.5  # a corpus offers the family when at least half its rows carry their cell


class CellRowsOnly(ValueError):
    """A bare network asked of a family that reads the rows' cells."""


@lru_cache(maxsize=65_536)
def layer_dag_cell(arch_json: str) -> tuple[tuple[tuple[int, int], ...], tuple[str, ...]]:
    """A network's layer DAG in node form: (edges, ops), node 0 the input, node i + 1 layer i."""
    net = Network.from_json(arch_json)
    ops, edges = ["input"], []
    for i, layer in enumerate(net.layers):
        sources = layer.inputs or ((i - 1),)
        edges += [(s + 1, i + 1) for s in sources]  # input -1 is node 0
        ops.append(f"{layer.op.value}{layer.kernel}s{layer.stride}" if layer.op.value in ("conv", "maxpool",
                                                                                          "avgpool") else
                   layer.op.value)
    return tuple(edges), tuple(ops)


@lru_cache(maxsize=65_536)
def native_cell(bench_cell: str) -> tuple[tuple[tuple[int, int], ...], tuple[str, ...]]:
    """A ``bench_cell`` JSON as (edges, ops)."""
    d = json.loads(bench_cell)
    adj, ops = d["adjacency"], d["ops"]
    edges = tuple((i, j) for i, r in enumerate(adj) for j, v in enumerate(r) if v)
    return edges, tuple(str(o) for o in ops)


def row_cells(rows: pl.DataFrame) -> list[tuple[tuple[tuple[int, int], ...], tuple[str, ...]]]:
    """Each row's cell: its ``bench_cell`` where it has one, else its layer DAG."""
    cells = rows[CELL_COLUMN].to_list() if CELL_COLUMN in rows.columns else [None] * rows.height
    return [native_cell(c) if c else layer_dag_cell(j) for c, j in zip(cells, rows["arch_json"].to_list(),
                                                                          strict=True)]


def graph_kind(rows: pl.DataFrame) -> str:
    """Which graph the rows give the family: ``cell``, ``layer DAG`` or ``cell and layer DAG``."""
    n = int(rows[CELL_COLUMN].is_not_null().sum()) if CELL_COLUMN in rows.columns else 0
    return "cell" if n == rows.height else "layer DAG" if n == 0 else "cell and layer DAG"


@dataclass(frozen=True)
class CellInputs:
    """A padded batch: op tokens (B, N), adjacency (B, N, N) with adj[b, i, j] = 1 for an edge i -> j, node counts
    (B,) and the side vector (B, S)."""

    ops: torch.Tensor
    adj: torch.Tensor
    lengths: torch.Tensor
    side: torch.Tensor

    def __len__(self) -> int:
        return int(self.lengths.shape[0])

    def take(self, idx: torch.Tensor) -> CellInputs:
        lengths = self.lengths[idx]
        n = int(lengths.max())
        return CellInputs(self.ops[idx, :n], self.adj[idx, :n, :n], lengths, self.side[idx])


def encode(cells: Sequence[tuple[tuple[tuple[int, int], ...], tuple[str, ...]]], vocab: Mapping[str, int],
           side: np.ndarray) -> CellInputs:
    n = max(len(ops) for _, ops in cells)
    ops = np.zeros((len(cells), n), dtype=np.int64)
    adj = np.zeros((len(cells), n, n), dtype=np.float32)
    for b, (edges, names) in enumerate(cells):
        ops[b, : len(names)] = [vocab.get(o, 1) for o in names]  # 0 padding, 1 unknown
        for i, j in edges:
            adj[b, i, j] = 1.0
    return CellInputs(torch.from_numpy(ops), torch.from_numpy(adj),
                      torch.as_tensor([len(o) for _, o in cells], dtype=torch.int64),
                      torch.from_numpy(np.ascontiguousarray(side, dtype=np.float32)))


class DenseGINLayer(GINLayer):
    """gin's layer (h' = norm(h + MLP([(1 + eps) h + Σ predecessors, Σ successors]))) over a dense adjacency, masked
    to real nodes: the same parameters, messages by matrix products instead of gathers."""

    def forward(self, h: torch.Tensor, adj: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        pred = torch.bmm(adj.transpose(1, 2), h)  # node j: sum over i -> j
        succ = torch.bmm(adj, h)
        z = self.fwd((1 + self.eps) * h + pred) + self.back(succ)
        return self.norm(h + self.out(torch.relu(z))) * mask


class CellGINNet(nn.Module):
    def __init__(self, vocab_size: int, side_dim: int, *, hidden: int, n_layers: int, head_hidden: int,
                 dropout: float, out_dim: int = 1) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab_size, hidden, padding_idx=0)
        self.convs = nn.ModuleList(DenseGINLayer(hidden) for _ in range(n_layers))
        self.head = mlp_head(3 * hidden + side_dim, head_hidden, out_dim=out_dim, dropout=dropout)

    def forward(self, x: CellInputs) -> torch.Tensor:
        n = x.ops.shape[1]
        mask = (torch.arange(n)[None, :] < x.lengths[:, None]).unsqueeze(-1).to(torch.float32)
        h = self.embed(x.ops) * mask
        for conv in self.convs:
            h = conv(h, x.adj, mask)
        total = h.sum(1)
        out = h[torch.arange(h.shape[0]), x.lengths - 1]
        return self.head(torch.cat([total, total / x.lengths[:, None].to(torch.float32), out, x.side], dim=-1))


@PREDICTORS.register("gin_cell")
class CellGINPredictor(NeuralPredictor):
    """GIN over the benchmark's own cell graph (its layer DAG where a row has no cell) with the data descriptors."""

    row_only: ClassVar[bool] = True
    uses_unlabeled: ClassVar[bool] = True  # fit takes the corpus's architectures as ``unlabeled`` (pretraining)
    DEFAULTS: ClassVar[dict[str, Any]] = {
        "hidden": 64, "n_layers": 3, "head_hidden": 128, "dropout": 0.0, "arch_scalars": False, "epochs": 100,
        "batch_size": 128, "lr": 3e-3, "weight_decay": 1e-4, "patience": 20, "val_frac": 0.15, "loss": "l1",
        "min_steps": 400, "aux_targets": "", "aux_weight": 0.5, "pretrain_epochs": 0, "pretrain_rows": 4096,
    }
    test_params: ClassVar[dict[str, Any]] = {"epochs": 3, "min_steps": 6, "hidden": 16, "head_hidden": 16}

    def __init__(self, *, seed: int = 0, **params: Any) -> None:
        super().__init__(seed=seed, **params)
        self.vocab: dict[str, int] = {}
        self.graph = ""
        self._body: dict[str, dict[str, torch.Tensor]] | None = None

    @staticmethod
    def search_space(trial: Any) -> dict[str, Any]:
        return {
            "hidden": trial.suggest_categorical("hidden", [32, 64, 128]),
            "n_layers": trial.suggest_int("n_layers", 2, 5),
            "head_hidden": trial.suggest_categorical("head_hidden", [64, 128, 256]),
            "dropout": trial.suggest_float("dropout", 0.0, 0.3),
            "lr": trial.suggest_float("lr", 3e-4, 1e-2, log=True),
            "weight_decay": trial.suggest_float("weight_decay", 1e-6, 1e-2, log=True),
            "loss": trial.suggest_categorical("loss", ["l1", "huber", "pairwise"]),
        }

    @classmethod
    def supports_rows(cls, rows: pl.DataFrame) -> bool:
        """Offered where the rows carry their benchmark's cells (elsewhere ``gin`` reads the same layer DAG)."""
        return CELL_COLUMN in rows.columns and rows.height > 0 and \
            float(rows[CELL_COLUMN].is_not_null().mean()) >= MIN_COVERAGE  # type: ignore[arg-type]

    def fit(self, rows: pl.DataFrame, target: Target, *, unlabeled: pl.DataFrame | None = None, **kw: Any) -> Self:
        pretrain = int(self.params["pretrain_epochs"]) > 0 and unlabeled is not None and unlabeled.height > 0
        pool = unlabeled_view(unlabeled) if pretrain and unlabeled is not None else None
        seen = sorted({o for _, ops in row_cells(rows if pool is None else pl.concat(
            [unlabeled_view(rows), pool], how="diagonal_relaxed")) for o in ops})
        self.vocab = {o: k + 2 for k, o in enumerate(seen)}  # 0 padding, 1 unknown
        self.graph = graph_kind(rows)
        self._body = None
        if pool is not None:
            p = self.params
            self._body = pretrain_body(
                lambda k: self._net(0, k), lambda r: encode(row_cells(r), self.vocab, np.zeros((r.height, 0))),
                pool, parts=("embed", "convs"), rows=int(p["pretrain_rows"]), epochs=int(p["pretrain_epochs"]),
                key=[self.vocab, p["hidden"], p["n_layers"], p["head_hidden"], p["dropout"]], seed=self.seed,
                params={k: p[k] for k in ("batch_size", "lr", "weight_decay", "patience", "val_frac")})
        return super().fit(rows, target, **kw)

    def _encode_rows(self, rows: pl.DataFrame, side: SideFeatures) -> CellInputs:  # type: ignore[override]
        return encode(row_cells(rows), self.vocab, side.of_rows(rows))

    def networks_inputs(self, nets: Sequence[Network], descriptors: Mapping[str, Any]) -> Any:
        raise CellRowsOnly(f"predictor {self.name!r} reads the rows' cells ({CELL_COLUMN}): it cannot score a "
                           "network alone")

    def _net(self, side_dim: int, out_dim: int) -> CellGINNet:
        p = self.params
        return CellGINNet(len(self.vocab) + 2, side_dim, hidden=p["hidden"], n_layers=p["n_layers"],
                          head_hidden=p["head_hidden"], dropout=p["dropout"], out_dim=out_dim)

    def _build(self, side_dim: int, out_dim: int) -> nn.Module:
        return load_body(self._net(side_dim, out_dim), self._body)  # the pretrained encoder, when there is one

    def inputs_key(self) -> str:
        return json.dumps(["cell", self.vocab, super().inputs_key()], sort_keys=True)

    def config(self) -> dict[str, Any]:
        cfg = super().config()
        cfg["state"] |= {"vocab": self.vocab, "graph": self.graph}
        return cfg

    def _load_state(self, state: Mapping[str, Any]) -> None:
        self.vocab = {str(k): int(v) for k, v in state["vocab"].items()}
        self.graph = str(state.get("graph", ""))


@PREDICTORS.register("gin_cell_ssl")
class PretrainedCellGINPredictor(CellGINPredictor):
    """``gin_cell`` whose encoder is pretrained on the corpus's unlabeled architectures first (30 epochs)."""

    DEFAULTS: ClassVar[dict[str, Any]] = {**CellGINPredictor.DEFAULTS, "pretrain_epochs": 30}
    test_params: ClassVar[dict[str, Any]] = {**CellGINPredictor.test_params, "pretrain_epochs": 2,
                                             "pretrain_rows": 64}


__all__ = ["CELL_COLUMN", "CellGINPredictor", "CellRowsOnly", "PretrainedCellGINPredictor", "graph_kind",
           "layer_dag_cell", "native_cell"]

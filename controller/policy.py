"""The paper's policy and value networks over the network embedding, with masked, factored action heads.

The embedding (lookup tables, layer LSTM, network LSTM) is ``predictors.neural.embedding.NetworkEmbedding`` over
``search_space.encoding`` tokens, shared with the performance simulation network. A context vector from the
network embedding (and the episode's progress) drives the heads one decision at a time: categorical heads
(kind, layer type, size, kernel, stride, attribute, value) are linear maps of the context; pointer heads
(insert position, the two layers of an insert-add, the layer to scale or remove) score every node's embedding
against a query from the context. Each choice is embedded and added to the context before the next head.
Masks come from the legal-move trie, so illegal moves have probability zero; log-probabilities and entropies
are summed only over the heads a move uses.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from narch.controller.actions import POINTER_HEADS, Leaf, Path, TrieNode, categorical_widths, resolve
from narch.predictors.neural.embedding import NetworkEmbedding
from narch.search_space import Move, MoveVocab


@dataclass
class PolicyStep:
    """One batched decision: the moves taken, and per environment log pi(a|s), entropy and V(s) (with grad)."""

    moves: list[Move]
    log_prob: torch.Tensor
    entropy: torch.Tensor
    value: torch.Tensor
    n_heads: torch.Tensor
    paths: list[Path] = field(default_factory=list)  # per environment, the (head, choice) taken: ``forced`` replays


def _masked_log_softmax(logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return torch.log_softmax(logits.masked_fill(~mask, -1e9), dim=-1)


def _forced(path: Path, depth: int, head: str) -> int:
    name, idx = path[depth]
    if name != head:
        raise ValueError(f"forced path {path} has head {name!r} at depth {depth}, the trie expects {head!r}")
    return idx


class Policy(nn.Module):
    """Network embedding -> context -> factored masked heads; plus a value head on the same embedding."""

    def __init__(self, vocab: MoveVocab, *, hidden: int = 64, feature_dim: int = 16, layer_dim: int = 32,
                 net_dim: int = 64) -> None:
        super().__init__()
        self.vocab = vocab
        self.embed = NetworkEmbedding(feature_dim=feature_dim, layer_dim=layer_dim, net_dim=net_dim)
        self.hidden = hidden
        self.ctx = nn.Sequential(nn.Linear(self.embed.out_dim + 1, hidden), nn.Tanh())
        self.node = nn.Linear(layer_dim + net_dim, hidden)
        self.widths = categorical_widths(vocab)
        self.cat = nn.ModuleDict({h: nn.Linear(hidden, w) for h, w in self.widths.items()})
        self.cat_embed = nn.ModuleDict({h: nn.Embedding(w, hidden) for h, w in self.widths.items()})
        self.query = nn.ModuleDict({h: nn.Linear(hidden, hidden) for h in POINTER_HEADS})
        self.value = nn.Sequential(nn.Linear(self.embed.out_dim + 1, hidden), nn.Tanh(), nn.Linear(hidden, 1))

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor, progress: torch.Tensor, tries: Sequence[TrieNode],
                *, greedy: bool = False, generator: torch.Generator | None = None,
                forced: Sequence[Path] | None = None) -> PolicyStep:
        """Sample one move per network (every trie must be non-empty), or score the ``forced`` head paths."""
        emb = self.embed(tokens, lengths)
        x = torch.cat([emb.network, progress[:, None]], dim=-1)
        ctx = self.ctx(x)
        nodes = self.node(torch.cat([emb.layers, emb.states], dim=-1))  # (B, N, H)
        b, n_nodes = tokens.shape[:2]
        log_prob = torch.zeros(b)
        entropy = torch.zeros(b)
        n_heads = torch.zeros(b)
        cur: list[TrieNode | Leaf] = list(tries)
        ins_pos = [-1] * b
        paths: list[list[tuple[str, int]]] = [[] for _ in range(b)]
        depth = 0
        while True:
            groups: dict[str, list[int]] = {}
            for i, node in enumerate(cur):
                if isinstance(node, TrieNode):
                    groups.setdefault(node.head, []).append(i)
            if not groups:
                break
            update = torch.zeros_like(ctx)
            lp_add = torch.zeros(b)
            ent_add = torch.zeros(b)
            for head, rows in groups.items():
                idx = torch.as_tensor(rows)
                c = ctx[idx]
                pointer = head in self.query
                width = n_nodes if pointer else self.widths[head]
                mask_np = np.zeros((len(rows), width), dtype=bool)
                for r, i in enumerate(rows):
                    node = cur[i]
                    assert isinstance(node, TrieNode)
                    mask_np[r, list(node.children)] = True
                mask = torch.from_numpy(mask_np)
                if pointer:
                    q = self.query[head](c)
                    logits = torch.einsum("bnh,bh->bn", nodes[idx], q) / math.sqrt(self.hidden)
                else:
                    logits = self.cat[head](c)
                logp = _masked_log_softmax(logits, mask)
                if forced is not None:
                    choice = torch.as_tensor([_forced(forced[i], depth, head) for i in rows])
                elif greedy:
                    choice = logp.argmax(-1)
                else:
                    # Inverse-CDF sampling: one uniform per row (torch.multinomial costs ~1 ms a call here).
                    cdf = logp.detach().exp().cumsum(-1)
                    u = torch.rand(len(rows), 1, generator=generator) * cdf[:, -1:]
                    choice = (cdf < u).sum(-1).clamp_max(width - 1)
                    choice = torch.where(mask.gather(-1, choice[:, None]).squeeze(-1), choice, logp.argmax(-1))
                p = logp.exp()
                ent = -(p * logp.masked_fill(~mask, 0.0)).sum(-1)
                lp_add = lp_add.index_add(0, idx, logp.gather(-1, choice[:, None]).squeeze(-1))
                ent_add = ent_add.index_add(0, idx, ent)
                e = nodes[idx, choice] if pointer else self.cat_embed[head](choice)
                update = update.index_add(0, idx, e)
                for r, i in enumerate(rows):
                    node = cur[i]
                    assert isinstance(node, TrieNode)
                    k = int(choice[r])
                    paths[i].append((head, k))
                    if head == "ins_pos":
                        ins_pos[i] = k
                    cur[i] = node.children[k]
                n_heads = n_heads.index_add(0, idx, torch.ones(len(rows)))
            log_prob = log_prob + lp_add
            entropy = entropy + ent_add
            ctx = torch.tanh(ctx + update)
            depth += 1
        moves = [resolve(leaf, pos) for leaf, pos in zip(cur, ins_pos, strict=True)]  # type: ignore[arg-type]
        return PolicyStep(moves, log_prob, entropy, self.value(x).squeeze(-1), n_heads, [tuple(p) for p in paths])

    def values(self, tokens: torch.Tensor, lengths: torch.Tensor, progress: torch.Tensor) -> torch.Tensor:
        """V(s) alone (bootstrapping)."""
        emb = self.embed(tokens, lengths)
        return self.value(torch.cat([emb.network, progress[:, None]], dim=-1)).squeeze(-1)

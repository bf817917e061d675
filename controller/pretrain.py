"""Policy pretraining on the corpus's recorded edits (issue 13, item 3).

A corpus built by editing networks records, per row, the parent network and the move that made it
(``parent_arch_id``, ``move``). Where both ends were trained, the edit's measured effect is known: the reward of the
child minus the reward of the parent, with the *measured* accuracy (mean over the rows of each network) and the
search's own size and time terms. The edits that raised it are demonstrations: before its first episode, the
``a2c_pre`` controller maximises their log-probability under its policy (behaviour cloning over the masked heads,
the moves replayed as forced head paths), then runs the paper's A2C. Edits the search's legal-move trie cannot spell
(another vocabulary, a guard) are left out.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import torch

from narch.controller.actions import Path, TrieNode, move_path, resolve
from narch.controller.env import Moves
from narch.controller.objectives import Objectives
from narch.controller.policy import Policy
from narch.controller.reward import RewardConfig
from narch.search_space import Move, Network
from narch.search_space.encoding import Encoder

Demo = tuple[Network, Move]


def recorded_edits(rows: pl.DataFrame, objectives: Objectives, reward: RewardConfig) -> tuple[Demo, ...]:
    """The corpus's (parent, move) edits whose measured reward rose, best first; () when rows record no lineage."""
    acc = reward.accuracy
    need = {"arch_id", "arch_json", "parent_arch_id", "move", acc}
    if not need <= set(rows.columns):
        return ()
    ok = rows.filter(pl.col("status") == "ok") if "status" in rows.columns else rows
    nets = ok.group_by("arch_id").agg(pl.col("arch_json").first(), pl.col(acc).mean())
    edits = (ok.filter(pl.col("parent_arch_id").is_not_null() & pl.col("move").is_not_null())
             .unique(subset=["parent_arch_id", "move"], keep="first", maintain_order=True)
             .select("arch_id", "parent_arch_id", "move")
             .join(nets.rename({"arch_id": "parent_arch_id", "arch_json": "parent_json", acc: "parent_acc"}),
                   on="parent_arch_id")
             .join(nets.rename({acc: "child_acc"}), on="arch_id")
             .sort("parent_arch_id", "move"))  # joins keep no order: the demonstrations' order is fixed here
    if edits.height == 0:
        return ()
    parents = [Network.from_json(j) for j in edits["parent_json"]]
    children = [Network.from_json(j) for j in edits["arch_json"]]
    s = objectives([*parents, *children])  # size and time as the search scores them; accuracy measured
    n = len(parents)
    measured = np.concatenate([edits["parent_acc"].to_numpy(), edits["child_acc"].to_numpy()])
    r = reward.reward(measured, s.size_bytes, s.time_s)
    gain = r[n:] - r[:n]
    order = np.argsort(-gain, kind="stable")
    return tuple((parents[i], Move.from_json(edits["move"][int(i)])) for i in order if gain[i] > 0)


def _walk(trie: TrieNode | None, path: Path, move: Move) -> bool:
    """Whether ``path`` spells ``move`` in the trie of legal moves."""
    node: object = trie
    ins_pos = -1
    for head, k in path:
        if not isinstance(node, TrieNode) or node.head != head or k not in node.children:
            return False
        if head == "ins_pos":
            ins_pos = k
        node = node.children[k]
    return not isinstance(node, TrieNode) and node is not None and resolve(node, ins_pos) == move  # type: ignore[arg-type]


def spellable(demos: tuple[Demo, ...], moves: Moves) -> list[tuple[Network, Path]]:
    """The demonstrations the search's moves can make, as (state, forced head path)."""
    out = []
    for net, move in demos:
        try:
            path = move_path(move, moves.vocab, net)
        except (ValueError, IndexError):  # a value outside this vocabulary
            continue
        if _walk(moves.trie(net), path, move):
            out.append((net, path))
    return out


def pretrain(policy: Policy, moves: Moves, encoder: Encoder, demos: tuple[Demo, ...], *, epochs: int, lr: float,
             batch: int = 64, seed: int = 0) -> dict[str, float]:
    """Behaviour cloning of the policy on the demonstrations it can spell; returns counts and the last loss."""
    data = spellable(demos, moves)
    if not data or epochs <= 0:
        return {"demos": float(len(data)), "loss": float("nan")}
    opt = torch.optim.Adam(policy.parameters(), lr=lr)
    rng = np.random.default_rng(seed)
    loss_v = float("nan")
    for _ in range(epochs):
        order = rng.permutation(len(data))
        for start in range(0, len(data), batch):
            idx = order[start:start + batch]
            states = [data[i][0] for i in idx]
            enc = encoder.networks(states)
            tries = [moves.trie(s) for s in states]
            step = policy(torch.from_numpy(enc.tokens), torch.from_numpy(enc.lengths), torch.zeros(len(states)),
                          tries, forced=[data[i][1] for i in idx])  # type: ignore[arg-type]
            loss = -step.log_prob.mean()
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(policy.parameters(), 1.0)
            opt.step()
            loss_v = float(loss.detach())
    return {"demos": float(len(data)), "loss": loss_v}


__all__ = ["Demo", "pretrain", "recorded_edits", "spellable"]

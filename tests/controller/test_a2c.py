"""The policy: log-probabilities and entropies over the heads a move uses, masks, and the A2C advantage."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from narch.controller.actions import move_path
from narch.controller.env import Moves
from narch.controller.policy import Policy
from narch.controller.rl import advantages
from narch.search_space import SEEDS, MoveKind
from narch.search_space.encoding import encode_networks
from narch.search_space.moves import try_move


def _batch(nets: list) -> tuple[torch.Tensor, torch.Tensor]:
    eb = encode_networks(nets)
    return torch.from_numpy(eb.tokens), torch.from_numpy(eb.lengths)


def _nets(n: int = 12) -> list:
    moves, rng = Moves(), random.Random(0)
    return [moves.random_walk(rng, SEEDS[k], rng.randint(0, 5)) for k in list(SEEDS) * 2][:n]


def test_sampled_moves_are_legal_and_log_probs_sum_over_used_heads_only() -> None:
    torch.manual_seed(0)
    moves = Moves()
    policy = Policy(moves.vocab)
    nets = _nets()
    tries = [moves.trie(n) for n in nets]
    tok, lens = _batch(nets)
    progress = torch.zeros(len(nets))
    for _ in range(5):
        step = policy(tok, lens, progress, tries)  # type: ignore[arg-type]
        for net, m, k in zip(nets, step.moves, range(len(nets)), strict=True):
            assert try_move(net, m, moves.vocab) is not None, "an illegal move was sampled"
            path = move_path(m, moves.vocab, net)
            assert int(step.n_heads[k]) == len(path), "log-prob summed over heads the move does not use"
        forced = policy(tok, lens, progress, tries, forced=[move_path(m, moves.vocab, n)  # type: ignore[arg-type]
                                                           for m, n in zip(step.moves, nets, strict=True)])
        assert step.paths == [move_path(m, moves.vocab, n) for m, n in zip(step.moves, nets, strict=True)]
        torch.testing.assert_close(forced.log_prob, step.log_prob)
        torch.testing.assert_close(forced.entropy, step.entropy)
        assert [m for m in forced.moves] == step.moves


@pytest.mark.parametrize("name", ["tiny", "mnist1d_cnn"])
def test_probabilities_of_all_legal_moves_sum_to_one(name: str) -> None:
    """The factored, masked heads define one distribution over exactly the legal moves."""
    torch.manual_seed(2)
    moves = Moves()
    policy = Policy(moves.vocab)
    net = SEEDS[name]
    legal = moves.table.moves(net)
    trie = moves.trie(net)
    tok, lens = _batch([net] * len(legal))
    with torch.no_grad():
        step = policy(tok, lens, torch.full((len(legal),), 0.25), [trie] * len(legal),  # type: ignore[list-item]
                      forced=[move_path(m, moves.vocab, net) for m in legal])
    assert step.moves == legal
    assert step.log_prob.exp().sum().item() == pytest.approx(1.0, abs=1e-4)


def test_unused_heads_get_no_gradient() -> None:
    """Only remove moves are legal-and-forced here, so the insert heads must receive no gradient."""
    torch.manual_seed(0)
    moves = Moves()
    policy = Policy(moves.vocab)
    net = SEEDS["lenet"]
    trie = moves.trie(net)
    assert trie is not None
    remove = next(m for m in moves.legal(net) if m.kind == MoveKind.REMOVE)
    tok, lens = _batch([net])
    step = policy(tok, lens, torch.zeros(1), [trie], forced=[move_path(remove, moves.vocab, net)])
    (step.log_prob.sum() + step.entropy.sum()).backward()
    for head in ("ins_op", "ins_size", "ins_kernel", "ins_stride", "scale_attr", "scale_value"):
        assert policy.cat[head].weight.grad is None or policy.cat[head].weight.grad.abs().sum() == 0, head
    assert policy.cat["kind"].weight.grad is not None and policy.cat["kind"].weight.grad.abs().sum() > 0
    assert policy.query["remove_layer"].weight.grad.abs().sum() > 0


def test_masked_choices_have_zero_probability() -> None:
    """With every logit pushed towards one masked-out kind, sampling still never picks it."""
    moves = Moves()
    policy = Policy(moves.vocab)
    with torch.no_grad():
        policy.cat["kind"].bias.fill_(0.0)
        policy.cat["kind"].bias[1] = 50.0  # insert_add: illegal for lenet (no two equal shapes)
    net = SEEDS["lenet"]
    trie = moves.trie(net)
    assert trie is not None and 1 not in trie.children
    tok, lens = _batch([net] * 64)
    step = policy(tok, lens, torch.zeros(64), [trie] * 64)
    assert all(m.kind != MoveKind.INSERT_ADD for m in step.moves)


def test_advantage_is_one_step_td_error_with_lambda_zero() -> None:
    r = torch.tensor([[1.0], [0.5], [-0.2]])
    v = torch.tensor([[0.3], [0.1], [0.4]])
    adv = advantages(r, v, gamma=0.9, lam=0.0)
    expected = torch.tensor([[1.0 + 0.9 * 0.1 - 0.3], [0.5 + 0.9 * 0.4 - 0.1], [-0.2 + 0.0 - 0.4]])
    torch.testing.assert_close(adv, expected)
    gae = advantages(r, v, gamma=1.0, lam=1.0)  # Monte-Carlo return minus V(s_t)
    torch.testing.assert_close(gae, torch.tensor([[1.3 - 0.3], [0.3 - 0.1], [-0.2 - 0.4]]))


@pytest.mark.parametrize("n", [1, 7])
def test_value_head_shape(n: int) -> None:
    moves = Moves()
    policy = Policy(moves.vocab)
    nets = _nets(n)
    tok, lens = _batch(nets)
    assert policy.values(tok, lens, torch.zeros(n)).shape == (n,)
    assert np.isfinite(policy.values(tok, lens, torch.zeros(n)).detach().numpy()).all()


def test_ppo_reuses_each_batch_for_several_clipped_updates() -> None:
    from narch.controller.search import run_one
    from tests.controller.toy import toy_setup

    _, obj, reward, moves, _ = toy_setup()
    kw = {"objectives": obj, "reward": reward, "moves": moves, "start": SEEDS["tiny"], "budget": 60, "seed": 0,
          "episode_len": 2, "batch": 8}
    a2c = run_one("a2c", params={"envs": 8, "episode_len": 2}, **kw)
    ppo = run_one("ppo", params={"envs": 8, "episode_len": 2, "ppo_epochs": 3}, **kw)
    assert a2c.extra["updates"] and ppo.extra["updates"]
    assert ppo.extra["updates"] == 3 * (ppo.env_steps // (8 * 2))  # each full batch of episodes: 3 updates

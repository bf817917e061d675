"""Policy pretraining on recorded edits: which edits become demonstrations, and that cloning makes them likelier."""

from __future__ import annotations

import polars as pl
import torch

from narch.controller.actions import move_path
from narch.controller.policy import Policy
from narch.controller.pretrain import pretrain, recorded_edits, spellable
from narch.controller.search import run_one
from narch.search_space import SEEDS, Network
from narch.search_space.encoding import Encoder
from narch.testing.toy import toy_setup


def _rows() -> tuple[pl.DataFrame, Network, list]:
    _, _, _, moves, _ = toy_setup()
    parent = SEEDS["tiny"]
    legal = moves.legal(parent)
    good, bad, orphan = legal[0], legal[1], legal[2]
    kids = [moves.child(parent, m) for m in (good, bad)]
    stranger = moves.child(kids[1], moves.legal(kids[1])[0])  # its parent below is not a measured row's network
    rows = [
        {"arch_id": parent.arch_id, "arch_json": parent.to_json(), "parent_arch_id": None, "move": None, "acc": 0.5},
        {"arch_id": kids[0].arch_id, "arch_json": kids[0].to_json(), "parent_arch_id": parent.arch_id,
         "move": good.to_json(), "acc": 0.9},
        {"arch_id": kids[0].arch_id, "arch_json": kids[0].to_json(), "parent_arch_id": parent.arch_id,
         "move": good.to_json(), "acc": 0.8},  # a second seed of the same network: averaged, one demonstration
        {"arch_id": kids[1].arch_id, "arch_json": kids[1].to_json(), "parent_arch_id": parent.arch_id,
         "move": bad.to_json(), "acc": 0.1},
        {"arch_id": stranger.arch_id, "arch_json": stranger.to_json(), "parent_arch_id": "0" * 16,
         "move": orphan.to_json(), "acc": 0.99},
    ]
    return pl.DataFrame(rows).with_columns(pl.lit("ok").alias("status")).rename({"acc": "val_acc"}), parent, [good, bad]


def test_only_measured_edits_that_raised_the_reward_are_demonstrations() -> None:
    _, obj, reward, moves, _ = toy_setup()
    rows, parent, (good, _) = _rows()
    demos = recorded_edits(rows, obj, reward)
    assert demos == ((parent, good),)
    assert recorded_edits(rows.drop("move"), obj, reward) == ()  # a corpus without lineage: no demonstrations
    assert [p for p, _ in spellable(demos, moves)] == [parent]


def test_cloning_raises_the_log_probability_of_the_demonstrated_move() -> None:
    _, _, _, moves, _ = toy_setup()
    _, parent, (good, _) = _rows()
    torch.manual_seed(0)
    policy = Policy(moves.vocab)
    enc = Encoder()

    def logp() -> float:
        b = enc.networks([parent])
        with torch.no_grad():
            step = policy(torch.from_numpy(b.tokens), torch.from_numpy(b.lengths), torch.zeros(1),
                          [moves.trie(parent)], forced=[move_path(good, moves.vocab, parent)])
        return float(step.log_prob[0])

    before = logp()
    stats = pretrain(policy, moves, enc, ((parent, good),), epochs=20, lr=1e-2)
    assert stats["demos"] == 1 and logp() > before + 1.0


def test_a2c_pre_pretrains_when_given_demonstrations_and_is_a2c_without() -> None:
    _, obj, reward, moves, _ = toy_setup(budget=40)
    rows, parent, _ = _rows()
    demos = recorded_edits(rows, obj, reward)
    kw = dict(objectives=obj, reward=reward, moves=moves, start=parent, budget=40, seed=0,
              params={"envs": 8, "episode_len": 2})
    with_demos = run_one("a2c_pre", demos=demos, **kw)
    assert with_demos.extra["pretrain"]["demos"] == 1
    plain = run_one("a2c_pre", **kw)
    assert plain.extra["pretrain"] is None


def test_a_policy_that_only_revisits_restarts_from_its_initial_state() -> None:
    from narch.controller.strategies import STRATEGIES, StrategyContext

    *_, moves, ev = toy_setup(budget=40)
    ev.evaluate([SEEDS["tiny"]])
    strat = STRATEGIES.get("a2c_pre")(StrategyContext(SEEDS["tiny"], moves, ev, 0, 2, {"envs": 4,
                                                                                         "restart_after": 8}))
    start = {k: v.clone() for k, v in strat.policy.state_dict().items()}
    with torch.no_grad():
        for p in strat.policy.parameters():
            p.add_(1.0)  # as if trained since
    strat._watch_collapse(4)  # no new query since the start: 4 idle proposals
    strat._restart_if_due()
    assert strat.restarts == 0
    strat._watch_collapse(4)  # 8 in a row: a restart at the end of the episode
    strat._restart_if_due()
    assert strat.restarts == 1 and all(torch.equal(v, start[k]) for k, v in strat.policy.state_dict().items())
    ev.evaluate([moves.child(SEEDS["tiny"], moves.legal(SEEDS["tiny"])[0])])  # a new network resets the count
    strat._watch_collapse(4)
    strat._watch_collapse(3)
    strat._restart_if_due()
    assert strat.restarts == 1

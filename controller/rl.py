"""The paper's A2C controller and EAS-style REINFORCE, as ask/tell strategies over batched environments.

``B`` environments each run episodes of ``T`` moves from the start network. One ``ask`` samples a move in every
environment (one batched policy forward); ``tell`` receives the children's rewards. The per-step reward is the
change of the multi-objective reward, r_t = R(s_{t+1}) - R(s_t), so an episode's return is how much it improved
the start network. A2C: advantage A_t = r_t + gamma V(s_{t+1}) - V(s_t) (or GAE with ``gae_lambda`` < 1; V after
the last move is 0), policy loss -log pi(a_t|s_t) A_t, value loss A_t^2 against a detached target, and an entropy
bonus; one update per batch of episodes. REINFORCE: the episode return against a moving-average baseline, no
value network.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from narch.controller.env import Moves
from narch.controller.policy import Policy, PolicyStep
from narch.controller.pretrain import pretrain
from narch.controller.strategies import STRATEGIES, StrategyContext
from narch.search_space import Network
from narch.search_space.encoding import Encoder


@dataclass(frozen=True)
class RLConfig:
    """Controller hyperparameters. Defaults were picked on a GBDT predictor of the growing MNIST-1D corpus, 3 seeds,
    budget 2000 (results/search/mnist1d_ref/README.md lists what was tried)."""

    envs: int = 16
    lr: float = 3e-3
    gamma: float = 1.0
    gae_lambda: float = 0.95
    entropy: float = 0.01
    value_coef: float = 0.5
    hidden: int = 64
    reward_scale: float = 10.0
    max_grad_norm: float = 1.0
    p_elite: float = 0.9  # an episode starts from one of the best networks found so far with this probability
    elite: int = 8
    episode_len: int = 4  # 0: the search's episode length
    normalize_advantages: bool = False
    ppo_epochs: int = 4  # ppo: passes over each batch of episodes
    clip: float = 0.2  # ppo: the ratio pi/pi_old is clipped to [1 - clip, 1 + clip]
    pretrain_epochs: int = 0  # behaviour cloning on the corpus's recorded edits first (a2c_pre: 5)
    pretrain_lr: float = 3e-3
    restart_after: int = 0  # proposals in a row of networks already scored before the policy restarts (0: never)

    @staticmethod
    def from_params(params: dict[str, object]) -> RLConfig:
        known = RLConfig.__dataclass_fields__
        base = RLConfig()
        return RLConfig(**{k: _as(getattr(base, k), v) for k, v in params.items() if k in known})


def _as(default: object, v: object) -> object:
    if isinstance(default, bool):
        return v if isinstance(v, bool) else str(v).lower() in ("1", "true", "yes")
    return type(default)(v)  # type: ignore[call-arg]


def advantages(rewards: torch.Tensor, values: torch.Tensor, *, gamma: float, lam: float) -> torch.Tensor:
    """GAE over (T, B) rewards and values V(s_0..s_{T-1}); V(s_T) = 0 (the episode ends). lam = 0 gives the paper's
    one-step advantage r_t + gamma V(s_{t+1}) - V(s_t)."""
    t_len = rewards.shape[0]
    nxt = torch.cat([values[1:], torch.zeros_like(values[:1])], dim=0)
    delta = rewards + gamma * nxt - values
    adv = torch.zeros_like(rewards)
    run = torch.zeros_like(rewards[0])
    for t in reversed(range(t_len)):
        run = delta[t] + gamma * lam * run
        adv[t] = run
    return adv


class _Controller:
    """Shared rollout machinery: B environments stepping through one policy."""

    def __init__(self, ctx: StrategyContext) -> None:
        self.ctx = ctx
        self.cfg = RLConfig.from_params(ctx.params)
        torch.manual_seed(ctx.seed)
        self.gen = torch.Generator().manual_seed(ctx.seed)
        self.moves: Moves = ctx.moves
        self.policy = Policy(self.moves.vocab, hidden=self.cfg.hidden)
        self.opt = torch.optim.Adam(self.policy.parameters(), lr=self.cfg.lr)
        self.encoder = Encoder(max_entries=100_000)
        ev = ctx.evaluator.known(ctx.start)
        self.start_r = ev.reward if ev else 0.0
        self.rng = np.random.default_rng(ctx.seed)
        self._parsed: dict[str, Network] = {}
        self._reset()
        self.t = 0
        self.episode_len = self.cfg.episode_len or ctx.episode_len
        self.steps: list[PolicyStep] = []
        self.inputs: list[tuple[Any, ...]] = []  # each step's policy inputs (PPO replays them)
        self.rewards: list[np.ndarray] = []
        self.updates = 0
        self.pending: list[Network] = []
        self.pretrained: dict[str, float] | None = None
        if self.cfg.pretrain_epochs > 0 and ctx.demos:
            self.pretrained = pretrain(self.policy, self.moves, self.encoder, ctx.demos, seed=ctx.seed,
                                       epochs=self.cfg.pretrain_epochs, lr=self.cfg.pretrain_lr)
        # a policy collapsed onto networks it has scored restarts from here (its state after pretraining)
        self._start_state = ({k: v.detach().clone() for k, v in self.policy.state_dict().items()}
                             if self.cfg.restart_after > 0 else None)
        self._seen_queries, self._idle, self.restarts, self._restart_due = ctx.evaluator.queries, 0, 0, False

    def _step(self) -> PolicyStep:
        tries = [self.moves.trie(s) for s in self.states]
        if any(t is None for t in tries):  # pragma: no cover - insert of a dropout is legal below the depth limit
            raise RuntimeError("a state has no legal move")
        batch = self.encoder.networks(self.states)
        progress = torch.full((len(self.states),), self.t / self.episode_len)
        inputs = (torch.from_numpy(batch.tokens), torch.from_numpy(batch.lengths), progress, tries)
        self.inputs.append(inputs)
        return self.policy(*inputs, generator=self.gen)  # type: ignore[arg-type]

    def ask(self, n: int) -> list[Network]:
        step = self._step()
        self.steps.append(step)
        self.pending = [self.moves.child(s, m) for s, m in zip(self.states, step.moves, strict=True)]
        return list(self.pending)

    def tell(self, nets: list[Network], rewards: np.ndarray) -> None:
        if len(rewards) < len(self.pending):
            return  # the budget ran out mid-step: the search is over
        self._watch_collapse(len(nets))
        self.rewards.append((rewards - self.state_r) * self.cfg.reward_scale)
        self.states, self.state_r = list(nets), np.asarray(rewards, dtype=np.float64)
        self.t += 1
        if self.t >= self.episode_len:
            self._update()
            self._reset()
            self.t = 0
            self.steps, self.rewards, self.inputs = [], [], []
            self._restart_if_due()

    def _watch_collapse(self, n: int) -> None:
        """Count proposals in a row that cost no query (networks already scored); past ``restart_after`` the policy
        and its optimiser restart from their initial state, so the search leaves the trajectories it collapsed on
        (the stall rule of ``controller.search.run_one`` would otherwise end the run with queries unspent). The
        restart waits for the episode's update (the episode's graph holds the parameters)."""
        q = self.ctx.evaluator.queries
        self._idle = 0 if q > self._seen_queries else self._idle + n
        self._seen_queries = q
        if self._start_state is not None and self._idle >= self.cfg.restart_after:
            self._restart_due = True

    def _restart_if_due(self) -> None:
        if self._restart_due and self._start_state is not None:
            self.policy.load_state_dict(self._start_state)
            self.opt = torch.optim.Adam(self.policy.parameters(), lr=self.cfg.lr)
            self._idle, self._restart_due = 0, False
            self.restarts += 1

    def _reset(self) -> None:
        """Episode starts: the seed network, or (with p_elite) one of the best found so far - the controller keeps
        adapting the networks it has already improved, as the paper's controller adapts an existing network."""
        hist = self.ctx.evaluator.history
        elite = sorted(hist, key=lambda e: -e.reward)[: self.cfg.elite] if self.cfg.p_elite > 0 else []
        self.states, rs = [], []
        for _ in range(self.cfg.envs):
            if elite and self.rng.random() < self.cfg.p_elite:
                e = elite[int(self.rng.integers(len(elite)))]
                net = self._parsed.get(e.arch_json)
                if net is None:
                    net = self._parsed[e.arch_json] = Network.from_json(e.arch_json)
                self.states.append(net)
                rs.append(e.reward)
            else:
                self.states.append(self.ctx.start)
                rs.append(self.start_r)
        self.state_r = np.asarray(rs, dtype=np.float64)

    def _update(self) -> None:
        raise NotImplementedError

    def _apply(self, loss: torch.Tensor) -> None:
        self.opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.policy.parameters(), self.cfg.max_grad_norm)
        self.opt.step()
        self.updates += 1


@STRATEGIES.register("a2c")
class A2C(_Controller):
    """The paper's advantage actor-critic controller."""

    def _update(self) -> None:
        r = torch.as_tensor(np.stack(self.rewards), dtype=torch.float32)  # (T, B)
        v = torch.stack([s.value for s in self.steps])
        logp = torch.stack([s.log_prob for s in self.steps])
        ent = torch.stack([s.entropy for s in self.steps])
        adv = advantages(r, v.detach(), gamma=self.cfg.gamma, lam=self.cfg.gae_lambda)
        target = adv + v.detach()
        if self.cfg.normalize_advantages and adv.numel() > 1:
            adv = (adv - adv.mean()) / (adv.std() + 1e-8)
        policy_loss = -(logp * adv).mean()
        value_loss = ((target - v) ** 2).mean()
        self._apply(policy_loss + self.cfg.value_coef * value_loss - self.cfg.entropy * ent.mean())


# Picked on the MNIST-1D reference (frozen gbdt, linear reward, seeds 0-9, budgets 200 and 2000) among 5, 20 or 50
# pretraining epochs, entropy 0.01 or 0.03, 32 environments, p_elite 0.7, restarts after 200 or 500 idle proposals;
# checked on seeds 10-19 (results/search/mnist1d_ref/README.md).
PRETRAINED_DEFAULTS = {"pretrain_epochs": 5, "restart_after": 500}


@STRATEGIES.register("a2c_pre")
class A2CPretrained(A2C):
    """The paper's A2C whose policy first imitates the corpus's recorded edits that raised the measured reward
    (``controller.pretrain``; issue 13 item 3), and restarts from that state when it has proposed only networks
    already scored for ``restart_after`` proposals in a row. Without recorded edits it is A2C with restarts."""

    wants_demos = True

    def __init__(self, ctx: StrategyContext) -> None:
        ctx.params = {**PRETRAINED_DEFAULTS, **ctx.params}
        super().__init__(ctx)


@STRATEGIES.register("ppo")
class PPO(_Controller):
    """A2C's actor-critic with PPO's clipped surrogate (Schulman et al. 2017): each batch of episodes is reused for
    ``ppo_epochs`` updates, the moves taken replayed through the policy (``forced`` head paths) for their new
    log-probabilities; advantages (GAE on the values at sampling time) are normalised; the value loss is the
    squared error to the sampled return estimate (issue 13 item 3, a variant of the paper's A2C)."""

    def _update(self) -> None:
        r = torch.as_tensor(np.stack(self.rewards), dtype=torch.float32)  # (T, B)
        old_logp = torch.stack([s.log_prob for s in self.steps]).detach()
        v_old = torch.stack([s.value for s in self.steps]).detach()
        adv = advantages(r, v_old, gamma=self.cfg.gamma, lam=self.cfg.gae_lambda)
        target = adv + v_old
        if adv.numel() > 1:
            adv = (adv - adv.mean()) / (adv.std() + 1e-8)
        lo, hi = 1.0 - self.cfg.clip, 1.0 + self.cfg.clip
        for epoch in range(self.cfg.ppo_epochs):
            if epoch == 0:  # the sampling pass's graph is the first replay: same parameters, same log-probs
                steps = self.steps
            else:
                steps = [self.policy(*inp, forced=s.paths) for inp, s in zip(self.inputs, self.steps, strict=True)]
            logp = torch.stack([s.log_prob for s in steps])
            v = torch.stack([s.value for s in steps])
            ent = torch.stack([s.entropy for s in steps])
            ratio = torch.exp(logp - old_logp)
            policy_loss = -torch.min(ratio * adv, ratio.clamp(lo, hi) * adv).mean()
            value_loss = ((target - v) ** 2).mean()
            self._apply(policy_loss + self.cfg.value_coef * value_loss - self.cfg.entropy * ent.mean())


@STRATEGIES.register("reinforce")
class Reinforce(_Controller):
    """EAS-style REINFORCE: episode return minus a moving-average baseline, times the summed log-probabilities."""

    def __init__(self, ctx: StrategyContext) -> None:
        super().__init__(ctx)
        self.baseline: float | None = None
        self.decay = float(ctx.params.get("baseline_decay", 0.9))

    def _update(self) -> None:
        ret = np.stack(self.rewards).sum(0)  # (B,) = R(s_T) - R(s_0), scaled
        mean = float(ret.mean())
        self.baseline = mean if self.baseline is None else self.decay * self.baseline + (1 - self.decay) * mean
        adv = torch.as_tensor(ret - self.baseline, dtype=torch.float32)
        logp = torch.stack([s.log_prob for s in self.steps]).sum(0)
        ent = torch.stack([s.entropy for s in self.steps]).mean()
        self._apply(-(logp * adv).mean() - self.cfg.entropy * ent)

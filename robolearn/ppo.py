"""Proximal Policy Optimization with an asymmetric actor-critic (CleanRL-style, one file).

The actor sees only the ``policy`` observation view (what the robot can estimate); the
critic sees only the ``critic`` view (exact state plus privileged information). Both
views have their own running mean/std normalizer; the actor's is exported with it.

One iteration: a rollout of ``rollout_steps`` steps of all envs at once, values of the
whole rollout in batched critic calls (blocks of 2048 rows), GAE, then ``epochs`` x
``minibatches`` clipped-objective updates on the rollout, normalized once. Optionally a
mirror-symmetry loss ties the actor to the env's symmetries (``ppo.symmetry_coef``; Yu,
Turk & Liu 2018).

Time limits are not failures: where an episode is *truncated* the trainer adds
``gamma * V(final critic observation)`` to the last reward and cuts the GAE recursion
there, exactly as if the episode continued with the value the critic predicts.
*Terminated* episodes (crash, leaving the arena) get no bootstrap.

References: Schulman et al. 2017 (PPO), Schulman et al. 2016 (GAE), Huang et al. 2022
("The 37 implementation details of PPO"), Pinto et al. 2018 (asymmetric actor-critic),
Rudin et al. 2022 (KL-adaptive learning rate, massively parallel PPO).
"""

from __future__ import annotations

import math
import time
from typing import Any, Callable, cast

import numpy as np
import torch
from torch import nn

from .buffers import RolloutBuffer
from .config import NetworkConfig, PPOConfig
from .errors import TrainingDiverged, check_finite
from .networks import PolicySpec, mlp, spec_from_actor
from .normalizer import RunningNorm


# ----------------------------------------------------------------------------- math
def compute_gae(rewards: torch.Tensor, values: torch.Tensor, dones: torch.Tensor,
                gamma: float, lam: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalized advantage estimation over a (T, N) rollout.

    ``values`` is (T+1, N): ``values[t]`` = V(s_t), ``values[T]`` = V of the observation
    after the last step. ``dones[t]`` = 1 if the episode ended at step t (the next
    observation is the first of a new episode); truncation bootstraps are already in
    ``rewards``. Returns (advantages, returns), both (T, N).
    """
    T = rewards.shape[0]
    adv = torch.zeros_like(rewards)
    last = torch.zeros_like(rewards[0])
    for t in range(T - 1, -1, -1):
        nonterminal = 1.0 - dones[t]
        delta = rewards[t] + gamma * values[t + 1] * nonterminal - values[t]
        last = delta + gamma * lam * nonterminal * last
        adv[t] = last
    return adv, adv + values[:-1]


def episode_abs_advantage(adv: torch.Tensor, dones: torch.Tensor, carry_sum: torch.Tensor,
                          carry_len: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Mean |advantage| of every episode that ended in a (T, N) rollout, without a loop over envs.

    The steps of env n from just after its previous done (or the rollout start) up to and
    including a done at step t belong to the episode that ended at t; an episode that
    started in an earlier rollout adds ``carry_sum`` / ``carry_len`` (its |A| sum and step
    count so far), which are updated in place for the episodes still running. Returns
    (t, env, mean |A|) of the finished episodes in row-major (t, env) order, the order in
    which the env reports them. The per-episode signal of DUMP / SEC (teachers/bandits.py).
    """
    T = adv.shape[0]
    a = adv.abs()
    cs = a.cumsum(0)
    done = dones > 0.5
    steps = torch.arange(T, device=adv.device).unsqueeze(1).expand_as(adv)
    last = torch.where(done, steps, torch.full_like(steps, -1)).cummax(0).values  # latest done <= t
    prev = torch.cat([torch.full_like(last[:1], -1), last[:-1]])  # latest done < t
    t_idx, n_idx = torch.nonzero(done, as_tuple=True)
    p = prev[t_idx, n_idx]
    fresh = p < 0  # the episode began before this rollout
    total = cs[t_idx, n_idx] - torch.where(fresh, torch.zeros_like(a[0, 0]), cs[p.clamp(min=0), n_idx])
    total = total + torch.where(fresh, carry_sum[n_idx], torch.zeros_like(total))
    count = (t_idx - p).to(a.dtype) + torch.where(fresh, carry_len[n_idx], torch.zeros_like(total))
    end = last[-1]
    running = end < 0  # no episode ended in this rollout: keep accumulating
    envs = torch.arange(a.shape[1], device=adv.device)
    tail = cs[-1] - torch.where(running, torch.zeros_like(cs[-1]), cs[end.clamp(min=0), envs])
    carry_sum.copy_(torch.where(running, carry_sum + tail, tail))
    carry_len.copy_(torch.where(running, carry_len + T, (T - 1 - end).to(a.dtype)))
    return t_idx, n_idx, total / count.clamp(min=1)


def bootstrap_truncated(rewards: torch.Tensor, t_idx: torch.Tensor, env_idx: torch.Tensor,
                        final_values: torch.Tensor, gamma: float) -> None:
    """In place: ``rewards[t, env] += gamma * V(final obs)`` for truncated transitions."""
    rewards.index_put_((t_idx, env_idx), gamma * final_values, accumulate=True)


# ----------------------------------------------------------------------------- model
class ActorCritic(nn.Module):
    """Gaussian actor on the policy view; value critic on the critic view."""

    def __init__(self, policy_dim: int, critic_dim: int, act_dim: int, net: NetworkConfig,
                 init_std: float, init_action: float = 0.0, normalize_values: bool = True):
        super().__init__()
        self.activation = net.actor_activation
        self.policy_norm = RunningNorm(policy_dim, clip=net.obs_clip)
        # The critic view holds each episode's randomization values, constant until a
        # curriculum (ADR, assist annealing) widens them: with the default eps 1e-8 such a
        # feature gets 1/std = 1e4, and the first widened value hits the clip, long before
        # the running variance catches up. A floor of 0.1 on the std keeps it informative
        # (hover with ADR, seed 0: randomized-eval survival 87.1 % -> 92.6 %, position
        # error 0.091 -> 0.050 m; BENCHMARKS.md). The actor's normalizer is unchanged.
        self.critic_norm = RunningNorm(critic_dim, clip=net.obs_clip, eps=1e-2)
        self.actor = mlp(policy_dim, net.actor_hidden, act_dim, net.actor_activation, out_gain=0.01)
        with torch.no_grad():
            cast(nn.Linear, self.actor[-1]).bias.fill_(init_action)
        self.log_std = nn.Parameter(torch.full((act_dim,), math.log(init_std)))
        self.critic = mlp(critic_dim, net.critic_hidden, 1, net.critic_activation, out_gain=1.0)
        self.normalize_values = normalize_values
        self.value_norm = RunningNorm(1, clip=1e9, eps=1e-8)

    # actor
    def action_mean(self, obs_policy: torch.Tensor) -> torch.Tensor:
        mean: torch.Tensor = self.actor(self.policy_norm(obs_policy))
        return mean

    # critic, in return units and in the units the critic regresses
    def value_raw(self, obs_critic: torch.Tensor) -> torch.Tensor:
        v: torch.Tensor = self.critic(self.critic_norm(obs_critic))
        return v.squeeze(-1)

    def denormalize(self, v: torch.Tensor) -> torch.Tensor:
        if not self.normalize_values:
            return v
        return v * self.value_norm._inv_std32.reciprocal() + self.value_norm._mean32

    def normalize(self, v: torch.Tensor) -> torch.Tensor:
        if not self.normalize_values:
            return v
        return (v - self.value_norm._mean32) * self.value_norm._inv_std32

    def value(self, obs_critic: torch.Tensor) -> torch.Tensor:
        return self.denormalize(self.value_raw(obs_critic))

    def export(self) -> PolicySpec:
        return spec_from_actor(self.policy_norm, self.actor, self.activation)


def gaussian_logprob(actions: torch.Tensor, mean: torch.Tensor, log_std: torch.Tensor) -> torch.Tensor:
    return (-0.5 * ((actions - mean) * torch.exp(-log_std)).square() - log_std
            - 0.5 * math.log(2 * math.pi)).sum(-1)


def symmetry_images(obs: torch.Tensor, symmetries: list[tuple[torch.Tensor, ...]]
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Row ``r`` of (B, D) observations mapped by symmetry ``r mod k`` (round-robin over the
    ``k`` symmetries), with that symmetry's action index and sign per row: (B, D), (B, A), (B, A)."""
    k = len(symmetries)
    act_dim = len(symmetries[0][2])
    img = torch.empty_like(obs)
    a_idx = torch.empty((obs.shape[0], act_dim), dtype=torch.long, device=obs.device)
    a_sign = torch.empty((obs.shape[0], act_dim), dtype=obs.dtype, device=obs.device)
    for j, (o_idx, o_sign, ai, asg) in enumerate(symmetries):
        img[j::k] = obs[j::k].index_select(1, o_idx) * o_sign
        a_idx[j::k] = ai
        a_sign[j::k] = asg
    return img, a_idx, a_sign


# ----------------------------------------------------------------------------- algorithm
class PPO:
    """PPO on a vector env with ``{"policy", "critic"}`` observations.

    ``iterate()`` runs one rollout and one update and returns scalar statistics;
    finished episodes are passed to ``on_episodes(info_episode, mask)`` as they happen.
    """

    def __init__(self, env: Any, cfg: PPOConfig, net: NetworkConfig, device: str | torch.device = "cpu",
                 seed: int = 0, init_action: float = 0.0,
                 on_episodes: Callable[[dict[str, Any], Any], None] | None = None,
                 total_env_steps: int | None = None,
                 symmetries: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] | None = None):
        self.env, self.cfg, self.device = env, cfg, torch.device(device)
        self.total_env_steps = total_env_steps  # the budget the step-size anneal runs over (None: no anneal)
        self.num_envs = env.num_envs
        self.policy_dim = env.single_observation_space["policy"].shape[0]
        self.critic_dim = env.single_observation_space["critic"].shape[0]
        self.act_dim = env.single_action_space.shape[0]
        self.act_low = float(env.single_action_space.low.min())
        self.act_high = float(env.single_action_space.high.max())
        torch.manual_seed(seed)
        self.model = ActorCritic(self.policy_dim, self.critic_dim, self.act_dim, net, cfg.init_std,
                                 init_action, cfg.normalize_values).to(self.device)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=cfg.lr, eps=1e-5, fused=True)
        self.lr = cfg.lr
        self.step_scale = 1.0  # the step-size anneal's factor for the coming update
        self._params = list(self.model.parameters())
        # (obs index, obs sign, action index, action sign) per symmetry of the env, for the mirror loss
        self._sym = [tuple(torch.as_tensor(x, device=self.device) for x in sym) for sym in (symmetries or [])]
        if cfg.symmetry_coef > 0 and not self._sym:
            raise ValueError("ppo.symmetry_coef > 0 needs the env's symmetries (PPO(symmetries=...))")
        self.buf = RolloutBuffer(cfg.rollout_steps, self.num_envs, self.policy_dim, self.critic_dim,
                                 self.act_dim, self.device)
        self.gen = torch.Generator(device=self.device).manual_seed(seed)
        self.on_episodes = on_episodes
        self.env_steps = 0
        self.iteration = 0
        self.timers = {"sim": 0.0, "inference": 0.0, "update": 0.0}
        # True: updates fit the critic only (the actor and its std stay): a critic warm-up for
        # an actor that did not come from this critic (a distilled student, robolearn/distill.py)
        self.freeze_actor = False
        # False: the actor's normalizer stays as it is (a distilled student: its weights were
        # fitted to these statistics, and shifting them changes the actor outside PPO's KL control)
        self.update_policy_norm = True
        # Kickstarting (Schmitt et al. 2018): while ``kick_coef`` > 0 the actor's loss adds
        # kick_coef * |mean(obs) - teacher(critic obs)|^2 over each minibatch, with the teacher
        # (a module on the first ``teacher.obs_dim`` entries of the critic view) held fixed.
        self.teacher: nn.Module | None = None
        self.kick_coef = 0.0
        self._obs: dict[str, torch.Tensor] | None = None
        # |GAE advantage| per finished episode (for curricula): running sums of the current episodes
        self._abs_adv_sum = torch.zeros(self.num_envs, device=self.device)
        self._abs_adv_len = torch.zeros(self.num_envs, device=self.device)
        # steps since each env's episode began (the smoothness losses' gate), and per rollout row
        self._ep_step = torch.zeros(self.num_envs, device=self.device)
        self._rollout_ep_step = torch.zeros(cfg.rollout_steps, self.num_envs, device=self.device)
        self.last_episode_abs_advantage: tuple[np.ndarray, np.ndarray] | None = None

    # ------------------------------------------------------------------ env I/O
    def _to_torch(self, x: Any) -> torch.Tensor:
        if isinstance(x, torch.Tensor):
            return x
        if hasattr(x, "__cuda_array_interface__"):
            return torch.as_tensor(x, device=self.device)
        return torch.from_numpy(np.asarray(x)).to(self.device, non_blocking=True)

    def reset(self, seed: int | None = None) -> None:
        obs, _ = self.env.reset(seed=seed)
        self._abs_adv_sum.zero_()
        self._abs_adv_len.zero_()
        self._ep_step.zero_()
        self._obs = {k: self._to_torch(v).clone() for k, v in obs.items()}
        if self.model.policy_norm.count.item() == 0:  # start the statistics from the reset state
            self.model.policy_norm.update(self._obs["policy"])
            self.model.critic_norm.update(self._obs["critic"])

    # ------------------------------------------------------------------ rollout
    @torch.inference_mode()
    def collect(self) -> None:
        if self._obs is None:
            self.reset()
        assert self._obs is not None  # set by reset()
        cfg, buf, model, tm = self.cfg, self.buf, self.model, self.timers
        buf.clear_truncations()
        buf.obs_critic[0].copy_(self._obs["critic"])
        obs_p = self._obs["policy"]
        std = torch.exp(model.log_std)
        for t in range(cfg.rollout_steps):
            t0 = time.perf_counter()
            buf.obs_policy[t].copy_(obs_p)
            mean = model.action_mean(obs_p)
            noise = torch.randn(mean.shape, generator=self.gen, device=self.device)
            act = mean + std * noise
            buf.actions[t] = act
            buf.logprobs[t] = gaussian_logprob(act, mean, model.log_std)
            act_clamped = act.clamp(self.act_low, self.act_high)
            act_env: torch.Tensor | np.ndarray = act_clamped if self.device.type == "cuda" else act_clamped.numpy()
            t1 = time.perf_counter()
            obs, rew, term, trunc, info = self.env.step(act_env)
            t2 = time.perf_counter()
            obs_p = self._to_torch(obs["policy"])
            buf.obs_critic[t + 1].copy_(self._to_torch(obs["critic"]))
            buf.rewards[t].copy_(self._to_torch(rew))
            term_t, trunc_t = self._to_torch(term), self._to_torch(trunc)
            buf.dones[t].copy_(term_t | trunc_t)
            if "final_obs" in info:
                if trunc.any():
                    ids = torch.nonzero(trunc_t).squeeze(-1)
                    fin = self._to_torch(info["final_obs"]["critic"])[ids].clone()
                    buf.add_truncations(t, ids, fin)
                if self.on_episodes is not None and "episode" in info:
                    self.on_episodes(info["episode"], info["_episode"])
            tm["inference"] += t1 - t0 + time.perf_counter() - t2
            tm["sim"] += t2 - t1
        self._obs = {"policy": obs_p.clone(), "critic": buf.obs_critic[cfg.rollout_steps].clone()}
        self.env_steps += cfg.rollout_steps * self.num_envs
        for t in range(cfg.rollout_steps):
            self._rollout_ep_step[t] = self._ep_step
            self._ep_step = (self._ep_step + 1) * (1 - buf.dones[t])

        t0 = time.perf_counter()
        T, N = cfg.rollout_steps, self.num_envs
        # In blocks of 2048 rows: a block's activations stay in the core's cache, which made
        # this ~35 % faster (median) on a 2-core EPYC than one (T+1) N-row call (the same numbers).
        values = [model.value(x) for x in buf.obs_critic.reshape((T + 1) * N, -1).split(2048)]
        buf.values.copy_(torch.cat(values).reshape(T + 1, N))
        trunc = buf.truncations()
        if trunc is not None:
            t_idx, env_idx, fin_obs = trunc
            bootstrap_truncated(buf.rewards, t_idx, env_idx, model.value(fin_obs), cfg.gamma)
        adv, ret = compute_gae(buf.rewards, buf.values, buf.dones, cfg.gamma, cfg.gae_lambda)
        buf.advantages.copy_(adv)
        buf.returns.copy_(ret)
        _, env_ids, abs_adv = episode_abs_advantage(adv, buf.dones, self._abs_adv_sum, self._abs_adv_len)
        self.last_episode_abs_advantage = (env_ids.cpu().numpy(), abs_adv.cpu().numpy().astype(np.float64))
        tm["inference"] += time.perf_counter() - t0

    # ------------------------------------------------------------------ update
    def update(self) -> dict[str, float]:
        t_start = time.perf_counter()
        cfg, buf, model = self.cfg, self.buf, self.model
        T, N = cfg.rollout_steps, self.num_envs
        B = T * N
        obs_p = buf.obs_policy.reshape(B, -1)
        obs_c = buf.obs_critic[:T].reshape(B, -1)
        actions = buf.actions.reshape(B, -1)
        old_logp = buf.logprobs.reshape(B)
        adv = buf.advantages.reshape(B)
        returns = buf.returns.reshape(B)
        old_values = buf.values[:T].reshape(B)
        if cfg.normalize_values:
            model.value_norm.update(returns.unsqueeze(-1))
        ret_n = model.normalize(returns)
        old_v_n = model.normalize(old_values)
        mb = B // cfg.minibatches
        stats = {"loss/policy": 0.0, "loss/value": 0.0, "loss/entropy": 0.0, "kl": 0.0, "clip_frac": 0.0}
        if cfg.symmetry_coef > 0:
            stats["loss/symmetry"] = 0.0
        smooth_t, smooth_s = cfg.smoothness_coef > 0, cfg.smoothness_spatial_coef > 0
        if smooth_t:
            stats["loss/smooth_temporal"] = 0.0
        if smooth_s:
            stats["loss/smooth_spatial"] = 0.0
        n_smooth = max(1, round(mb * cfg.smoothness_fraction)) if smooth_t or smooth_s else 0
        n_updates = 0
        target_kl = cfg.target_kl * self.step_scale  # the adaptive rate's target, annealed
        # The normalizers are fixed during the update: normalize the rollout once, not once
        # per epoch (the same numbers, row by row, as normalizing each minibatch).
        with torch.no_grad():
            obs_p_n, obs_c_n = model.policy_norm(obs_p), model.critic_norm(obs_c)
        # index_select, not x[idx]: the same rows, gathered ~4x faster on the CPU (BENCHMARKS.md)
        flat = {"obs_p": obs_p_n, "obs_c": obs_c_n, "actions": actions, "old_logp": old_logp, "adv": adv,
                "ret_n": ret_n, "old_v_n": old_v_n}
        # The smoothness losses' row weights, once per update: 1 for rows at least
        # smoothness_after_steps into their episode. Row i = t N + n of the rollout is followed
        # in its episode by row i + N unless the episode ended at step t (row i + N is then the
        # next episode's first state) or t is the rollout's last step (its successor is in the
        # next rollout): those rows weigh 0 in the temporal term.
        smooth_w = (self._rollout_ep_step.reshape(B) >= cfg.smoothness_after_steps).to(obs_p_n.dtype)
        next_w = smooth_w * (buf.dones.reshape(B) == 0)
        next_w[B - N:] = 0
        kick = self.teacher is not None and self.kick_coef > 0 and not self.freeze_actor
        if kick:
            assert self.teacher is not None
            with torch.no_grad():
                flat["kick"] = torch.cat([self.teacher(x[:, :self.teacher.obs_dim])
                                          for x in obs_c.split(4096)])
            stats["loss/kickstart"] = 0.0
        sym_flat: dict[str, torch.Tensor] = {}  # the mirror loss's images, once per update
        n_sym = 0  # rows of each minibatch the mirror loss uses
        if cfg.symmetry_coef > 0:
            sym_flat = dict(zip(("img", "a_idx", "a_sign"), symmetry_images(obs_p, self._sym)))
            n_sym = max(1, round(mb * cfg.symmetry_fraction))
        for epoch in range(cfg.epochs):
            perm = torch.randperm(B, generator=self.gen, device=self.device)
            for k in range(cfg.minibatches):
                idx = perm[k * mb:(k + 1) * mb]
                b = {name: x.index_select(0, idx) for name, x in flat.items()}
                if n_sym:  # one actor call for the minibatch and the images of its first n_sym rows
                    s_b = {name: x.index_select(0, idx[:n_sym]) for name, x in sym_flat.items()}
                    both = model.actor(torch.cat([b["obs_p"], model.policy_norm(s_b["img"])]))
                    mean = both[:mb]
                    mapped = both[mb:].gather(1, s_b["a_idx"]) * s_b["a_sign"]
                    sym_loss = (mapped - mean[:n_sym]).square().mean()
                else:
                    mean = model.actor(b["obs_p"])
                log_std = model.log_std
                logp = gaussian_logprob(b["actions"], mean, log_std)
                log_ratio = logp - b["old_logp"]
                ratio = torch.exp(log_ratio)
                a = b["adv"]
                if cfg.normalize_advantages:
                    a = (a - a.mean()) / (a.std() + 1e-8)
                pg_loss = torch.max(-a * ratio, -a * ratio.clamp(1 - cfg.clip_coef, 1 + cfg.clip_coef)).mean()
                v = model.critic(b["obs_c"]).squeeze(-1)
                if cfg.clip_value:
                    v_clip = b["old_v_n"] + (v - b["old_v_n"]).clamp(-cfg.value_clip_coef, cfg.value_clip_coef)
                    v_loss = 0.5 * torch.max((v - b["ret_n"]).square(), (v_clip - b["ret_n"]).square()).mean()
                else:
                    v_loss = 0.5 * (v - b["ret_n"]).square().mean()
                entropy = (log_std + 0.5 * math.log(2 * math.pi * math.e)).sum()
                loss = pg_loss + cfg.vf_coef * v_loss - cfg.ent_coef * entropy
                if n_smooth and not self.freeze_actor:
                    smooth_loss = self._smoothness_loss(model, mean[:n_smooth], b["obs_p"][:n_smooth], obs_p_n,
                                                        idx[:n_smooth], N, smooth_w, next_w, stats)
                    loss = loss + smooth_loss
                if kick:
                    kick_loss = (mean.clamp(self.act_low, self.act_high) - b["kick"]).square().mean()
                    loss = loss + self.kick_coef * kick_loss
                    stats["loss/kickstart"] += kick_loss.item()
                if self.freeze_actor:  # Adam's moments of the actor stay zero: no actor step at all
                    loss = cfg.vf_coef * v_loss
                elif n_sym:
                    loss = loss + cfg.symmetry_coef * sym_loss
                    stats["loss/symmetry"] += sym_loss.item()
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                grad_norm = nn.utils.clip_grad_norm_(self._params, cfg.max_grad_norm, foreach=True)
                # Before the step: a non-finite loss or gradient would poison every weight.
                if not math.isfinite(loss.item()):
                    raise TrainingDiverged(f"non-finite loss (epoch {epoch + 1}, minibatch {k + 1})", self.iteration + 1)
                if not math.isfinite(grad_norm.item()):
                    raise TrainingDiverged(f"non-finite gradient (epoch {epoch + 1}, minibatch {k + 1})",
                                           self.iteration + 1)
                self.optimizer.step()
                with torch.no_grad():
                    # KL(old || new) of the diagonal Gaussians on this minibatch (old mean from
                    # the rollout is not stored; the log-ratio estimator k3 is unbiased).
                    kl = ((ratio - 1) - log_ratio).mean().item()
                    stats["kl"] += kl
                    stats["clip_frac"] += ((ratio - 1).abs() > cfg.clip_coef).float().mean().item()
                    stats["loss/policy"] += pg_loss.item()
                    stats["loss/value"] += v_loss.item()
                    stats["loss/entropy"] += entropy.item()
                n_updates += 1
                if cfg.lr_schedule == "adaptive" and not self.freeze_actor:
                    if kl > 2.0 * target_kl:
                        self._set_lr(max(cfg.lr_min, self.lr / 1.5))
                    elif kl < 0.5 * target_kl:
                        self._set_lr(min(cfg.lr_max, self.lr * 1.5))
        # the next rollout sees the statistics of this one
        if self.update_policy_norm:
            model.policy_norm.update(obs_p)
        model.critic_norm.update(obs_c)
        check_finite(list(model.parameters()) + list(model.buffers()), "weights or normalizer statistics",
                     self.iteration + 1)
        out = {k: v / n_updates for k, v in stats.items()}
        out["lr"] = self.lr
        out["step_scale"] = self.step_scale
        out["action_std"] = float(torch.exp(model.log_std.detach()).mean())
        out["value_mean"] = float(old_values.mean())
        self.timers["update"] += time.perf_counter() - t_start
        return out

    def _smoothness_loss(self, model: "ActorCritic", mean: torch.Tensor, x: torch.Tensor, obs_n: torch.Tensor,
                         rows: torch.Tensor, stride: int, w: torch.Tensor, next_w: torch.Tensor,
                         stats: dict[str, float]) -> torch.Tensor:
        """CAPS (Mysore et al. 2021) on the rollout rows ``rows`` (n,): the weighted sum of the
        temporal term, mean_i |mu(s_i) - mu(s_i')| with s_i' = row i + ``stride`` of the normalized
        rollout ``obs_n`` (B, obs_dim), weighted by ``next_w`` (B,), and the spatial term,
        mean_i |mu(s_i) - mu(s_i + e_i)|, e_i ~ N(0, std^2) in the normalized observation, weighted
        by ``w`` (B,). ``x`` (n, obs_dim) is s_i and ``mean`` (n, act_dim) mu(s_i), already there
        for PPO's loss. Only the successors of these rows are gathered, not the minibatch's.

        L2 norms, not squared (as CAPS): a chattering command is penalized in proportion to its
        size, so small residual chatter keeps a gradient that a squared term would flatten."""
        cfg = self.cfg
        total = mean.new_zeros(())
        if cfg.smoothness_coef > 0:
            wt = next_w.index_select(0, rows)
            nxt = obs_n.index_select(0, (rows + stride).clamp(max=obs_n.shape[0] - 1))
            diff = (model.actor(nxt) - mean).norm(dim=-1)
            term = (diff * wt).sum() / wt.sum().clamp(min=1.0)
            total = total + cfg.smoothness_coef * term
            stats["loss/smooth_temporal"] += term.item()
        if cfg.smoothness_spatial_coef > 0:
            noise = torch.randn(x.shape, generator=self.gen, device=self.device) * cfg.smoothness_spatial_std
            ws = w.index_select(0, rows)
            term = ((model.actor(x + noise) - mean).norm(dim=-1) * ws).sum() / ws.sum().clamp(min=1.0)
            total = total + cfg.smoothness_spatial_coef * term
            stats["loss/smooth_spatial"] += term.item()
        return total

    def _set_lr(self, lr: float) -> None:
        self.lr = lr
        for g in self.optimizer.param_groups:
            g["lr"] = lr

    def anneal_scale(self) -> float:
        """The step-size factor at the current env step: 1 until ``anneal_start`` x the budget,
        then linear down to ``anneal_factor`` at the end of it."""
        start, total = self.cfg.anneal_start, self.total_env_steps
        if total is None or start >= 1.0:
            return 1.0
        p = min(self.env_steps / total, 1.0)
        if p <= start:
            return 1.0
        return 1.0 + (self.cfg.anneal_factor - 1.0) * (p - start) / (1.0 - start)

    def iterate(self) -> dict[str, float]:
        # The anneal is set by the progress at the start of the iteration. Under a fixed
        # schedule it scales the learning rate itself.
        self.step_scale = self.anneal_scale()
        if self.cfg.lr_schedule == "fixed":
            self._set_lr(self.cfg.lr * self.step_scale)
        self.collect()
        stats = self.update()
        self.iteration += 1
        return stats

    # ------------------------------------------------------------------ deployment / state
    @torch.inference_mode()
    def act(self, obs_policy: torch.Tensor) -> torch.Tensor:
        return self.model.action_mean(obs_policy).clamp(self.act_low, self.act_high)

    def export_policy(self) -> PolicySpec:
        """The deterministic actor in the policy format (written once, at the end of a run)."""
        return self.model.export()

    def state_dict(self) -> dict:
        return {
            "algo": "ppo",
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "lr": self.lr,
            "env_steps": self.env_steps,
            "iteration": self.iteration,
            "generator": self.gen.get_state(),
            "timers": dict(self.timers),
            # where the next rollout starts: with the env's own state (train.py) a resumed run
            # continues exactly as the uninterrupted one
            "obs": {k: v.cpu().clone() for k, v in self._obs.items()} if self._obs is not None else {},
            "abs_adv_carry": [self._abs_adv_sum.cpu().clone(), self._abs_adv_len.cpu().clone()],
            "episode_step": self._ep_step.cpu().clone(),
        }

    def load_state_dict(self, d: dict) -> None:
        self.model.load_state_dict(d["model"])
        self.optimizer.load_state_dict(d["optimizer"])
        self.lr = float(d["lr"])
        self.env_steps = int(d["env_steps"])
        self.iteration = int(d["iteration"])
        self.gen.set_state(d["generator"])
        self.timers.update(d.get("timers", {}))
        if d.get("obs"):
            self._obs = {k: v.to(self.device).clone() for k, v in d["obs"].items()}
            self._abs_adv_sum.copy_(d["abs_adv_carry"][0])
            self._abs_adv_len.copy_(d["abs_adv_carry"][1])
            if "episode_step" in d:  # absent in checkpoints written before the smoothness losses
                self._ep_step.copy_(d["episode_step"])

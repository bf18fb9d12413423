"""TD3 with asymmetric critics (CleanRL-style, one file).

Twin Q-networks on the privileged ``critic`` view and the action; a deterministic tanh
actor on the ``policy`` view. Target networks follow by Polyak averaging, the actor and
targets update every ``policy_delay`` critic steps, and target actions are smoothed with
clipped noise (Fujimoto, van Hoof & Meger, 2018). Transitions come from all envs of the
vector env at once; truncated episodes bootstrap from their final observation (stored
as the transition's next observation), terminated ones do not.
"""

from __future__ import annotations

import copy
import math
import time
from typing import Any, Callable, cast

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .buffers import ReplayBuffer
from .config import NetworkConfig, TD3Config
from .errors import TrainingDiverged, check_finite
from .networks import PolicySpec, mlp, spec_from_actor
from .normalizer import RunningNorm


@torch.no_grad()
def polyak_update(target: nn.Module, source: nn.Module, tau: float) -> None:
    """``target <- (1 - tau) * target + tau * source`` for every parameter."""
    for tp, sp in zip(target.parameters(), source.parameters()):
        tp.lerp_(sp, tau)


class QNetwork(nn.Module):
    def __init__(self, critic_dim: int, act_dim: int, net: NetworkConfig):
        super().__init__()
        self.q = mlp(critic_dim + act_dim, net.critic_hidden, 1, net.critic_activation)

    def forward(self, obs_c: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        q: torch.Tensor = self.q(torch.cat([obs_c, act], -1))
        return q.squeeze(-1)


class TD3:
    def __init__(self, env: Any, cfg: TD3Config, net: NetworkConfig, device: str | torch.device = "cpu",
                 seed: int = 0, init_action: float = 0.0,
                 on_episodes: Callable[[dict[str, Any], Any], None] | None = None):
        self.env, self.cfg, self.device = env, cfg, torch.device(device)
        self.num_envs = env.num_envs
        self.policy_dim = env.single_observation_space["policy"].shape[0]
        self.critic_dim = env.single_observation_space["critic"].shape[0]
        self.act_dim = env.single_action_space.shape[0]
        torch.manual_seed(seed)
        self.activation = net.actor_activation
        self.policy_norm = RunningNorm(self.policy_dim, clip=net.obs_clip).to(self.device)
        self.critic_norm = RunningNorm(self.critic_dim, clip=net.obs_clip).to(self.device)
        self.actor = mlp(self.policy_dim, net.actor_hidden, self.act_dim, net.actor_activation, out_gain=0.01).to(self.device)
        with torch.no_grad():
            cast(nn.Linear, self.actor[-1]).bias.fill_(math.atanh(max(min(init_action, 0.999), -0.999)))
        self.q1 = QNetwork(self.critic_dim, self.act_dim, net).to(self.device)
        self.q2 = QNetwork(self.critic_dim, self.act_dim, net).to(self.device)
        self.actor_target = copy.deepcopy(self.actor)
        self.q1_target, self.q2_target = copy.deepcopy(self.q1), copy.deepcopy(self.q2)
        self.actor_opt = torch.optim.Adam(self.actor.parameters(), lr=cfg.actor_lr)
        self.critic_opt = torch.optim.Adam(list(self.q1.parameters()) + list(self.q2.parameters()), lr=cfg.critic_lr)
        self.buffer = ReplayBuffer(cfg.buffer_size, self.policy_dim, self.critic_dim, self.act_dim, self.device)
        self.gen = torch.Generator(device=self.device).manual_seed(seed)
        self.on_episodes = on_episodes
        self.env_steps = 0
        self.iteration = 0
        self.grad_steps = 0
        self._update_credit = 0.0
        self.timers = {"sim": 0.0, "inference": 0.0, "update": 0.0}
        self._obs: dict[str, torch.Tensor] | None = None
        self.steps_per_iteration = 16  # vector-env steps between driver callbacks

    def _to_torch(self, x: Any) -> torch.Tensor:
        if isinstance(x, torch.Tensor):
            return x
        if hasattr(x, "__cuda_array_interface__"):
            return torch.as_tensor(x, device=self.device)
        return torch.from_numpy(np.asarray(x)).to(self.device)

    def reset(self, seed: int | None = None) -> None:
        obs, _ = self.env.reset(seed=seed)
        self._obs = {k: self._to_torch(v).clone() for k, v in obs.items()}
        if self.policy_norm.count.item() == 0:
            self.policy_norm.update(self._obs["policy"])
            self.critic_norm.update(self._obs["critic"])

    def pi(self, obs_p: torch.Tensor, target: bool = False) -> torch.Tensor:
        net = self.actor_target if target else self.actor
        return torch.tanh(net(self.policy_norm(obs_p)))

    @torch.inference_mode()
    def act(self, obs_policy: torch.Tensor) -> torch.Tensor:
        return self.pi(obs_policy)

    def step_env(self) -> None:
        t0 = time.perf_counter()
        assert self._obs is not None, "reset() first"
        obs_p, obs_c = self._obs["policy"], self._obs["critic"]
        with torch.no_grad():
            if self.buffer.size < self.cfg.learning_starts:
                act = torch.rand(self.num_envs, self.act_dim, generator=self.gen, device=self.device) * 2 - 1
            else:
                noise = torch.randn(self.num_envs, self.act_dim, generator=self.gen, device=self.device)
                act = (self.pi(obs_p) + self.cfg.exploration_noise * noise).clamp(-1, 1)
        act_env = act if self.device.type == "cuda" else act.numpy()
        t1 = time.perf_counter()
        obs, rew, term, trunc, info = self.env.step(act_env)
        t2 = time.perf_counter()
        next_p = self._to_torch(obs["policy"]).clone()
        next_c = self._to_torch(obs["critic"]).clone()
        # The transition's next observation is the episode's final one where it ended.
        real_p, real_c = next_p.clone(), next_c.clone()
        if "final_obs" in info:
            done = self._to_torch(info["_final_obs"])
            real_p[done] = self._to_torch(info["final_obs"]["policy"])[done]
            real_c[done] = self._to_torch(info["final_obs"]["critic"])[done]
            if self.on_episodes is not None and "episode" in info:
                self.on_episodes(info["episode"], info["_episode"])
        self.buffer.add(obs_p, obs_c, act, self._to_torch(rew), real_p, real_c, self._to_torch(term).float())
        self.policy_norm.update(next_p)
        self.critic_norm.update(next_c)
        self._obs = {"policy": next_p, "critic": next_c}
        self.env_steps += self.num_envs
        self.timers["sim"] += t2 - t1
        self.timers["inference"] += t1 - t0 + time.perf_counter() - t2

    def train_step(self) -> dict[str, float]:
        cfg = self.cfg
        o_p, o_c, a, r, n_p, n_c, term = self.buffer.sample(cfg.batch_size, self.gen)
        with torch.no_grad():
            noise = (torch.randn(a.shape, generator=self.gen, device=self.device) * cfg.policy_noise).clamp(
                -cfg.noise_clip, cfg.noise_clip)
            next_a = (self.pi(n_p, target=True) + noise).clamp(-1, 1)
            nc = self.critic_norm(n_c)
            q_next = torch.min(self.q1_target(nc, next_a), self.q2_target(nc, next_a))
            target = r + cfg.gamma * (1.0 - term) * q_next
        c = self.critic_norm(o_c)
        q1, q2 = self.q1(c, a), self.q2(c, a)
        q_loss = F.mse_loss(q1, target) + F.mse_loss(q2, target)
        if not math.isfinite(q_loss.item()):
            raise TrainingDiverged("non-finite critic loss", self.iteration + 1)
        self.critic_opt.zero_grad(set_to_none=True)
        q_loss.backward()
        nn.utils.clip_grad_norm_(list(self.q1.parameters()) + list(self.q2.parameters()), cfg.max_grad_norm)
        self.critic_opt.step()
        out = {"loss/q": q_loss.item(), "q_mean": q1.mean().item()}
        self.grad_steps += 1
        if self.grad_steps % cfg.policy_delay == 0:
            actor_loss = -self.q1(c, self.pi(o_p)).mean()
            if not math.isfinite(actor_loss.item()):
                raise TrainingDiverged("non-finite actor loss", self.iteration + 1)
            self.actor_opt.zero_grad(set_to_none=True)
            actor_loss.backward()
            nn.utils.clip_grad_norm_(self.actor.parameters(), cfg.max_grad_norm)
            self.actor_opt.step()
            polyak_update(self.actor_target, self.actor, cfg.tau)
            polyak_update(self.q1_target, self.q1, cfg.tau)
            polyak_update(self.q2_target, self.q2, cfg.tau)
            out["loss/actor"] = actor_loss.item()
        return out

    def iterate(self) -> dict[str, float]:
        if self._obs is None:
            self.reset()
        stats: dict[str, float] = {}
        n = 0
        for _ in range(self.steps_per_iteration):
            self.step_env()
            if self.buffer.size < max(self.cfg.learning_starts, self.cfg.batch_size):
                continue
            t0 = time.perf_counter()
            self._update_credit += self.cfg.updates_per_step
            while self._update_credit >= 1.0:
                self._update_credit -= 1.0
                for k, v in self.train_step().items():
                    stats[k] = stats.get(k, 0.0) + v
                n += 1
            self.timers["update"] += time.perf_counter() - t0
        if n:
            nets = (self.actor, self.q1, self.q2, self.policy_norm, self.critic_norm)
            check_finite([t for m in nets for t in (*m.parameters(), *m.buffers())],
                         "weights or normalizer statistics", self.iteration + 1)
        self.iteration += 1
        out = {k: v / max(n, 1) for k, v in stats.items()}
        out["grad_steps"] = float(self.grad_steps)
        return out

    def export_policy(self) -> PolicySpec:
        """The deterministic actor in the policy format (written once, at the end of a run)."""
        return spec_from_actor(self.policy_norm, self.actor, self.activation, output_activation="tanh")

    def state_dict(self) -> dict:
        return {
            "algo": "td3",
            "actor": self.actor.state_dict(), "actor_target": self.actor_target.state_dict(),
            "q1": self.q1.state_dict(), "q2": self.q2.state_dict(),
            "q1_target": self.q1_target.state_dict(), "q2_target": self.q2_target.state_dict(),
            "policy_norm": self.policy_norm.state_dict(), "critic_norm": self.critic_norm.state_dict(),
            "actor_opt": self.actor_opt.state_dict(), "critic_opt": self.critic_opt.state_dict(),
            "env_steps": self.env_steps, "iteration": self.iteration, "grad_steps": self.grad_steps,
            "generator": self.gen.get_state(), "timers": dict(self.timers),
        }

    def load_state_dict(self, d: dict) -> None:
        for name in ("actor", "actor_target", "q1", "q2", "q1_target", "q2_target", "policy_norm", "critic_norm"):
            getattr(self, name).load_state_dict(d[name])
        self.actor_opt.load_state_dict(d["actor_opt"])
        self.critic_opt.load_state_dict(d["critic_opt"])
        self.env_steps, self.iteration = int(d["env_steps"]), int(d["iteration"])
        self.grad_steps = int(d["grad_steps"])
        self.gen.set_state(d["generator"])
        self.timers.update(d.get("timers", {}))

"""SPDL: self-paced deep RL.

Klink, Abdulsamad, Belousov & Peters, *Self-Paced Deep Reinforcement Learning* (NeurIPS
2020; code psclklnk/spdl, reused in TeachMyAgent). The context (task) distribution is a
Gaussian ``p_nu`` in the unit-cube task space; every ``update_episodes`` episodes it is
moved to maximize

    mean_i [ p_nu(c_i) / p_old(c_i) * V(c_i) ]  -  alpha * KL(p_nu || mu)
    subject to KL(p_old || p_nu) <= max_kl

where ``c_i`` are the contexts of the episodes since the last update (at most
``max_context_buffer = 1000``), ``V(c_i)`` their returns (the black-box estimate of the
value; TeachMyAgent uses the critic where it has one), and ``mu`` the target
distribution (default: the Gaussian moment-matched to the uniform distribution over the
box). ``alpha`` follows the paper's ``PercentageAlphaFunction``: 0 for the first
``alpha_offset`` updates, then ``min(zeta * max(mean(V), 0) / KL(p_nu || mu), 1e5)``, so
the penalty is a fixed fraction of the expected return.

The distribution moves once per student iteration in the paper (after every policy
update: 2,048 steps, ~20 episodes, in its point-mass runs; every 100k steps in
TeachMyAgent): over a run it takes hundreds of small steps. Hence ``update_episodes =
50`` (one round of the benchmark's 50 envs, 1-2 iterations of the default trainer) and
TeachMyAgent's published settings (``TeacherArgsHandler``): ``max_kl = 0.8``, ``zeta =
0.05``, ``alpha_offset = 0`` and no update during the first two periods
(``sp_update_offset = 2 x sp_update_frequency``, here ``offset_episodes = 100``). With
an update only every 250 episodes the distribution barely left its initial corner of
the synthetic benchmark (12 updates in 3,000 episodes; below random). The paper's own
point-mass values (``MAX_KL = 0.05``, ``ZETA = 1.6``, ``ALPHA_OFFSET = 70`` of 1,000
updates) are for a budget of 1,000 updates.
The Gaussian is diagonal here (mean and log-std per dimension); the step is solved with
scipy's SLSQP instead of the paper's conjugate-gradient trust-region step. Samples are
clipped to the box.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
from scipy.optimize import minimize

from .base import EpisodeOutcomes
from .sampling import PointSamplingTeacher


def kl_diag(m0: np.ndarray, s0: np.ndarray, m1: np.ndarray, s1: np.ndarray) -> float:
    """KL(N(m0, s0^2) || N(m1, s1^2)), diagonal, summed over dimensions."""
    return float(np.sum(np.log(s1 / s0) + (s0 ** 2 + (m0 - m1) ** 2) / (2 * s1 ** 2) - 0.5))


def logpdf_diag(x: np.ndarray, m: np.ndarray, s: np.ndarray) -> np.ndarray:
    lp: np.ndarray = np.sum(-0.5 * ((x - m) / s) ** 2 - np.log(s) - 0.5 * np.log(2 * np.pi), axis=-1)
    return lp


class SPDL(PointSamplingTeacher):
    def __init__(self, space: Mapping[str, tuple[float, float]], num_envs: int, seed: int = 0,
                 init_mean: Sequence[float] | None = None, init_std: float | Sequence[float] = 0.05,
                 target_mean: Sequence[float] | None = None, target_std: float | Sequence[float] | None = None,
                 update_episodes: int = 50, offset_episodes: int = 100, alpha_offset: int = 0, zeta: float = 0.05,
                 max_kl: float = 0.8, std_lower_bound: float = 1e-3, max_context_buffer: int = 1000,
                 reward_bounds: tuple[float, float] | None = None, signal: str = "return"):
        super().__init__(space, num_envs, seed)
        d = self.box.dim
        to_unit = lambda v: self.box.normalize(np.asarray(v, float))  # noqa: E731
        self.mean = to_unit(init_mean) if init_mean is not None else np.full(d, 0.5)
        self.std = np.broadcast_to(np.asarray(init_std, float), (d,)).copy()
        self.t_mean = to_unit(target_mean) if target_mean is not None else np.full(d, 0.5)
        self.t_std = (np.broadcast_to(np.asarray(target_std, float), (d,)).copy() if target_std is not None
                      else np.full(d, 1 / np.sqrt(12)))
        self.update_episodes = int(update_episodes)
        self.offset_episodes = int(offset_episodes)
        self.alpha_offset = int(alpha_offset)
        self.zeta = float(zeta)
        self.max_kl = float(max_kl)
        self.std_lb = float(std_lower_bound)
        self.max_buffer = int(max_context_buffer)
        self.reward_bounds = reward_bounds
        self.signal = signal
        self.contexts: list[list[float]] = []
        self.values: list[float] = []
        self.updates = 0
        self.alpha = 0.0
        self._since_update = 0

    def target_kl(self) -> float:
        return kl_diag(self.mean, self.std, self.t_mean, self.t_std)

    def observe(self, tasks: np.ndarray, returns: np.ndarray, success: np.ndarray,
                outcomes: EpisodeOutcomes) -> None:
        v = success.astype(float) if self.signal == "success" else np.asarray(returns, float)
        if self.reward_bounds is not None and self.signal == "return":
            lo, hi = self.reward_bounds
            v = np.clip((v - lo) / max(hi - lo, 1e-12), 0.0, 1.0)
        self.contexts.extend(self.box.normalize(tasks).tolist())
        self.values.extend(v.tolist())
        self.contexts, self.values = self.contexts[-self.max_buffer:], self.values[-self.max_buffer:]
        self._since_update += len(v)
        if self._since_update >= self.update_episodes and self.episodes + len(v) >= self.offset_episodes:
            self._since_update = 0
            self._step()

    def _step(self) -> None:
        c, v = np.asarray(self.contexts), np.asarray(self.values)
        self.contexts, self.values = [], []
        self.updates += 1
        d = self.box.dim
        m0, s0 = self.mean.copy(), self.std.copy()
        old_lp = logpdf_diag(c, m0, s0)
        kl_t = self.target_kl()
        if self.updates < self.alpha_offset:  # PercentageAlphaFunction: ``iteration < offset``
            self.alpha = 0.0
        else:  # Klink et al. 2020: the KL penalty is a fixed fraction zeta of the expected return
            self.alpha = min(self.zeta * max(float(v.mean()), 0.0) / max(kl_t, 1e-10), 1e5)
        scale = max(float(np.abs(v).mean()), 1e-8)

        def unpack(z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            return z[:d], np.exp(np.clip(z[d:], np.log(self.std_lb), np.log(10.0)))

        def objective(z: np.ndarray) -> float:
            m, s = unpack(z)
            w = np.exp(np.clip(logpdf_diag(c, m, s) - old_lp, -50, 50))
            return -(float(np.mean(w * v)) - self.alpha * kl_diag(m, s, self.t_mean, self.t_std)) / scale

        cons = [{"type": "ineq", "fun": lambda z: self.max_kl - kl_diag(m0, s0, *unpack(z))}]
        z0 = np.concatenate([m0, np.log(s0)])
        res = minimize(objective, z0, method="SLSQP", constraints=cons, options={"maxiter": 100})
        if res.success or np.isfinite(res.fun):
            m, s = unpack(res.x)
            if kl_diag(m0, s0, m, s) <= self.max_kl * 1.05 and np.all(np.isfinite(m)):
                self.mean, self.std = m, s

    def sample(self, n: int) -> np.ndarray:
        u = self.rng.normal(self.mean, self.std, size=(n, self.box.dim))
        return self.box.denormalize(np.clip(u, 0.0, 1.0))

    def metrics(self) -> dict[str, float]:
        m = {"spdl/kl_to_target": self.target_kl(), "spdl/alpha": self.alpha, "spdl/updates": float(self.updates)}
        for n, mu, s in zip(self.box.names, self.box.denormalize(self.mean), self.std * self.box.span):
            m[f"spdl/{n}.mean"], m[f"spdl/{n}.std"] = float(mu), float(s)
        return m

    def state_dict(self) -> dict:
        return {**self.base_state(), "mean": self.mean.tolist(), "std": self.std.tolist(),
                "contexts": self.contexts, "values": self.values, "updates": self.updates, "alpha": self.alpha,
                "since_update": self._since_update}

    def load_state_dict(self, state: dict) -> None:
        if not state:
            return
        self.load_base_state(state)
        self.mean, self.std = np.array(state["mean"], float), np.array(state["std"], float)
        self.contexts = [list(x) for x in state["contexts"]]
        self.values = list(state["values"])
        self.updates, self.alpha = int(state["updates"]), float(state["alpha"])
        self._since_update = int(state.get("since_update", 0))

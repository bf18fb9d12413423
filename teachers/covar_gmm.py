"""Covar-GMM (IGMM): sample where reward covaries with time.

Moulin-Frier, Nguyen & Oudeyer, *Self-organization of early vocal development in infants
and machines: the role of intrinsic motivation* (Frontiers in Psychology, 2014), as
adapted and evaluated by Portelas et al. 2019 and TeachMyAgent (Romac et al. 2021).
Every ``fit_rate = 250`` episodes a GMM (``k = 2..10``, AIC) is fit to the last
``fit_rate`` points ``(task, relative time, return)``; a component is chosen
proportionally to its time-return covariance (learning progress: positive part, or its
absolute value with ``absolute_lp``) and a task is drawn from its task dimensions.
``random_task_ratio = 0.2`` of the tasks are uniform; the first ``fit_rate`` are uniform.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from .base import EpisodeOutcomes
from .alp_gmm import PAPER_KS, fit_best_gmm, gmm_from_state, gmm_to_state
from .sampling import PointSamplingTeacher, proportional_choice


class CovarGMM(PointSamplingTeacher):
    def __init__(self, space: Mapping[str, tuple[float, float]], num_envs: int, seed: int = 0,
                 fit_rate: int = 250, potential_ks: Sequence[int] = PAPER_KS, random_task_ratio: float = 0.2,
                 absolute_lp: bool = False, reward_bounds: tuple[float, float] | None = None, signal: str = "return"):
        super().__init__(space, num_envs, seed)
        if signal not in ("return", "success"):
            raise ValueError(f"Covar-GMM: signal must be 'return' or 'success', got {signal!r}")
        self.seed = int(seed)
        self.fit_rate = int(fit_rate)
        self.ks = tuple(int(k) for k in potential_ks)
        self.random_task_ratio = float(random_task_ratio)
        self.absolute_lp = bool(absolute_lp)
        self.reward_bounds = reward_bounds
        self.signal = signal
        self.rows: list[list[float]] = []  # (task in unit cube, time, return)
        self.gmm: Any = None  # sklearn GaussianMixture once fitted (sklearn is untyped)
        self._since_fit = 0
        self.fits = 0

    def observe(self, tasks: np.ndarray, returns: np.ndarray, success: np.ndarray,
                outcomes: EpisodeOutcomes) -> None:
        r = success.astype(float) if self.signal == "success" else np.asarray(returns, float)
        if self.reward_bounds is not None and self.signal == "return":
            lo, hi = self.reward_bounds
            r = np.clip((r - lo) / max(hi - lo, 1e-12), 0.0, 1.0)
        u = self.box.normalize(tasks)
        t = ((self.episodes + np.arange(len(tasks))) % self.fit_rate) / self.fit_rate
        self.rows.extend(np.concatenate([u, t[:, None], r[:, None]], axis=1).tolist())
        self.rows = self.rows[-self.fit_rate:]
        self._since_fit += len(tasks)
        if self.episodes + len(tasks) >= self.fit_rate and self._since_fit >= self.fit_rate:
            self._since_fit = 0
            x = np.asarray(self.rows)
            if self.signal == "return" and self.reward_bounds is None:  # scale returns to [0, 1]
                span = x[:, -1].max() - x[:, -1].min()
                x[:, -1] = (x[:, -1] - x[:, -1].min()) / max(span, 1e-12)
            self.gmm = fit_best_gmm(x, self.ks, self.seed + self.fits)
            self.fits += 1

    def lp(self) -> np.ndarray:
        c = self.gmm.covariances_[:, -2, -1]
        lp: np.ndarray = np.abs(c) if self.absolute_lp else np.maximum(c, 0.0)
        return lp

    def sample(self, n: int) -> np.ndarray:
        u = self.rng.uniform(size=(n, self.box.dim))
        if self.gmm is not None:
            use = self.rng.random(n) >= self.random_task_ratio
            if use.any():
                comp = proportional_choice(self.rng, self.lp(), int(use.sum()))
                draws = np.array([self.rng.multivariate_normal(self.gmm.means_[c], self.gmm.covariances_[c])
                                  for c in comp])
                u[use] = np.clip(draws[:, :-2], 0.0, 1.0)
        return self.box.denormalize(u)

    def metrics(self) -> dict[str, float]:
        return {"covar_gmm/components": float(0 if self.gmm is None else self.gmm.n_components),
                "covar_gmm/fits": float(self.fits)}

    def state_dict(self) -> dict:
        return {**self.base_state(), "rows": self.rows, "gmm": gmm_to_state(self.gmm),
                "since_fit": self._since_fit, "fits": self.fits}

    def load_state_dict(self, state: dict) -> None:
        if not state:
            return
        self.load_base_state(state)
        self.rows = [list(r) for r in state["rows"]]
        self.gmm = gmm_from_state(state["gmm"])
        self._since_fit = int(state["since_fit"])
        self.fits = int(state["fits"])

"""ALP-GMM: absolute-learning-progress Gaussian mixtures.

Portelas, Colas, Hofmann & Oudeyer, *Teacher algorithms for curriculum learning of Deep
RL in continuously parameterized environments* (CoRL 2019; code: flowersteam/teachDeepRL,
reused in TeachMyAgent). Defaults are the paper's:

* absolute learning progress of a finished episode: ``|r - r_old|`` where ``r_old`` is
  the return of the nearest (Euclidean, unit-cube task space) previously sampled task;
  returns scaled to [0, 1] by ``reward_bounds`` (the paper's ``env_reward_lb/ub``) or,
  if not given, by the min/max seen so far;
* every ``fit_rate = 250`` episodes, fit GMMs with ``k = 2..10`` components (full
  covariance, scikit-learn ``GaussianMixture``) to the last ``fit_rate`` (task, ALP)
  points (the ALP window) and keep the one with the lowest AIC;
* sample a task: with probability ``random_task_ratio = 0.2`` uniformly, otherwise pick
  a component proportionally to its mean ALP and draw the task from it (clipped);
* the first ``fit_rate`` tasks (bootstrap) are uniform.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
from sklearn.mixture import GaussianMixture
from threadpoolctl import threadpool_limits  # a scikit-learn dependency

from .base import EpisodeOutcomes
from .sampling import PointSamplingTeacher, proportional_choice

PAPER_KS = tuple(range(2, 11))  # Portelas et al. 2019: k in 2..10, chosen by AIC


def fit_best_gmm(x: np.ndarray, ks: Sequence[int], seed: int) -> GaussianMixture | None:
    """The AIC-best full-covariance GMM over ``ks`` components (None if too few points).

    BLAS/OpenMP run single-threaded here: the matrices are a few rows wide, and handing
    each tiny triangular solve to a thread pool cost ~3 ms per call on a loaded 2-core
    machine (a 3,000-episode ALP-GMM benchmark run took 122 s, 5 s single-threaded).
    """
    best, best_aic = None, np.inf
    with threadpool_limits(limits=1):
        for k in ks:
            if k > len(x) // 2:
                continue
            g = GaussianMixture(n_components=k, covariance_type="full", random_state=seed, reg_covar=1e-6)
            g.fit(x)
            aic = g.aic(x)
            if aic < best_aic:
                best, best_aic = g, aic
    return best


def gmm_to_state(g: GaussianMixture | None) -> dict | None:
    if g is None:
        return None
    return {"weights": g.weights_.tolist(), "means": g.means_.tolist(), "covariances": g.covariances_.tolist()}


def gmm_from_state(s: dict | None) -> GaussianMixture | None:
    """Enough of a fitted GaussianMixture for sampling (weights, means, covariances)."""
    if not s:
        return None
    g = GaussianMixture(n_components=len(s["weights"]), covariance_type="full")
    g.weights_ = np.array(s["weights"], float)
    g.means_ = np.array(s["means"], float)
    g.covariances_ = np.array(s["covariances"], float)
    return g


class NearestNeighbourALP:
    """ALP of each new (task, return): |return - return of the nearest earlier task|."""

    def __init__(self, dim: int):
        self.tasks = np.zeros((0, dim))
        self.returns = np.zeros(0)

    def add(self, tasks: np.ndarray, returns: np.ndarray) -> np.ndarray:
        n, k = len(self.tasks), len(tasks)
        allt = np.concatenate([self.tasks, tasks])
        allr = np.concatenate([self.returns, returns])
        alp = np.zeros(k)
        if n + k > 1:
            d = ((tasks[:, None, :] - allt[None, :, :]) ** 2).sum(-1)  # (k, n + k)
            d[np.arange(k)[:, None] <= (np.arange(n + k)[None, :] - n)] = np.inf  # only earlier tasks
            j = np.argmin(d, axis=1)
            ok = np.isfinite(d[np.arange(k), j])
            alp[ok] = np.abs(returns[ok] - allr[j[ok]])
        self.tasks, self.returns = allt, allr
        return alp


class ALPGMM(PointSamplingTeacher):
    def __init__(self, space: Mapping[str, tuple[float, float]], num_envs: int, seed: int = 0,
                 fit_rate: int = 250, potential_ks: Sequence[int] = PAPER_KS, random_task_ratio: float = 0.2,
                 reward_bounds: tuple[float, float] | None = None, signal: str = "return"):
        super().__init__(space, num_envs, seed)
        if fit_rate < 2:
            raise ValueError(f"ALP-GMM: fit_rate must be >= 2, got {fit_rate}")
        if signal not in ("return", "success"):
            raise ValueError(f"ALP-GMM: signal must be 'return' or 'success', got {signal!r}")
        self.seed = int(seed)
        self.fit_rate = int(fit_rate)
        self.ks = tuple(int(k) for k in potential_ks)
        self.random_task_ratio = float(random_task_ratio)
        self.reward_bounds = reward_bounds
        self.signal = signal
        self.alp = NearestNeighbourALP(self.box.dim)
        self.window: list[list[float]] = []  # last fit_rate rows of (task in unit cube, ALP)
        self.raw_returns: list[float] = []
        self.gmm: GaussianMixture | None = None
        self._since_fit = 0
        self.fits = 0

    def _scale(self, r: np.ndarray) -> np.ndarray:
        if self.signal == "success":
            return r
        if self.reward_bounds is not None:
            lo, hi = self.reward_bounds
        else:
            seen = np.concatenate([np.asarray(self.raw_returns), r])
            lo, hi = float(seen.min()), float(seen.max())
        return np.clip((r - lo) / max(hi - lo, 1e-12), 0.0, 1.0)

    def observe(self, tasks: np.ndarray, returns: np.ndarray, success: np.ndarray,
                outcomes: EpisodeOutcomes) -> None:
        r = success.astype(float) if self.signal == "success" else returns
        u = self.box.normalize(tasks)
        alps = self.alp.add(u, self._scale(r))
        self.raw_returns.extend(np.asarray(returns, float).tolist())
        rows = np.concatenate([u, alps[:, None]], axis=1)
        self.window.extend(rows.tolist())
        self.window = self.window[-self.fit_rate:]
        self._since_fit += len(tasks)
        if self.episodes + len(tasks) >= self.fit_rate and self._since_fit >= self.fit_rate:
            self._since_fit = 0
            self.gmm = fit_best_gmm(np.asarray(self.window), self.ks, self.seed + self.fits)
            self.fits += 1

    def sample(self, n: int) -> np.ndarray:
        u = self.rng.uniform(size=(n, self.box.dim))
        if self.gmm is not None:
            use = self.rng.random(n) >= self.random_task_ratio
            if use.any():
                comp = proportional_choice(self.rng, self.gmm.means_[:, -1], int(use.sum()))
                draws = np.array([self.rng.multivariate_normal(self.gmm.means_[c], self.gmm.covariances_[c])
                                  for c in comp])
                u[use] = np.clip(draws[:, :-1], 0.0, 1.0)
        return self.box.denormalize(u)

    def metrics(self) -> dict[str, float]:
        w = np.asarray(self.window)
        return {"alp_gmm/components": float(0 if self.gmm is None else self.gmm.n_components),
                "alp_gmm/mean_alp": float(w[:, -1].mean()) if len(w) else 0.0, "alp_gmm/fits": float(self.fits)}

    def state_dict(self) -> dict:
        return {**self.base_state(), "alp_tasks": self.alp.tasks.tolist(), "alp_returns": self.alp.returns.tolist(),
                "window": self.window, "raw_returns": self.raw_returns, "gmm": gmm_to_state(self.gmm),
                "since_fit": self._since_fit, "fits": self.fits}

    def load_state_dict(self, state: dict) -> None:
        if not state:
            return
        self.load_base_state(state)
        self.alp.tasks = np.asarray(state["alp_tasks"], float).reshape(-1, self.box.dim)
        self.alp.returns = np.asarray(state["alp_returns"], float)
        self.window = [list(r) for r in state["window"]]
        self.raw_returns = list(state["raw_returns"])
        self.gmm = gmm_from_state(state["gmm"])
        self._since_fit = int(state["since_fit"])
        self.fits = int(state["fits"])

"""Bandit selection over task groups (families).

A *group* is a named box over the same parameters (e.g. "easy starts", "wide
randomization"). Each env is given one group at a time (its range is set to the group's
box; the env samples inside it). A finished episode is credited to the group its env ran
when it started: ``set_range`` applies at an env's next reset, so the first episode an
env finishes after a proposal still ran its previous group (the bookkeeping of ADR).
Groups may therefore overlap or nest (e.g. narrow and wide randomization). Episodes that
started before the teacher's first proposal (or a resume) go to the first group whose box
contains their parameters. Three published rules choose groups:

* ``dump`` — DUMP (Wang et al. 2025, *Automated Distribution-Level Curriculum Learning
  for RL-based LLM Post-training*): score a group by the mean absolute advantage of its
  recent episodes (a sliding window), add the UCB bonus ``c * sqrt(2 ln N / n_j)``
  (``N`` all episodes, ``n_j`` the group's), and sample groups from a softmax of the
  scores with temperature ``temperature``. Unvisited groups come first.
* ``sec`` — Self-Evolving Curriculum (Chen et al. 2025): a non-stationary bandit whose
  value ``Q_j`` is updated by TD(0), ``Q_j <- alpha * r + (1 - alpha) * Q_j`` with ``r``
  the mean absolute advantage of the group's episodes in the batch, and groups drawn
  from a Boltzmann distribution ``softmax(Q / temperature)``.
* ``filter`` — balanced online difficulty filtering (Bae et al. 2025, *Online
  Difficulty Filtering for Reasoning Oriented RL*): keep groups whose recent success
  rate lies in ``[low, high]`` (intermediate difficulty) and sample uniformly among
  them (and among groups with fewer than ``min_count`` episodes); if none qualifies,
  uniformly among all.

Absolute advantage: ``outcomes.extra["abs_advantage"]`` (the trainer's per-episode mean
|A|) when present; otherwise the Monte-Carlo advantage against the group's running
mean return, ``|R - mean_j(R)|`` (the group baseline of GRPO). Window, bonus weight and
temperatures are configurable; the defaults below are ours (the papers tune them per
task): window 100, c = 1, temperature 0.3 (scores are scaled by their largest value
before the softmax so the temperature is unit-free), alpha = 0.5, band [0.25, 0.75].
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

from .base import EpisodeOutcomes, RangeProposal, Teacher
from .sampling import rng_state, set_rng_state


class GroupBandit(Teacher):
    def __init__(self, groups: Mapping[str, Mapping[str, tuple[float, float]]], num_envs: int, rule: str = "dump",
                 seed: int = 0, window: int = 100, ucb_c: float = 1.0, temperature: float = 0.3,
                 td_alpha: float = 0.5, band: tuple[float, float] = (0.25, 0.75), min_count: int = 10):
        if rule not in ("dump", "sec", "filter"):
            raise ValueError(f"bandit rule must be 'dump', 'sec' or 'filter', got {rule!r}")
        if not groups:
            raise ValueError("bandit: no groups")
        self.group_names = list(groups)
        self.names = list(next(iter(groups.values())))
        for g, box in groups.items():
            if list(box) != self.names:
                raise ValueError(f"bandit: group {g!r} has parameters {list(box)}, expected {self.names}")
        self.lo = np.array([[groups[g][n][0] for n in self.names] for g in self.group_names], float)
        self.hi = np.array([[groups[g][n][1] for n in self.names] for g in self.group_names], float)
        self.task_space = {n: (float(self.lo[:, j].min()), float(self.hi[:, j].max()))
                           for j, n in enumerate(self.names)}
        self.rule, self.num_envs = rule, int(num_envs)
        self.window, self.ucb_c, self.temperature = int(window), float(ucb_c), float(temperature)
        self.td_alpha, self.band, self.min_count = float(td_alpha), tuple(band), int(min_count)
        self.rng = np.random.default_rng(seed)
        G = len(self.group_names)
        self.counts = np.zeros(G, np.int64)
        self.q = np.zeros(G)
        self.mean_return = np.zeros(G)
        self.adv: list[list[float]] = [[] for _ in range(G)]
        self.succ: list[list[float]] = [[] for _ in range(G)]
        self._needs = np.ones(self.num_envs, bool)
        self.assigned = np.full(self.num_envs, -1, np.int64)  # group proposed last, per env
        self.running = np.full(self.num_envs, -1, np.int64)  # group of the running episode (-1: unknown)

    def group_of(self, params: np.ndarray) -> np.ndarray:
        inside = np.all((params[:, None, :] >= self.lo[None] - 1e-9) & (params[:, None, :] <= self.hi[None] + 1e-9), -1)
        return np.where(inside.any(1), inside.argmax(1), -1)

    def credited_groups(self, ids: np.ndarray, params: np.ndarray) -> np.ndarray:
        """The group each finished episode ran (rows in chronological order), and advance the envs."""
        g = np.full(len(ids), -1, np.int64)
        ok = np.flatnonzero((ids >= 0) & (ids < self.num_envs))
        envs, first = np.unique(ids[ok], return_index=True)
        is_first = np.zeros(len(ok), bool)
        is_first[first] = True
        # an env's first episode in the batch started before the last proposal, later ones after it
        g[ok] = np.where(is_first, self.running[ids[ok]], self.assigned[ids[ok]])
        self.running[envs] = self.assigned[envs]
        self._needs[envs] = True
        unknown = g < 0
        g[unknown] = self.group_of(params[unknown])
        return g

    def update(self, outcomes: EpisodeOutcomes) -> None:
        if len(outcomes) == 0:
            return
        pn = list(outcomes.param_names)
        params = np.asarray(outcomes.params, float)[:, [pn.index(n) for n in self.names]]
        g = self.credited_groups(np.asarray(outcomes.env_ids, np.int64), params)
        ret = np.asarray(outcomes.returns, float)
        adv = outcomes.extra.get("abs_advantage")
        for j in range(len(self.group_names)):
            m = g == j
            if not m.any():
                continue
            n_old = self.counts[j]
            if adv is not None:
                a = np.abs(np.asarray(adv, float)[m])
            else:  # Monte-Carlo advantage against the group's running mean return
                base = self.mean_return[j] if n_old > 0 else ret[m].mean()
                a = np.abs(ret[m] - base)
            self.counts[j] += int(m.sum())
            self.mean_return[j] += (ret[m].sum() - m.sum() * self.mean_return[j]) / self.counts[j]
            self.adv[j] = (self.adv[j] + a.tolist())[-self.window:]
            self.succ[j] = (self.succ[j] + np.asarray(outcomes.success, float)[m].tolist())[-self.window:]
            self.q[j] = self.td_alpha * float(a.mean()) + (1 - self.td_alpha) * self.q[j]

    def probabilities(self) -> np.ndarray:
        G = len(self.group_names)
        if self.rule == "filter":
            rate = np.array([np.mean(s) if s else np.nan for s in self.succ])
            keep = (self.counts < self.min_count) | ((rate >= self.band[0]) & (rate <= self.band[1]))
            return keep / keep.sum() if keep.any() else np.full(G, 1.0 / G)
        if self.rule == "dump":
            if np.any(self.counts == 0):
                untried = (self.counts == 0).astype(float)
                probs: np.ndarray = untried / untried.sum()
                return probs
            mean_adv = np.array([np.mean(a) for a in self.adv])
            score = mean_adv + self.ucb_c * np.sqrt(2 * np.log(self.counts.sum()) / self.counts) * (
                mean_adv.max() if mean_adv.max() > 0 else 1.0)
        else:
            score = self.q.copy()
        z = score / max(np.abs(score).max(), 1e-12) / self.temperature
        e = np.exp(z - z.max())
        probs = e / e.sum()
        return probs

    def propose(self, env_steps: int) -> list[RangeProposal]:
        ids = np.flatnonzero(self._needs)
        if len(ids) == 0:
            return []
        self.assigned[ids] = self.rng.choice(len(self.group_names), size=len(ids), p=self.probabilities())
        self._needs[:] = False
        return [RangeProposal(n, self.lo[self.assigned[ids], j], self.hi[self.assigned[ids], j], ids.copy())
                for j, n in enumerate(self.names)]

    def metrics(self) -> dict[str, float]:
        p = self.probabilities()
        return {f"bandit/p.{g}": float(pi) for g, pi in zip(self.group_names, p)}

    def state_dict(self) -> dict:
        return {"counts": self.counts.tolist(), "q": self.q.tolist(), "mean_return": self.mean_return.tolist(),
                "adv": self.adv, "succ": self.succ, "rng": rng_state(self.rng)}

    def load_state_dict(self, state: dict) -> None:
        if not state:
            return
        self.counts = np.array(state["counts"], np.int64)
        self.q = np.array(state["q"], float)
        self.mean_return = np.array(state["mean_return"], float)
        self.adv = [list(a) for a in state["adv"]]
        self.succ = [list(s) for s in state["succ"]]
        set_rng_state(self.rng, state.get("rng"))
        # a resumed env starts from config ranges: reassign everything
        self._needs[:] = True
        self.assigned[:] = -1
        self.running[:] = -1

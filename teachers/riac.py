"""RIAC: Robust Intelligent Adaptive Curiosity.

Baranes & Oudeyer, *R-IAC: Robust Intrinsically Motivated Exploration and Active
Learning* (IEEE TAMD 2009), with the defaults and "minor improvements" of Portelas et
al. 2019 (teachDeepRL; TeachMyAgent's scripts use 150 / 75 / 0.1 for the first three):

* the task space (unit cube) is split recursively into regions; each holds its last
  ``max_region_size = 200`` (task, return) pairs; a leaf holding more is split;
* a split tries ``nb_split_attempts = 50`` random (dimension, threshold) cuts and keeps
  the one maximizing ``|R1| * |R2| * |ALP(R1) - ALP(R2)|``; a cut is valid only if both
  children keep ``>= max_region_size / 20`` points and are ``>= 1/6`` of the initial
  range wide in every dimension; if no cut is valid the oldest quarter of the region's
  points is discarded;
* a region's ALP is ``|mean(first half) - mean(second half)|`` of its last
  ``alp_window = max_region_size`` returns;
* sampling: 70 % pick a region (all regions, not only leaves) proportionally to its ALP
  and draw uniformly in it; 20 % uniform in the whole space; 10 % pick a region by ALP
  and mutate its lowest-return task with Gaussian noise (std 0.1 of the range).
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from .base import EpisodeOutcomes
from .sampling import PointSamplingTeacher, proportional_choice


class _Region:
    def __init__(self, lo: np.ndarray, hi: np.ndarray, parent: int, tasks: list[list[float]] | None = None,
                 rewards: list[float] | None = None):
        self.lo, self.hi, self.parent = lo, hi, parent
        self.tasks: list[list[float]] = tasks or []
        self.rewards: list[float] = rewards or []
        self.children: list[int] = []
        self.alp = 0.0

    def contains(self, x: np.ndarray) -> bool:
        return bool(np.all(x >= self.lo) and np.all(x <= self.hi))


def region_alp(rewards: Sequence[float], window: int) -> float:
    n = min(len(rewards), window)
    if n <= 2:
        return 0.0
    r = np.asarray(rewards[-n:], float)
    half = n // 2
    return float(abs(r[:n - half].mean() - r[n - half:].mean()))


class RIAC(PointSamplingTeacher):
    def __init__(self, space: Mapping[str, tuple[float, float]], num_envs: int, seed: int = 0,
                 max_region_size: int = 200, alp_window: int | None = None, nb_split_attempts: int = 50,
                 min_region_size: float | None = None, min_dims_range_ratio: float = 1 / 6,
                 discard_ratio: float = 1 / 4, reward_bounds: tuple[float, float] | None = None,
                 signal: str = "return"):
        super().__init__(space, num_envs, seed)
        self.maxlen = int(max_region_size)
        self.alp_window = int(alp_window or self.maxlen)
        self.nb_split_attempts = int(nb_split_attempts)
        self.minlen = float(self.maxlen / 20 if min_region_size is None else min_region_size)
        self.min_width = float(min_dims_range_ratio)
        self.discard_ratio = float(discard_ratio)
        self.reward_bounds = reward_bounds
        self.signal = signal
        d = self.box.dim
        self.regions = [_Region(np.zeros(d), np.ones(d), -1)]
        self.splits = 0

    def _add(self, x: np.ndarray, r: float) -> None:
        stack, to_split = [0], None
        while stack:
            i = stack.pop()
            reg = self.regions[i]
            if not reg.contains(x):
                continue
            reg.tasks.append(x.tolist())
            reg.rewards.append(r)
            if len(reg.rewards) > self.maxlen + 1:
                del reg.tasks[0], reg.rewards[0]
            reg.alp = region_alp(reg.rewards, self.alp_window)
            if reg.children:
                stack.extend(reg.children)
            elif len(reg.rewards) > self.maxlen:
                to_split = i
        if to_split is not None:
            self._split(to_split)

    def _split(self, i: int) -> None:
        reg = self.regions[i]
        tasks = np.asarray(reg.tasks)
        rewards = np.asarray(reg.rewards)
        best, best_score = None, -1.0
        for _ in range(self.nb_split_attempts):
            dim = int(self.rng.integers(self.box.dim))
            thr = float(self.rng.uniform(reg.lo[dim], reg.hi[dim]))
            left = tasks[:, dim] <= thr
            n1, n2 = int(left.sum()), int((~left).sum())
            if n1 < self.minlen or n2 < self.minlen:
                continue
            if thr - reg.lo[dim] < self.min_width or reg.hi[dim] - thr < self.min_width:
                continue
            a1 = region_alp(rewards[left].tolist(), self.alp_window)
            a2 = region_alp(rewards[~left].tolist(), self.alp_window)
            score = n1 * n2 * abs(a1 - a2)
            if score > best_score:
                best, best_score = (dim, thr, left), score
        if best is None:
            k = int(self.maxlen * self.discard_ratio)
            del reg.tasks[:k], reg.rewards[:k]
            reg.alp = region_alp(reg.rewards, self.alp_window)
            return
        dim, thr, left = best
        for mask, (lo, hi) in ((left, (reg.lo.copy(), reg.hi.copy())), (~left, (reg.lo.copy(), reg.hi.copy()))):
            if mask is left:
                hi[dim] = thr
            else:
                lo[dim] = np.nextafter(thr, np.inf)
            child = _Region(lo, hi, i, tasks[mask].tolist(), rewards[mask].tolist())
            child.alp = region_alp(child.rewards, self.alp_window)
            reg.children.append(len(self.regions))
            self.regions.append(child)
        self.splits += 1

    def observe(self, tasks: np.ndarray, returns: np.ndarray, success: np.ndarray,
                outcomes: EpisodeOutcomes) -> None:
        r = success.astype(float) if self.signal == "success" else np.asarray(returns, float)
        if self.reward_bounds is not None and self.signal == "return":
            lo, hi = self.reward_bounds
            r = np.clip((r - lo) / max(hi - lo, 1e-12), 0.0, 1.0)
        for x, ri in zip(self.box.normalize(tasks), r):
            self._add(np.clip(x, 0.0, 1.0), float(ri))

    def sample(self, n: int) -> np.ndarray:
        alps = np.array([reg.alp for reg in self.regions])
        u = self.rng.uniform(size=(n, self.box.dim))  # 20 %: random
        mode = self.rng.random(n)
        for k in np.flatnonzero(mode >= 0.2):
            reg = self.regions[int(proportional_choice(self.rng, alps, 1)[0])]
            if mode[k] >= 0.3 or not reg.rewards:  # 70 %: uniform in an ALP-chosen region
                u[k] = self.rng.uniform(reg.lo, reg.hi)
            else:  # 10 %: mutate the region's lowest-return task
                worst = np.asarray(reg.tasks[int(np.argmin(reg.rewards))])
                u[k] = np.clip(self.rng.normal(worst, 0.1), reg.lo, reg.hi)
        return self.box.denormalize(u)

    def metrics(self) -> dict[str, float]:
        return {"riac/regions": float(len(self.regions)), "riac/max_alp": float(max(r.alp for r in self.regions))}

    def state_dict(self) -> dict:
        regs = [{"lo": r.lo.tolist(), "hi": r.hi.tolist(), "parent": r.parent, "tasks": r.tasks,
                 "rewards": r.rewards, "children": r.children, "alp": r.alp} for r in self.regions]
        return {**self.base_state(), "regions": regs, "splits": self.splits}

    def load_state_dict(self, state: dict) -> None:
        if not state:
            return
        self.load_base_state(state)
        self.regions = []
        for s in state["regions"]:
            r = _Region(np.array(s["lo"]), np.array(s["hi"]), int(s["parent"]), [list(t) for t in s["tasks"]],
                        list(s["rewards"]))
            r.children, r.alp = list(s["children"]), float(s["alp"])
            self.regions.append(r)
        self.splits = int(state["splits"])

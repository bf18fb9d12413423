"""Open-loop schedules: parameter ranges as a function of the trainer's env steps.

* :class:`RewardWeightSchedule` — the reward curriculum of *Learning to Fly in Seconds*
  (Eschmann, Albani & Loianno, 2024; RLtools): every ``interval`` env steps multiply
  selected reward weights by a factor, up to a cap. RLtools: ``reward.action`` x1.4 up to
  0.5 and ``reward.position`` x1.2 up to 40, every 100k steps (their TD3 takes one env
  step per gradient step; a massively parallel PPO takes many more env steps per second,
  so the interval is configurable).
* :class:`LinearSchedule` — move a range linearly from ``start`` to ``end`` between two
  env-step counts (e.g. widen the initial-state distribution, anneal an assist gain).

Both are stateless functions of ``env_steps`` apart from their settings, so resuming a
run reproduces the same ranges; ``state_dict`` stores what was last applied.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, Sequence

from .base import EpisodeOutcomes, RangeProposal, Teacher


@dataclass(frozen=True)
class WeightRule:
    name: str  # parameter, e.g. "reward.action"
    initial: float  # value at env step 0 (the env's range at start)
    factor: float  # multiplied every interval
    cap: float  # never beyond this (a floor when factor < 1)


class RewardWeightSchedule(Teacher):
    """Multiply each weight by its factor every ``interval`` env steps, clamped at its cap."""

    def __init__(self, rules: Sequence[WeightRule], interval: int):
        if interval < 1:
            raise ValueError(f"interval must be >= 1 env step, got {interval}")
        for r in rules:
            if not (r.factor > 0 and math.isfinite(r.factor)):
                raise ValueError(f"{r.name}: factor must be a positive number, got {r.factor}")
        self.rules = list(rules)
        self.interval = int(interval)
        self.task_space = {r.name: (min(r.initial, r.cap), max(r.initial, r.cap)) for r in self.rules}
        self._applied_k = -1

    def value(self, rule: WeightRule, env_steps: int) -> float:
        k = env_steps // self.interval
        v = rule.initial * rule.factor ** min(k, 10_000)
        return min(v, rule.cap) if rule.factor >= 1 else max(v, rule.cap)

    def propose(self, env_steps: int) -> list[RangeProposal]:
        k = env_steps // self.interval
        if k == self._applied_k:
            return []
        self._applied_k = k
        out = []
        for r in self.rules:
            v = self.value(r, env_steps)
            out.append(RangeProposal(r.name, v, v))
        return out

    def metrics(self) -> dict[str, float]:
        steps = max(self._applied_k, 0) * self.interval
        return {r.name: self.value(r, steps) for r in self.rules}

    def state_dict(self) -> dict:
        return {"applied_k": self._applied_k}

    def load_state_dict(self, state: dict) -> None:
        # Re-apply on the next propose() so a resumed env gets the ranges again.
        self._applied_k = -1
        del state


@dataclass(frozen=True)
class LinearItem:
    name: str
    start: tuple[float, float]
    end: tuple[float, float]
    begin: int  # env steps where the ramp starts
    finish: int  # env steps where it reaches ``end``


class LinearSchedule(Teacher):
    """Ranges interpolated linearly in env steps; re-proposed when they move by ``min_change``."""

    def __init__(self, items: Sequence[LinearItem], min_change: float = 1e-3):
        for it in items:
            if it.finish <= it.begin:
                raise ValueError(f"{it.name}: end step {it.finish} must be after begin step {it.begin}")
        self.items = list(items)
        self.min_change = float(min_change)
        self.task_space: Mapping[str, tuple[float, float]] = {
            it.name: (min(it.start[0], it.end[0]), max(it.start[1], it.end[1])) for it in self.items}
        self._last: dict[str, tuple[float, float]] = {}

    @staticmethod
    def fraction(it: LinearItem, env_steps: int) -> float:
        return min(max((env_steps - it.begin) / (it.finish - it.begin), 0.0), 1.0)

    def value(self, it: LinearItem, env_steps: int) -> tuple[float, float]:
        f = self.fraction(it, env_steps)
        return (it.start[0] + f * (it.end[0] - it.start[0]), it.start[1] + f * (it.end[1] - it.start[1]))

    def propose(self, env_steps: int) -> list[RangeProposal]:
        out = []
        for it in self.items:
            lo, hi = self.value(it, env_steps)
            last = self._last.get(it.name)
            span = max(abs(it.end[0] - it.start[0]), abs(it.end[1] - it.start[1]), 1e-12)
            final = self.fraction(it, env_steps) >= 1.0
            if last is None or max(abs(lo - last[0]), abs(hi - last[1])) >= self.min_change * span or (
                    final and last != (lo, hi)):
                self._last[it.name] = (lo, hi)
                out.append(RangeProposal(it.name, lo, hi))
        return out

    def metrics(self) -> dict[str, float]:
        return {f"{k}.high": v[1] for k, v in self._last.items()}

    def state_dict(self) -> dict:
        return {"last": {k: list(v) for k, v in self._last.items()}}

    def load_state_dict(self, state: dict) -> None:
        self._last = {}  # re-propose everything after a resume
        del state


class CombinedTeacher(Teacher):
    """Several teachers over disjoint parameters, proposing together."""

    def __init__(self, teachers: Sequence[Teacher]):
        self.teachers = list(teachers)
        space: dict[str, tuple[float, float]] = {}
        for t in self.teachers:
            overlap = set(space) & set(t.task_space)
            if overlap:
                raise ValueError(f"teachers overlap on {sorted(overlap)}")
            space.update(t.task_space)
        self.task_space = space

    def update(self, outcomes: EpisodeOutcomes) -> None:
        for t in self.teachers:
            t.update(outcomes)

    def propose(self, env_steps: int) -> list[RangeProposal]:
        return [p for t in self.teachers for p in t.propose(env_steps)]

    def metrics(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for t in self.teachers:
            out.update(t.metrics())
        return out

    def state_dict(self) -> dict:
        return {"teachers": [t.state_dict() for t in self.teachers]}

    def load_state_dict(self, state: dict) -> None:
        for t, s in zip(self.teachers, state.get("teachers", [])):
            t.load_state_dict(s)

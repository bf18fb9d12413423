"""Synthetic students with known competence maps, for teacher unit tests and benchmarks.

In the spirit of TeachMyAgent's "skill-specific unit tests" (Romac et al. 2021): the
task space is ``[0, 1]^(2 + n_distractors)``. The first two dimensions ``(u, v)`` are
cut into a ``grid x grid`` map of cells; the others are distractors that change
nothing. Each cell has a competence ``c`` in [0, 1] and a kind:

* ``OPEN``   learnable from the start;
* ``LOCKED`` learnable only once a 4-neighbour cell has competence ``>= unlock_at``
  (a region that becomes learnable after a neighbouring one is mastered);
* ``NEVER``  unlearnable.

An episode on task ``x`` succeeds with probability ``c(cell(x))`` and returns ``c`` plus
a little noise; if the cell is learnable (open or unlocked) the student then improves:
``c += lr * rate * (1 - c)`` there and ``lr * rate * spread * (1 - c)`` in learnable
neighbours (``rate``: a per-cell multiplier of the scenario). A
task is mastered when its cell's competence is ``>= mastery``. The score of a teacher is
the fraction of a fixed held-out set of uniform tasks mastered after a budget of
episodes (TeachMyAgent's metric); unlearnable cells count in the denominator.

:class:`SyntheticVecEnv` mimics the simulator's ``set_range`` contract: per-env ranges,
applied at each env's next reset; every env finishes one episode per ``step``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np

from .base import EpisodeOutcomes, Teacher

OPEN, LOCKED, NEVER = 0, 1, 2


@dataclass
class Scenario:
    name: str
    kinds: np.ndarray  # (grid, grid) of OPEN / LOCKED / NEVER, indexed [iu, iv]
    nominal: np.ndarray  # an easy task (prior knowledge given to ADR and SPDL)
    n_distractors: int = 2
    doc: str = ""
    rates: np.ndarray | None = None  # per-cell learning-rate multipliers (None: all 1)

    @property
    def dim(self) -> int:
        return 2 + self.n_distractors

    @property
    def names(self) -> list[str]:
        return ["task.u", "task.v"] + [f"task.distractor_{i}" for i in range(self.n_distractors)]

    @property
    def space(self) -> dict[str, tuple[float, float]]:
        return {n: (0.0, 1.0) for n in self.names}


def _grid(grid: int) -> tuple[np.ndarray, np.ndarray]:
    c = (np.arange(grid) + 0.5) / grid
    return np.meshgrid(c, c, indexing="ij")


def unlearnable_scenario(grid: int = 10, n_distractors: int = 2) -> Scenario:
    """ALP-GMM's setting: a large unlearnable part (70 %) and distractor dimensions."""
    u, v = _grid(grid)
    kinds = np.where(u < 0.3, OPEN, NEVER)
    nominal = np.array([0.15, 0.5] + [0.5] * n_distractors)
    return Scenario("unlearnable", kinds, nominal, n_distractors,
                    "u < 0.3 learnable from the start (learning rate x0.1 at v = 0 to x0.6 at v = 1), "
                    "the rest (70 %) unlearnable", rates=0.1 + 0.5 * v)


def expanding_scenario(grid: int = 10, n_distractors: int = 2) -> Scenario:
    """ADR's setting: only the nominal corner is easy; the rest unlocks outward, step by step."""
    u, v = _grid(grid)
    kinds = np.where((u < 0.1) & (v < 0.1), OPEN, LOCKED)
    kinds = np.where((u > 0.7) & (v > 0.7), NEVER, kinds)
    nominal = np.array([0.05, 0.05] + [0.5] * n_distractors)
    return Scenario("expanding", kinds, nominal, n_distractors,
                    "the corner cell is easy, the others unlock after a neighbour is mastered; 9 % unlearnable")


SCENARIOS = {"unlearnable": unlearnable_scenario, "expanding": expanding_scenario}


class GridStudent:
    def __init__(self, scenario: Scenario, lr: float = 0.1, spread: float = 0.25, unlock_at: float = 0.7,
                 mastery: float = 0.75, noise: float = 0.02, seed: int = 0):
        self.s = scenario
        self.grid = scenario.kinds.shape[0]
        self.c = np.zeros(scenario.kinds.shape)
        self.rates = np.ones(scenario.kinds.shape) if scenario.rates is None else np.asarray(scenario.rates, float)
        self.unlocked = scenario.kinds == OPEN
        self.lr, self.spread, self.unlock_at, self.mastery, self.noise = lr, spread, unlock_at, mastery, noise
        self.rng = np.random.default_rng(seed)

    def cells(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        g = self.grid
        iu = np.clip((np.asarray(x)[:, 0] * g).astype(int), 0, g - 1)
        iv = np.clip((np.asarray(x)[:, 1] * g).astype(int), 0, g - 1)
        return iu, iv

    def _neighbours(self, i: int, j: int) -> Iterator[tuple[int, int]]:
        for a, b in ((i - 1, j), (i + 1, j), (i, j - 1), (i, j + 1)):
            if 0 <= a < self.grid and 0 <= b < self.grid:
                yield a, b

    def _learnable(self, i: int, j: int) -> bool:
        return self.s.kinds[i, j] != NEVER and bool(self.unlocked[i, j])

    def episodes(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Run (and learn from) one episode per task row; returns (returns, success)."""
        iu, iv = self.cells(x)
        comp = self.c[iu, iv]
        success = self.rng.random(len(comp)) < comp
        returns = comp + self.noise * self.rng.standard_normal(len(comp))
        for i, j in zip(iu, iv):
            if not self._learnable(i, j):
                continue
            self.c[i, j] += self.lr * self.rates[i, j] * (1 - self.c[i, j])
            for a, b in self._neighbours(i, j):
                if self._learnable(a, b):
                    self.c[a, b] += self.lr * self.rates[a, b] * self.spread * (1 - self.c[a, b])
            if self.c[i, j] >= self.unlock_at:
                for a, b in self._neighbours(i, j):
                    if self.s.kinds[a, b] == LOCKED:
                        self.unlocked[a, b] = True
        return returns, success

    def mastered(self, x: np.ndarray) -> np.ndarray:
        iu, iv = self.cells(x)
        m: np.ndarray = self.c[iu, iv] >= self.mastery
        return m


def held_out_tasks(scenario: Scenario, n: int = 1000, seed: int = 12345) -> np.ndarray:
    """The held-out task set: uniform over the whole space, fixed across teachers and seeds."""
    tasks: np.ndarray = np.random.default_rng(seed).uniform(size=(n, scenario.dim))
    return tasks


class SyntheticVecEnv:
    """Per-env parameter ranges applied at each env's next reset, like the simulator's."""

    def __init__(self, scenario: Scenario, num_envs: int, seed: int = 0):
        self.param_names = scenario.names
        self.num_envs = num_envs
        self.lo = np.tile(scenario.nominal, (num_envs, 1)).astype(float)
        self.hi = self.lo.copy()
        self.rng = np.random.default_rng(seed)
        self.params = self._sample(np.arange(num_envs))

    def _sample(self, ids: np.ndarray) -> np.ndarray:
        x: np.ndarray = self.rng.uniform(self.lo[ids], self.hi[ids])
        return x

    def set_range(self, name: str, low: Any, high: Any, env_ids: Any = None) -> None:
        j = self.param_names.index(name)
        ids: slice | np.ndarray = slice(None) if env_ids is None else np.asarray(env_ids, np.int64)
        n = self.num_envs if env_ids is None else len(np.asarray(env_ids))
        lo, hi = np.broadcast_to(np.asarray(low, float), (n,)), np.broadcast_to(np.asarray(high, float), (n,))
        if np.any(hi < lo):
            raise ValueError(f"{name}: high < low")
        self.lo[ids, j], self.hi[ids, j] = lo, hi

    def step(self, student: GridStudent, episodes_done: int) -> EpisodeOutcomes:
        """Every env finishes its episode (its parameters were drawn at its last reset) and resets."""
        ids = np.arange(self.num_envs)
        ret, succ = student.episodes(self.params)
        out = EpisodeOutcomes(returns=ret, success=succ, params=self.params.copy(), param_names=self.param_names,
                              env_ids=ids, env_steps=episodes_done + self.num_envs)
        self.params = self._sample(ids)
        return out


def run_teacher(teacher: Teacher, scenario: Scenario, budget: int, num_envs: int = 50, seed: int = 0,
                student_kwargs: dict | None = None) -> float:
    """Train a fresh student for ``budget`` episodes under ``teacher``; fraction of test tasks mastered."""
    student = GridStudent(scenario, seed=seed + 7919, **(student_kwargs or {}))
    env = SyntheticVecEnv(scenario, num_envs, seed=seed + 104729)
    done = 0
    while done < budget:
        for p in teacher.propose(done):
            if p.name not in teacher.task_space:
                raise RuntimeError(f"teacher proposed {p.name!r} outside its task space")
            env.set_range(p.name, p.low, p.high, p.env_ids)
        out = env.step(student, done)
        done += len(out)
        teacher.update(out)
    return float(student.mastered(held_out_tasks(scenario)).mean())

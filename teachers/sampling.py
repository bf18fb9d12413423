"""Helpers shared by the teachers: a box task space and per-env point sampling.

A *point-sampling* teacher (ALP-GMM, RIAC, Covar-GMM, SPDL) picks one task (a vector of
parameter values) per episode. It hands it to the env as a degenerate range
``low == high`` per env (``RangeProposal`` with per-env arrays and ``env_ids``), which the
env applies at that env's next reset. Every env that finished an episode since the last
``propose`` gets a fresh task, so each proposed task runs for (about) one episode; the
teacher learns from the parameters the episode actually ran with (``EpisodeOutcomes``),
so it never has to match episodes to proposals.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from .base import EpisodeOutcomes, RangeProposal, Teacher


class Box:
    """Named continuous task space ``[low, high]`` per dimension."""

    def __init__(self, space: Mapping[str, tuple[float, float]]):
        if not space:
            raise ValueError("task space is empty")
        self.names = list(space)
        self.low = np.array([float(space[n][0]) for n in self.names])
        self.high = np.array([float(space[n][1]) for n in self.names])
        if not np.all(np.isfinite(self.low)) or not np.all(np.isfinite(self.high)):
            raise ValueError("task space bounds must be finite")
        if np.any(self.high < self.low):
            bad = [n for n, lo, hi in zip(self.names, self.low, self.high) if hi < lo]
            raise ValueError(f"task space: high < low for {bad}")
        self.span = np.where(self.high > self.low, self.high - self.low, 1.0)

    @property
    def dim(self) -> int:
        return len(self.names)

    def as_mapping(self) -> dict[str, tuple[float, float]]:
        return {n: (float(lo), float(hi)) for n, lo, hi in zip(self.names, self.low, self.high)}

    # typed locals: numpy's functions return Any to mypy
    def uniform(self, rng: np.random.Generator, n: int) -> np.ndarray:
        x: np.ndarray = rng.uniform(self.low, self.high, size=(n, self.dim))
        return x

    def clip(self, x: np.ndarray) -> np.ndarray:
        y: np.ndarray = np.clip(x, self.low, self.high)
        return y

    def normalize(self, x: np.ndarray) -> np.ndarray:
        """To the unit cube (what the GMM teachers fit, as in teachDeepRL)."""
        u: np.ndarray = (np.asarray(x, float) - self.low) / self.span
        return u

    def denormalize(self, u: np.ndarray) -> np.ndarray:
        x: np.ndarray = self.low + np.asarray(u, float) * self.span
        return x

    def columns(self, outcomes: EpisodeOutcomes) -> np.ndarray:
        """The (k, dim) task vectors of finished episodes, in this space's column order."""
        names = list(outcomes.param_names)
        missing = [n for n in self.names if n not in names]
        if missing:
            raise KeyError(f"episode outcomes lack parameters {missing}")
        idx = [names.index(n) for n in self.names]
        return np.asarray(outcomes.params, float)[:, idx]


def rng_state(rng: np.random.Generator) -> dict[str, Any]:
    return dict(rng.bit_generator.state)  # typed as a Mapping; a plain dict copy for state_dict()


def set_rng_state(rng: np.random.Generator, state: dict | None) -> None:
    if state:
        rng.bit_generator.state = state


def point_proposals(names: Sequence[str], env_ids: np.ndarray, tasks: np.ndarray) -> list[RangeProposal]:
    """One proposal per parameter: low == high == each env's task value."""
    env_ids = np.asarray(env_ids, np.int64)
    return [RangeProposal(n, tasks[:, j].copy(), tasks[:, j].copy(), env_ids.copy()) for j, n in enumerate(names)]


class PointSamplingTeacher(Teacher):
    """Base for teachers that draw one task per episode.

    Subclasses implement ``sample(n) -> (n, dim)`` and ``observe(tasks, returns, success,
    outcomes)``. ``num_envs`` is the size of the vector env; at the first ``propose`` every
    env gets a task, afterwards only envs that finished an episode.
    """

    def __init__(self, space: Mapping[str, tuple[float, float]], num_envs: int, seed: int = 0):
        if num_envs < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}")
        self.box = Box(space)
        self.task_space = self.box.as_mapping()
        self.num_envs = int(num_envs)
        self.rng = np.random.default_rng(seed)
        self._needs = np.ones(self.num_envs, bool)  # envs waiting for a task
        self.episodes = 0

    # -- subclass hooks
    def sample(self, n: int) -> np.ndarray:
        raise NotImplementedError

    def observe(self, tasks: np.ndarray, returns: np.ndarray, success: np.ndarray,
                outcomes: EpisodeOutcomes) -> None:
        raise NotImplementedError

    # -- Teacher
    def update(self, outcomes: EpisodeOutcomes) -> None:
        if len(outcomes) == 0:
            return
        ids = np.asarray(outcomes.env_ids, np.int64)
        self._needs[ids[(ids >= 0) & (ids < self.num_envs)]] = True
        tasks = self.box.columns(outcomes)
        self.observe(tasks, np.asarray(outcomes.returns, float), np.asarray(outcomes.success, bool), outcomes)
        self.episodes += len(outcomes)

    def propose(self, env_steps: int) -> list[RangeProposal]:
        ids = np.flatnonzero(self._needs)
        if len(ids) == 0:
            return []
        tasks = self.box.clip(self.sample(len(ids)))
        self._needs[:] = False
        return point_proposals(self.box.names, ids, tasks)

    def base_state(self) -> dict:
        return {"rng": rng_state(self.rng), "needs": self._needs.tolist(), "episodes": self.episodes}

    def load_base_state(self, state: dict) -> None:
        set_rng_state(self.rng, state.get("rng"))
        # A resumed trainer's env starts from config ranges: give every env a task again.
        self._needs = np.ones(self.num_envs, bool)
        self.episodes = int(state.get("episodes", 0))


def proportional_choice(rng: np.random.Generator, weights: np.ndarray, n: int) -> np.ndarray:
    """``n`` indices drawn proportionally to non-negative ``weights`` (uniform if all zero)."""
    w = np.clip(np.nan_to_num(np.asarray(weights, float)), 0.0, None)
    if w.sum() <= 0:
        return rng.integers(0, len(w), size=n)
    return rng.choice(len(w), size=n, p=w / w.sum())


class UniformTeacher(PointSamplingTeacher):
    """The random baseline of every teacher benchmark: tasks uniform in the box."""

    def sample(self, n: int) -> np.ndarray:
        return self.box.uniform(self.rng, n)

    def observe(self, tasks: np.ndarray, returns: np.ndarray, success: np.ndarray,
                outcomes: EpisodeOutcomes) -> None:
        pass

    def state_dict(self) -> dict:
        return self.base_state()

    def load_state_dict(self, state: dict) -> None:
        if state:
            self.load_base_state(state)

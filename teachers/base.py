"""The curriculum contract between a trainer and a teacher.

A teacher watches episode outcomes and proposes parameter ranges; the trainer applies
each proposal with ``env.set_range(name, low, high, env_ids)`` (effective at those envs'
next reset). Teachers are plain Python + numpy: no torch, no robolearn imports, so they
can be tested and reused alone.

Trainer side, once per training iteration::

    teacher.update(EpisodeOutcomes(...))       # the episodes that finished
    for p in teacher.propose(env_steps):       # what to change now
        env.set_range(p.name, p.low, p.high, p.env_ids)
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np


@dataclass
class EpisodeOutcomes:
    """Finished episodes, one row each (arrays of length k)."""

    returns: np.ndarray  # (k,) float: undiscounted return
    success: np.ndarray  # (k,) bool: survived to the time limit
    params: np.ndarray  # (k, P) float: parameter values the episode ran with
    param_names: Sequence[str]  # column names of ``params``
    env_ids: np.ndarray  # (k,) int: which env ran it
    env_steps: int = 0  # trainer's total env steps when reported
    extra: dict[str, np.ndarray] = field(default_factory=dict)  # e.g. position_error_m

    def __len__(self) -> int:
        return int(len(self.returns))

    def column(self, name: str) -> np.ndarray:
        return self.params[:, list(self.param_names).index(name)]


@dataclass
class RangeProposal:
    """Set parameter ``name`` to ``[low, high]`` (scalars or per-env arrays) for ``env_ids`` (None: all)."""

    name: str
    low: Any
    high: Any
    env_ids: np.ndarray | None = None


class Teacher(ABC):
    """A curriculum: observes outcomes, proposes parameter ranges.

    ``task_space`` maps each parameter the teacher may change to the (low, high)
    bounds it stays within.
    """

    task_space: Mapping[str, tuple[float, float]]

    def update(self, outcomes: EpisodeOutcomes) -> None:  # noqa: B027 - optional hook
        """Learn from finished episodes (default: ignore them)."""

    @abstractmethod
    def propose(self, env_steps: int) -> list[RangeProposal]:
        """Ranges to apply now, given the trainer's total env steps; [] for no change."""

    def metrics(self) -> dict[str, float]:
        """Scalars describing the curriculum state, for logs and progress bars."""
        return {}

    @abstractmethod
    def state_dict(self) -> dict:
        """Everything needed to resume (plain Python types only)."""

    @abstractmethod
    def load_state_dict(self, state: dict) -> None: ...


class NoTeacher(Teacher):
    """Fixed ranges: never proposes anything."""

    task_space: Mapping[str, tuple[float, float]] = {}

    def propose(self, env_steps: int) -> list[RangeProposal]:
        return []

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass

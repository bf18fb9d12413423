"""An SB3 callback that runs a robolearn curriculum (``teachers/``) during ``learn()``.

The contract is the one robolearn's trainer follows (``teachers/base.py``): finished
episodes go to ``teacher.update(EpisodeOutcomes)``, then ``teacher.propose(env_steps)``
gives ranges that are applied with ``env.set_range`` (effective at each env's next reset).
Here that happens at the end of every SB3 rollout (on-policy: every ``n_steps``;
off-policy: every ``train_freq``), at most once per ``min_interval_steps`` env steps.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback

from teachers.base import EpisodeOutcomes, Teacher

from ..config import RunConfig
from ..curriculum import apply_proposals
from ..logging.run_dir import EpisodeStats
from .vec_env import SB3VecEnv, find_sb3_vec_env


class TeacherCallback(BaseCallback):
    """Feed finished episodes to ``teacher`` and apply its proposals to the training env.

    The training env must be (or wrap, e.g. in ``VecNormalize``) an :class:`SB3VecEnv`.
    Curriculum metrics are logged under ``curriculum/``.
    """

    def __init__(self, teacher: Teacher, min_interval_steps: int = 0, verbose: int = 0):
        super().__init__(verbose)
        self.teacher = teacher
        self.min_interval_steps = int(min_interval_steps)
        self.episodes_reported = 0
        self.proposals_applied = 0
        self._venv: SB3VecEnv | None = None  # found when learn() starts
        self._stats = EpisodeStats([])
        self._last_update = 0

    @classmethod
    def from_config(cls, cfg: RunConfig, **kwargs: Any) -> "TeacherCallback":
        """The teacher a run config selects (``curriculum:`` section), as robolearn train builds it."""
        from ..tasks import task_for

        return cls(task_for(cfg).build_teacher(cfg), **kwargs)

    def _init_callback(self) -> None:
        self._venv = find_sb3_vec_env(self.training_env)
        self._stats = EpisodeStats(self._venv.param_names)
        self._venv.add_episode_listener(self._stats.add)

    def _on_training_start(self) -> None:
        self._apply()

    def _on_step(self) -> bool:
        return True

    def _on_rollout_end(self) -> None:
        if self.num_timesteps - self._last_update < self.min_interval_steps:
            return
        self._last_update = self.num_timesteps
        arrays = self._stats.arrays()
        self._stats.clear()
        if arrays:
            self.teacher.update(_outcomes(arrays, self._stats.param_names, self.num_timesteps))
            self.episodes_reported += len(arrays["return"])
        self._apply()
        for k, v in self.teacher.metrics().items():
            self.logger.record(f"curriculum/{k}", v)

    def _on_training_end(self) -> None:
        if self._venv is not None:
            self._venv.remove_episode_listener(self._stats.add)

    def _apply(self) -> None:
        assert self._venv is not None, "TeacherCallback: learn() has not started"
        self.proposals_applied += apply_proposals(self._venv, self.teacher, self.num_timesteps)


def _outcomes(arrays: dict[str, np.ndarray], param_names: list[str], env_steps: int) -> EpisodeOutcomes:
    """The episodes as the teacher of their family reads them (the arm reports task success,
    the quadrotor survival)."""
    from ..tasks import task_for_episodes

    return task_for_episodes(arrays).outcomes(arrays, param_names, env_steps)

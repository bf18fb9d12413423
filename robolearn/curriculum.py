"""Glue between a teacher (``teachers/``) and a vector env, whatever the family: applying
its proposals, the trainer's per-episode advantage for the bandits, and the linear schedule
built from ``curriculum.linear``."""

from __future__ import annotations

from collections.abc import Container, Sequence
from typing import Any, cast

import numpy as np

from teachers.base import EpisodeOutcomes, Teacher
from teachers.schedule import LinearItem, LinearSchedule

from .errors import ConfigError

Range = tuple[float, float]  # pydantic validates config ranges to 2-tuples; cast() only tells mypy


def linear_schedule(items: Sequence[Any], known: Container[str], what: str = "parameter") -> LinearSchedule:
    """``curriculum.linear`` (LinearScheduleItem configs) as a LinearSchedule, each item's
    parameter one of ``known`` (``what`` names such a parameter in the error)."""
    out = []
    for i, it in enumerate(items):
        if it.param not in known:
            raise ConfigError(f"config: 'curriculum.linear.{i}.param': unknown {what} {it.param!r}")
        if it.end_env_steps <= it.begin_env_steps:
            raise ConfigError(f"config: 'curriculum.linear.{i}': end_env_steps must be > begin_env_steps")
        out.append(LinearItem(it.param, cast(Range, tuple(it.start)), cast(Range, tuple(it.end)),
                              it.begin_env_steps, it.end_env_steps))
    if not out:
        raise ConfigError("config: 'curriculum.linear' must list at least one schedule when teacher is 'linear'")
    return LinearSchedule(out)


def apply_proposals(env: Any, teacher: Teacher, env_steps: int) -> int:
    """Ask the teacher and apply its proposals with env.set_range; returns how many were applied."""
    props = teacher.propose(env_steps)
    for p in props:
        if p.name not in teacher.task_space:
            raise RuntimeError(f"teacher proposed {p.name!r} outside its task space {sorted(teacher.task_space)}")
        env.set_range(p.name, p.low, p.high, p.env_ids)
    return len(props)


def attach_abs_advantage(outcomes: EpisodeOutcomes, per_episode: tuple[np.ndarray, np.ndarray] | None) -> bool:
    """Put the trainer's per-episode mean |advantage| into ``outcomes.extra["abs_advantage"]``.

    ``per_episode`` is PPO's ``last_episode_abs_advantage`` (env ids, values) for the
    episodes of the last rollout, in the order the env reported them; it is attached only
    if those are exactly the episodes in ``outcomes`` (else the bandits fall back to their
    Monte-Carlo advantage). Returns whether it was attached.
    """
    if per_episode is None:
        return False
    ids, values = per_episode
    if len(ids) != len(outcomes) or not np.array_equal(np.asarray(ids), np.asarray(outcomes.env_ids)):
        return False
    outcomes.extra["abs_advantage"] = np.asarray(values, np.float64)
    return True

"""Glue between the config, the teachers (``teachers/``) and a vector env."""

from __future__ import annotations

import numpy as np

from teachers.base import EpisodeOutcomes, NoTeacher, Teacher
from teachers.schedule import LinearItem, LinearSchedule, RewardWeightSchedule, WeightRule

from .config import RunConfig
from .errors import ConfigError


def build_teacher(cfg: RunConfig) -> Teacher:
    c = cfg.curriculum
    initial = cfg.sim_config().initial_ranges()
    if c.teacher == "none":
        return NoTeacher()
    if c.teacher == "reward_schedule":
        rules = []
        for name, (factor, cap) in c.reward_schedule.weights.items():
            if name not in initial:
                raise ConfigError(f"config: 'curriculum.reward_schedule.weights': unknown parameter {name!r}")
            rules.append(WeightRule(name, float(initial[name][1]), float(factor), float(cap)))
        return RewardWeightSchedule(rules, c.reward_schedule.interval_env_steps)
    if c.teacher == "linear":
        items = []
        for i, it in enumerate(c.linear):
            if it.param not in initial:
                raise ConfigError(f"config: 'curriculum.linear.{i}.param': unknown parameter {it.param!r}")
            if it.end_env_steps <= it.begin_env_steps:
                raise ConfigError(f"config: 'curriculum.linear.{i}': end_env_steps must be > begin_env_steps")
            items.append(LinearItem(it.param, tuple(it.start), tuple(it.end), it.begin_env_steps, it.end_env_steps))
        if not items:
            raise ConfigError("config: 'curriculum.linear' must list at least one schedule when teacher is 'linear'")
        return LinearSchedule(items)
    raise ConfigError(f"config: 'curriculum.teacher': unknown teacher {c.teacher!r}")


def apply_proposals(env, teacher: Teacher, env_steps: int) -> int:
    """Ask the teacher and apply its proposals with env.set_range; returns how many were applied."""
    props = teacher.propose(env_steps)
    for p in props:
        if p.name not in teacher.task_space:
            raise RuntimeError(f"teacher proposed {p.name!r} outside its task space {sorted(teacher.task_space)}")
        env.set_range(p.name, p.low, p.high, p.env_ids)
    return len(props)


def outcomes_from_arrays(a: dict[str, np.ndarray], param_names: list[str], env_steps: int) -> EpisodeOutcomes:
    return EpisodeOutcomes(
        returns=a["return"], success=a["survived"] > 0.5, params=a["params"], param_names=param_names,
        env_ids=a["env_ids"], env_steps=env_steps,
        extra={k: a[k] for k in ("length", "position_error_m", "tilt_deg", "yaw_deg") if k in a})

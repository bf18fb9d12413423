"""The arm's curriculum (``curriculum.teacher``) and its finished episodes as a teacher sees them.

Teachers: ``none``, ``linear`` (any ``sims.manipulation`` parameter) or ``privileged``. The
arm has three privilege coefficients (``privileged.force_scale``, ``gravity_scale``,
``table_penetration``); ``curriculum.privileged.param`` is a comma-separated list of globs
over the env's parameter names (``privileged.*``: all three) and each matching coefficient
gets its own ``teachers.privileged.PrivilegedAnnealing`` with the same settings. All of them
see every finished episode and count only those that ran with their current value, so with
one ``initial`` and ``step`` they step down in the same iteration: in effect one coefficient
driving all three, while a config can still anneal a single privilege.
"""

from __future__ import annotations

import fnmatch
from typing import TYPE_CHECKING, Any

import numpy as np

from teachers.base import EpisodeOutcomes, NoTeacher, Teacher
from teachers.privileged import PrivilegedAnnealing
from teachers.schedule import CombinedTeacher

from ...curriculum import linear_schedule
from ...errors import ConfigError

if TYPE_CHECKING:
    from ...config import RunConfig

ARM_TEACHERS = ("none", "linear", "privileged")


def privileged_names() -> list[str]:
    from sims.manipulation.params import PARAMS, PRIVILEGED

    return [p.name for p in PARAMS[PRIVILEGED]]


def build_arm_teacher(cfg: RunConfig) -> Teacher:
    from sims.manipulation.params import PARAMS

    c = cfg.curriculum
    limits = {p.name: p.limits for p in PARAMS}
    if c.teacher not in ARM_TEACHERS:
        raise ConfigError(f"config: 'curriculum.teacher': {c.teacher!r} is not wired for env.name 'arm'; "
                          f"use one of {', '.join(ARM_TEACHERS)}")
    if c.teacher == "none":
        return NoTeacher()
    if c.teacher == "linear":
        return linear_schedule(c.linear, limits, "arm parameter")
    p = c.privileged
    globs = [g.strip() for g in p.param.split(",") if g.strip()]
    names = [n for n in privileged_names() if any(fnmatch.fnmatchcase(n, g) for g in globs)]
    if not names:
        raise ConfigError(f"config: 'curriculum.privileged.param': {p.param!r} matches none of the arm's privilege "
                          f"coefficients ({', '.join(privileged_names())}); e.g. 'privileged.*'")
    teachers = []
    for n in names:
        if not limits[n][0] <= p.initial <= limits[n][1]:
            raise ConfigError(f"config: 'curriculum.privileged.initial': {p.initial} is outside {n}'s "
                              f"limits {limits[n]}")
        teachers.append(PrivilegedAnnealing(n, p.initial, limits[n], p.success_threshold, p.window, p.step,
                                            p.factor, p.min_value))
    return teachers[0] if len(teachers) == 1 else CombinedTeacher(teachers)


def arm_outcomes(a: dict[str, np.ndarray], param_names: list[str], env_steps: int) -> EpisodeOutcomes:
    """Finished arm episodes for a teacher: success = the box reached the goal."""
    return EpisodeOutcomes(returns=a["return"], success=a["success"] > 0.5, params=a["params"],
                           param_names=param_names, env_ids=a["env_ids"], env_steps=env_steps,
                           extra={k: a[k] for k in ("length", "object_goal_distance_m") if k in a})


def build_resets(cfg: RunConfig, env: Any) -> tuple:
    """The arm has no start-state curricula (their switches are refused: ``robolearn.tasks``)."""
    return ()

"""Robot families: one folder each, one :class:`~robolearn.tasks.base.Task` each.

``task_for(cfg)`` picks the family of ``cfg.env.name`` once; the core calls its functions.
Adding a family: a folder ``robolearn/tasks/<name>/`` whose ``__init__`` defines ``TASK``,
a line in ``TASKS`` below, and ``<name>`` in ``env.name``'s choices (robolearn/config.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import ConfigError
from .arm import TASK as ARM
from .base import FinishStage, ResetCurriculum, StageContext, Switch, Task
from .quadrotor import TASK as QUADROTOR

if TYPE_CHECKING:
    from ..config import RunConfig

TASKS: dict[str, Task] = {t.name: t for t in (QUADROTOR, ARM)}


def task_for(cfg: RunConfig) -> Task:
    """The family of ``cfg.env.name``."""
    return TASKS[cfg.env.name]


def check_switches(cfg: RunConfig) -> None:
    """Refuse a config switch of another family that is on (its one-line ConfigError)."""
    own = {s.key for s in task_for(cfg).switches}
    for task in TASKS.values():
        for s in task.switches:
            if s.key not in own and s.on(cfg):
                raise ConfigError(s.why.format(name=repr(cfg.env.name)))


def resume_fixed_keys() -> tuple[str, ...]:
    """Every family's config keys that a resumed run cannot change (registry order)."""
    return tuple(k for t in TASKS.values() for k in t.resume_fixed)


def task_for_episodes(arrays: dict) -> Task:
    """The family whose finished episodes ``arrays`` (EpisodeStats.arrays()) are: the one
    whose success key they hold (for callers that have episodes but no config)."""
    for task in TASKS.values():
        if task.success_key in arrays:
            return task
    raise KeyError(f"episode arrays hold none of the families' success keys "
                   f"({', '.join(t.success_key for t in TASKS.values())}): {sorted(arrays)}")


__all__ = ["TASKS", "Task", "FinishStage", "ResetCurriculum", "StageContext", "Switch", "task_for",
           "check_switches", "resume_fixed_keys", "task_for_episodes"]

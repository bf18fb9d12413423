"""Robot families: one folder each, one :class:`~robolearn.tasks.base.Task` each.

``task_for(cfg)`` picks the family of ``cfg.env.name`` once; the core calls its functions.
A family's ``Task`` is loaded on first use (``robolearn/tasks/<name>/task.py``), so that
importing this package, or a family's config sections, loads neither torch nor a simulator.
Adding a family: a folder ``robolearn/tasks/<name>/`` whose ``task.py`` defines ``TASK`` and
whose ``config.py`` holds its config section, its name in ``FAMILIES``, and in
robolearn/config.py ``<name>`` in ``env.name``'s choices, its section in ``EnvConfig`` and
its two table entries (``ENV_SECTIONS``, ``RANGE_CHECKS``).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, cast

from ..errors import ConfigError
from .base import FinishStage, ResetCurriculum, StageContext, Switch, Task

if TYPE_CHECKING:
    from ..config import RunConfig

FAMILIES = ("quadrotor", "arm")  # env.name values, in the registry's order


def task_named(name: str) -> Task:
    """The family called ``name`` (an ``env.name`` value)."""
    if name not in FAMILIES:
        raise ConfigError(f"config: 'env.name': unknown robot family {name!r}; use one of "
                          f"{', '.join(FAMILIES)}")
    return cast(Task, importlib.import_module(f"{__name__}.{name}.task").TASK)


def all_tasks() -> dict[str, Task]:
    """Every family, by name, in the registry's order."""
    return {name: task_named(name) for name in FAMILIES}


def task_for(cfg: RunConfig) -> Task:
    """The family of ``cfg.env.name``."""
    return task_named(cfg.env.name)


def evaluate(actor: Any, cfg: RunConfig, episodes: int | None = None, seed: int | None = None,
             train_info: dict | None = None) -> tuple[dict, Any]:
    """The fixed-seed evaluation of ``actor`` (obs["policy"] -> actions) in ``cfg``'s family:
    (the eval.json dict, the record its plots are drawn from)."""
    return task_for(cfg).evaluate(actor, cfg, episodes=episodes, seed=seed, train_info=train_info)


def check_switches(cfg: RunConfig) -> None:
    """Refuse a config switch of another family that is on (its one-line ConfigError)."""
    own = {s.key for s in task_for(cfg).switches}
    for task in all_tasks().values():
        for s in task.switches:
            if s.key not in own and s.on(cfg):
                raise ConfigError(s.why.format(name=repr(cfg.env.name)))


def resume_fixed_keys() -> tuple[str, ...]:
    """Every family's config keys that a resumed run cannot change (registry order)."""
    return tuple(k for t in all_tasks().values() for k in t.resume_fixed)


def task_for_episodes(arrays: dict) -> Task:
    """The family whose finished episodes ``arrays`` (EpisodeStats.arrays()) are: the one
    whose success key they hold (for callers that have episodes but no config)."""
    tasks = all_tasks().values()
    for task in tasks:
        if task.success_key in arrays:
            return task
    raise KeyError(f"episode arrays hold none of the families' success keys "
                   f"({', '.join(t.success_key for t in tasks)}): {sorted(arrays)}")


def __getattr__(name: str) -> Any:
    if name == "TASKS":  # every family, loaded on first use
        return all_tasks()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["FAMILIES", "TASKS", "Task", "FinishStage", "ResetCurriculum", "StageContext", "Switch", "task_for",
           "task_named", "all_tasks", "evaluate", "check_switches", "resume_fixed_keys", "task_for_episodes"]

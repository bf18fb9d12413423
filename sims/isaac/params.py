"""Per-env parameters of an Isaac Gym task and how each reaches the simulation.

A parameter is drawn per env at that env's reset and applied *before* the task's
``reset_idx``, through the Isaac Gym property setters (``set_actor_rigid_body_properties``,
``set_actor_rigid_shape_properties``, ``set_actor_dof_properties``) or, for task
parameters, by writing a per-env tensor the task reads in ``reset_idx``.
Scales multiply the value the actor had when the adapter first touched it (its nominal).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

import numpy as np
import torch

from ..param_table import check_bounds
from .task import VecTaskLike

if TYPE_CHECKING:
    from isaacgym import gymapi


@dataclass
class SimHandles:
    """Env and actor handles of a task plus the nominal property values, read lazily."""

    task: VecTaskLike
    envs: list[gymapi.Env]
    actors: list[list[int]]  # actor handles per env
    _nominal: dict[tuple[str, int], list[np.ndarray]] = field(default_factory=dict)

    @classmethod
    def from_task(cls, task: VecTaskLike) -> SimHandles:
        gym, sim = task.gym, task.sim
        n = gym.get_env_count(sim)
        if n != task.num_envs:
            raise ValueError(f"the sim has {n} envs but the task says num_envs={task.num_envs}")
        envs = [gym.get_env(sim, i) for i in range(n)]
        actors = [[gym.get_actor_handle(e, k) for k in range(gym.get_actor_count(e))] for e in envs]
        return cls(task, envs, actors)

    def nominal(self, kind: str, i: int, read: Callable[[gymapi.Env, int], np.ndarray]) -> list[np.ndarray]:
        """``read(env, actor)`` per actor of env ``i``, cached on first use (before any change)."""
        key = (kind, i)
        if key not in self._nominal:
            self._nominal[key] = [np.array(read(self.envs[i], a), dtype=np.float64) for a in self.actors[i]]
        return self._nominal[key]


Apply = Callable[[SimHandles, np.ndarray, np.ndarray], None]


@dataclass(frozen=True)
class IsaacParam:
    """A parameter: its default range, hard limits and ``apply(handles, env_ids, values)``."""

    name: str
    default: tuple[float, float]
    limits: tuple[float, float]
    apply: Apply

    def check(self, low: np.ndarray, high: np.ndarray) -> None:
        """Raise ValueError if [low, high] is not finite, ordered and inside ``limits``."""
        check_bounds(self.name, self.limits, low, high)


# ----------------------------------------------------------------- property setters
def _apply_mass(h: SimHandles, env_ids: np.ndarray, values: np.ndarray) -> None:
    gym = h.task.gym
    for i, s in zip(env_ids.tolist(), values.tolist()):
        masses = h.nominal("mass", i, lambda e, a: np.array([p.mass for p in gym.get_actor_rigid_body_properties(e, a)]))
        for a, m0 in zip(h.actors[i], masses):
            props = gym.get_actor_rigid_body_properties(h.envs[i], a)
            for p, m in zip(props, m0.tolist()):
                p.mass = m * s
            # Isaac Gym rescales the inertia with the mass only when asked to.
            gym.set_actor_rigid_body_properties(h.envs[i], a, props, True)


def _apply_friction(h: SimHandles, env_ids: np.ndarray, values: np.ndarray) -> None:
    gym = h.task.gym
    for i, s in zip(env_ids.tolist(), values.tolist()):
        nominal = h.nominal("friction", i,
                            lambda e, a: np.array([p.friction for p in gym.get_actor_rigid_shape_properties(e, a)]))
        for a, f0 in zip(h.actors[i], nominal):
            props = gym.get_actor_rigid_shape_properties(h.envs[i], a)
            for p, f in zip(props, f0.tolist()):
                p.friction = f * s
            gym.set_actor_rigid_shape_properties(h.envs[i], a, props)


def _dof_scale(field_name: str) -> Apply:
    def apply(h: SimHandles, env_ids: np.ndarray, values: np.ndarray) -> None:
        gym = h.task.gym
        for i, s in zip(env_ids.tolist(), values.tolist()):
            nominal = h.nominal(f"dof_{field_name}", i,
                                lambda e, a: np.asarray(gym.get_actor_dof_properties(e, a)[field_name]))
            for a, v0 in zip(h.actors[i], nominal):
                if v0.size == 0:  # actor without joints
                    continue
                props = gym.get_actor_dof_properties(h.envs[i], a)  # numpy structured array
                props[field_name] = v0 * s
                gym.set_actor_dof_properties(h.envs[i], a, props)

    return apply


def tensor_param(name: str, attr: str, default: tuple[float, float],
                 limits: tuple[float, float] = (-math.inf, math.inf)) -> IsaacParam:
    """A task parameter: writes the drawn values into the task's per-env tensor ``attr``
    (shape (N,)) before ``reset_idx``, which reads it (e.g. a target distance)."""

    def apply(h: SimHandles, env_ids: np.ndarray, values: np.ndarray) -> None:
        buf: Any = getattr(h.task, attr)
        if not isinstance(buf, torch.Tensor):
            raise TypeError(f"task parameter {name!r}: task.{attr} must be a torch tensor, got {type(buf).__name__}")
        ids = torch.as_tensor(env_ids, dtype=torch.long, device=buf.device)
        buf[ids] = torch.as_tensor(values, dtype=buf.dtype, device=buf.device)

    return IsaacParam(name, default, limits, apply)


DEFAULT_PARAMS: tuple[IsaacParam, ...] = (
    IsaacParam("randomization.mass_scale", (1.0, 1.0), (0.1, 10.0), _apply_mass),
    IsaacParam("randomization.friction_scale", (1.0, 1.0), (0.0, 10.0), _apply_friction),
    IsaacParam("randomization.dof_damping_scale", (1.0, 1.0), (0.0, 10.0), _dof_scale("damping")),
    IsaacParam("randomization.dof_stiffness_scale", (1.0, 1.0), (0.0, 10.0), _dof_scale("stiffness")),
)
"""Rigid-body mass, shape friction, joint damping and stiffness, as scales of the nominal
values, for every actor of each env. Simulation-wide settings (``set_sim_params``:
gravity, dt) are not per-env and so are not parameters here."""

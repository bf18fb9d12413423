"""What the adapter needs from an Isaac Gym task: the IsaacGymEnvs ``VecTask`` surface.

Typed against ``isaacgym-stubs`` (``isaacgym.gymapi``); nothing here imports Isaac Gym at
run time, so the adapter can be imported and tested without it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

import torch

if TYPE_CHECKING:
    from isaacgym import gymapi


class VecTaskLike(Protocol):
    """An IsaacGymEnvs-style vectorized task (``isaacgymenvs.tasks.base.vec_task.VecTask``).

    ``step`` applies actions, simulates and fills the buffers: ``obs_buf`` (N, num_obs),
    ``states_buf`` (N, num_states; privileged, may be empty), ``rew_buf`` (N,),
    ``reset_buf`` (N,; non-zero where the episode ended), ``progress_buf`` (N,; steps in
    the episode). ``reset_idx(env_ids)`` resets those envs (a long tensor on the task's
    device). Members are read-only properties here so plain attributes of any numeric
    type satisfy them.
    """

    @property
    def gym(self) -> gymapi.Gym: ...
    @property
    def sim(self) -> gymapi.Sim: ...
    @property
    def num_envs(self) -> int: ...
    @property
    def num_obs(self) -> int: ...
    @property
    def num_states(self) -> int: ...
    @property
    def num_actions(self) -> int: ...
    @property
    def max_episode_length(self) -> float: ...
    @property
    def obs_buf(self) -> torch.Tensor: ...
    @property
    def states_buf(self) -> torch.Tensor: ...
    @property
    def rew_buf(self) -> torch.Tensor: ...
    @property
    def reset_buf(self) -> torch.Tensor: ...
    @property
    def progress_buf(self) -> torch.Tensor: ...
    @property
    def extras(self) -> dict[str, Any]: ...

    def step(self, actions: torch.Tensor) -> Any: ...

    def reset_idx(self, env_ids: torch.Tensor) -> None: ...

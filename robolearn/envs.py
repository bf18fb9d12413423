"""Building a run's vector env, whatever its family (``robolearn.tasks``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import UserError

if TYPE_CHECKING:
    from .config import RunConfig


def check_device(device: str) -> None:
    if device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise UserError("--device cuda: no CUDA device is available to torch on this machine (use --device cpu)")


def make_env(cfg: RunConfig, num_envs: int | None = None, seed: int | None = None,
             ranges: dict | None = None, backend: str | None = None, **sim_changes: Any) -> Any:
    """The vector env of this run's family (``ranges`` default: the config's training ranges).

    ``env.name: quadrotor`` gives a ``QuadrotorVecEnv``, ``arm`` an ``ArmVecEnv``
    (sims.manipulation, stepped by ``mujoco.batch`` on ``env.arm.num_threads`` threads; CPU only).
    """
    from .tasks import task_for

    return task_for(cfg).make_env(cfg, num_envs=num_envs, seed=seed, ranges=ranges, backend=backend,
                                  **sim_changes)


def init_action(cfg: RunConfig) -> float:
    """The actor's initial mean action: 0, or the family's hover command (``network.init_action``)."""
    if cfg.network.init_action == "zero":
        return 0.0
    from .tasks import task_for

    return task_for(cfg).hover_action(cfg)

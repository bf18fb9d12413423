"""The arm's vector env (sims.manipulation, stepped by ``mujoco.batch``; CPU only) from a run config."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ...errors import UserError

if TYPE_CHECKING:
    from sims.manipulation.config import ArmConfig

    from ...config import RunConfig


def arm_config(cfg: RunConfig, ranges: dict | None = None, **changes: Any) -> ArmConfig:
    """The manipulation env's ``ArmConfig`` for ``cfg`` (``env.arm`` with ``changes`` over it;
    ``ranges`` default: env.ranges). Raises ValueError on a bad range."""
    from sims.manipulation.config import ArmConfig

    d = cfg.env.arm.model_dump()
    d.pop("num_threads")  # a property of the batch, not of the model (ArmVecEnv's argument)
    d.update(changes)
    d["ranges"] = {k: tuple(v) for k, v in (cfg.env.ranges if ranges is None else ranges).items()}
    return ArmConfig(**d)


def make_env(cfg: RunConfig, num_envs: int | None = None, seed: int | None = None,
             ranges: dict | None = None, backend: str | None = None, **sim_changes: Any) -> Any:
    """An ``ArmVecEnv`` of ``num_envs`` (default env.num_envs) envs on ``env.arm.num_threads``
    threads; ``ranges`` default: env.ranges; ``backend`` is ignored (MuJoCo runs on the CPU).
    MuJoCo is imported here, not before."""
    import sims  # noqa: F401 - registers the gymnasium ids
    from sims.manipulation import ArmVecEnv

    try:
        arm_cfg = arm_config(cfg, ranges=ranges, **sim_changes)
    except ValueError as e:
        raise UserError(f"arm config: {e}") from None
    return ArmVecEnv(num_envs or cfg.env.num_envs, config=arm_cfg, seed=cfg.seed if seed is None else seed,
                     num_threads=cfg.env.arm.num_threads)


def hover_action(cfg: RunConfig) -> float:
    """``network.init_action: hover`` has no meaning for the arm: a one-line UserError."""
    raise UserError(f"config: 'network.init_action': 'hover' is the quadrotor's hover throttle; "
                    f"use 'zero' with env.name {cfg.env.name!r}")

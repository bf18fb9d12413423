"""Building simulator instances from a run config."""

from __future__ import annotations

from typing import Any

from .config import RunConfig
from .errors import UserError


def backend_for(device: str) -> str:
    return "cuda" if device == "cuda" else "cpu"


def check_device(device: str) -> None:
    if device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise UserError("--device cuda: no CUDA device is available to torch on this machine (use --device cpu)")


def make_env(cfg: RunConfig, num_envs: int | None = None, seed: int | None = None,
             ranges: dict | None = None, backend: str | None = None,
             **sim_changes: Any) -> Any:  # QuadrotorVecEnv or ArmVecEnv, by cfg.env.name
    """The vector env of this run's family (``ranges`` default: the config's training ranges).

    ``env.name: quadrotor`` gives a ``QuadrotorVecEnv``, ``arm`` an ``ArmVecEnv``
    (sims.manipulation, stepped by ``mujoco.batch`` on ``env.arm.num_threads`` threads; CPU only).
    """
    import sims  # noqa: F401 - registers the gymnasium ids

    if cfg.env.name == "arm":
        from sims.manipulation import ArmVecEnv

        try:
            arm_cfg = cfg.arm_config(ranges=ranges, **sim_changes)
        except ValueError as e:
            raise UserError(f"arm config: {e}") from None
        return ArmVecEnv(num_envs or cfg.env.num_envs, config=arm_cfg, seed=cfg.seed if seed is None else seed,
                         num_threads=cfg.env.arm.num_threads)
    from sims.quadrotor import QuadrotorVecEnv

    try:
        sim_cfg = cfg.sim_config(ranges=ranges, **sim_changes)
    except ValueError as e:
        raise UserError(f"simulator config: {e}") from None
    return QuadrotorVecEnv(num_envs or cfg.env.num_envs, config=sim_cfg,
                           seed=cfg.seed if seed is None else seed,
                           backend=backend or backend_for(cfg.device))


def init_action(cfg: RunConfig) -> float:
    """The actor's initial mean action: the quadrotor's hover throttle, or 0."""
    if cfg.network.init_action == "zero":
        return 0.0
    if cfg.env.name != "quadrotor":
        raise UserError(f"config: 'network.init_action': 'hover' is the quadrotor's hover throttle; "
                        f"use 'zero' with env.name {cfg.env.name!r}")
    return hover_action(cfg)


def hover_action(cfg: RunConfig) -> float:
    """Normalized rotor command at which the nominal vehicle hovers (the actor's initial mean)."""
    from sims.quadrotor.vehicles import get

    s = cfg.env.sim
    return float(get(s.vehicle).hover_action(gravity=s.gravity))


def eval_ranges(cfg: RunConfig, randomized: bool) -> dict:
    """Parameter ranges of an evaluation block.

    ``nominal``: every parameter at its default (the simulator's task defaults: full
    initial-state distribution, no randomization, no privileged assist). ``randomized``:
    the same under ``eval.randomized_ranges``, by default the simulator's real-world
    range of the vehicle (``sims.quadrotor.params.real_world_ranges``), independent of training.
    """
    if not randomized:
        return {}
    if cfg.eval.randomized_ranges is not None:
        return dict(cfg.eval.randomized_ranges)
    from sims.quadrotor.params import real_world_ranges

    return real_world_ranges(cfg.env.sim.vehicle)

"""The quadrotor's vector env (sims.quadrotor) from a run config, and its evaluation blocks."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ...errors import UserError

if TYPE_CHECKING:
    from sims.quadrotor.config import QuadrotorConfig

    from ...config import RunConfig


def backend_for(device: str) -> str:
    return "cuda" if device == "cuda" else "cpu"


def training_ranges(cfg: RunConfig) -> dict[str, tuple[float, float]]:
    """The training ranges: the vehicle's real range if ``env.train_real_range``, then
    ``env.ranges`` over it."""
    out: dict[str, tuple[float, float]] = {}
    if cfg.env.train_real_range:
        from sims.quadrotor.params import real_world_ranges

        out.update(real_world_ranges(cfg.env.sim.vehicle))
    out.update({k: (float(v[0]), float(v[1])) for k, v in cfg.env.ranges.items()})
    return out


def sim_config(cfg: RunConfig, ranges: dict | None = None, **changes: Any) -> QuadrotorConfig:
    """The simulator's ``QuadrotorConfig`` for ``cfg`` (``env.sim`` with ``changes`` over it;
    ``ranges`` default: :func:`training_ranges`). Raises ValueError on a bad range."""
    from sims.quadrotor.config import QuadrotorConfig

    d = cfg.env.sim.model_dump()
    d.update(changes)
    d["home_target"] = tuple(d["home_target"])
    d["ranges"] = dict(training_ranges(cfg) if ranges is None else ranges)
    return QuadrotorConfig(**d)


def make_env(cfg: RunConfig, num_envs: int | None = None, seed: int | None = None,
             ranges: dict | None = None, backend: str | None = None, **sim_changes: Any) -> Any:
    """A ``QuadrotorVecEnv`` of ``num_envs`` (default env.num_envs) envs; ``ranges`` default:
    the config's training ranges; ``sim_changes`` override ``env.sim`` fields."""
    import sims  # noqa: F401 - registers the gymnasium ids
    from sims.quadrotor import QuadrotorVecEnv

    try:
        sim_cfg = sim_config(cfg, ranges=ranges, **sim_changes)
    except ValueError as e:
        raise UserError(f"simulator config: {e}") from None
    return QuadrotorVecEnv(num_envs or cfg.env.num_envs, config=sim_cfg,
                           seed=cfg.seed if seed is None else seed,
                           backend=backend or backend_for(cfg.device))


def hover_action(cfg: RunConfig) -> float:
    """Normalized rotor command at which the nominal vehicle hovers (the actor's initial mean)."""
    from sims.quadrotor.vehicles import get

    s = cfg.env.sim
    return float(get(s.vehicle).hover_action(gravity=s.gravity))


def real_range(cfg: RunConfig) -> dict[str, tuple[float, float]]:
    """The real-range block's ranges: ``eval.randomized_ranges``, or the vehicle's real-world range."""
    if cfg.eval.randomized_ranges is not None:
        return dict(cfg.eval.randomized_ranges)
    from sims.quadrotor.params import real_world_ranges

    return dict(real_world_ranges(cfg.env.sim.vehicle))


def eval_ranges(cfg: RunConfig, randomized: bool) -> dict:
    """Parameter ranges of the nominal block (``{}``) or of the real-range block."""
    return real_range(cfg) if randomized else {}


@dataclass(frozen=True)
class EvalBlock:
    """One evaluation block: ranges for every env, simulator changes, and optional corners.

    With ``corner_groups`` the envs fly the corners of ``ranges`` (each group at the low or the
    high end of its range), split evenly in the numbering of
    ``sims.quadrotor.params.corner_values``, pinned per env (``set_range`` with per-env arrays).
    """

    ranges: dict[str, tuple[float, float]]
    sim_changes: dict[str, Any] = field(default_factory=dict)
    corner_groups: tuple[tuple[str, ...], ...] = ()

    def per_env_ranges(self, n: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """``{param: (low (n,), high (n,))}`` pinning each env to its corner (empty without corners)."""
        if not self.corner_groups:
            return {}
        from sims.quadrotor.params import corner_values

        return {name: (v, v.copy()) for name, v in corner_values(self.ranges, n, self.corner_groups).items()}

    def describe(self) -> dict[str, Any]:
        d: dict[str, Any] = {}
        if self.sim_changes:
            d["sim_changes"] = dict(self.sim_changes)
        if self.corner_groups:
            d["corner_groups"] = [list(g) for g in self.corner_groups]
        return d


def eval_blocks(cfg: RunConfig) -> dict[str, EvalBlock]:
    """The evaluation's blocks: ``nominal``; with ``eval.randomized`` also ``real_range`` and
    ``corners``; and one nominal block per vehicle of ``eval.vehicles``."""
    blocks = {"nominal": EvalBlock({})}
    if cfg.eval.randomized:
        rr = real_range(cfg)
        blocks["real_range"] = EvalBlock(rr)
        from sims.quadrotor.params import CORNER_GROUPS

        blocks["corners"] = EvalBlock(rr, corner_groups=CORNER_GROUPS)
    for v in cfg.eval.vehicles:
        if v != cfg.env.sim.vehicle:
            blocks[v] = EvalBlock({}, sim_changes={"vehicle": v})
    return blocks

"""The hover task's hard corner, and training resets drawn from it (quadrotor).

The *hard corner* of the hover start distribution: starts tilted more than 40 deg,
falling (vz < -0.2 m/s) and not above the target (dz < 0.05 m). About 10 % of the
default distribution lies there, and nearly all evaluation failures of the default
policy do (BENCHMARKS.md, issue 3: the vehicle has ~0.3 s to turn upright before it
leaves the 0.6 m bound below the target).

``curriculum.hard_starts.fraction``: before every iteration each env with no pending
start state is given, with that probability, a start for its next episode drawn from a
pool of hard-corner starts: the ones among ``pool_draws`` draws of the run's *nominal*
start distribution (seed ``99991 + run seed``, neither the evaluation's starts nor the
failure benchmark's pool). Long PPO runs need it: at 6.4 M steps the default config (with
``ppo.init_std`` 0.3, as it then was) survives 95.0 % of the evaluation starts without it
and 98.7 % with 30 % of resets from the corner (seed 0).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from teachers.sampling import rng_state, set_rng_state

from ...errors import ConfigError

if TYPE_CHECKING:
    from ...config import RunConfig

HARD_TILT_DEG = 40.0
HARD_VZ_MPS = -0.2
HARD_DZ_M = 0.05
POOL_SEED = 99991  # + the run's seed


def start_conditions(rel_states: np.ndarray) -> dict[str, np.ndarray]:
    """Tilt (deg, body z from vertical), height error dz (m), vz and speed (m/s) of (N, 17) relative states."""
    q = rel_states[:, 3:7]
    cos_tilt = np.clip(1.0 - 2.0 * (q[:, 1] ** 2 + q[:, 2] ** 2), -1.0, 1.0)
    return {"tilt_deg": np.degrees(np.arccos(cos_tilt)), "dz_m": rel_states[:, 2], "vz_mps": rel_states[:, 9],
            "speed_mps": np.linalg.norm(rel_states[:, 7:10], axis=1)}


def is_hard(rel_states: np.ndarray) -> np.ndarray:
    c = start_conditions(rel_states)
    return (c["tilt_deg"] > HARD_TILT_DEG) & (c["vz_mps"] < HARD_VZ_MPS) & (c["dz_m"] < HARD_DZ_M)


def hard_corner_draw(cfg: RunConfig, draws: int, seed: int) -> np.ndarray:
    """The hard-corner starts among ``draws`` starts of the nominal start distribution (relative states)."""
    from .env import eval_ranges, make_env

    env = make_env(cfg, num_envs=draws, seed=seed, ranges=eval_ranges(cfg, False), backend="cpu")
    env.reset(seed=seed)
    rel: np.ndarray = env.relative_state
    hard: np.ndarray = rel[is_hard(rel)]
    return hard


def run_pool(cfg: RunConfig) -> np.ndarray:
    """The run's pool of hard-corner starts: those among ``curriculum.hard_starts.pool_draws``
    nominal starts drawn with seed ``POOL_SEED`` + run seed (a one-line ConfigError if none is)."""
    draws = cfg.curriculum.hard_starts.pool_draws
    pool = hard_corner_draw(cfg, draws, seed=POOL_SEED + cfg.seed)
    if len(pool) == 0:
        raise ConfigError(f"config: 'curriculum.hard_starts.pool_draws': none of {draws} starts lies in "
                          "the hard corner; draw more (about 10 % of the default distribution does)")
    return pool


class HardStarts:
    """Gives a share of the training resets a start from the hard corner (``env.set_start_states``)."""

    key = "hard_starts"  # its state's key in the checkpoint
    learns = False  # the pool is fixed: finished episodes change nothing

    def __init__(self, cfg: RunConfig) -> None:
        self.fraction = float(cfg.curriculum.hard_starts.fraction)
        self.pool = run_pool(cfg)
        self.rng = np.random.default_rng(cfg.seed)
        self.given = 0

    def apply(self, env: Any, env_steps: int = 0) -> int:
        """Before an iteration: draw which envs without a pending start get a hard one."""
        ids = np.flatnonzero(~env.pending_start_states)
        ids = ids[self.rng.random(len(ids)) < self.fraction]
        if len(ids):
            env.set_start_states(self.pool[self.rng.integers(0, len(self.pool), len(ids))], ids)
            self.given += len(ids)
        return len(ids)

    def update(self, env: Any, outcomes: Any) -> None:
        """After an iteration: nothing to learn."""

    def metrics(self) -> dict[str, float]:
        return {"hard_starts/given": float(self.given)}

    def state_dict(self) -> dict:
        return {"rng": rng_state(self.rng), "given": self.given}

    def load_state_dict(self, state: dict) -> None:
        if state:
            set_rng_state(self.rng, state["rng"])
            self.given = int(state.get("given", 0))


def build_hard_starts(cfg: RunConfig, env: Any) -> HardStarts | None:
    if cfg.curriculum.hard_starts.fraction <= 0.0:
        return None
    if cfg.env.name != "quadrotor" or not hasattr(env, "set_start_states"):
        raise ConfigError(f"config: 'curriculum.hard_starts.fraction': hard starts need env.name 'quadrotor', "
                          f"got {cfg.env.name!r}")
    return HardStarts(cfg)

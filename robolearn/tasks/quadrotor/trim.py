"""Trim of the deployable quadrotor actor: re-centre its position input on its hover offset.

A PPO hover policy has no integral action, and it settles at a small constant offset
from the target: the point where its position input balances its learnt bias. On ten
default runs that offset was 8-69 mm and made up nearly all of the evaluation's steady
position error (after subtracting it, 2-14 mm of scatter remained; BENCHMARKS.md,
issue 3). Flight controllers remove such an offset with a trim; this is that trim, done
once in simulation:

1. fly ``episodes`` episodes of the nominal vehicle (no randomization) from the full
   start distribution, with sensor noise, and average the position error of the
   survivors over the last ``keep`` of ``steps`` control steps: the offset ``e``;
2. shift the actor's input normalizer so that it reads ``position error + e``. The
   closed loop is invariant under translation (thrust, drag and attitude do not depend
   on where the vehicle is; ground effect is negligible at the target's height), so the
   same flight now settles ``e`` closer to the target.

Only ``obs_mean`` of the position-error entries changes (in the policy format,
``firmware_export.policy_file.PolicySpec``); every export subtracts ``obs_mean`` from the
raw observation in a separate step (ONNX and both C kernels; the float C folds only
``1/std`` into its first layer), so the firmware gets the trim for free. The seed is the
run's own (``TRIM_SEED`` + run seed), not the evaluation's.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from sims.quadrotor.physics import POLICY_POSITION_ERROR

from firmware_export.policy_file import PolicySpec

from ...networks import actor_from_spec

TRIM_SEED = 8_000_009  # + the run's seed


@torch.inference_mode()
def steady_offset(policy: PolicySpec, env: Any, steps: int, keep: int, seed: int) -> tuple[np.ndarray, int]:
    """Mean position error (3,) (m, position minus target) over the last ``keep`` of ``steps``
    control steps of the episodes ``policy`` survives in ``env``, and how many survived (zeros
    if none did)."""
    actor = actor_from_spec(policy)
    obs, _ = env.reset(seed=seed)
    alive = np.ones(env.num_envs, bool)
    total = np.zeros((env.num_envs, 3))
    for t in range(steps):
        obs, _, term, trunc, _ = env.step(actor(torch.from_numpy(obs["policy"])).numpy())
        alive &= ~(term | trunc)  # an ended env has reset: its later steps are another episode
        if t >= steps - keep:
            total += env.relative_state[:, :3]
    if not alive.any():
        return np.zeros(3), 0
    return total[alive].mean(0) / keep, int(alive.sum())


def trimmed(policy: PolicySpec, offset: np.ndarray) -> PolicySpec:
    """A copy of ``policy`` that reads its position error plus ``offset`` (3,), m."""
    mean = policy.obs_mean.copy()
    # float32 arithmetic, as the float32 tensor subtraction this replaced
    mean[POLICY_POSITION_ERROR] -= np.asarray(offset, np.float64).astype(np.float32)
    return policy.replace(obs_mean=mean)


def trim_from_config(cfg: Any, policy: PolicySpec) -> tuple[PolicySpec, dict]:
    """Trim ``policy`` with the settings of ``cfg.trim`` (a RunConfig, quadrotor); returns the
    trimmed dict and a summary (the offset removed, in m, and the survivors it was measured on).
    A policy that survives none of the episodes (a run stopped early) is returned as it is."""
    from .env import eval_ranges, make_env

    c = cfg.trim
    seed = TRIM_SEED + cfg.seed
    env = make_env(cfg, num_envs=c.episodes, seed=seed, ranges=eval_ranges(cfg, False), backend="cpu",
                   episode_steps=c.steps + 1)
    offset, survivors = steady_offset(policy, env, c.steps, c.keep, seed)
    return trimmed(policy, offset), {"offset_m": [float(x) for x in offset], "survivors": survivors,
                                     "episodes": c.episodes}

"""One environment with the standard gymnasium API, over a family's 1-env vector env.

Both families' single envs (``QuadrotorEnv``, ``ArmEnv``) are this adapter around their
vector env: the vector env is the simulator; this only drops the batch axis.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np


class SingleEnv(gym.Env):
    """``self.vec`` is a vector env of one env (set by the subclass's ``__init__``); reset and
    step return its entry 0. A finished episode's info carries ``episode`` (its summary) and
    the observation returned is the final one (the vector env has already reset)."""

    metadata = {"render_modes": []}
    vec: Any

    def _adopt(self, vec: Any) -> None:
        self.vec = vec
        self.observation_space = vec.single_observation_space
        self.action_space = vec.single_action_space

    def reset(self, *, seed: int | None = None,
              options: dict[str, Any] | None = None) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        super().reset(seed=seed)
        obs, _ = self.vec.reset(seed=seed, options=options)
        return {k: v[0].copy() for k, v in obs.items()}, {}

    def step(self, action: Any) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        act = np.asarray(action, np.float32).reshape(1, -1)
        obs, rew, term, trunc, info = self.vec.step(act)
        out = {"nonfinite_resets": info["nonfinite_resets"]}
        if term[0] or trunc[0]:
            obs = info["final_obs"]
            out["episode"] = {k: (v[0].copy() if isinstance(v, np.ndarray) else v)
                              for k, v in info["episode"].items()}
        return ({k: v[0].copy() for k, v in obs.items()}, float(rew[0]), bool(term[0]),
                bool(trunc[0]), out)

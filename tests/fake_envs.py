"""Tiny numpy vector envs with the simulator's interface, for fast algorithm tests."""

from __future__ import annotations

import numpy as np
from gymnasium import spaces


class PointMassVecEnv:
    """1-D point mass: x' = x + 0.1 a, reward 1 - |x|, target 0.

    ``policy`` view: x, last action. ``critic`` view: x, last action, time fraction.
    Terminates when |x| > 2; truncates after ``horizon`` steps. Same-step auto-reset
    with ``info["final_obs"]`` / ``info["episode"]`` like ``QuadrotorVecEnv``.
    """

    param_names = ["task.start_radius_m"]

    def __init__(self, num_envs: int = 64, horizon: int = 40, seed: int = 0, start: float = 1.5):
        self.num_envs = n = num_envs
        self.horizon = horizon
        self.start = start
        self.single_observation_space = spaces.Dict({
            "policy": spaces.Box(-np.inf, np.inf, (2,), np.float32),
            "critic": spaces.Box(-np.inf, np.inf, (3,), np.float32)})
        self.single_action_space = spaces.Box(-1.0, 1.0, (1,), np.float32)
        self.rng = np.random.default_rng(seed)
        self.x = np.zeros(n, np.float32)
        self.last = np.zeros(n, np.float32)
        self.t = np.zeros(n, np.int64)
        self.ret = np.zeros(n, np.float32)
        self.lo = np.full(n, start, np.float32)
        self.hi = np.full(n, start, np.float32)
        self.ranges_set: list = []

    def _reset_ids(self, ids):
        r = self.rng.uniform(self.lo[ids], self.hi[ids]).astype(np.float32)
        self.x[ids] = r * self.rng.choice([-1.0, 1.0], size=len(ids)).astype(np.float32)
        self.last[ids] = 0
        self.t[ids] = 0
        self.ret[ids] = 0

    def _obs(self):
        return {"policy": np.stack([self.x, self.last], 1).astype(np.float32),
                "critic": np.stack([self.x, self.last, self.t / self.horizon], 1).astype(np.float32)}

    def reset(self, seed=None, options=None):
        if seed is not None:
            self.rng = np.random.default_rng(seed)
        self._reset_ids(np.arange(self.num_envs))
        return self._obs(), {}

    def step(self, actions):
        a = np.clip(np.asarray(actions, np.float32).reshape(self.num_envs, -1)[:, 0], -1, 1)
        self.x = self.x + 0.1 * a
        self.last = a
        self.t += 1
        term = np.abs(self.x) > 2.0
        trunc = (~term) & (self.t >= self.horizon)
        rew = np.where(term, 0.0, 1.0 - np.abs(self.x)).astype(np.float32)
        self.ret += rew
        info = {"nonfinite_resets": 0}
        done = term | trunc
        if done.any():
            fin = self._obs()
            info["final_obs"] = fin
            info["_final_obs"] = done
            info["episode"] = {
                "return": self.ret.copy(), "length": self.t.astype(np.float32), "survived": trunc.copy(),
                "position_error_m": np.abs(self.x), "tilt_deg": np.zeros(self.num_envs, np.float32),
                "yaw_deg": np.zeros(self.num_envs, np.float32),
                "params": np.stack([self.hi], 1).astype(np.float32)}
            info["_episode"] = done
            self._reset_ids(np.nonzero(done)[0])
        return self._obs(), rew, term, trunc, info

    def get_range(self, name):
        return self.lo.copy(), self.hi.copy()

    def set_range(self, name, low, high, env_ids=None):
        ids = slice(None) if env_ids is None else env_ids
        self.lo[ids] = low
        self.hi[ids] = high
        self.ranges_set.append((name, low, high, env_ids))


class ScriptedVecEnv:
    """Deterministic episodes for bookkeeping tests.

    Every env gets reward 1 per step. Env ``i`` ends its episode every ``lengths[i]``
    steps, by termination where ``terminate[i]`` else by truncation. Observations
    encode (env, step-in-episode); the final observation of an episode is marked with
    a 100 offset in the critic view so tests can tell it from the reset observation.
    """

    param_names = ["p"]

    def __init__(self, lengths, terminate):
        self.lengths = np.asarray(lengths)
        self.terminate = np.asarray(terminate, bool)
        self.num_envs = n = len(self.lengths)
        self.single_observation_space = spaces.Dict({
            "policy": spaces.Box(-np.inf, np.inf, (2,), np.float32),
            "critic": spaces.Box(-np.inf, np.inf, (2,), np.float32)})
        self.single_action_space = spaces.Box(-1.0, 1.0, (1,), np.float32)
        self.t = np.zeros(n, np.int64)

    def _obs(self, final=False):
        ids = np.arange(self.num_envs, dtype=np.float32)
        c = np.stack([ids, self.t.astype(np.float32) + (100.0 if final else 0.0)], 1)
        return {"policy": c.copy(), "critic": c.astype(np.float32)}

    def reset(self, seed=None, options=None):
        self.t[:] = 0
        return self._obs(), {}

    def step(self, actions):
        self.t += 1
        ended = self.t >= self.lengths
        term = ended & self.terminate
        trunc = ended & ~self.terminate
        rew = np.ones(self.num_envs, np.float32)
        info = {}
        if ended.any():
            info["final_obs"] = self._obs(final=True)
            info["_final_obs"] = ended
            z = np.zeros(self.num_envs, np.float32)
            info["episode"] = {"return": self.t.astype(np.float32), "length": self.t.astype(np.float32),
                               "survived": trunc.copy(), "position_error_m": z, "tilt_deg": z, "yaw_deg": z,
                               "params": np.zeros((self.num_envs, 1), np.float32)}
            info["_episode"] = ended
            self.t[ended] = 0
        return self._obs(), rew, term, trunc, info

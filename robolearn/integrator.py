"""The actor's integrator state: a clamped integral of chosen observation entries.

A feedforward actor settles wherever its weights balance the vehicle it was trained on;
on a heavier vehicle, a weaker battery or under a steady wind it settles off the target
(the PPO hover actor: 8-69 mm nominal, 68 mm under the real range; issue 23). An
integral of the position error, clamped against wind-up, gives the actor what a PID's
I-term gives a controller: an input that keeps growing until the offset is gone, so it
can learn integral action without seeing the vehicle's parameters.

Semantics (the ``robolearn.actor/2`` contract, shared with ``firmware_export``)::

    reset:  z = 0
    step:   z = clip(z + gain * obs[index], -limit, limit)     # integrate first, then use
            network input x = concat(obs, z)

:class:`IntegratedObsEnv` applies it to a vector env's ``policy`` view during training
(and appends ``z`` to the ``critic`` view, since the actor's behaviour depends on it);
:class:`robolearn.networks.DeterministicActor` applies it at deployment; in the policy format
(``firmware_export.policy_file.PolicySpec``) it is ``integrator_index`` / ``_gain`` / ``_limit``
(``robolearn.networks.integrator_of`` and ``spec_from_actor`` convert).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np


@dataclass(frozen=True)
class IntegratorSpec:
    """Which raw observation entries are integrated, with what per-step gain and clamp."""

    index: tuple[int, ...]  # into the raw policy observation
    gain: float  # per control step (dt = 0.01 s makes z an integral in (units) * s)
    limit: float  # anti-windup: |z_j| <= limit

    @property
    def dim(self) -> int:
        return len(self.index)

    def check(self, obs_dim: int) -> None:
        """Raise ValueError (one line) if the spec does not fit an observation of ``obs_dim``."""
        if not self.index:
            raise ValueError("integrator.index is empty")
        bad = [i for i in self.index if not 0 <= i < obs_dim]
        if bad:
            raise ValueError(f"integrator.index {bad} outside the policy observation (size {obs_dim})")
        if len(set(self.index)) != len(self.index):
            raise ValueError(f"integrator.index {list(self.index)} repeats an entry")
        if not (np.isfinite(self.gain) and self.gain > 0):
            raise ValueError(f"integrator.gain must be a finite number > 0, got {self.gain}")
        if not (np.isfinite(self.limit) and self.limit > 0):
            raise ValueError(f"integrator.limit must be a finite number > 0, got {self.limit}")

    def step(self, z: np.ndarray, obs: np.ndarray) -> np.ndarray:
        """In place and returned: ``z`` (N, k) integrated over ``obs`` (N, obs_dim), float32."""
        z += np.float32(self.gain) * obs[:, list(self.index)]
        np.clip(z, -np.float32(self.limit), np.float32(self.limit), out=z)
        return z


class IntegratedObsEnv:
    """A vector env whose ``policy`` and ``critic`` views end with the integrator state.

    The wrapped env auto-resets (``terminated | truncated`` rows start a new episode in the
    same step); those rows restart their integral from zero on the new episode's first
    observation. ``info["final_obs"]["critic"]`` (the truncated episode's last critic view)
    gets the pre-reset state appended. Everything else is forwarded to the env.
    """

    def __init__(self, env: Any, spec: IntegratorSpec):
        self.env = env
        self.spec = spec
        self.num_envs = env.num_envs
        p_dim = env.single_observation_space["policy"].shape[0]
        c_dim = env.single_observation_space["critic"].shape[0]
        spec.check(p_dim)
        self.raw_policy_dim = p_dim
        k = spec.dim
        self.single_observation_space = gym.spaces.Dict({
            "policy": gym.spaces.Box(-np.inf, np.inf, (p_dim + k,), np.float32),
            "critic": gym.spaces.Box(-np.inf, np.inf, (c_dim + k,), np.float32),
        })
        self.single_action_space = env.single_action_space
        self.z = np.zeros((self.num_envs, k), np.float32)

    def __getattr__(self, name: str) -> Any:  # set_range, param_names, state, ... of the env
        return getattr(self.env, name)

    def _augment(self, obs: dict[str, Any]) -> dict[str, np.ndarray]:
        return {"policy": np.concatenate([np.asarray(obs["policy"]), self.z], axis=1),
                "critic": np.concatenate([np.asarray(obs["critic"]), self.z], axis=1)}

    def reset(self, **kwargs: Any) -> tuple[dict[str, np.ndarray], dict]:
        obs, info = self.env.reset(**kwargs)
        ids = (kwargs.get("options") or {}).get("env_ids")
        rows = slice(None) if ids is None else np.asarray(ids)
        self.z[rows] = 0.0
        z_new = self.spec.step(self.z.copy(), np.asarray(obs["policy"]))
        self.z[rows] = z_new[rows]
        return self._augment(obs), info

    def step(self, actions: Any) -> tuple[dict[str, np.ndarray], Any, np.ndarray, np.ndarray, dict]:
        obs, rew, term, trunc, info = self.env.step(actions)
        done = np.asarray(term) | np.asarray(trunc)
        if "final_obs" in info:
            fin = dict(info["final_obs"])
            z_final = self.spec.step(self.z.copy(), np.asarray(fin["policy"]))
            fin["policy"] = np.concatenate([np.asarray(fin["policy"]), z_final], axis=1)
            fin["critic"] = np.concatenate([np.asarray(fin["critic"]), z_final], axis=1)
            info = dict(info, final_obs=fin)
        self.z[done] = 0.0
        self.spec.step(self.z, np.asarray(obs["policy"]))
        return self._augment(obs), rew, term, trunc, info

    def state_dict(self) -> dict[str, Any]:
        """The env's state and the integrator's, for an exact resume."""
        return {"env": self.env.state_dict(), "z": self.z.copy()}

    def load_state_dict(self, d: dict[str, Any]) -> None:
        self.env.load_state_dict(d["env"])
        z = np.asarray(d["z"], np.float32)
        if z.shape != self.z.shape:
            raise ValueError(f"integrator state has shape {z.shape}, this run needs {self.z.shape}")
        self.z[:] = z

    def policy_symmetries(self) -> list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
        """The env's symmetries, extended to the state: z_j maps as the entry it integrates."""
        out = []
        p = self.raw_policy_dim
        where = {src: j for j, src in enumerate(self.spec.index)}
        for o_idx, o_sign, a_idx, a_sign in self.env.policy_symmetries():
            z_idx = np.empty(self.spec.dim, dtype=np.asarray(o_idx).dtype)
            z_sign = np.empty(self.spec.dim, dtype=np.asarray(o_sign).dtype)
            for j, src in enumerate(self.spec.index):
                img = int(o_idx[src])
                if img not in where:
                    raise ValueError(f"symmetry maps integrated entry {src} to {img}, which is not integrated")
                z_idx[j] = p + where[img]
                z_sign[j] = o_sign[src]
            out.append((np.concatenate([o_idx, z_idx]), np.concatenate([o_sign, z_sign]), a_idx, a_sign))
        return out

"""A small protocol for anything that flies a vector of quadrotors, and its torch-actor adapter.

A :class:`Controller` sees what the actor sees (``obs["policy"]``, (N, obs_dim) float32, the
simulator's policy view) and returns (N, 4) commands in [-1, 1]. Stateful controllers (a GRU
such as RAPTOR's, an integrator) are told which envs start a new episode through
:meth:`Controller.reset` before the first :meth:`Controller.act` of that episode; the vector
env auto-resets, so callers pass ``terminated | truncated`` of the step that ended it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch


@runtime_checkable
class Controller(Protocol):
    """Flies N envs: ``reset`` marks episode starts, ``act`` maps observations to commands."""

    def reset(self, mask: np.ndarray) -> None:
        """(N,) bool: envs whose episode (re)starts; their internal state returns to its initial value."""
        ...

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        """``obs["policy"]`` (N, obs_dim) float32 -> (N, 4) float32 commands in [-1, 1]."""
        ...


class TorchActorController:
    """A torch actor (e.g. ``policy.pt``'s deterministic actor) as a :class:`Controller`.

    ``reset`` zeroes the state of a stateful actor (format ``robolearn.actor/2``: its
    integrator, ``reset_state``) in the rows that start an episode; a stateless actor has
    nothing to reset (its action history is part of the observation the simulator builds).
    The output is clipped to [-1, 1].
    """

    def __init__(self, actor: torch.nn.Module, name: str = "actor"):
        self.actor = actor.eval()
        self.name = name
        self.obs_dim: int | None = getattr(actor, "obs_dim", None)

    def reset(self, mask: np.ndarray) -> None:
        reset_state = getattr(self.actor, "reset_state", None)
        if reset_state is not None:
            reset_state(torch.from_numpy(np.asarray(mask, bool)))

    @torch.inference_mode()
    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        x = np.ascontiguousarray(obs["policy"], dtype=np.float32)
        if self.obs_dim is not None and x.shape[1] != self.obs_dim:
            raise ValueError(f"{self.name}: the actor takes {self.obs_dim} observation values, the env gives "
                             f"{x.shape[1]} (another env.sim.action_history?)")
        a: np.ndarray = self.actor(torch.from_numpy(x)).numpy()
        out: np.ndarray = np.clip(a, -1.0, 1.0).astype(np.float32, copy=False)
        return out


@dataclass
class Flight:
    """The first episode of every env, step by step (rows: after each step; see robolearn.flight_metrics).

    ``position_error`` (T, N, 3) m and ``rotation`` (T, N, 9) row-major body->world, noise-free
    (the critic view's first 12 values); ``actions`` (T, N, 4) the clipped commands sent;
    ``alive`` (T, N) whether row t is still the first episode; ``survived`` (N,) the first
    episode ran all T steps; ``length`` (N,) its steps.
    """

    position_error: np.ndarray
    rotation: np.ndarray
    actions: np.ndarray
    alive: np.ndarray
    survived: np.ndarray
    length: np.ndarray
    episode_info: dict[str, np.ndarray] = field(default_factory=dict)


def fly(env: Any, controller: Controller, obs: dict[str, np.ndarray], steps: int) -> Flight:
    """Fly ``controller`` for ``steps`` steps from ``obs`` (the env just reset); record each env's first episode.

    ``env`` is a vector env with our ``step`` contract (``QuadrotorVecEnv``, or
    ``robolearn.peers.l2f_env.L2FHoverVecEnv``): same-step auto-reset, the finished episode's
    last observation in ``info["final_obs"]``. The controller is reset for all envs first and,
    after each step, for the envs whose episode ended. ``steps`` should be the env's episode
    length, so that every first episode ends within the flight. Where the env reports
    ``info["episode"]`` (our simulator) its per-episode values at the first done are kept in
    ``episode_info`` (for cross-checks against the simulator's own accumulators).
    """
    n = obs["policy"].shape[0]
    pos = np.zeros((steps, n, 3), np.float32)
    rot = np.zeros((steps, n, 9), np.float32)
    acts = np.zeros((steps, n, 4), np.float32)
    alive = np.zeros((steps, n), bool)
    done = np.zeros(n, bool)
    survived = np.zeros(n, bool)
    length = np.full(n, steps, np.int64)
    ep_info: dict[str, np.ndarray] = {}
    controller.reset(np.ones(n, bool))
    for t in range(steps):
        a = np.clip(np.asarray(controller.act(obs), np.float32), -1.0, 1.0)
        obs, _, term, trunc, info = env.step(a)
        term = np.asarray(term, bool)
        trunc = np.asarray(trunc, bool)
        ended = term | trunc
        crit = obs["critic"]
        if ended.any():
            crit = np.where(ended[:, None], info["final_obs"]["critic"], crit)
        live = ~done
        alive[t] = live
        acts[t] = a
        pos[t] = crit[:, 0:3]
        rot[t] = crit[:, 3:12]
        new = ended & live
        if new.any():
            survived[new] = trunc[new]
            length[new] = t + 1
            if "episode" in info:
                for k, val in info["episode"].items():
                    if isinstance(val, np.ndarray) and val.shape[:1] == (n,):
                        if k not in ep_info:
                            ep_info[k] = np.zeros_like(val)
                        ep_info[k][new] = val[new]
            done |= new
        controller.reset(ended)
    survived &= done
    return Flight(pos, rot, acts, alive, survived, length, ep_info)

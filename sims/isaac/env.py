"""``IsaacGymVecEnv``: an Isaac Gym task behind the project's vector-env contract.

Same contract as ``sims.quadrotor.QuadrotorVecEnv``: ``{"policy", "critic"}`` observations,
terminated and truncated apart, same-step auto-reset with ``info["final_obs"]`` and
``info["episode"]``, per-env parameter ranges set with ``set_range`` and drawn at each
env's next reset. Import Isaac Gym (and build the task) before this module: Isaac Gym
must be imported before torch.
"""

from __future__ import annotations

from typing import Any, Callable, Literal, Sequence

import numpy as np
import torch
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from .params import DEFAULT_PARAMS, IsaacParam, SimHandles
from .task import VecTaskLike

Array = torch.Tensor | np.ndarray
Obs = dict[str, Array]


class IsaacGymVecEnv(VectorEnv[Obs, Array, Array]):
    """Wraps an IsaacGymEnvs-style ``VecTask`` (see ``task.VecTaskLike``).

    * ``policy`` view: the task's ``obs_buf``; ``critic`` view: ``states_buf`` (or
      ``obs_buf`` when the task has no states) followed, with ``critic_params``, by the
      env's current parameter values.
    * An episode ends where the task sets ``reset_buf``; it is *truncated* when
      ``progress_buf >= max_episode_length - 1`` (the time-out rule of ``VecTask.step``)
      and *terminated* otherwise. The adapter then records the final observation, draws
      and applies the env's parameters, calls ``reset_idx`` and (if the task has it)
      ``compute_observations``, and returns the first observation of the new episode.
    * Non-finite actions (replaced by 0) or observations end that env's episode as
      terminated; counted in ``info["nonfinite_resets"]``.
    * ``output="torch"`` returns tensors on the task's device (observations are views
      refreshed by the next call: copy what you keep); ``"numpy"`` returns host arrays.
      ``info["episode"]`` is always numpy, for the trainers' episode statistics.

    The task's own domain randomization should be off for the properties ``params``
    drive, or the two overwrite each other.
    """

    metadata = {"autoreset_mode": AutoresetMode.SAME_STEP, "render_modes": []}

    def __init__(self, task: VecTaskLike, params: Sequence[IsaacParam] = DEFAULT_PARAMS, *,
                 seed: int | None = None, output: Literal["torch", "numpy"] = "torch",
                 critic_params: bool = True):
        if output not in ("torch", "numpy"):
            raise ValueError(f"output must be 'torch' or 'numpy', got {output!r}")
        names = [p.name for p in params]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate parameter names in {names}")
        self.task = task
        self.num_envs = n = int(task.num_envs)
        self.device = task.obs_buf.device
        self.output = output
        self.critic_params = critic_params
        self.params = list(params)
        self.param_names = names
        self._index = {p.name: j for j, p in enumerate(self.params)}
        self._handles = SimHandles.from_task(task)
        self._rng = np.random.default_rng(seed)
        self._lo = np.array([[p.default[0] for p in self.params]] * n, np.float64).reshape(n, len(names))
        self._hi = np.array([[p.default[1] for p in self.params]] * n, np.float64).reshape(n, len(names))
        for p in self.params:
            p.check(self._lo[:, self._index[p.name]], self._hi[:, self._index[p.name]])
        self._values = np.full((n, len(names)), np.nan)  # this episode's values
        self._applied = np.full((n, len(names)), np.nan)  # what the sim has; NaN: never set
        self._values_t = torch.zeros((n, len(names)), dtype=torch.float32, device=self.device)
        self._ret = torch.zeros(n, dtype=torch.float64, device=self.device)
        self._len = torch.zeros(n, dtype=torch.int64, device=self.device)
        self.num_actions = int(task.num_actions)
        dp = int(task.num_obs)
        dc = (int(task.num_states) if task.num_states > 0 else dp) + (len(names) if critic_params else 0)
        box = lambda d: spaces.Box(-np.inf, np.inf, (d,), np.float32)  # noqa: E731
        self.single_observation_space = spaces.Dict({"policy": box(dp), "critic": box(dc)})
        # IsaacGymEnvs tasks act in [-1, 1] (VecTask.act_space) and clamp to clip_actions.
        self.single_action_space = spaces.Box(-1.0, 1.0, (self.num_actions,), np.float32)
        self.observation_space = batch_space(self.single_observation_space, n)
        self.action_space = batch_space(self.single_action_space, n)
        self._needs_reset = True

    # ------------------------------------------------------------------ gymnasium
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Obs, dict[str, Any]]:
        """Reset all envs, or ``options["env_ids"]``, drawing their parameters anew."""
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        options = options or {}
        unknown = set(options) - {"env_ids"}
        if unknown:
            raise ValueError(f"unknown reset option(s) {sorted(unknown)}; use env_ids")
        ids = np.arange(self.num_envs) if options.get("env_ids") is None else np.asarray(options["env_ids"], np.int64)
        if self._needs_reset and len(ids) != self.num_envs:
            raise RuntimeError("the first reset() must reset all envs")
        self._reset_envs(ids)
        self._needs_reset = False
        return self._obs(), {}

    def step(self, actions: Array) -> tuple[Obs, Array, Array, Array, dict[str, Any]]:
        """Step all envs with actions (N, num_actions); see the class docstring."""
        if self._needs_reset:
            raise RuntimeError("call reset() before step()")
        act = self._actions(actions)
        bad_act = ~torch.isfinite(act).all(dim=1)
        act = torch.where(bad_act.unsqueeze(1), torch.zeros_like(act), act)
        t = self.task
        t.step(act)
        views = self._views()
        bad = bad_act | ~torch.isfinite(views["policy"]).all(dim=1) | ~torch.isfinite(views["critic"]).all(dim=1)
        rew = torch.nan_to_num(t.rew_buf.to(torch.float32), nan=0.0, posinf=0.0, neginf=0.0)
        done = (t.reset_buf != 0) | bad
        trunc = done & ~bad & (t.progress_buf >= t.max_episode_length - 1)
        term = done & ~trunc
        self._ret += rew
        self._len += 1
        info: dict[str, Any] = {"nonfinite_resets": int(bad.sum())}
        if bool(done.any()):
            final = {k: torch.nan_to_num(v, nan=0.0, posinf=0.0, neginf=0.0) for k, v in views.items()}
            ids = torch.nonzero(done).squeeze(-1).cpu().numpy()
            done_np = done.cpu().numpy()
            info["final_obs"] = {k: self._out(v) for k, v in final.items()}
            info["_final_obs"] = self._out(done)
            info["episode"] = {
                "return": self._ret.cpu().numpy().astype(np.float32),
                "length": self._len.cpu().numpy().astype(np.float32),
                "survived": trunc.cpu().numpy(),
                "params": self._values.astype(np.float32),
            }
            info["_episode"] = done_np
            self._reset_envs(ids)
            views = self._views()  # the reset envs' first observations
        obs = {k: self._out(v) for k, v in views.items()}
        return obs, self._out(rew), self._out(term), self._out(trunc), info

    # ------------------------------------------------------- parameters at run time
    def get_range(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """Per-env (low, high) of parameter ``name`` (copies)."""
        j = self._param(name)
        return self._lo[:, j].copy(), self._hi[:, j].copy()

    def set_range(self, name: str, low: Any, high: Any, env_ids: Any = None) -> None:
        """Set per-env sampling range of ``name``; takes effect at each env's next reset."""
        j = self._param(name)
        ids: slice | np.ndarray = slice(None) if env_ids is None else np.asarray(env_ids, np.int64)
        shape = self._lo[ids, j].shape
        lo = np.broadcast_to(np.asarray(low, np.float64), shape)
        hi = np.broadcast_to(np.asarray(high, np.float64), shape)
        self.params[j].check(lo, hi)
        self._lo[ids, j] = lo
        self._hi[ids, j] = hi

    @property
    def episode_params(self) -> np.ndarray:
        """Parameter values (N, P) of the episodes now running."""
        return self._values.copy()

    # ------------------------------------------------------------------ internals
    def _param(self, name: str) -> int:
        if name not in self._index:
            raise ValueError(f"unknown parameter {name!r}; known: {', '.join(self.param_names)}")
        return self._index[name]

    def _reset_envs(self, ids: np.ndarray) -> None:
        values = self._rng.uniform(self._lo[ids], self._hi[ids])
        self._values[ids] = values
        for j, p in enumerate(self.params):
            # Property setters are per-env host calls: skip the envs whose value is unchanged.
            changed = ~(self._applied[ids, j] == values[:, j])
            if changed.any():
                p.apply(self._handles, ids[changed], values[changed, j])
                self._applied[ids[changed], j] = values[changed, j]
        ids_t = torch.as_tensor(ids, dtype=torch.long, device=self.device)
        self._values_t[ids_t] = torch.as_tensor(values, dtype=torch.float32, device=self.device)
        t = self.task
        t.reset_idx(ids_t)
        # IsaacGymEnvs tasks clear these in reset_idx; doing it here too makes sure the
        # task's own deferred reset (next post_physics_step) does not reset them again.
        t.reset_buf[ids_t] = 0
        t.progress_buf[ids_t] = 0
        self._ret[ids_t] = 0
        self._len[ids_t] = 0
        compute: Callable[[], Any] | None = getattr(t, "compute_observations", None)
        if callable(compute):
            compute()

    def _actions(self, actions: Array) -> torch.Tensor:
        if isinstance(actions, torch.Tensor):
            act = actions.to(self.device, torch.float32)
        else:
            act = torch.from_numpy(np.asarray(actions, np.float32)).to(self.device)
        if act.shape != (self.num_envs, self.num_actions):
            raise ValueError(f"actions must have shape ({self.num_envs}, {self.num_actions}), got {tuple(act.shape)}")
        return act

    def _views(self) -> dict[str, torch.Tensor]:
        t = self.task
        critic = t.states_buf if t.num_states > 0 else t.obs_buf
        if self.critic_params:
            critic = torch.cat([critic.to(torch.float32), self._values_t], dim=1)
        return {"policy": t.obs_buf.to(torch.float32), "critic": critic.to(torch.float32)}

    def _obs(self) -> Obs:
        return {k: self._out(v) for k, v in self._views().items()}

    def _out(self, x: torch.Tensor) -> Array:
        return x if self.output == "torch" else x.detach().cpu().numpy()

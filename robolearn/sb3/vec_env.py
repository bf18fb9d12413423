"""Our batched simulators as a Stable-Baselines3 ``VecEnv``.

``QuadrotorVecEnv`` and ``ArmVecEnv`` are gymnasium vector envs (one kernel call per
step, same-step auto-reset, Dict observations with ``policy`` / ``critic`` views). SB3
wants its own ``VecEnv`` API: ``dones`` instead of terminated/truncated, a list of
per-env info dicts, ``terminal_observation`` and ``TimeLimit.truncated`` in the infos of
finished envs. :class:`SB3VecEnv` translates without a Python loop over all envs: only
the envs that finished this step get a dict of their own.
"""

from __future__ import annotations

from itertools import repeat
from typing import Any, Callable, Iterable

import numpy as np
from stable_baselines3.common.vec_env import VecEnv
from stable_baselines3.common.vec_env.base_vec_env import VecEnvStepReturn

from ..config import RunConfig

EpisodeListener = Callable[[dict, np.ndarray], None]


class SB3VecEnv(VecEnv):
    """SB3 ``VecEnv`` view of a robolearn vector env (``venv``).

    Finished episodes are also passed, as whole arrays, to every listener added with
    :meth:`add_episode_listener` (``listener(info["episode"], done_mask)``); the
    curriculum callback uses this to feed teachers.
    """

    def __init__(self, venv: Any):
        self.venv = venv
        self._listeners: list[EpisodeListener] = []
        self._actions: np.ndarray | None = None
        super().__init__(venv.num_envs, venv.single_observation_space, venv.single_action_space)

    # ------------------------------------------------------------------ curriculum hooks
    def add_episode_listener(self, fn: EpisodeListener) -> None:
        self._listeners.append(fn)

    def remove_episode_listener(self, fn: EpisodeListener) -> None:
        if fn in self._listeners:
            self._listeners.remove(fn)

    @property
    def param_names(self) -> list[str]:
        return list(self.venv.param_names)

    def set_range(self, name: str, low: Any, high: Any, env_ids: Any = None) -> None:
        """Teachers' handle (``env.set_range``): effective at each env's next reset."""
        self.venv.set_range(name, low, high, env_ids)

    def get_range(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        lo, hi = self.venv.get_range(name)
        return np.asarray(lo), np.asarray(hi)

    # ------------------------------------------------------------------------ VecEnv API
    def reset(self) -> dict[str, np.ndarray]:
        # SB3 seeds env i with seed + i; our env derives all per-env streams from one seed.
        seed = self._seeds[0]
        obs, _ = self.venv.reset(seed=seed)
        self._reset_seeds()
        self._reset_options()
        return _copy_obs(obs)

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.asarray(actions, dtype=np.float32)

    def step_wait(self) -> VecEnvStepReturn:
        obs, reward, term, trunc, info = self.venv.step(self._actions)
        done = term | trunc
        # Distinct empty dicts without a Python-level loop; SB3 wrappers only write into
        # the dicts of finished envs, which are replaced below.
        infos: list[dict[str, Any]] = list(map(dict, repeat((), self.num_envs)))
        ended = np.flatnonzero(done)
        if len(ended):
            ep = info["episode"]
            final = info["final_obs"]
            ret, length = ep["return"], ep["length"]
            for i in ended:  # finished envs only
                infos[i] = {
                    "terminal_observation": {k: np.array(v[i]) for k, v in final.items()},
                    "TimeLimit.truncated": bool(trunc[i] and not term[i]),
                    "episode": {"r": float(ret[i]), "l": int(length[i])},  # what SB3's Monitor reports
                }
            for fn in self._listeners:
                fn(ep, done)
        return _copy_obs(obs), np.array(reward, dtype=np.float32), done.copy(), infos

    def close(self) -> None:
        close = getattr(self.venv, "close", None)
        if close is not None:
            close()

    # One simulator object holds all envs: attributes and methods are the vector env's.
    def get_attr(self, attr_name: str, indices: None | int | Iterable[int] = None) -> list[Any]:
        return [getattr(self.venv, attr_name)] * len(list(self._get_indices(indices)))

    def set_attr(self, attr_name: str, value: Any, indices: None | int | Iterable[int] = None) -> None:
        if indices is not None:
            raise ValueError("SB3VecEnv: attributes belong to the whole vector env; set them with indices=None")
        setattr(self.venv, attr_name, value)

    def env_method(self, method_name: str, *method_args: Any, indices: None | int | Iterable[int] = None,
                   **method_kwargs: Any) -> list[Any]:
        """Calls ``method_name`` once on the vector env; the result is repeated per index."""
        result = getattr(self.venv, method_name)(*method_args, **method_kwargs)
        return [result] * len(list(self._get_indices(indices)))

    def env_is_wrapped(self, wrapper_class: type, indices: None | int | Iterable[int] = None) -> list[bool]:
        return [False] * len(list(self._get_indices(indices)))


def _copy_obs(obs: dict[str, Any]) -> dict[str, np.ndarray]:
    # The simulators overwrite their observation buffers at the next step; SB3 keeps them.
    return {k: np.array(v, dtype=np.float32) for k, v in obs.items()}


def make_vec_env(cfg: RunConfig, seed: int | None = None, num_envs: int | None = None) -> SB3VecEnv:
    """The run config's training env (``robolearn.envs.make_env``) as an SB3 ``VecEnv``."""
    from ..envs import make_env

    return SB3VecEnv(make_env(cfg, num_envs=num_envs, seed=seed, backend="cpu"))


def find_sb3_vec_env(env: Any) -> SB3VecEnv:
    """The :class:`SB3VecEnv` under SB3 wrappers such as ``VecNormalize``."""
    e = env
    while not isinstance(e, SB3VecEnv):
        e = getattr(e, "venv", None)
        if e is None:
            raise TypeError(f"{type(env).__name__} does not wrap a robolearn SB3VecEnv")
    return e

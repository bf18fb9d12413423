"""Gymnasium environments: a vectorized quadrotor (one kernel call per step) and a single-env view.

Observations are a ``Dict`` with two views:

* ``policy`` — what the robot can estimate on board, with sensor noise:
  position error to the target (3, m, world), rotation matrix body->world
  (9, row-major), linear velocity (3, m/s, world), body rates (3, rad/s),
  the last ``action_history`` commanded actions (4 each, newest first).
* ``critic`` — the same without noise, plus privileged state: rotor speeds
  (normalized speed u as 2u - 1), the episode's disturbance force (in units of the
  nominal weight) and torque (mN m), the gyro bias (rad/s x 50), the 14 randomization
  values, the episode time fraction and the privileged assist gain.

Actions are four rotor commands in [-1, 1]: the normalized motor command is
u = (a + 1) / 2, the rotor speed target u * max_rpm of the vehicle preset
(``QuadrotorConfig.vehicle``). Auto-reset happens in the same step (gymnasium
``AutoresetMode.SAME_STEP``): the final observation of a finished episode is in
``info["final_obs"]`` where ``info["_final_obs"]`` is true.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import gymnasium as gym
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv

from ..single_env import SingleEnv
from . import params as P
from . import physics as K
from .config import QuadrotorConfig, check_range

BACKENDS = ("cpu", "cuda")


def _config_vector(c: QuadrotorConfig) -> np.ndarray:
    v = np.zeros(K.CFG_DIM, dtype=np.float32)
    v[K.C_DT] = c.dt
    v[K.C_SUBSTEPS] = c.substeps
    veh = c.vehicle_params
    v[K.C_MAX_RPM] = veh.max_rpm
    v[K.C_INV_MAX_RPM] = 1.0 / veh.max_rpm
    v[K.C_MOTOR] = c.motor_dynamics
    v[K.C_DRAG] = c.rotor_drag
    v[K.C_GROUND] = c.ground_effect
    v[K.C_NOISE] = c.sensor_noise
    v[K.C_HOME : K.C_HOME + 3] = c.home_target
    v[K.C_TERM_POS] = c.termination_m
    v[K.C_TERM_VEL] = c.termination_velocity_mps
    v[K.C_TERM_ANGVEL] = c.termination_angvel_rps
    v[K.C_EP_STEPS] = c.episode_steps
    v[K.C_R_SCALE] = c.reward_scale
    v[K.C_R_CONST] = c.reward_constant
    v[K.C_R_TERM] = c.termination_penalty
    v[K.C_HIST] = c.action_history
    v[K.C_LAST_WINDOW] = min(c.episode_steps, max(1, round(1.0 / c.dt)))
    v[K.C_GRAVITY] = c.gravity
    c0, c1, c2 = veh.thrust_curve
    v[K.C_MASS] = veh.mass
    v[K.C_IXX : K.C_IZZ + 1] = veh.inertia
    v[K.C_TC0], v[K.C_TC1], v[K.C_TC2] = c0, c1, c2
    # the curve per RPM of the state (computed in float64: for l2f_paper k2 is k_f exactly)
    v[K.C_K1] = c1 / veh.max_rpm
    v[K.C_K2] = c2 / veh.max_rpm**2
    v[K.C_KM] = veh.torque_to_thrust
    v[K.C_TAU_RISE] = veh.motor_tau_rise
    v[K.C_TAU_FALL] = veh.motor_tau_fall
    v[K.C_DRAG_XY] = veh.drag_xy
    v[K.C_DRAG_Z] = veh.drag_z
    v[K.C_RX : K.C_RX + 4] = [xy[0] for xy in veh.rotor_xy]
    v[K.C_RY : K.C_RY + 4] = [xy[1] for xy in veh.rotor_xy]
    v[K.C_YAW_DIR : K.C_YAW_DIR + 4] = veh.rotor_yaw_dir
    return v


def seed_streams(seed: int | None, n: int) -> np.ndarray:
    """Independent per-env SplitMix64 states from one seed (SeedSequence spawns)."""
    ss = np.random.SeedSequence(seed)
    return ss.generate_state(n, dtype=np.uint64)


class QuadrotorVecEnv(VectorEnv):
    """``num_envs`` Crazyflie quadrotors stepped by one numba kernel call.

    Per-env parameters (domain randomization, task, reward weights, privileged assist)
    are drawn uniformly from per-env ranges at every reset; change them at run time
    with :meth:`set_range`. Returned observation arrays are owned by the env and
    overwritten by the next call: copy what you keep.

    ``backend="cuda"`` keeps all arrays on the GPU (numba device arrays, usable from
    torch through ``__cuda_array_interface__``).
    """

    metadata = {"autoreset_mode": AutoresetMode.SAME_STEP, "render_modes": []}

    def __init__(self, num_envs: int = 1, config: QuadrotorConfig | None = None,
                 seed: int | None = None, backend: str = "cpu", **config_kwargs: Any):
        if config is None:
            config = QuadrotorConfig(**config_kwargs)
        elif config_kwargs:
            raise ValueError("pass either config= or config keyword arguments, not both")
        if int(num_envs) != num_envs or num_envs < 1:
            raise ValueError(f"num_envs must be a positive integer, got {num_envs!r}")
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        self.config = config
        self.num_envs = n = int(num_envs)
        self.backend = backend
        h = config.action_history
        dp, dc = K.policy_obs_dim(h), K.critic_obs_dim(h)
        box = lambda d: spaces.Box(-np.inf, np.inf, (d,), np.float32)  # noqa: E731
        self.single_observation_space = spaces.Dict({"policy": box(dp), "critic": box(dc)})
        self.single_action_space = spaces.Box(-1.0, 1.0, (4,), np.float32)
        self.observation_space = gym.vector.utils.batch_space(self.single_observation_space, n)
        self.action_space = gym.vector.utils.batch_space(self.single_action_space, n)
        self.param_names = [p.name for p in P.PARAMS]

        f32 = np.float32
        ranges = config.initial_ranges()
        lo = np.array([[ranges[p][0] for p in self.param_names]] * n, dtype=f32)
        hi = np.array([[ranges[p][1] for p in self.param_names]] * n, dtype=f32)
        host = {
            "state": np.zeros((n, P.STATE_DIM), f32),
            "hist": np.zeros((n, K.HIST_LEN, 4), f32),
            "ep": np.zeros((n, P.NUM_PARAMS), f32),
            "vec": np.zeros((n, P.EPISODE_DIM), f32),
            "lo": lo,
            "hi": hi,
            "rng": seed_streams(seed, n),
            "steps": np.zeros(n, np.int32),
            "acc": np.zeros((n, K.ACC_DIM), f32),
            "cfg": _config_vector(config),
            "obs_p": np.zeros((n, dp), f32),
            "obs_c": np.zeros((n, dc), f32),
            "fin_p": np.zeros((n, dp), f32),
            "fin_c": np.zeros((n, dc), f32),
            "reward": np.zeros(n, f32),
            "flags": np.zeros((n, K.FLAG_DIM), np.uint8),
            "ep_out": np.zeros((n, K.OUT_DIM), f32),
            "ep_params": np.zeros((n, P.NUM_PARAMS), f32),
        }
        # numpy arrays on the CPU, numba device arrays on CUDA: Any to mypy
        self._a: dict[str, Any]
        self._actions: Any
        self._k: Any
        if backend == "cpu":
            from . import kernels_cpu

            self._a = host
            self._work = kernels_cpu.scratch(n)
            self._actions = np.zeros((n, 4), f32)
            self._k = kernels_cpu
            self._compile_step()
        else:
            from numba import cuda

            from . import kernels_cuda

            self._a = {k: cuda.to_device(v) for k, v in host.items()}
            self._actions = cuda.device_array((n, 4), f32)
            self._k = kernels_cuda
        self._needs_reset = True
        # start states for the next reset of chosen envs (set_start_states), host side
        self._start = np.zeros((n, P.STATE_DIM), f32)
        self._start_pending = np.zeros(n, bool)

    # ----------------------------------------------------------------- kernels
    def _compile_step(self) -> None:
        """Compile the CPU step kernel for these array types now (or load it from numba's cache).

        Otherwise the first ``step()`` pays for it (~20 s on a 2-core machine with a cold
        cache), inside whatever the caller is timing, e.g. a training loop.
        """
        import numba

        self._k.step.compile(tuple(numba.typeof(x) for x in self._step_args(self._actions)))

    def _step_args(self, actions: Any) -> tuple[Any, ...]:
        """The step kernel's arguments (the CPU one also takes its scratch buffers)."""
        a = self._a
        return (actions, a["state"], a["hist"], a["ep"], a["vec"], a["lo"], a["hi"], a["rng"], a["steps"],
                a["acc"], a["cfg"], a["obs_p"], a["obs_c"], a["fin_p"], a["fin_c"], a["reward"], a["flags"],
                a["ep_out"], a["ep_params"], *((self._work,) if self.backend == "cpu" else ()))

    def _launch(self, name: str, *args: Any) -> Any:
        fn = getattr(self._k, name)
        if self.backend == "cpu":
            return fn(*args)
        # SplitMix64 relies on wrapping uint64 arithmetic; the CUDA simulator runs it
        # on NumPy scalars, which warn on the (intended) overflow.
        with np.errstate(over="ignore"):
            return fn[self._k.blocks(self.num_envs), self._k.THREADS](*args)

    def _host(self, key: str) -> np.ndarray:
        a = self._a[key]
        out: np.ndarray = a if self.backend == "cpu" else a.copy_to_host()
        return out

    def _obs(self) -> dict[str, Any]:
        return {"policy": self._a["obs_p"], "critic": self._a["obs_c"]}

    def _reset_mask(self, mask: np.ndarray) -> None:
        a = self._a
        m = mask.astype(np.uint8)
        if self.backend == "cuda":
            from numba import cuda

            m = cuda.to_device(m)
        self._launch("reset", m, a["state"], a["hist"], a["ep"], a["vec"], a["lo"], a["hi"],
                     a["rng"], a["steps"], a["acc"], a["cfg"])

    def _observe(self) -> None:
        a = self._a
        self._launch("observe", a["state"], a["hist"], a["ep"], a["vec"], a["rng"], a["steps"],
                     a["cfg"], a["obs_p"], a["obs_c"])

    # --------------------------------------------------------------- gymnasium
    def reset(self, *, seed: int | None = None,
              options: dict[str, Any] | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
        """Reset all envs, or a subset.

        ``options`` may hold ``reset_mask`` (bool (N,)), or ``state`` ((k, 17): pos,
        quat wxyz, vel, body rates, RPM) with ``env_ids`` (k indices; all envs if
        omitted) to start those envs from given states. Episode parameters are drawn
        as usual; the given state replaces the drawn one.
        """
        if seed is not None:
            streams = seed_streams(seed, self.num_envs)
            if self.backend == "cpu":
                self._a["rng"][:] = streams
            else:
                self._a["rng"].copy_to_device(streams)
        options = options or {}
        unknown = set(options) - {"reset_mask", "state", "env_ids"}
        if unknown:
            raise ValueError(f"unknown reset option(s) {sorted(unknown)}; use reset_mask, state, env_ids")
        mask = np.ones(self.num_envs, bool)
        if "reset_mask" in options:
            mask = np.asarray(options["reset_mask"], bool)
            if mask.shape != (self.num_envs,):
                raise ValueError(f"reset_mask must have shape ({self.num_envs},), got {mask.shape}")
        ids = None
        if "state" in options:
            ids = np.arange(self.num_envs) if options.get("env_ids") is None else np.asarray(options["env_ids"], np.int64)
            states = np.asarray(options["state"], np.float32)
            if states.shape != (len(ids), P.STATE_DIM):
                raise ValueError(f"state must have shape ({len(ids)}, {P.STATE_DIM}), got {states.shape}")
            if not np.all(np.isfinite(states)):
                raise ValueError("state contains non-finite values")
            mask = np.zeros(self.num_envs, bool)
            mask[ids] = True
        self._reset_mask(mask)
        if ids is not None:
            state = self._host("state")
            q = states[:, 3:7]
            norm = np.linalg.norm(q, axis=1, keepdims=True)
            if np.any(norm < 1e-6):
                raise ValueError("state quaternion (columns 3:7) must be non-zero")
            states = states.copy()
            states[:, 3:7] = q / norm
            state[ids] = states
            if self.backend == "cuda":
                self._a["state"].copy_to_device(state)
            mask[ids] = False  # an explicit state wins over a pending start state
        self._apply_start_states(mask)
        self._observe()
        self._needs_reset = False
        return self._obs(), {}

    def step(self, actions: Any) -> tuple[dict[str, Any], Any, np.ndarray, np.ndarray, dict[str, Any]]:
        """Step all envs with actions (N, 4) in [-1, 1]; see the module docstring."""
        if self._needs_reset:
            raise RuntimeError("call reset() before step()")
        if self.backend == "cpu":
            act = np.asarray(actions, dtype=np.float32)
            if act.shape != (self.num_envs, 4):
                raise ValueError(f"actions must have shape ({self.num_envs}, 4), got {act.shape}")
            if not act.flags.c_contiguous:
                act = np.ascontiguousarray(act)
        else:
            act = actions if hasattr(actions, "__cuda_array_interface__") else self._to_device(actions)
        self._launch("step", *self._step_args(act))
        if self._start_pending.any():
            flags = self._host("flags")
            done = (flags[:, K.F_TERMINATED] | flags[:, K.F_TRUNCATED]).astype(bool)
            ids = self._apply_start_states(done)
            if len(ids):
                self._observe_ids(ids)
        return self._outputs()

    # ------------------------------------------------------------ start states
    def policy_symmetries(self) -> list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
        """The vehicle's exact symmetries on the policy view (``sims.quadrotor.symmetry``).

        One ``(obs_index, obs_sign, action_index, action_sign)`` per group element but the
        identity: if ``a`` is the right command for policy view ``o``, then
        ``a[:, action_index] * action_sign`` is the right one for ``o[:, obs_index] * obs_sign``.
        Exact under every randomization of ``params.py`` (all are diagonal or the same per rotor).
        """
        from .symmetry import SYMMETRIES, action_map, policy_view_map

        h = self.config.action_history
        return [(*policy_view_map(s, h), action_map(s), np.ones(4, np.float32)) for s in SYMMETRIES]

    def set_start_states(self, states: npt.ArrayLike, env_ids: npt.ArrayLike | None = None) -> None:
        """Start envs ``env_ids`` (all if None) from ``states`` at their next reset.

        ``states`` is (k, 17) in the layout of :attr:`state` (pos, quat wxyz, vel, body
        rates, RPM) except that the position is relative to the target (as in
        :attr:`relative_state`), so a state fits whatever target the new episode draws.
        It applies once, at the env's next reset (the auto-reset in ``step`` or
        ``reset``); episode parameters are drawn as usual. For start-state curricula.
        """
        ids = np.arange(self.num_envs) if env_ids is None else np.asarray(env_ids, np.int64).reshape(-1)
        st = np.asarray(states, np.float32)
        if st.shape != (len(ids), P.STATE_DIM):
            raise ValueError(f"states must have shape ({len(ids)}, {P.STATE_DIM}), got {st.shape}")
        if len(ids) and (ids.min() < 0 or ids.max() >= self.num_envs):
            raise ValueError(f"env_ids must lie in [0, {self.num_envs}), got {ids.min()}..{ids.max()}")
        if not np.all(np.isfinite(st)):
            raise ValueError("states contain non-finite values")
        norm = np.linalg.norm(st[:, 3:7], axis=1, keepdims=True)
        if np.any(norm < 1e-6):
            raise ValueError("state quaternion (columns 3:7) must be non-zero")
        st = st.copy()
        st[:, 3:7] /= norm
        self._start[ids] = st
        self._start_pending[ids] = True

    @property
    def pending_start_states(self) -> np.ndarray:
        """Which envs start their next episode from a state given to :meth:`set_start_states` (copy)."""
        return self._start_pending.copy()

    @property
    def relative_state(self) -> np.ndarray:
        """:attr:`state` with the position relative to the target (a copy): what set_start_states takes."""
        s = np.array(self.state, copy=True)
        s[:, :3] -= self.targets
        return s

    def _apply_start_states(self, reset: np.ndarray) -> np.ndarray:
        """Overwrite the freshly reset states of envs in ``reset`` that have a pending start state."""
        ids = np.flatnonzero(reset & self._start_pending)
        if len(ids) == 0:
            return ids
        state = self._host("state")
        s = self._start[ids].copy()
        s[:, :3] += self._host("vec")[ids, P.E_TARGET : P.E_TARGET + 3]
        state[ids] = s
        self._start_pending[ids] = False
        if self.backend == "cuda":
            self._a["state"].copy_to_device(state)
        return ids

    def _observe_ids(self, ids: np.ndarray) -> None:
        """Recompute both observation views of envs ``ids`` (after their state was replaced)."""
        if self.backend == "cuda":
            self._observe()  # one launch for all envs is cheaper than gathering on the device
            return
        a = self._a
        sub = {k: a[k][ids] for k in ("state", "hist", "ep", "vec", "rng", "steps", "obs_p", "obs_c")}
        self._launch("observe", sub["state"], sub["hist"], sub["ep"], sub["vec"], sub["rng"], sub["steps"],
                     a["cfg"], sub["obs_p"], sub["obs_c"])
        a["obs_p"][ids], a["obs_c"][ids], a["rng"][ids] = sub["obs_p"], sub["obs_c"], sub["rng"]

    def _to_device(self, actions: Any) -> Any:
        act = np.ascontiguousarray(actions, dtype=np.float32)
        if act.shape != (self.num_envs, 4):
            raise ValueError(f"actions must have shape ({self.num_envs}, 4), got {act.shape}")
        self._actions.copy_to_device(act)
        return self._actions

    def _outputs(self) -> tuple[dict[str, Any], Any, np.ndarray, np.ndarray, dict[str, Any]]:
        flags = self._host("flags")
        term = flags[:, K.F_TERMINATED].view(bool)
        trunc = flags[:, K.F_TRUNCATED].view(bool)
        done = term | trunc
        info: dict = {"nonfinite_resets": int(flags[:, K.F_NONFINITE].sum())}
        if done.any():
            ep = self._host("ep_out")
            info["final_obs"] = {"policy": self._a["fin_p"], "critic": self._a["fin_c"]}
            info["_final_obs"] = done
            info["episode"] = {
                "return": ep[:, K.O_RETURN],
                "length": ep[:, K.O_LENGTH],
                "survived": ep[:, K.O_SURVIVED] > 0.5,
                "position_error_m": ep[:, K.O_POS],
                "tilt_deg": ep[:, K.O_TILT],
                "yaw_deg": ep[:, K.O_YAW],
                "params": self._host("ep_params"),
            }
            info["_episode"] = done
        reward = self._a["reward"]
        if self.backend == "cuda":
            reward = reward.copy_to_host()
        return self._obs(), reward, term.copy(), trunc.copy(), info

    # ------------------------------------------------------------- checkpoints
    def state_dict(self) -> dict[str, Any]:
        """Everything the next ``step()`` depends on (states, per-env ranges and RNG streams,
        episode accumulators, pending start states), as numpy copies: a vector env restored
        with ``load_state_dict`` continues exactly as this one would."""
        return {"arrays": {k: self._host(k).copy() for k in self._a},
                "start": self._start.copy(), "start_pending": self._start_pending.copy(),
                "needs_reset": bool(self._needs_reset)}

    def load_state_dict(self, d: dict[str, Any]) -> None:
        """Restore ``state_dict()`` of a vector env with the same ``num_envs`` and config."""
        arrays = d["arrays"]
        if set(arrays) != set(self._a):
            raise ValueError(f"env state has arrays {sorted(arrays)}, expected {sorted(self._a)}")
        for k, v in arrays.items():
            v = np.asarray(v)
            cur = self._host(k)
            if v.shape != cur.shape or v.dtype != cur.dtype:
                raise ValueError(f"env state {k!r}: shape {v.shape} {v.dtype}, expected {cur.shape} {cur.dtype}")
            if self.backend == "cpu":
                cur[...] = v
            else:
                self._a[k].copy_to_device(np.ascontiguousarray(v))
        self._start[...] = d["start"]
        self._start_pending[...] = d["start_pending"]
        self._needs_reset = bool(d["needs_reset"])

    # ----------------------------------------------------- parameters at run time
    def get_range(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """Per-env (low, high) of parameter ``name`` (copies)."""
        j = self._index(name)
        return self._host("lo")[:, j].copy(), self._host("hi")[:, j].copy()

    def set_range(self, name: str, low: npt.ArrayLike, high: npt.ArrayLike,
                  env_ids: npt.ArrayLike | None = None) -> None:
        """Set per-env sampling range of ``name``; takes effect at each env's next reset."""
        j = self._index(name)
        ids = slice(None) if env_ids is None else np.asarray(env_ids, np.int64)
        lo = self._host("lo")
        hi = self._host("hi")
        new_lo = np.broadcast_to(np.asarray(low, np.float32), lo[ids, j].shape)
        new_hi = np.broadcast_to(np.asarray(high, np.float32), hi[ids, j].shape)
        check_range(name, new_lo, new_hi)
        lo[ids, j] = new_lo
        hi[ids, j] = new_hi
        if self.backend == "cuda":
            self._a["lo"].copy_to_device(lo)
            self._a["hi"].copy_to_device(hi)

    def _index(self, name: str) -> int:
        if name not in P.PARAM_INDEX:
            raise KeyError(f"unknown parameter {name!r}; known: {', '.join(self.param_names)}")
        return P.PARAM_INDEX[name]

    @property
    def state(self) -> np.ndarray:
        """True state (N, 17): pos, quat wxyz, vel, body rates, RPM. A view on CPU."""
        return self._host("state")

    @property
    def episode_params(self) -> np.ndarray:
        """Parameter values (N, NUM_PARAMS) of the episodes now running."""
        return self._host("ep")

    @property
    def targets(self) -> np.ndarray:
        """Current target positions (N, 3), world frame."""
        return self._host("vec")[:, P.E_TARGET : P.E_TARGET + 3]

    @property
    def disturbance_forces(self) -> np.ndarray:
        """Constant disturbance forces (N, 3) of the episodes now running, N, world frame."""
        return self._host("vec")[:, P.E_DIST_F : P.E_DIST_F + 3]


class QuadrotorEnv(SingleEnv):
    """Single quadrotor with the standard gymnasium API (a 1-env ``QuadrotorVecEnv``)."""

    def __init__(self, config: QuadrotorConfig | None = None, **config_kwargs: Any):
        self._adopt(QuadrotorVecEnv(1, config=config, **config_kwargs))

    @property
    def state(self) -> np.ndarray:
        s: np.ndarray = self.vec.state[0]
        return s

"""RLtools' l2f simulator (``l2f`` on PyPI, tested with 2.0.18) behind our vector-env interface.

l2f is the simulator RAPTOR was trained in (Eschmann et al.), written and identified by others:
its Crazyflie (``parameters/dynamics/crazyflie.h`` of RLtools) is 30.6 g with decks, inertia
9.4e-6 / 9.6e-6 / 1.75e-5 kg m^2, a quadratic thrust curve over the normalized command
(thrust/weight ~1.47), rotor time constants 0.055 s rising and 0.249 s falling, and no sensor
noise in the package's build. Our vehicle model differs in all of these, which is the point of
flying in it.

What this wrapper adds, so that our evaluation code runs unchanged:

* **observations in our policy-view layout** (``sims.quadrotor.env``): l2f's own observation
  starts with position (relative to its target, the origin), rotation matrix row-major,
  linear velocity (world) and angular velocity (body) in FLU (the RAPTOR README), which are our
  first 18 values; the ``history`` past commands (newest first) are kept here, as our simulator
  does (at a start: the command of the initial rotor speed, l2f's own convention). The critic
  view is the same array (l2f's build has no observation noise).
* **our starts** (``reset(starts=...)``, (N, 17) relative states in our layout: position
  relative to the target, quaternion wxyz, velocity, body rates; the rotor speeds are not
  taken: l2f's rotors start at its ``hovering_throttle_relative``, as in its ``initial_state``).
* **our hover termination**: position error > ``termination_m``, speed > ``max_speed``, body
  rate > ``max_rate``, below the ground (``ground_z`` under the target, our home target's
  height), or a non-finite state; truncation at ``episode_steps``. l2f's own termination
  (1 m, 2 m/s) is not used. Finished envs are restarted from l2f's own start distribution
  (those later episodes are not evaluated by ``fly``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import UserError

L2F_VERSION_TESTED = "2.0.18"

# Our multiplicative randomization scales (sims.quadrotor.params) that have a counterpart in l2f's
# dynamics parameters, applied to l2f's own Crazyflie constants. Not transferable: rotor drag,
# ground effect and latency (not in l2f's build), sensor noise (l2f's build has none), the constant
# disturbance force and torque (l2f keeps them in its state, which the Python binding does not expose).
SCALED_DYNAMICS: dict[str, tuple[str, ...]] = {
    "randomization.mass_scale": ("mass",),
    "randomization.inertia_xx_scale": ("J", "0"),
    "randomization.inertia_yy_scale": ("J", "1"),
    "randomization.inertia_zz_scale": ("J", "2"),
    "randomization.thrust_coeff_scale": ("rotor_thrust_coefficients",),
    "randomization.torque_coeff_scale": ("rotor_torque_constants",),
    "randomization.motor_tau_up_scale": ("rotor_time_constants_rising",),
    "randomization.motor_tau_down_scale": ("rotor_time_constants_falling",),
}


def scaled_dynamics(dynamics: dict, scales: dict[str, float]) -> dict:
    """l2f's ``dynamics`` parameter dict with our randomization ``scales`` applied (a new dict).

    Mass, thrust curve (every polynomial coefficient: thrust at each command scales), yaw torque
    constant and rotor time constants scale directly; inertia axis k scales ``J[k][k]`` and
    divides ``J_inv[k][k]``. Unknown names raise ValueError.
    """
    d: dict = json.loads(json.dumps(dynamics))  # a deep copy
    for name, x in scales.items():
        if name not in SCALED_DYNAMICS:
            raise ValueError(f"{name} has no counterpart in l2f's dynamics; known: {', '.join(SCALED_DYNAMICS)}")
        key = SCALED_DYNAMICS[name]
        x = float(x)
        if key[0] == "mass":
            d["mass"] *= x
        elif key[0] == "J":
            k = int(key[1])
            d["J"][k][k] *= x
            d["J_inv"][k][k] /= x
        elif key[0] == "rotor_thrust_coefficients":
            d[key[0]] = [[c * x for c in row] for row in d[key[0]]]
        else:
            d[key[0]] = [c * x for c in d[key[0]]]
    return d


def import_l2f() -> Any:
    try:
        import l2f
    except ImportError:
        raise UserError("--sim l2f needs RLtools' l2f simulator: pip install 'robolearn[l2f]' "
                        f"(or pip install l2f=={L2F_VERSION_TESTED}; it compiles C++ with pybind11)") from None
    return l2f


@dataclass(frozen=True)
class L2FConfig:
    """The parts of our ``QuadrotorConfig`` the wrapper honours."""

    dt: float = 0.01  # l2f's build integrates at 100 Hz; checked against the env's dt
    episode_steps: int = 500
    action_history: int = 8
    termination_m: float = 0.6
    max_speed: float = 10.0
    max_rate: float = 35.0
    ground_z: float = 1.0


class L2FHoverVecEnv:
    """``num_envs`` l2f Crazyflies (one of l2f's compiled vector sizes is used, >= num_envs)."""

    def __init__(self, num_envs: int, config: L2FConfig | None = None, seed: int = 0):
        l2f = import_l2f()
        from l2f import vector_selector

        self.config = config or L2FConfig()
        self.num_envs = n = int(num_envs)
        sizes = sorted(vector_selector)
        fit = [s for s in sizes if s >= n]
        if not fit:
            raise UserError(f"l2f is compiled for at most {sizes[-1]} envs at once, asked for {n}")
        self._m = fit[0]
        self._v = vector_selector[self._m]
        v = self._v
        self._device = l2f.Device()
        self._rng = v.VectorRng()
        self._env = v.VectorEnvironment()
        self._params = v.VectorParameters()
        self._state = v.VectorState()
        self._next = v.VectorState()
        v.initialize_rng(self._device, self._rng, int(seed))
        v.initialize_environment(self._device, self._env)
        v.initial_parameters(self._device, self._env, self._params)
        single = l2f.Environment()
        l2f.initialize_environment(self._device, single)
        p = l2f.Parameters()
        l2f.initial_parameters(self._device, single, p)
        self.parameters: dict = json.loads(l2f.parameters_to_json(self._device, single, p))
        dt = float(self.parameters["integration"]["dt"])
        if abs(dt - self.config.dt) > 1e-9:
            raise UserError(f"l2f integrates at dt {dt} s; the benchmark's env.sim.dt is {self.config.dt} s")
        dyn = self.parameters["dynamics"]
        lim = dyn["action_limit"]
        # l2f's initial_state: rotors at hovering_throttle_relative; its action history holds that command
        self.start_command = float(2.0 * dyn["hovering_throttle_relative"] - 1.0)
        self._obs_l2f = np.zeros((self._m, int(self._env.OBSERVATION_DIM)), np.float32)
        h = self.config.action_history
        self._hist = np.full((self._m, max(h, 1), 4), self.start_command, np.float32)
        self._steps = np.zeros(self._m, np.int64)
        self._act = np.zeros((self._m, 4), np.float32)
        self._done_mask = np.zeros(self._m, bool)
        assert lim["min"] < lim["max"]
        self._l2f = l2f
        self._single = single

    def set_parameter_scales(self, scales: dict[str, np.ndarray]) -> None:
        """Per-env l2f vehicles: our randomization scales ((num_envs,) each) on l2f's own Crazyflie.

        Names outside :data:`SCALED_DYNAMICS` raise ValueError. Padding rows (l2f's vector size
        above ``num_envs``) repeat the first envs.
        """
        l2f = self._l2f
        cols = {k: np.asarray(v, np.float64).reshape(-1) for k, v in scales.items()}
        for k, v in cols.items():
            if v.shape != (self.num_envs,):
                raise ValueError(f"{k}: need ({self.num_envs},) scales, got {v.shape}")
        base = self.parameters
        out = []
        for i in range(self._m):
            j = i % self.num_envs
            full = dict(base)
            full["dynamics"] = scaled_dynamics(base["dynamics"], {k: v[j] for k, v in cols.items()})
            p = l2f.Parameters()
            l2f.initial_parameters(self._device, self._single, p)
            l2f.parameters_from_json(self._device, self._single, json.dumps(full), p)
            out.append(p)
        self._params.parameters = out

    # ------------------------------------------------------------------ views
    def _observe(self) -> np.ndarray:
        self._v.observe(self._device, self._env, self._params, self._state, self._obs_l2f, self._rng)
        return self._obs_l2f

    def _view(self) -> dict[str, np.ndarray]:
        base = self._obs_l2f[: self.num_envs, :18]
        h = self.config.action_history
        hist = self._hist[: self.num_envs, :h].reshape(self.num_envs, 4 * h)
        pv = np.concatenate([base, hist], axis=1).astype(np.float32)
        return {"policy": pv, "critic": pv.copy()}

    @property
    def policy_obs_dim(self) -> int:
        return 18 + 4 * self.config.action_history

    # -------------------------------------------------------------- episodes
    def reset(self, starts: np.ndarray | None = None, seed: int | None = None) -> tuple[dict[str, np.ndarray], dict]:
        """All envs start: from ``starts`` ((num_envs, 17), our relative-state layout), else hovering at the target."""
        v = self._v
        if seed is not None:
            v.initialize_rng(self._device, self._rng, int(seed))
        v.initial_state(self._device, self._env, self._params, self._state)
        if starts is not None:
            st = np.asarray(starts, np.float64)
            if st.shape != (self.num_envs, 17):
                raise ValueError(f"starts must be ({self.num_envs}, 17), got {st.shape}")
            sts = self._state.states
            for i in range(self._m):
                row = st[i % self.num_envs]
                q = row[3:7] / np.linalg.norm(row[3:7])
                s = sts[i]
                s.position = row[0:3].tolist()
                s.orientation = q.tolist()
                s.linear_velocity = row[7:10].tolist()
                s.angular_velocity = row[10:13].tolist()
            self._state.states = sts
        self._hist[:] = self.start_command
        self._steps[:] = 0
        self._observe()
        return self._view(), {}

    def step(self, actions: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, np.ndarray, dict]:
        a = np.clip(np.asarray(actions, np.float32), -1.0, 1.0)
        if a.shape != (self.num_envs, 4):
            raise ValueError(f"actions must be ({self.num_envs}, 4), got {a.shape}")
        a = np.nan_to_num(a, nan=0.0)
        self._act[: self.num_envs] = a
        self._act[self.num_envs:] = self.start_command
        v = self._v
        v.step(self._device, self._env, self._params, self._state, self._act, self._next, self._rng)
        self._state.assign(self._next)
        if self._hist.shape[1] > 1:
            self._hist[:, 1:] = self._hist[:, :-1]
        self._hist[:, 0] = self._act
        self._steps += 1
        o = self._observe()
        c = self.config
        finite = np.isfinite(o[:, :18]).all(axis=1)
        oo = np.nan_to_num(o[:, :18])
        term = (~finite | (np.linalg.norm(oo[:, 0:3], axis=1) > c.termination_m)
                | (np.linalg.norm(oo[:, 12:15], axis=1) > c.max_speed)
                | (np.linalg.norm(oo[:, 15:18], axis=1) > c.max_rate) | (oo[:, 2] < -c.ground_z))
        trunc = ~term & (self._steps >= c.episode_steps)
        done = term | trunc
        info: dict = {}
        n = self.num_envs
        if done[:n].any():
            fin = self._view()
            info["final_obs"] = fin
            info["_final_obs"] = done[:n].copy()
        if done.any():
            v.sample_initial_state_if_truncated(self._device, self._env, self._params, self._state, done, self._rng)
            self._hist[done] = self.start_command
            self._steps[done] = 0
            self._observe()
        obs = self._view()
        return obs, np.zeros(n, np.float32), term[:n].copy(), trunc[:n].copy(), info

"""The RAPTOR foundation policy (``foundation-policy`` on PyPI) as a :class:`~robolearn.controllers.Controller`.

RAPTOR (Eschmann et al., 2025, *RAPTOR: A Foundation Policy for Quadrotor Control*) is a
Dense(22->16, ReLU) - GRU(16) - Dense(16->4) network, 2,084 parameters, trained in RLtools' l2f
simulator at 100 Hz. Conventions, from the package's README and example (version 1.0.2), and
ours, verified against the code:

==========================  ===================================  ======================================
quantity                    RAPTOR input / output                ours (``sims.quadrotor``)
==========================  ===================================  ======================================
frames                      FLU body (x fwd, y left, z up),      the same: world z up, body x forward,
                            z-up world                           y left (``params.py`` docstring)
position (3)                relative to the target, world        policy view 0:3 = position - target
orientation (9)             rotation matrix body->world,         policy view 3:12 = R(q) row-major,
                            row-major (scipy ``as_matrix``)      ``v_world = R v_body`` (physics.observe)
linear velocity (3)         world frame                          policy view 12:15, world frame
angular velocity (3)        body frame                           policy view 15:18, body frame
previous action (4)         its own last command, [-1, 1]        the simulator's action history
                                                                 (view 18:22, newest first) at a start
motor order                 FR, BR, BL, FL                       0 FR, 1 BR, 2 BL, 3 FL (ROTOR_XY)
action                      [-1, 1] -> normalized command        [-1, 1] -> rpm_min + (a+1)/2 span
control period              10 ms                                ``QuadrotorConfig.dt`` = 0.01 s
==========================  ===================================  ======================================

So the conversion is the identity on the first 18 values of our policy view (which carry our
sensor noise: RAPTOR sees what our actor sees), plus RAPTOR's own previous command. At an
episode start the previous command is the one the simulator's action history holds (our
simulator and l2f both fill it with the command of the initial rotor speed, i.e. the hover
command); with no history in the view, ``initial_action``. The command fed back is the clipped
one the motors received (l2f keeps the raw network output; the two differ only while saturated).

The network's own output layer is linear; its outputs are clipped to [-1, 1].
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import UserError

RAPTOR_OBS_DIM = 22  # position 3, rotation matrix 9, linear velocity 3, angular velocity 3, previous action 4
STATE_VIEW = slice(0, 18)  # our policy view: position error, R row-major, velocity, body rates
ACTION_HISTORY_NEWEST = slice(18, 22)  # our policy view: the newest past command


def load_raptor() -> Any:
    """The package's ``Raptor`` network (its checkpoint is checked against its example on load)."""
    try:
        from foundation_policy import Raptor
    except ImportError:
        raise UserError("the RAPTOR peer needs the foundation-policy package: pip install 'foundation-policy==1.0.2'"
                        ) from None
    return Raptor()


def raptor_observation(policy_view: np.ndarray, previous_action: np.ndarray) -> np.ndarray:
    """Our policy view (N, >=18) and RAPTOR's previous command (N, 4) -> RAPTOR's input (N, 22) float32.

    Identity on the state part: our frames, rotation-matrix layout and units are RAPTOR's
    (module docstring).
    """
    v = np.asarray(policy_view, np.float32)
    if v.ndim != 2 or v.shape[1] < 18:
        raise ValueError(f"policy view must be (N, >=18), got {v.shape}")
    return np.concatenate([v[:, STATE_VIEW], np.asarray(previous_action, np.float32)], axis=1)


def raptor_to_motor_commands(action: np.ndarray) -> np.ndarray:
    """RAPTOR's output (N, 4), motor order FR, BR, BL, FL -> our (N, 4) commands in [-1, 1], same order."""
    return np.clip(np.asarray(action, np.float32), -1.0, 1.0)


class RaptorController:
    """RAPTOR flying ``num_envs`` envs, with per-env GRU state and previous command.

    Call :meth:`reset` with an all-true mask before the first :meth:`act`, and with
    ``terminated | truncated`` after every step (the vector env auto-resets those envs).
    """

    name = "raptor"

    def __init__(self, num_envs: int, initial_action: float = 0.0, network: Any = None):
        if int(num_envs) != num_envs or num_envs < 1:
            raise ValueError(f"num_envs must be a positive integer, got {num_envs!r}")
        self.num_envs = int(num_envs)
        self.net = network if network is not None else load_raptor()
        grus = [layer for layer in self.net.layers if hasattr(layer, "initial_hidden_state")]
        if len(grus) != 1:
            raise ValueError(f"expected one GRU layer in the RAPTOR network, found {len(grus)}")
        self._gru = grus[0]
        self._h0 = np.asarray(self._gru.initial_hidden_state, np.float32).reshape(-1)
        self.initial_action = float(initial_action)
        # the package's GRU keeps its state as (batch, hidden); loading leaves the example's batch there
        self._gru.state = np.tile(self._h0, (self.num_envs, 1))
        self.previous_action = np.full((self.num_envs, 4), self.initial_action, np.float32)
        self._fresh = np.ones(self.num_envs, bool)
        from threadpoolctl import ThreadpoolController

        # The package evaluates with numpy matmuls of (48, 16) x (16, N): multi-threaded BLAS on
        # such small products costs far more than one thread on a loaded machine (measure with
        # python -m benchmarks.peers --time-raptor), so each step runs BLAS on one thread.
        self._blas = ThreadpoolController()

    @property
    def hidden(self) -> np.ndarray:
        """GRU hidden state (N, 16), a copy."""
        return np.array(self._gru.state, np.float32, copy=True)

    def num_parameters(self) -> int:
        n = 0
        for layer in self.net.layers:
            for k, v in vars(layer).items():
                if isinstance(v, np.ndarray) and k != "state":
                    n += v.size
        return n

    def reset(self, mask: np.ndarray) -> None:
        m = np.asarray(mask, bool).reshape(-1)
        if m.shape != (self.num_envs,):
            raise ValueError(f"reset mask must have shape ({self.num_envs},), got {m.shape}")
        if not m.any():
            return
        state = np.asarray(self._gru.state, np.float32)
        state[m] = self._h0
        self._gru.state = state
        self.previous_action[m] = self.initial_action
        self._fresh |= m

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        view = np.asarray(obs["policy"], np.float32)
        if view.shape[0] != self.num_envs:
            raise ValueError(f"RAPTOR controller flies {self.num_envs} envs, got observations for {view.shape[0]}")
        if self._fresh.any() and view.shape[1] >= ACTION_HISTORY_NEWEST.stop:
            f = self._fresh
            self.previous_action[f] = view[f, ACTION_HISTORY_NEWEST]
        self._fresh[:] = False
        x = raptor_observation(view, self.previous_action)
        # a diverged env (masked out by the caller) must not put NaN into the others' batch math
        x = np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)
        with self._blas.limit(limits=1, user_api="blas"):
            y = self.net.evaluate_step(x)
        a = raptor_to_motor_commands(y)
        self.previous_action = a.copy()
        return a

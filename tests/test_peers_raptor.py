"""The RAPTOR adapter: conventions on hand-built states, per-env GRU resets, closed-loop hover."""

from __future__ import annotations

import math

import numpy as np
import pytest

from robolearn.controllers import Controller, fly
from robolearn.peers.raptor import RAPTOR_OBS_DIM, RaptorController, raptor_observation
from sims.quadrotor import QuadrotorConfig, QuadrotorVecEnv
from sims.quadrotor import params as P


def _env_at(states_rel: np.ndarray, history: int = 8, noise: bool = False, **kw) -> tuple[QuadrotorVecEnv, dict]:
    n = len(states_rel)
    env = QuadrotorVecEnv(n, QuadrotorConfig(action_history=history, sensor_noise=noise, **kw), seed=0)
    env.set_start_states(states_rel)
    obs, _ = env.reset(seed=0)
    return env, obs


def _state(pos=(0, 0, 0), quat=(1, 0, 0, 0), vel=(0, 0, 0), rates=(0, 0, 0)) -> np.ndarray:
    s = np.zeros(P.STATE_DIM, np.float32)
    s[0:3], s[3:7], s[7:10], s[10:13] = pos, quat, vel, rates
    s[13:17] = P.hover_rpm()
    return s


def test_level_hover_at_target_gives_raptors_documented_input():
    _, obs = _env_at(np.stack([_state()]))
    prev = np.array([[0.1, 0.2, 0.3, 0.4]], np.float32)
    x = raptor_observation(obs["policy"], prev)
    expect = np.array([0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0.1, 0.2, 0.3, 0.4], np.float32)
    assert x.shape == (1, RAPTOR_OBS_DIM)
    np.testing.assert_allclose(x[0], expect, atol=1e-6)


def test_frames_on_hand_built_states():
    yaw = math.pi / 2  # nose along world +y
    roll = 0.3  # positive roll about body x lifts the body y (left) axis in FLU
    states = np.stack([
        _state(pos=(0.1, -0.2, 0.3), quat=(math.cos(yaw / 2), 0, 0, math.sin(yaw / 2)), vel=(1.0, 0, 0), rates=(0.5, 0, 0)),
        _state(quat=(math.cos(roll / 2), math.sin(roll / 2), 0, 0)),
    ])
    _, obs = _env_at(states)
    x = raptor_observation(obs["policy"], np.zeros((2, 4), np.float32))
    # position relative to the target, world frame
    np.testing.assert_allclose(x[0, 0:3], [0.1, -0.2, 0.3], atol=1e-5)
    r = x[0, 3:12].reshape(3, 3)  # row-major body->world
    np.testing.assert_allclose(r @ [1, 0, 0], [0, 1, 0], atol=1e-6)  # body forward = world +y
    np.testing.assert_allclose(r @ [0, 1, 0], [-1, 0, 0], atol=1e-6)  # body left = world -x
    # velocity stays in the world frame, body rates in the body frame (not rotated by the yaw)
    np.testing.assert_allclose(x[0, 12:15], [1.0, 0, 0], atol=1e-6)
    np.testing.assert_allclose(x[0, 15:18], [0.5, 0, 0], atol=1e-6)
    r2 = x[1, 3:12].reshape(3, 3)
    np.testing.assert_allclose(r2[:, 1], [0, math.cos(roll), math.sin(roll)], atol=1e-6)  # FLU: +roll lifts body y


def test_motor_order_is_raptors():
    # RAPTOR: front-right, back-right, back-left, front-left, x forward, y left
    from sims.quadrotor.vehicles import VEHICLES

    for v in VEHICLES.values():
        signs = [(np.sign(x), np.sign(y)) for x, y in v.rotor_xy]
        assert signs == [(1, -1), (-1, -1), (-1, 1), (1, 1)], v.name
        # and the yaw reaction alternates starting with FR clockwise seen from above (l2f crazyflie.h: -1, +1, -1, +1)
        assert tuple(v.rotor_yaw_dir) == (-1.0, 1.0, -1.0, 1.0), v.name


def test_reset_mask_resets_only_those_rows():
    rng = np.random.default_rng(0)
    n = 4
    a, b = RaptorController(n), RaptorController(n)
    assert isinstance(a, Controller)
    assert a.num_parameters() == 2084
    a.reset(np.ones(n, bool))
    b.reset(np.ones(n, bool))
    h0 = a.hidden.copy()

    def obs() -> dict:
        v = np.zeros((n, 18 + 32), np.float32)
        v[:, :18] = rng.normal(0, 0.3, (n, 18))
        v[:, [3, 7, 11]] += 1.0
        v[:, 18:] = 0.3
        return {"policy": v}

    for _ in range(10):
        a.act(obs())
    h_before = a.hidden
    assert not np.allclose(h_before, h0)
    mask = np.array([False, True, False, True])
    a.reset(mask)
    h_after = a.hidden
    np.testing.assert_array_equal(h_after[mask], h0[mask])
    np.testing.assert_array_equal(h_after[~mask], h_before[~mask])
    # reset rows now behave exactly like a fresh controller's, the others carry their history
    o = obs()
    ya, yb = a.act(o), b.act(o)
    np.testing.assert_allclose(ya[mask], yb[mask], atol=1e-6)
    assert not np.allclose(ya[~mask], yb[~mask], atol=1e-4)
    # the previous command of a restarted env is the simulator's action history, then its own command
    np.testing.assert_allclose(b.previous_action, yb)
    with pytest.raises(ValueError, match="shape"):
        a.reset(np.ones(3, bool))


def _near_hover_config(steps: int) -> dict:
    return dict(episode_steps=steps, ranges={"task.start_radius_m": (0.05, 0.05), "task.start_tilt_rad": (0.1, 0.1),
                                             "task.start_speed_mps": (0.1, 0.1), "task.start_angvel_rps": (0.1, 0.1)})


def test_raptor_hovers_our_nominal_model_from_near_hover():
    """The nominal model is RLtools' 2023 Crazyflie (the l2f_paper constants); RAPTOR, a generalist, holds it."""
    n, steps = 32, 300
    env = QuadrotorVecEnv(n, QuadrotorConfig(action_history=8, **_near_hover_config(steps)), seed=5)
    obs, _ = env.reset(seed=5)
    c = RaptorController(n)
    f = fly(env, c, obs, steps)
    assert f.survived.all()
    err = np.linalg.norm(f.position_error[-100:], axis=-1)
    assert err.mean() < 0.03, err.mean()
    assert err.max() < 0.06, err.max()
    # the simulator's own accumulators agree with what fly() recorded
    np.testing.assert_allclose(f.episode_info["position_error_m"], err.mean(axis=0), rtol=1e-4, atol=1e-6)


def test_raptor_sees_its_own_previous_command():
    n, steps = 8, 50
    env = QuadrotorVecEnv(n, QuadrotorConfig(action_history=2, **_near_hover_config(steps)), seed=2)
    obs, _ = env.reset(seed=2)
    c = RaptorController(n)
    c.reset(np.ones(n, bool))
    for _ in range(steps - 1):
        a = c.act(obs)
        obs, _, term, trunc, _ = env.step(a)
        c.reset(term | trunc)
        # the simulator's newest action history entry is the command RAPTOR will see as its previous one
        np.testing.assert_allclose(obs["policy"][:, 18:22], c.previous_action, atol=1e-7)


def test_without_action_history_the_start_command_is_initial_action():
    _, obs = _env_at(np.stack([_state()]), history=0)
    c = RaptorController(1, initial_action=0.25)
    c.reset(np.ones(1, bool))
    x = raptor_observation(obs["policy"], c.previous_action)
    np.testing.assert_allclose(x[0, 18:22], 0.25)
    c.act(obs)
    assert not np.allclose(c.previous_action, 0.25)

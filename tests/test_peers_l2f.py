"""bench peers --sim l2f: RLtools' l2f simulator behind our vector-env interface (skips without l2f)."""

from __future__ import annotations

import math

import numpy as np
import pytest

try:
    import l2f  # noqa: F401

    HAVE_L2F = True
except ImportError:
    HAVE_L2F = False

pytestmark = pytest.mark.skipif(not HAVE_L2F, reason="l2f is not installed (pip install 'robolearn[l2f]'; it compiles "
                                                      "C++ with pybind11)")


def _start(pos=(0, 0, 0), quat=(1, 0, 0, 0), vel=(0, 0, 0), rates=(0, 0, 0)) -> np.ndarray:
    s = np.zeros(17, np.float32)
    s[0:3], s[3:7], s[7:10], s[10:13] = pos, quat, vel, rates
    return s


def test_l2f_observation_matches_our_policy_view_on_the_same_state():
    """Same state in both simulators -> the same first 18 values (frames, row-major R, units)."""
    from robolearn.peers.l2f_env import L2FConfig, L2FHoverVecEnv
    from sims.quadrotor import QuadrotorConfig, QuadrotorVecEnv

    q = np.array([0.9, 0.2, -0.15, 0.3])  # a general attitude: yaw, pitch and roll all non-zero
    starts = np.stack([_start((0.1, -0.2, 0.05), q / np.linalg.norm(q), (0.3, -0.1, 0.2), (0.5, -1.0, 0.7)),
                       _start()])
    ours = QuadrotorVecEnv(2, QuadrotorConfig(action_history=8, sensor_noise=False), seed=0)
    ours.set_start_states(starts)
    o_ours, _ = ours.reset(seed=0)
    lenv = L2FHoverVecEnv(2, L2FConfig(action_history=8))
    o_l2f, _ = lenv.reset(starts=starts)
    np.testing.assert_allclose(o_l2f["policy"][:, :18], o_ours["policy"][:, :18], atol=1e-5)
    # the action history holds the command of l2f's initial rotor speed (its own convention)
    np.testing.assert_allclose(o_l2f["policy"][:, 18:], lenv.start_command)
    assert o_l2f["policy"].shape[1] == lenv.policy_obs_dim == 50


def test_l2f_angular_velocity_is_body_frame():
    """Yawed by 90 deg and spinning about body x: after a step the attitude moved about body x, not world x."""
    from robolearn.peers.l2f_env import L2FConfig, L2FHoverVecEnv

    yaw = math.pi / 2
    s = _start(quat=(math.cos(yaw / 2), 0, 0, math.sin(yaw / 2)), rates=(2.0, 0, 0))
    lenv = L2FHoverVecEnv(1, L2FConfig(action_history=1))
    o0, _ = lenv.reset(starts=s[None])
    o1, *_ = lenv.step(np.full((1, 4), lenv.start_command, np.float32))
    r0 = o0["policy"][0, 3:12].reshape(3, 3)
    r1 = o1["policy"][0, 3:12].reshape(3, 3)
    # body x (= world +y) keeps its direction under a rotation about itself
    np.testing.assert_allclose(r1[:, 0], r0[:, 0], atol=2e-3)
    assert np.linalg.norm(r1[:, 1] - r0[:, 1]) > 0.01


def test_l2f_termination_and_our_hover_terms():
    from robolearn.peers.l2f_env import L2FConfig, L2FHoverVecEnv

    lenv = L2FHoverVecEnv(2, L2FConfig(action_history=2, episode_steps=5, termination_m=0.6))
    lenv.reset(starts=np.stack([_start(pos=(0.595, 0, 0), vel=(2.0, 0, 0)), _start()]))
    obs, _, term, trunc, info = lenv.step(np.full((2, 4), lenv.start_command, np.float32))
    assert term.tolist() == [True, False] and not trunc.any()
    assert info["_final_obs"].tolist() == [True, False]
    assert info["final_obs"]["critic"][0, 0] > 0.6
    for _ in range(4):
        obs, _, term, trunc, _ = lenv.step(np.full((2, 4), lenv.start_command, np.float32))
    assert trunc[1] and not term[1]


def test_bench_peers_in_l2f():
    from benchmarks.peers import run_peers

    from benchmarks.peers import Block

    r = run_peers(episodes=16, steps=100, seed=3, sim="l2f", blocks=[Block("nominal"), default_corners()])
    for b in ("nominal", "corners"):
        m = r["blocks"][b]["raptor"]
        assert 0.0 <= m["survival_rate"] <= 1.0
    assert r["l2f_dynamics"]["mass"] == pytest.approx(0.0306)  # its own Crazyflie (RLtools crazyflie.h)
    assert "randomization.drag_scale" in r["blocks"]["corners"]["_not_applied_in_l2f"]


def default_corners():
    from benchmarks.peers import default_blocks

    return default_blocks()[2]


def test_scaled_dynamics():
    from robolearn.peers.l2f_env import scaled_dynamics

    d = {"mass": 0.03, "J": [[1.0, 0, 0], [0, 2.0, 0], [0, 0, 3.0]], "J_inv": [[1.0, 0, 0], [0, 0.5, 0], [0, 0, 1 / 3]],
         "rotor_thrust_coefficients": [[0.1, 0.2, 0.3]] * 4, "rotor_torque_constants": [0.005] * 4,
         "rotor_time_constants_rising": [0.05] * 4, "rotor_time_constants_falling": [0.25] * 4}
    s = scaled_dynamics(d, {"randomization.mass_scale": 1.1, "randomization.inertia_yy_scale": 2.0,
                            "randomization.thrust_coeff_scale": 0.9, "randomization.motor_tau_down_scale": 1.5})
    assert s["mass"] == pytest.approx(0.033) and d["mass"] == 0.03  # a copy
    assert s["J"][1][1] == pytest.approx(4.0) and s["J_inv"][1][1] == pytest.approx(0.25) and s["J"][0][0] == 1.0
    assert s["rotor_thrust_coefficients"][2] == pytest.approx([0.09, 0.18, 0.27])
    assert s["rotor_time_constants_falling"] == pytest.approx([0.375] * 4) and s["rotor_time_constants_rising"] == [0.05] * 4
    with pytest.raises(ValueError, match="no counterpart"):
        scaled_dynamics(d, {"randomization.drag_scale": 2.0})


def test_parameter_scales_change_the_flight():
    """A heavier l2f vehicle on the same command sinks faster: the scales reach its dynamics."""
    from robolearn.peers.l2f_env import L2FConfig, L2FHoverVecEnv

    lenv = L2FHoverVecEnv(2, L2FConfig(action_history=1))
    lenv.set_parameter_scales({"randomization.mass_scale": np.array([1.0, 1.3])})
    lenv.reset(starts=np.stack([_start(), _start()]))
    for _ in range(10):
        obs, *_ = lenv.step(np.full((2, 4), lenv.start_command, np.float32))
    vz = obs["policy"][:, 14]
    assert vz[1] < vz[0] < 0


def test_wrapper_and_controller_fly_raptor_as_the_packages_own_l2f_loop():
    """The package README's loop (l2f's observation[:, :22] into Raptor) and ours end in the same state."""
    import l2f
    from foundation_policy import Raptor
    from l2f import vector8 as vector

    from robolearn.controllers import fly
    from robolearn.peers.l2f_env import L2FConfig, L2FHoverVecEnv
    from robolearn.peers.raptor import RaptorController

    steps = 200
    p = Raptor()
    p.reset()
    device, rng = l2f.Device(), vector.VectorRng()
    env, params = vector.VectorEnvironment(), vector.VectorParameters()
    state, nxt = vector.VectorState(), vector.VectorState()
    vector.initialize_rng(device, rng, 0)
    vector.initialize_environment(device, env)
    vector.initial_parameters(device, env, params)
    vector.initial_state(device, env, params, state)  # hovering at the target, rotors at l2f's hover throttle
    obs = np.zeros((8, env.OBSERVATION_DIM), np.float32)
    for _ in range(steps):
        vector.observe(device, env, params, state, obs, rng)
        a = p.evaluate_step(obs[:, :22]).astype(np.float32)
        vector.step(device, env, params, state, a, nxt, rng)
        state.assign(nxt)
    vector.observe(device, env, params, state, obs, rng)
    theirs = obs[0, :18].copy()

    lenv = L2FHoverVecEnv(8, L2FConfig(action_history=1, episode_steps=steps))
    o, _ = lenv.reset(starts=np.tile(_start(), (8, 1)))
    f = fly(lenv, RaptorController(8, initial_action=lenv.start_command), o, steps)
    assert f.survived.all()
    np.testing.assert_allclose(f.position_error[-1, 0], theirs[0:3], atol=1e-4)
    np.testing.assert_allclose(f.rotation[-1, 0], theirs[3:12], atol=1e-4)
    assert np.linalg.norm(theirs[0:3]) > 0.01  # RAPTOR does not sit exactly on l2f's target: a real comparison

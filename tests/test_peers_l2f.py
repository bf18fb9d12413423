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

    r = run_peers(episodes=8, steps=100, seed=3, sim="l2f")
    m = r["blocks"]["l2f_crazyflie"]["raptor"]
    assert 0.0 <= m["survival_rate"] <= 1.0
    assert r["blocks"]["l2f_crazyflie"]["_l2f_dynamics"]["mass"] == pytest.approx(0.0306)

"""Flight metrics on synthetic flights with known answers, and against the simulator's own accumulators."""

from __future__ import annotations

import math

import numpy as np
import pytest

from robolearn import flight_metrics as M


def test_steady_error_and_yaw_over_the_last_window():
    t, n = 50, 3
    e = np.zeros((t, n, 3))
    e[:, 0, 0] = 1.0  # 1 m all along
    e[-10:, 1, 2] = 0.2  # only in the window
    e[:-10, 2, 1] = 5.0  # only before the window
    np.testing.assert_allclose(M.steady_position_error(e, 10), [1.0, 0.2, 0.0])
    yaw = np.zeros((t, n))
    yaw[-10:, 0] = math.radians(10)
    yaw[-10:, 1] = math.radians(-170) - 2 * math.pi  # wraps to -170
    np.testing.assert_allclose(M.steady_abs_yaw_deg(yaw, 10), [10.0, 170.0, 0.0])
    with pytest.raises(ValueError):
        M.steady_position_error(e, 51)


def test_yaw_from_rotation():
    y = 0.7
    r = np.array([[math.cos(y), -math.sin(y), 0], [math.sin(y), math.cos(y), 0], [0, 0, 1]]).reshape(9)
    assert M.yaw_from_rotation(r) == pytest.approx(y)


def test_settling_time():
    dt = 0.01
    e = np.full((100, 3), 0.2)
    e[30:, 0] = 0.01  # inside from row 30 (t = 0.31 s) on
    e[10:, 1] = 0.01
    e[60, 1] = 0.06  # leaves the band once: settles after it
    e[:, 2] = 0.01
    e[-1, 2] = 0.3  # outside at the end: never settled
    st = M.settling_time(e, dt)
    assert st[0] == pytest.approx(0.31)
    assert st[1] == pytest.approx(0.62)
    assert np.isnan(st[2])
    assert M.settling_time(np.zeros((5, 1)), dt)[0] == pytest.approx(dt)


def test_command_rate():
    a = np.zeros((21, 2, 4))
    a[::2, 0] = 1.0
    a[1::2, 0] = -1.0  # bang-bang: |da| = 2 every step
    a[:, 1] = np.linspace(0, 1, 21)[:, None]  # a ramp: 0.05 per step
    np.testing.assert_allclose(M.command_rate(a, 20), [2.0, 0.05])
    # only the last window counts
    b = np.zeros((30, 1, 4))
    b[:10:2] = 1.0
    assert M.command_rate(b, 10)[0] == 0.0


def test_high_frequency_share():
    dt, w = 0.01, 100
    t = np.arange(w) * dt
    a = np.zeros((w, 4, 4))
    a[:, 0] = 0.3 + 0.2 * np.sin(2 * math.pi * 25 * t)[:, None]  # 25 Hz: all above 10 Hz
    a[:, 1] = 0.3 + 0.2 * np.sin(2 * math.pi * 2 * t)[:, None]  # 2 Hz: none
    a[:, 2] = 0.3  # constant: no fluctuation
    a[:, 3] = np.linspace(-0.5, 0.5, w)[:, None]  # slow drift: the Hann window keeps it low
    s = M.high_frequency_share(a, dt, w)
    assert s[0] > 0.99
    assert s[1] < 0.01
    assert s[2] == 0.0
    assert s[3] < 0.05
    mix = 0.3 + 0.1 * np.sin(2 * math.pi * 3 * t) + 0.1 * np.sin(2 * math.pi * 30 * t)
    assert M.high_frequency_share(np.tile(mix[:, None, None], (1, 1, 4)), dt, w)[0] == pytest.approx(0.5, abs=0.02)


def test_hover_summary_survivors_only():
    t, n, dt = 200, 4, 0.01
    e = np.zeros((t, n, 3))
    e[:, :, 0] = [0.01, 0.02, 0.5, 0.03]
    surv = np.array([True, True, False, True])
    s = M.hover_summary(e, np.zeros((t, n)), np.zeros((t, n, 4)), surv, dt)
    assert s["survival_rate"] == 0.75
    assert s["position_error_m"] == pytest.approx(0.02)
    assert s["settled_share"] == 1.0 and s["settling_time_s"] == pytest.approx(dt)
    assert s["command_rate"] == 0.0 and s["high_frequency_share"] == 0.0
    none = M.hover_summary(e, np.zeros((t, n)), np.zeros((t, n, 4)), np.zeros(n, bool), dt)
    assert none["survival_rate"] == 0.0 and none["position_error_m"] is None


def test_metrics_match_the_simulators_accumulators():
    """Steady error and yaw from recorded arrays equal the kernel's own per-episode averages."""
    from robolearn.controllers import fly
    from robolearn.peers.raptor import RaptorController
    from sims.quadrotor import QuadrotorConfig, QuadrotorVecEnv

    n, steps = 48, 150
    env = QuadrotorVecEnv(n, QuadrotorConfig(action_history=8, episode_steps=steps), seed=11)
    obs, _ = env.reset(seed=11)
    f = fly(env, RaptorController(n), obs, steps)
    w = M.window_steps(0.01)
    s = f.survived
    assert s.sum() > n // 2
    np.testing.assert_allclose(M.steady_position_error(f.position_error, w)[s],
                               f.episode_info["position_error_m"][s], rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(M.steady_abs_yaw_deg(M.yaw_from_rotation(f.rotation), w)[s],
                               f.episode_info["yaw_deg"][s], rtol=1e-3, atol=1e-4)
    np.testing.assert_array_equal(s, f.episode_info["survived"])

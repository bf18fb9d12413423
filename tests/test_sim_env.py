"""The gymnasium contract of the quadrotor env: views, randomization, resets, bad input."""

import math
import os
import subprocess
import sys
import textwrap

import gymnasium as gym
import numpy as np
import pytest

import sims  # noqa: F401  (registers the ids)
from sims.quadrotor import QuadrotorConfig, QuadrotorVecEnv, hover_rpm
from sims.quadrotor import params as P
from sims.quadrotor import vehicles as V


@pytest.mark.parametrize("env_id", ["robolearn/QuadrotorHover-v0", "robolearn/QuadrotorReach-v0"])
def test_gymnasium_and_sb3_env_checkers_pass(env_id):
    from gymnasium.utils.env_checker import check_env
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    env = gym.make(env_id).unwrapped
    check_env(env, skip_render_check=True)
    sb3_check_env(gym.make(env_id).unwrapped, warn=True)


def test_make_vec_uses_the_kernel_vector_env():
    venv = gym.make_vec("robolearn/QuadrotorHover-v0", num_envs=8)
    assert isinstance(venv, QuadrotorVecEnv)
    obs, _ = venv.reset(seed=1)
    assert obs["policy"].shape == (8, 26) and obs["critic"].shape == (8, 55)
    assert obs["policy"].dtype == np.float32
    obs, rew, term, trunc, info = venv.step(np.zeros((8, 4), np.float32))
    assert rew.shape == (8,) and term.dtype == bool and trunc.dtype == bool


def test_policy_view_is_noisy_critic_view_prefix():
    env = QuadrotorVecEnv(4096, seed=0)
    obs, _ = env.reset()
    d = obs["policy"] - obs["critic"][:, :26]
    # position, rotation, velocity, rate noise stds (noise_scale = 1)
    for sl, std in [(slice(0, 3), P.NOISE_POSITION_M), (slice(3, 12), P.NOISE_ROTATION),
                    (slice(12, 15), P.NOISE_VELOCITY_MPS), (slice(15, 18), P.NOISE_ANGVEL_RPS)]:
        assert np.std(d[:, sl]) == pytest.approx(std, rel=0.03)
        assert abs(np.mean(d[:, sl])) < 0.05 * std
    np.testing.assert_array_equal(d[:, 18:], 0)  # action history is exact
    clean = QuadrotorVecEnv(16, seed=0, sensor_noise=False)
    o, _ = clean.reset()
    np.testing.assert_array_equal(o["policy"], o["critic"][:, :26])


def test_critic_privileged_tail_matches_documented_layout_after_steps():
    """Rotor speeds, disturbance (in weights / mN m), gyro bias, randomization values, time
    fraction, assist.

    Guards against the kernel writing the tail out of order (a numba parfor bug once
    wrote it before the step counter advanced)."""
    n, h = 64, 2
    env = QuadrotorVecEnv(n, seed=3, sensor_noise=False)
    env.set_range("randomization.disturbance_force_n", 0.0, 0.02)
    env.set_range("randomization.disturbance_torque_nm", 0.0, 1e-4)
    env.set_range("randomization.gyro_bias_rps", 0.0, 0.02)
    env.reset()
    a = np.zeros((n, 4), np.float32)
    for k in range(1, 4):
        obs, *_ = env.step(a)
        c = obs["critic"]
        base = 18 + 4 * h
        rpm = env.state[:, 13:17]
        cfg = env.config
        np.testing.assert_allclose(c[:, base:base + 4], 2 * rpm / cfg.vehicle_params.max_rpm - 1, atol=1e-5)
        b2 = base + 13
        e = env.episode_params
        expect = e[:, :P.NUM_RANDOMIZATION].copy()
        expect[:, P.P_DIST_F] /= cfg.vehicle_params.mass * cfg.gravity
        expect[:, P.P_DIST_T] *= 1e3
        expect[:, P.P_GYRO_BIAS] *= P.GYRO_BIAS_CRITIC_SCALE
        bias = np.linalg.norm(c[:, base + 10:base + 13], axis=1)
        np.testing.assert_allclose(bias, expect[:, P.P_GYRO_BIAS], rtol=1e-4, atol=1e-7)
        assert expect[:, P.P_GYRO_BIAS].max() > 0.5
        np.testing.assert_allclose(c[:, b2:b2 + P.NUM_RANDOMIZATION], expect, rtol=1e-5, atol=1e-7)
        # disturbance vector's magnitude equals the sampled magnitude
        f = np.linalg.norm(c[:, base + 4:base + 7], axis=1)
        np.testing.assert_allclose(f, expect[:, P.P_DIST_F], rtol=1e-4, atol=1e-7)
        np.testing.assert_allclose(c[:, b2 + P.NUM_RANDOMIZATION], k / cfg.episode_steps, rtol=1e-6)
        np.testing.assert_allclose(c[:, b2 + P.NUM_RANDOMIZATION + 1], e[:, P.P_ASSIST])


def test_randomization_ranges_respected_and_latency_integer():
    env = QuadrotorVecEnv(2000, seed=3)
    env.set_range("randomization.mass_scale", 0.8, 1.3)
    env.set_range("randomization.latency_steps", 1, 3)
    env.set_range("randomization.disturbance_force_n", 0.0, 0.05)
    env.reset()
    ep = env.episode_params
    m = ep[:, P.PARAM_INDEX["randomization.mass_scale"]]
    assert m.min() >= 0.8 and m.max() <= 1.3 and m.max() - m.min() > 0.45
    lat = ep[:, P.PARAM_INDEX["randomization.latency_steps"]]
    assert set(np.unique(lat)) == {1.0, 2.0, 3.0}
    crit = env._a["vec"][:, P.E_DIST_F:P.E_DIST_F + 3]
    assert np.linalg.norm(crit, axis=1).max() <= 0.05 + 1e-6
    # per-env ranges
    env.set_range("randomization.mass_scale", 1.5, 1.5, env_ids=[0, 1])
    env.reset()
    assert np.all(env.episode_params[:2, 0] == 1.5) and np.all(env.episode_params[2:, 0] <= 1.3)


@pytest.mark.parametrize("lo,hi", [(0.1, 1.0), (1.2, 1.1), (float("nan"), 1.0)])
def test_invalid_ranges_name_the_parameter(lo, hi):
    env = QuadrotorVecEnv(2)
    with pytest.raises(ValueError, match="randomization.mass_scale"):
        env.set_range("randomization.mass_scale", lo, hi)


def test_initial_state_distribution_respected():
    env = QuadrotorVecEnv(5000, seed=5)
    env.reset()
    s = env.state
    err = s[:, :3] - env.targets
    assert np.abs(err).max() <= 0.2 + 1e-6 and np.abs(err).max() > 0.19
    tilt = np.degrees(np.arccos(np.clip(1 - 2 * (s[:, 4] ** 2 + s[:, 5] ** 2), -1, 1)))
    assert tilt.max() <= 90.0 + 1e-3 and tilt.max() > 85
    assert np.abs(s[:, 7:10]).max() <= 1.0 + 1e-6
    assert np.abs(s[:, 10:13]).max() <= 1.0 + 1e-6
    np.testing.assert_allclose(np.linalg.norm(s[:, 3:7], axis=1), 1, atol=1e-6)


def test_determinism_under_seed():
    def run(seed):
        env = QuadrotorVecEnv(64, seed=seed)
        obs, _ = env.reset()
        out = [obs["policy"].copy()]
        rng = np.random.default_rng(0)
        for _ in range(50):
            obs, rew, *_ = env.step(rng.uniform(-1, 1, (64, 4)).astype(np.float32))
            out += [obs["policy"].copy(), rew.copy()]
        return out

    a, b, c = run(7), run(7), run(8)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a[0], c[0])


def test_same_step_autoreset_and_truncation_at_episode_steps():
    env = QuadrotorVecEnv(3, seed=0, episode_steps=20, sensor_noise=False)
    env.reset()
    hover = np.full((3, 4), 2 * hover_rpm() / V.get(V.DEFAULT_VEHICLE).max_rpm - 1, np.float32)
    state = np.tile(np.array([0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, *[hover_rpm()] * 4], np.float32), (3, 1))
    env.reset(options={"state": state})
    for k in range(19):
        _, _, term, trunc, info = env.step(hover)
        assert not trunc.any() and not term.any()
    obs, _, term, trunc, info = env.step(hover)
    assert trunc.all() and not term.any()
    assert info["_final_obs"].all() and info["_episode"].all()
    np.testing.assert_array_equal(info["episode"]["length"], 20)
    assert info["episode"]["survived"].all()
    # final obs is the hovering state; the returned obs is a fresh reset
    assert np.abs(info["final_obs"]["critic"][:, :3]).max() < 1e-3
    assert np.abs(obs["critic"][:, :3]).max() > 1e-3


def test_nan_and_out_of_range_actions_never_give_nan_obs():
    env = QuadrotorVecEnv(8, seed=0)
    env.reset()
    a = np.zeros((8, 4), np.float32)
    a[1, 2] = np.nan
    a[2, 0] = np.inf
    a[3] = 50.0
    obs, rew, term, trunc, info = env.step(a)
    assert info["nonfinite_resets"] == 2
    assert term[1] and term[2] and not term[3]
    for v in obs.values():
        assert np.all(np.isfinite(v))
    assert np.all(np.isfinite(rew))
    assert np.all(np.abs(env._a["hist"][3, 0]) <= 1.0)  # clipped


def test_diverging_state_resets_without_nan():
    env = QuadrotorVecEnv(4, seed=0, termination_angvel_rps=1e12, termination_velocity_mps=1e12)
    state = env.reset()[0] and env.state.copy()
    state[0, 10:13] = 1e30
    env.reset(options={"state": state[:1], "env_ids": [0]})
    for _ in range(3):
        obs, rew, term, trunc, info = env.step(np.zeros((4, 4), np.float32))
        for v in list(obs.values()) + list(info.get("final_obs", {}).values()):
            assert np.all(np.isfinite(v))
    assert np.all(np.isfinite(env.state))


def test_latency_applies_action_from_l_steps_ago():
    env = QuadrotorVecEnv(1, seed=0, motor_dynamics=False, episode_steps=1000,
                          termination_position_m=100, home_target=(0, 0, 50))
    env.set_range("randomization.latency_steps", 3, 3)
    env.reset()
    rng = np.random.default_rng(1)
    acts = rng.uniform(-1, 1, (10, 4)).astype(np.float32)
    for k in range(10):
        env.step(acts[k : k + 1])
        if k >= 3:
            expect = 0.5 * (acts[k - 3] + 1) * env.config.vehicle_params.max_rpm
            np.testing.assert_allclose(env.state[0, 13:17], expect, rtol=1e-6)


def test_config_errors_name_the_field():
    with pytest.raises(ValueError, match="dt"):
        QuadrotorConfig(dt=-0.01)
    with pytest.raises(ValueError, match="task"):
        QuadrotorConfig(task="fly")
    with pytest.raises(ValueError, match="action_history"):
        QuadrotorConfig(action_history=20)
    with pytest.raises(ValueError, match="task.start_radius_m"):
        QuadrotorConfig(ranges={"task.start_radius_m": (0.0, 5.0)})
    with pytest.raises(TypeError):
        QuadrotorConfig(not_a_field=1)


def test_reach_task_samples_targets():
    env = QuadrotorVecEnv(1000, seed=0, task="reach")
    env.reset()
    off = env.targets - np.array([0, 0, 1.0])
    assert np.abs(off).max() <= 0.5 + 1e-6 and np.abs(off).max() > 0.45


@pytest.mark.parametrize("vehicle", ["crazyflie_2_1", "l2f_paper"])
def test_cuda_kernel_agrees_with_cpu_kernel_under_cudasim(vehicle):
    """The numba-cuda kernel (run by the CUDA simulator: no GPU in CI) matches the CPU kernel."""
    script = textwrap.dedent("""
        import numpy as np
        from sims.quadrotor import QuadrotorVecEnv
        n = 32
        cpu = QuadrotorVecEnv(n, seed=11, backend="cpu", vehicle=VEHICLE)
        gpu = QuadrotorVecEnv(n, seed=11, backend="cuda", vehicle=VEHICLE)
        for e in (cpu, gpu):
            e.set_range("randomization.mass_scale", 0.8, 1.2)
            e.set_range("randomization.latency_steps", 0, 2)
            e.set_range("randomization.disturbance_force_n", 0.0, 0.02)
            e.set_range("randomization.gyro_bias_rps", 0.0, 0.02)
            e.set_range("randomization.motor_tau_down_scale", 0.6, 1.6)
        oc, _ = cpu.reset(); og, _ = gpu.reset()
        worst = 0.0
        rng = np.random.default_rng(0)
        for k in range(12):
            a = rng.uniform(-1, 1, (n, 4)).astype(np.float32)
            rc = cpu.step(a); rg = gpu.step(a)
            for key in ("policy", "critic"):
                d = np.abs(rc[0][key] - rg[0][key].copy_to_host())
                worst = max(worst, float((d / (1 + np.abs(rc[0][key]))).max()))
            worst = max(worst, float(np.abs(rc[1] - rg[1]).max()))
            assert (rc[2] == rg[2]).all() and (rc[3] == rg[3]).all()
        s = np.abs(cpu.state - gpu.state) / (1 + np.abs(cpu.state))
        worst = max(worst, float(s.max()))
        print("WORST", worst)
    """).replace("VEHICLE", repr(vehicle))
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1")
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    worst = float(out.stdout.split("WORST")[1])
    assert worst < 1e-4, worst  # float32 agreement, relative to magnitude


def test_the_cpu_step_kernel_is_compiled_when_the_env_is_built() -> None:
    """So that the first step() of a training loop does not pay for numba's compile (fresh process)."""
    code = textwrap.dedent("""
        from sims.quadrotor import QuadrotorVecEnv, kernels_cpu
        assert not kernels_cpu.step.signatures
        env = QuadrotorVecEnv(8, seed=0)
        print(len(kernels_cpu.step.signatures))
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                       env=dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "1"


def test_gyro_bias_is_constant_per_episode_in_the_policy_view_only():
    """A bias of the drawn magnitude, random direction, on the observed body rates (policy
    view only), the same at every step of an episode; the sensor noise switch turns it off."""
    n = 256
    env = QuadrotorVecEnv(n, seed=5)
    env.set_range("randomization.noise_scale", 0.0, 0.0)  # bias alone
    env.set_range("randomization.gyro_bias_rps", 0.01, 0.03)
    obs, _ = env.reset()
    bias = env._a["vec"][:, P.E_GYRO_BIAS:P.E_GYRO_BIAS + 3].copy()
    mag = env.episode_params[:, P.P_GYRO_BIAS]
    np.testing.assert_allclose(np.linalg.norm(bias, axis=1), mag, rtol=1e-5)
    assert mag.min() >= 0.01 and mag.max() <= 0.03 and mag.max() - mag.min() > 0.015
    assert np.abs(bias.mean(axis=0)).max() < 0.2 * mag.mean()  # random directions
    for _ in range(3):
        d = obs["policy"][:, 15:18] - obs["critic"][:, 15:18]
        np.testing.assert_allclose(d, bias, atol=1e-6)
        np.testing.assert_array_equal(obs["policy"][:, :15], obs["critic"][:, :15])
        obs, *_ = env.step(np.zeros((n, 4), np.float32))
    clean = QuadrotorVecEnv(8, seed=5, sensor_noise=False)
    clean.set_range("randomization.gyro_bias_rps", 0.02, 0.02)
    o, _ = clean.reset()
    np.testing.assert_array_equal(o["policy"], o["critic"][:, :26])


@pytest.mark.parametrize("vehicle", sorted(V.VEHICLES))
def test_real_range_is_inside_the_hard_limits_and_has_sixteen_corners(vehicle):
    real = P.real_world_ranges(vehicle)
    limits = {p.name: p.limits for p in P.PARAMS}
    for name, (lo, hi) in real.items():
        assert limits[name][0] <= lo <= hi <= limits[name][1], name
    m = V.get(vehicle).mass
    if vehicle != "crazyflie_2_1_brushless":
        assert real["randomization.mass_scale"][0] * m == pytest.approx(0.027)
        assert real["randomization.mass_scale"][1] * m == pytest.approx(0.037)
    assert real["randomization.disturbance_force_n"][1] == pytest.approx(0.1 * m * P.GRAVITY)
    corners = P.corner_ranges(vehicle)
    assert len(corners) == 16
    keys = [n for g in P.CORNER_GROUPS for n in g]
    seen = {tuple(c[n][0] for n in keys) for c in corners}
    assert len(seen) == 16
    for c in corners:
        assert set(c) == set(real)
        for g in P.CORNER_GROUPS:
            vals = {c[n] for n in g}
            assert len(vals) == 1  # the group moves together
            (lo, hi), = vals
            assert lo == hi and lo in real[g[0]]
        assert c["randomization.latency_steps"] == real["randomization.latency_steps"]
    env = QuadrotorVecEnv(4, seed=0, vehicle=vehicle)
    for name, (lo, hi) in corners[5].items():
        env.set_range(name, lo, hi)  # every corner is a valid range
    assert P.REAL_WORLD_RANGES == P.real_world_ranges(V.DEFAULT_VEHICLE)


def test_config_vehicle_field_validates_with_the_presets_listed():
    with pytest.raises(ValueError, match=r"QuadrotorConfig.vehicle: unknown vehicle 'cf9'; presets: "
                                         r"crazyflie_2_1, crazyflie_2_1_brushless, l2f_paper"):
        QuadrotorConfig(vehicle="cf9")
    assert QuadrotorConfig().vehicle == "crazyflie_2_1"

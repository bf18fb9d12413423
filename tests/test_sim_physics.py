"""Quadrotor physics against analytic cases: hover, free fall, torques, conservation, motors."""

import math

import numpy as np
import pytest

from sims.quadrotor import QuadrotorVecEnv, hover_rpm
from sims.quadrotor import kernels_cpu as kc
from sims.quadrotor import params as P
from sims.quadrotor import physics as K

G = P.GRAVITY


def _env(n=1, **kw):
    kw.setdefault("sensor_noise", False)
    kw.setdefault("rotor_drag", False)
    kw.setdefault("ground_effect", False)
    kw.setdefault("episode_steps", 10_000)  # no auto-reset inside a test
    return QuadrotorVecEnv(n, seed=0, **kw)


def _state(pos=(0, 0, 1), quat=(1, 0, 0, 0), vel=(0, 0, 0), omega=(0, 0, 0), rpm=None):
    r = hover_rpm() if rpm is None else rpm
    rpm4 = np.broadcast_to(np.asarray(r, np.float64), (4,))
    return np.array([*pos, *quat, *vel, *omega, *rpm4], np.float32)[None]


def _hover_action():
    return 2.0 * hover_rpm() / P.RPM_MAX - 1.0


def _nominal_ep():
    ep = np.array([p.default[0] for p in P.PARAMS], np.float32)
    return ep


def _cfg(env):
    return env._a["cfg"]


def _deriv(state, cmd, ep=None, ext=None, env=None):
    env = env or _env()
    out = np.zeros(17, np.float32)
    ep = _nominal_ep() if ep is None else ep
    ext = np.zeros(6, np.float32) if ext is None else ext
    kc.derivative(state.astype(np.float32), np.asarray(cmd, np.float32), ep, ext, _cfg(env), out)
    return out


def test_hover_rpm_matches_weight():
    # 4 k_f rpm^2 = m g  (RLtools documents 14475.8 RPM for these constants)
    assert 4 * P.THRUST_COEFF * hover_rpm() ** 2 == pytest.approx(P.MASS * G, rel=1e-12)
    assert hover_rpm() == pytest.approx(14475.81, abs=0.05)


def test_thrust_to_weight_at_max_rpm():
    ratio = 4 * P.THRUST_COEFF * P.RPM_MAX**2 / (P.MASS * G)
    assert 2.2 < ratio < 2.3


@pytest.mark.parametrize("drag_ground", [False, True])
def test_hover_equilibrium_holds_altitude_for_5s(drag_ground):
    env = _env(rotor_drag=drag_ground, ground_effect=drag_ground)
    env.reset(options={"state": _state()})
    a = np.full((1, 4), _hover_action(), np.float32)
    for _ in range(500):
        env.step(a)
    s = env.state[0]
    # At 1 m the ground-effect factor is 1 + C (r/4h)^2 ~ 1 + 3.8e-4 (below its 0.2 m cut-off: 0).
    assert abs(s[2] - 1.0) < 1e-3
    assert np.abs(s[:2]).max() < 1e-4
    assert np.abs(s[7:13]).max() < 1e-3


def test_free_fall_with_motors_off():
    env = _env(motor_dynamics=False, termination_position_m=100.0, home_target=(0, 0, 50))
    env.reset(options={"state": _state(pos=(0, 0, 50), rpm=0.0)})
    a = -np.ones((1, 4), np.float32)  # -1 -> RPM_MIN = 0
    for k in range(1, 31):
        env.step(a)
        t = 0.01 * k
        s = env.state[0]
        assert s[2] == pytest.approx(50 - 0.5 * G * t * t, abs=2e-4)
        assert s[9] == pytest.approx(-G * t, abs=1e-4)


@pytest.mark.parametrize("motor", range(4))
def test_single_motor_torque_sign_and_magnitude(motor):
    rpm = np.zeros(4)
    rpm[motor] = 15000.0
    s = _state(rpm=rpm)[0]
    d = _deriv(s, rpm)
    thrust = P.THRUST_COEFF * 15000.0**2
    x, y = P.ROTOR_XY[motor]
    tau = np.array([y * thrust, -x * thrust, P.ROTOR_YAW_DIR[motor] * P.TORQUE_TO_THRUST * thrust])
    expected = tau / np.array(P.INERTIA)
    np.testing.assert_allclose(d[10:13], expected, rtol=1e-5)
    # and the linear acceleration is thrust/m - g along z
    assert d[9] == pytest.approx(thrust / P.MASS - G, rel=1e-5)


def test_yaw_direction_from_rotor_pairs():
    h = hover_rpm()
    pos_pair = [i for i in range(4) if P.ROTOR_YAW_DIR[i] > 0]
    rpm = np.full(4, h)
    rpm[pos_pair] *= 1.05
    d = _deriv(_state(rpm=rpm)[0], rpm)
    assert d[12] > 0 and abs(d[10]) < 1e-3 * abs(d[12]) and abs(d[11]) < 1e-3 * abs(d[12])


def _rk4_unnormalized(s, cmd, h, ep, env):
    k1 = _deriv(s, cmd, ep, env=env)
    k2 = _deriv(s + 0.5 * h * k1, cmd, ep, env=env)
    k3 = _deriv(s + 0.5 * h * k2, cmd, ep, env=env)
    k4 = _deriv(s + h * k3, cmd, ep, env=env)
    return s + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)


def test_quaternion_norm_preserved_by_integrator():
    env = _env()
    ep = _nominal_ep()
    q = np.array([0.9, 0.1, -0.3, 0.2])
    s = _state(quat=q / np.linalg.norm(q), omega=(5.0, -3.0, 4.0))[0].astype(np.float64)
    cmd = np.full(4, hover_rpm())
    for _ in range(100):
        s = _rk4_unnormalized(s, cmd, 0.01, ep, env).astype(np.float64)
        assert abs(np.linalg.norm(s[3:7]) - 1) < 1e-5
        s[3:7] /= np.linalg.norm(s[3:7])


def _rotmat(q):
    w, x, y, z = q
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
        [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
        [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
    ])


def test_torque_free_body_conserves_energy_and_angular_momentum():
    env = _env(motor_dynamics=False, termination_position_m=1e3, termination_angvel_rps=1e3,
               termination_velocity_mps=1e3,
               home_target=(0, 0, 100))
    env.set_range("randomization.inertia_xx_scale", 1.0, 1.0)
    env.set_range("randomization.inertia_yy_scale", 1.6, 1.6)
    env.set_range("randomization.inertia_zz_scale", 0.7, 0.7)
    omega = np.array([4.0, 1.0, 3.0])
    env.reset(options={"state": _state(pos=(0, 0, 100), vel=(1.0, -0.5, 2.0), omega=omega, rpm=0.0)})
    J = np.array(P.INERTIA) * np.array([1.0, 1.6, 0.7])

    def invariants():
        s = env.state[0].astype(np.float64)
        w = s[10:13]
        L_world = _rotmat(s[3:7]) @ (J * w)
        e_rot = 0.5 * w @ (J * w)
        e_trans = 0.5 * s[7:10] @ s[7:10] + G * s[2]
        return L_world, e_rot, e_trans

    L0, er0, et0 = invariants()
    a = -np.ones((1, 4), np.float32)
    for _ in range(300):
        env.step(a)
    L1, er1, et1 = invariants()
    assert env.state[0][10:13] @ omega < 0.999 * omega @ omega  # it really tumbles
    np.testing.assert_allclose(L1, L0, rtol=0, atol=2e-4 * np.linalg.norm(L0))
    assert er1 == pytest.approx(er0, rel=2e-4)
    assert et1 == pytest.approx(et0, rel=2e-5)


def test_motor_first_order_step_response_rise_and_fall():
    env = _env(termination_position_m=1e3, home_target=(0, 0, 500))
    env.set_range("randomization.motor_tau_up_scale", 0.5, 0.5)
    env.set_range("randomization.motor_tau_down_scale", 2.0, 2.0)
    tau_up, tau_down = 0.5 * P.MOTOR_TAU, 2.0 * P.MOTOR_TAU
    r0 = hover_rpm()
    env.reset(options={"state": _state(pos=(0, 0, 500), rpm=r0)})
    up = np.ones((1, 4), np.float32)
    for k in range(1, 21):
        env.step(up)
        expect = P.RPM_MAX + (r0 - P.RPM_MAX) * math.exp(-0.01 * k / tau_up)
        np.testing.assert_allclose(env.state[0][13:17], expect, rtol=1e-5)
    r1 = float(env.state[0][13])
    down = -np.ones((1, 4), np.float32)
    for k in range(1, 21):
        env.step(down)
        expect = r1 * math.exp(-0.01 * k / tau_down)
        np.testing.assert_allclose(env.state[0][13:17], expect, rtol=1e-5)


def test_ground_effect_factor_and_rotor_drag_direction():
    env = _env(ground_effect=True, rotor_drag=True)
    h = 0.05
    rpm = np.full(4, hover_rpm())
    d = _deriv(_state(pos=(0, 0, h), rpm=rpm)[0], rpm, env=env)
    factor = 1 + P.GROUND_EFFECT_COEFF * (P.PROP_RADIUS / (4 * h)) ** 2
    assert d[9] + G == pytest.approx(G * factor, rel=1e-5)
    v = np.array([1.0, -2.0, 0.5])
    d = _deriv(_state(pos=(0, 0, 1), vel=v, rpm=rpm)[0], rpm, env=env)
    drag = (d[7:10] - np.array([0, 0, 0])) * P.MASS
    drag[2] -= P.MASS * 0  # thrust cancels gravity exactly at hover rpm
    spin = 4 * hover_rpm() * 2 * math.pi / 60
    expected = -spin * np.array([P.DRAG_XY, P.DRAG_XY, P.DRAG_Z]) * v
    np.testing.assert_allclose(drag, expected, rtol=1e-4)


def test_bare_physics_kernel_matches_env_step():
    # physics_only (benchmark kernel) integrates exactly as the env does.
    env = _env(motor_dynamics=True)
    env.reset()
    s0 = env.state.copy()
    cmd = np.full((1, 4), hover_rpm() * 1.1, np.float32)
    s = s0.copy()
    kc.physics_only(s, cmd, env._a["ep"], np.zeros((1, 6), np.float32), _cfg(env), 0.01, 1, kc.scratch(1))
    a = np.full((1, 4), 2 * hover_rpm() * 1.1 / P.RPM_MAX - 1, np.float32)
    env.step(a)
    np.testing.assert_allclose(env.state, s, rtol=2e-5, atol=1e-5)


def test_scratch_layout_fits():
    assert K.SCRATCH >= 61


def test_simd_derivative_matches_shared_physics():
    """The SIMD kernel's derivative (float32, restated for vectorization) equals
    physics.derivative (the CUDA kernel's code, compiled for the CPU) on random inputs."""
    rng = np.random.default_rng(0)
    env = _env()
    worst = 0.0
    for flags in [(1, 1, 1), (0, 0, 0), (1, 0, 1), (0, 1, 0)]:
        cfg = _cfg(env).copy()
        cfg[K.C_MOTOR], cfg[K.C_DRAG], cfg[K.C_GROUND] = flags
        for _ in range(200):
            q = rng.normal(size=4)
            s = np.concatenate([rng.uniform(-1, 1, 2), rng.uniform(0.0, 0.4, 1), q / np.linalg.norm(q),
                                rng.uniform(-3, 3, 3), rng.uniform(-20, 20, 3),
                                rng.uniform(-100, 21702, 4)]).astype(np.float32)
            cmd = rng.uniform(0, 21702, 4).astype(np.float32)
            ep = _nominal_ep()
            for p in P.PARAMS[:P.P_LATENCY]:
                ep[P.PARAM_INDEX[p.name]] = rng.uniform(0.5, 2.0)
            ext = rng.normal(0, [1e-2] * 3 + [1e-4] * 3).astype(np.float32)
            a = np.zeros(17, np.float32)
            b = np.zeros(17, np.float32)
            kc.derivative(s, cmd, ep, ext, cfg, a)
            kc.derivative_scalar(s, cmd, ep, ext, cfg, b)
            scale = np.abs(b) + np.abs(b).max() * 1e-6 + 1e-6
            worst = max(worst, float((np.abs(a - b) / scale).max()))
    assert worst < 1e-3, worst  # float32 vs float64 intermediates (cancellations in torques)


def _step_both(n, steps, seed=0, nan_every=0, **kw):
    """Step the SIMD kernel and the scalar reference (physics.step_env) on copies."""
    env = QuadrotorVecEnv(n, seed=seed, **kw)
    for name, lo, hi in [("randomization.mass_scale", 0.8, 1.2), ("randomization.latency_steps", 0, 3),
                         ("randomization.disturbance_force_n", 0.0, 0.02),
                         ("randomization.disturbance_torque_nm", 0.0, 1e-4),
                         ("randomization.motor_tau_up_scale", 0.5, 1.5),
                         ("randomization.noise_scale", 0.5, 2.0),
                         ("privileged.assist_gain", 0.0, 1.0), ("reward.angular_velocity", 0.0, 1.0),
                         ("reward.action_rate", 0.0, 1.0)]:
        env.set_range(name, lo, hi)
    env.reset()
    keys = ["state", "hist", "ep", "vec", "lo", "hi", "rng", "steps", "acc", "cfg", "obs_p", "obs_c",
            "fin_p", "fin_c", "reward", "flags", "ep_out", "ep_params"]
    A = {k: env._a[k].copy() for k in keys}
    B = {k: env._a[k].copy() for k in keys}
    wa, wb = kc.scratch(n), kc.scratch_scalar(n)
    rng = np.random.default_rng(seed)
    worst = {}
    for t in range(steps):
        a = (rng.uniform(-1, 1, (n, 4)) * 0.4 + 0.33).astype(np.float32)
        if nan_every and t % nan_every == 1:
            a[t % n, 1] = np.nan
            a[(t + 1) % n, 2] = 40.0
        kc.step(a, *[A[k] for k in keys], wa)
        kc.step_scalar(a, *[B[k] for k in keys], wb)
        for k in ("flags", "steps", "rng", "hist", "ep", "vec"):  # exact: same draws, same logic
            np.testing.assert_array_equal(A[k], B[k], err_msg=f"{k} at step {t}")
        for k in ("state", "obs_p", "obs_c", "fin_p", "fin_c", "reward", "acc", "ep_out"):
            d = np.abs(A[k].astype(np.float64) - B[k]) / (1 + np.abs(B[k]))
            worst[k] = max(worst.get(k, 0.0), float(d.max()))
    return worst, int(A["flags"][:, :2].sum())


@pytest.mark.parametrize("kw", [
    {},
    {"sensor_noise": False, "ground_effect": False, "action_history": 5},
    {"motor_dynamics": False, "rotor_drag": False, "substeps": 3, "episode_steps": 30},
])
def test_simd_step_matches_scalar_reference(kw):
    """The production (SIMD) step agrees with physics.step_env, one env at a time in float64:
    same terminations, resets and random draws; float32-level differences in the values.
    70 envs: two full SIMD chunks and a partial one."""
    worst, _ = _step_both(70, 150, nan_every=7, **kw)
    assert max(worst.values()) < 2e-4, worst

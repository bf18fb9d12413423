"""Quadrotor physics against analytic cases, per vehicle preset: hover, free fall, torques,
conservation, motors; and the l2f_paper preset against the kernel it replaced."""

import math

import numpy as np
import pytest

from sims.quadrotor import QuadrotorVecEnv
from sims.quadrotor import kernels_cpu as kc
from sims.quadrotor import params as P
from sims.quadrotor import physics as K
from sims.quadrotor import vehicles as V

G = P.GRAVITY
VEHICLES = sorted(V.VEHICLES)


def _env(n=1, vehicle="l2f_paper", **kw):
    kw.setdefault("sensor_noise", False)
    kw.setdefault("rotor_drag", False)
    kw.setdefault("ground_effect", False)
    kw.setdefault("episode_steps", 10_000)  # no auto-reset inside a test
    return QuadrotorVecEnv(n, seed=0, vehicle=vehicle, **kw)


def _state(pos=(0, 0, 1), quat=(1, 0, 0, 0), vel=(0, 0, 0), omega=(0, 0, 0), rpm=None, vehicle="l2f_paper"):
    r = V.get(vehicle).hover_rpm() if rpm is None else rpm
    rpm4 = np.broadcast_to(np.asarray(r, np.float64), (4,))
    return np.array([*pos, *quat, *vel, *omega, *rpm4], np.float32)[None]


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


def test_l2f_paper_hover_rpm_is_the_papers():
    # 4 k_f rpm^2 = m g with k_f = 3.16e-10 N/RPM^2 (RLtools documents 14475.8 RPM)
    v = V.get("l2f_paper")
    assert 4 * 3.16e-10 * v.hover_rpm() ** 2 == pytest.approx(v.mass * G, rel=1e-12)
    assert v.hover_rpm() == pytest.approx(14475.81, abs=0.05)
    assert P.hover_rpm("l2f_paper") == v.hover_rpm()


@pytest.mark.parametrize("vehicle", VEHICLES)
def test_hover_command_from_the_thrust_curve_holds_the_weight(vehicle):
    v = V.get(vehicle)
    c0, c1, c2 = v.thrust_curve
    for ms, ts in [(1.0, 1.0), (1.2, 0.9), (0.88, 1.3)]:
        u = v.hover_command(ms, ts)
        assert 0 < u < 1
        assert 4 * ts * (c0 + c1 * u + c2 * u * u) == pytest.approx(v.mass * ms * G, rel=1e-12)
    assert v.hover_action() == pytest.approx(2 * v.hover_command() - 1, abs=1e-15)
    # the kernels' hover command (reset fills the action history with it) is the same formula
    env = _env(vehicle=vehicle)
    env.reset()
    np.testing.assert_allclose(env._a["hist"][0], v.hover_action(), rtol=1e-6)
    np.testing.assert_allclose(env.state[0, 13:17], v.hover_rpm(), rtol=1e-5)


@pytest.mark.parametrize("vehicle, lo, hi", [("l2f_paper", 2.2, 2.3), ("crazyflie_2_1", 2.0, 2.2),
                                             ("crazyflie_2_1_brushless", 3.4, 3.8)])
def test_thrust_to_weight_at_full_command(vehicle, lo, hi):
    assert lo < V.get(vehicle).thrust_to_weight() < hi


def test_unknown_vehicle_is_a_one_line_error():
    with pytest.raises(ValueError, match="unknown vehicle 'cf3'; presets: crazyflie_2_1, "):
        _env(vehicle="cf3")


@pytest.mark.parametrize("vehicle", VEHICLES)
@pytest.mark.parametrize("drag_ground", [False, True])
def test_hover_equilibrium_holds_altitude_for_5s(vehicle, drag_ground):
    env = _env(vehicle=vehicle, rotor_drag=drag_ground, ground_effect=drag_ground)
    env.reset(options={"state": _state(vehicle=vehicle)})
    a = np.full((1, 4), V.get(vehicle).hover_action(), np.float32)
    for _ in range(500):
        env.step(a)
    s = env.state[0]
    # At 1 m the ground-effect factor is 1 + C (r/4h)^2 ~ 1 + 3.8e-4 (below its 0.2 m cut-off: 0).
    assert abs(s[2] - 1.0) < 1e-3
    assert np.abs(s[:2]).max() < 1e-4
    assert np.abs(s[7:13]).max() < 1e-3


def test_free_fall_with_motors_off():
    env = _env(vehicle="l2f_paper", motor_dynamics=False, termination_position_m=100.0, home_target=(0, 0, 50))
    env.reset(options={"state": _state(pos=(0, 0, 50), rpm=0.0)})
    a = -np.ones((1, 4), np.float32)  # -1 -> u = 0, no thrust (c0 = 0)
    for k in range(1, 31):
        env.step(a)
        t = 0.01 * k
        s = env.state[0]
        assert s[2] == pytest.approx(50 - 0.5 * G * t * t, abs=2e-4)
        assert s[9] == pytest.approx(-G * t, abs=1e-4)


@pytest.mark.parametrize("vehicle", VEHICLES)
@pytest.mark.parametrize("motor", range(4))
def test_single_motor_torque_sign_and_magnitude(vehicle, motor):
    v = V.get(vehicle)
    env = _env(vehicle=vehicle)
    rpm = np.zeros(4)
    rpm[motor] = 0.7 * v.max_rpm
    s = _state(rpm=rpm, vehicle=vehicle)[0]
    d = _deriv(s, rpm, env=env)
    thrust = v.thrust(0.7)
    x, y = v.rotor_xy[motor]
    # every rotor's thrust: the idle ones give c0 (Eschmann's curve is an affine fit near hover)
    t = np.array([v.thrust(r / v.max_rpm) for r in rpm])
    xy = np.array(v.rotor_xy)
    tau = np.array([xy[:, 1] @ t, -(xy[:, 0] @ t), v.torque_to_thrust * (np.array(v.rotor_yaw_dir) @ t)])
    np.testing.assert_allclose(d[10:13], tau / np.array(v.inertia), rtol=1e-5)
    # signs: a rotor at y < 0 (right) rolls the body to the left (-x torque), a front one pitches
    # the nose up (-y torque); the yaw torque follows the rotor's direction
    assert np.sign(d[10]) == np.sign(y) and np.sign(d[11]) == -np.sign(x)
    assert np.sign(d[12]) == v.rotor_yaw_dir[motor]
    assert d[9] == pytest.approx(t.sum() / v.mass - G, rel=1e-5)


@pytest.mark.parametrize("vehicle", VEHICLES)
def test_yaw_direction_from_rotor_pairs(vehicle):
    v = V.get(vehicle)
    env = _env(vehicle=vehicle)
    pos_pair = [i for i in range(4) if v.rotor_yaw_dir[i] > 0]
    rpm = np.full(4, v.hover_rpm())
    rpm[pos_pair] *= 1.05
    d = _deriv(_state(rpm=rpm, vehicle=vehicle)[0], rpm, env=env)
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
    cmd = np.full(4, P.hover_rpm("l2f_paper"))
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


@pytest.mark.parametrize("vehicle", ["l2f_paper", "crazyflie_2_1_brushless"])  # c0 = 0: no thrust at u = 0
def test_torque_free_body_conserves_energy_and_angular_momentum(vehicle):
    env = _env(vehicle=vehicle, motor_dynamics=False, termination_position_m=1e3, termination_angvel_rps=1e3,
               termination_velocity_mps=1e3, home_target=(0, 0, 100))
    env.set_range("randomization.inertia_xx_scale", 1.0, 1.0)
    env.set_range("randomization.inertia_yy_scale", 1.6, 1.6)
    env.set_range("randomization.inertia_zz_scale", 0.7, 0.7)
    omega = np.array([4.0, 1.0, 3.0])
    env.reset(options={"state": _state(pos=(0, 0, 100), vel=(1.0, -0.5, 2.0), omega=omega, rpm=0.0)})
    J = np.array(V.get(vehicle).inertia) * np.array([1.0, 1.6, 0.7])

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


@pytest.mark.parametrize("vehicle", VEHICLES)
def test_motor_first_order_step_response_rise_and_fall(vehicle):
    """Rotor speed after a step of the command: rpm(t) = target + (rpm0 - target) exp(-t / tau),
    tau the rise constant when speeding up and the fall constant when slowing down (each
    times its randomization scale)."""
    v = V.get(vehicle)
    # 4 RK4 substeps: the fastest constant here is 0.028 s (h / tau = 0.09, error < 1e-7)
    env = _env(vehicle=vehicle, termination_position_m=1e3, home_target=(0, 0, 500), substeps=4)
    env.set_range("randomization.motor_tau_up_scale", 0.5, 0.5)
    env.set_range("randomization.motor_tau_down_scale", 2.0, 2.0)
    tau_up, tau_down = 0.5 * v.motor_tau_rise, 2.0 * v.motor_tau_fall
    r0 = v.hover_rpm()
    env.reset(options={"state": _state(pos=(0, 0, 500), rpm=r0, vehicle=vehicle)})
    up = np.ones((1, 4), np.float32)
    for k in range(1, 21):
        env.step(up)
        expect = v.max_rpm + (r0 - v.max_rpm) * math.exp(-0.01 * k / tau_up)
        np.testing.assert_allclose(env.state[0][13:17], expect, rtol=1e-5)
    r1 = float(env.state[0][13])
    down = -np.ones((1, 4), np.float32)
    for k in range(1, 21):
        env.step(down)
        expect = r1 * math.exp(-0.01 * k / tau_down)
        np.testing.assert_allclose(env.state[0][13:17], expect, rtol=1e-5)
    # the critic view's rotor entries are 2u - 1 of the rotor state
    obs, *_ = env.step(down)
    base = K.policy_obs_dim(env.config.action_history)
    np.testing.assert_allclose(obs["critic"][0, base:base + 4], 2 * env.state[0, 13:17] / v.max_rpm - 1, atol=1e-6)


def test_ground_effect_factor_and_rotor_drag_direction():
    v = V.get("l2f_paper")
    env = _env(ground_effect=True, rotor_drag=True)
    h = 0.05
    rpm = np.full(4, v.hover_rpm())
    d = _deriv(_state(pos=(0, 0, h), rpm=rpm)[0], rpm, env=env)
    factor = 1 + P.GROUND_EFFECT_COEFF * (P.PROP_RADIUS / (4 * h)) ** 2
    assert d[9] + G == pytest.approx(G * factor, rel=1e-5)
    vel = np.array([1.0, -2.0, 0.5])
    d = _deriv(_state(pos=(0, 0, 1), vel=vel, rpm=rpm)[0], rpm, env=env)
    drag = d[7:10] * v.mass  # thrust cancels gravity exactly at hover rpm
    spin = 4 * v.hover_rpm() * 2 * math.pi / 60
    expected = -spin * np.array([v.drag_xy, v.drag_xy, v.drag_z]) * vel
    np.testing.assert_allclose(drag, expected, rtol=1e-4)


def test_bare_physics_kernel_matches_env_step():
    # physics_only (benchmark kernel) integrates exactly as the env does.
    for vehicle in VEHICLES:
        v = V.get(vehicle)
        env = _env(vehicle=vehicle, motor_dynamics=True)
        env.reset()
        s0 = env.state.copy()
        cmd = np.full((1, 4), v.hover_rpm() * 1.1, np.float32)
        s = s0.copy()
        kc.physics_only(s, cmd, env._a["ep"], np.zeros((1, 6), np.float32), _cfg(env), 0.01, 1, kc.scratch(1))
        a = np.full((1, 4), 2 * v.hover_rpm() * 1.1 / v.max_rpm - 1, np.float32)
        env.step(a)
        np.testing.assert_allclose(env.state, s, rtol=2e-5, atol=1e-5)


# --- l2f_paper against the kernel it replaced ---------------------------------------------
# States (N, 17) of three open-loop flights (tumbling high up, hovering in ground effect,
# near hover with pulses; drag and ground effect on, no noise, no resets) after 100, 250
# and 500 steps, recorded with the kernel of the commit before the vehicle presets (module
# constants k_f rpm^2, one 0.15 s motor constant). The preset flew them bit-identically
# on the recording machine; float32-level tolerance here (other CPUs, other LLVM).
_L2F_REFERENCE = {
    100: np.array([[ 1.358823895e+00, -2.086985588e+00,  1.462124786e+02,  5.581052899e-01,  4.530377686e-01,  1.978694648e-01,
  -6.664255261e-01,  2.192045927e+00, -3.476337671e+00, -7.685314178e+00,  1.960908508e+01,  4.717472076e+01,
   1.996920395e+01,  1.436807520e+04,  1.459893555e+04,  1.439040137e+04,  1.458644824e+04],
 [ 0.000000000e+00,  0.000000000e+00,  2.961735129e-01,  7.073720545e-02,  0.000000000e+00,  0.000000000e+00,
   9.974949956e-01,  0.000000000e+00,  0.000000000e+00,  4.311026335e-01,  0.000000000e+00,  0.000000000e+00,
   3.000000000e+00,  1.447580273e+04,  1.447580273e+04,  1.447580273e+04,  1.447580273e+04],
 [ 4.734020829e-01,  2.679770708e+00,  1.481177673e+02,  5.205580592e-01, -4.746189713e-01,  3.176819980e-01,
  -6.346923113e-01,  4.275516510e+00,  3.943991899e+00, -4.263370514e+00,  8.941584080e-02,  1.411383867e+00,
  -2.296948195e+00,  1.476128711e+04,  1.467459082e+04,  1.476128711e+04,  1.467459082e+04]]),
    250: np.array([[ 6.787315845e+00, -1.067513371e+01,  1.271909714e+02,  9.156289697e-01,  7.346842438e-02,  3.106184602e-01,
   2.444219738e-01,  4.977620125e+00, -7.543973446e+00, -1.715744019e+01, -8.504931450e+00, -5.732878876e+01,
   1.957332230e+01,  1.458052344e+04,  1.461144336e+04,  1.445192285e+04,  1.451962988e+04],
 [ 0.000000000e+00,  0.000000000e+00,  8.424597979e-01, -8.205592036e-01,  0.000000000e+00,  0.000000000e+00,
  -5.715615153e-01,  0.000000000e+00,  0.000000000e+00,  3.045884967e-01,  0.000000000e+00,  0.000000000e+00,
   3.000000000e+00,  1.447580273e+04,  1.447580273e+04,  1.447580273e+04,  1.447580273e+04],
 [ 1.371289444e+01,  8.221117973e+00,  1.390480652e+02, -8.138189316e-01,  1.826152802e-01, -2.985247672e-01,
   4.639325440e-01,  1.278855801e+01,  3.954289436e+00, -7.617215157e+00,  2.480634451e-01, -1.392289281e+00,
  -4.731330395e+00,  1.477372461e+04,  1.468691699e+04,  1.477372461e+04,  1.468691699e+04]]),
    500: np.array([[ 2.262484169e+01, -3.505448914e+01,  7.060645294e+01,  2.896505892e-01,  8.046744466e-01, -4.699746668e-01,
   2.184612900e-01,  7.390825748e+00, -1.152947712e+01, -2.725356293e+01,  5.873682404e+01, -7.211964607e+00,
   1.965224266e+01,  1.437109473e+04,  1.445473926e+04,  1.429622656e+04,  1.437943066e+04],
 [ 0.000000000e+00,  0.000000000e+00,  1.420520544e+00,  3.466350138e-01,  0.000000000e+00,  0.000000000e+00,
   9.380001426e-01,  0.000000000e+00,  0.000000000e+00,  1.707067937e-01,  0.000000000e+00,  0.000000000e+00,
   3.000000000e+00,  1.447580273e+04,  1.447580273e+04,  1.447580273e+04,  1.447580273e+04],
 [ 5.797482300e+01,  2.010219193e+01,  1.157348404e+02,  8.604994416e-01,  2.894397452e-02,  3.841760755e-01,
   3.333343565e-01,  2.188625717e+01,  5.248776913e+00, -1.090839863e+01, -4.186165333e-01,  1.350839496e+00,
  -8.789498329e+00,  1.477372656e+04,  1.468691895e+04,  1.477372656e+04,  1.468691895e+04]]),
}


def _l2f_openloop(k):
    a_h = 2 * math.sqrt(0.027 * G / (4 * 3.16e-10)) / 21702.0 - 1
    t = 0.01 * k
    a = np.full((3, 4), a_h)
    a[0] += 0.02 * np.sin(2 * np.pi * np.array([1.0, 1.3, 0.7, 1.9]) * t + np.arange(4))
    a[2] += np.array([0.004, -0.004, 0.004, -0.004]) + 0.3 * (k % 50 < 5)
    return np.clip(a, -1, 1).astype(np.float32)


def test_l2f_paper_preset_flies_the_previous_kernels_trajectories():
    env = QuadrotorVecEnv(3, seed=0, vehicle="l2f_paper", sensor_noise=False, episode_steps=10000,
                          termination_position_m=1e3, home_target=(0.0, 0.0, 150.0),
                          termination_angvel_rps=1e3, termination_velocity_mps=1e3)
    s0 = np.array([[0.3, -0.2, 150.1, 0.98, 0.1, -0.1, 0.1, 0.5, -0.3, 0.2, 1.0, -1.0, 0.5, 12000, 15000, 9000, 20000],
                   [0.0, 0.0, 0.15, 1, 0, 0, 0, 0, 0, -0.5, 0, 0, 3.0, 14475.8, 14475.8, 14475.8, 14475.8],
                   [-0.4, 0.4, 149.8, 0.97, -0.15, 0.1, 0.15, -1.0, 0.5, 0.8, -1.0, 1.0, -1.0, 5000, 5000, 5000, 5000]],
                  np.float32)
    s0[:, 3:7] /= np.linalg.norm(s0[:, 3:7], axis=1, keepdims=True)
    env.reset(options={"state": s0})
    for k in range(1, 501):
        _, _, term, trunc, _ = env.step(_l2f_openloop(k))
        assert not (term.any() or trunc.any())
        if k in _L2F_REFERENCE:
            ref = _L2F_REFERENCE[k]
            scale = np.array([1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 10, 10, 10] + [1e4] * 4)
            np.testing.assert_allclose(env.state / scale, ref / scale, rtol=0, atol=2e-4, err_msg=f"step {k}")


def test_scratch_layout_fits():
    assert K.SCRATCH >= 61


def test_simd_derivative_matches_shared_physics():
    """The SIMD kernel's derivative (float32, restated for vectorization) equals
    physics.derivative (the CUDA kernel's code, compiled for the CPU) on random inputs."""
    rng = np.random.default_rng(0)
    worst = 0.0
    for vehicle, flags in [(v, f) for v in VEHICLES for f in [(1, 1, 1), (0, 0, 0), (1, 0, 1), (0, 1, 0)]]:
        cfg = _cfg(_env(vehicle=vehicle)).copy()
        cfg[K.C_MOTOR], cfg[K.C_DRAG], cfg[K.C_GROUND] = flags
        for _ in range(200):
            q = rng.normal(size=4)
            s = np.concatenate([rng.uniform(-1, 1, 2), rng.uniform(0.0, 0.4, 1), q / np.linalg.norm(q),
                                rng.uniform(-3, 3, 3), rng.uniform(-20, 20, 3),
                                rng.uniform(-0.005, 1.0, 4) * cfg[K.C_MAX_RPM]]).astype(np.float32)
            cmd = (rng.uniform(0, 1.0, 4) * cfg[K.C_MAX_RPM]).astype(np.float32)
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

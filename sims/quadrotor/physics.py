"""Quadrotor physics and per-environment transition, written once for two targets.

``build(jit)`` compiles the same Python source with ``numba.njit`` (CPU) or
``numba.cuda.jit(device=True)`` (GPU), so both kernels run identical arithmetic.
Everything here works on scalars and on rows of preallocated arrays: no allocation
in the hot path, no Python objects.

Random numbers come from a per-environment SplitMix64 stream (Steele et al., 2014),
so results depend only on the seed and the environment index, never on thread
scheduling or on the target (CPU or GPU).
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np

from . import params as P
from . import vehicles as V

# --- array layouts shared with env.py ------------------------------------------------
# Static configuration vector (same for all envs), float32; built by env._config_vector.
C_DT, C_SUBSTEPS, C_MAX_RPM, C_INV_MAX_RPM, C_MOTOR, C_DRAG, C_GROUND, C_NOISE = range(8)
C_HOME = 8  # 3 values
C_TERM_POS, C_TERM_VEL, C_TERM_ANGVEL, C_EP_STEPS = 11, 12, 13, 14
C_R_SCALE, C_R_CONST, C_R_TERM, C_HIST, C_LAST_WINDOW, C_GRAVITY = 15, 16, 17, 18, 19, 20
# The vehicle (vehicles.Vehicle, nominal values; the per-env scales multiply them):
# mass (kg), diagonal inertia (kg m^2), thrust curve over u (c0, c1, c2 in N), the same
# curve per RPM of the state (k1 = c1 / max_rpm, k2 = c2 / max_rpm^2), yaw torque /
# thrust (m), motor rise and fall constants (s), rotor drag (kg/rad), rotor x (4, m),
# rotor y (4, m), rotor yaw directions (4).
C_MASS, C_IXX, C_IYY, C_IZZ, C_TC0, C_TC1, C_TC2, C_K1, C_K2, C_KM = range(21, 31)
C_TAU_RISE, C_TAU_FALL, C_DRAG_XY, C_DRAG_Z = range(31, 35)
C_RX, C_RY, C_YAW_DIR = 35, 39, 43  # 4 values each
CFG_DIM = 47

# Episode accumulators (N, ACC_DIM) and per-episode results written at done (N, OUT_DIM).
A_RETURN, A_POS, A_TILT, A_YAW = range(4)
ACC_DIM = 4
O_RETURN, O_LENGTH, O_SURVIVED, O_POS, O_TILT, O_YAW = range(6)
OUT_DIM = 6
# Per-step flags (N, FLAG_DIM) uint8.
F_TERMINATED, F_TRUNCATED, F_NONFINITE = range(3)
FLAG_DIM = 3

HIST_LEN = 8  # action ring length: max latency (7 steps) + 1; also max observed history
SCRATCH = 64  # RK4: 3 x 17 (sum, stage derivative, stage input) + 4 rotor commands + 6 wrench


def policy_obs_dim(history: int) -> int:
    """position error 3, rotation matrix 9, velocity 3, body rates 3, last actions 4*h."""
    return 18 + 4 * history


POLICY_POSITION_ERROR = slice(0, 3)  # policy view: position minus target, world frame (m)


def critic_obs_dim(history: int) -> int:
    """Noise-free policy view + rotor speeds 4 + disturbance 6 + gyro bias 3
    + randomization 14 + episode time fraction 1 + privileged assist gain 1."""
    return policy_obs_dim(history) + 4 + 6 + 3 + P.NUM_RANDOMIZATION + 2


# SplitMix64 constants (Steele, Lea & Flood, OOPSLA 2014). Typed as uint64 so numba
# never mixes signed and unsigned integers (which would silently promote to float).
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_U16, _U27, _U30, _U31, _U32, _U40, _U48 = (np.uint64(k) for k in (16, 27, 30, 31, 32, 40, 48))
_MASK16 = np.uint64(0xFFFF)
_INV_2_24 = 1.0 / 16777216.0
_INV_2_16 = 1.0 / 65536.0
_SQRT3 = math.sqrt(3.0)
_TWO_PI = 2.0 * math.pi
_RPM_TO_RADS = _TWO_PI / 60.0
_RAD_TO_DEG = 180.0 / math.pi

# Privileged assist (a PD wrench that helps; annealed to zero by the curriculum).
# Gains chosen for a well-damped response of the nominal Crazyflie: attitude
# natural frequency 20 rad/s, damping ratio 0.7; position 2 rad/s, damping 0.75.
_ASSIST_KR = 400.0
_ASSIST_KW = 28.0
_ASSIST_KP = 4.0
_ASSIST_KV = 3.0


def build(jit, jit_inline=None):
    """Compile the physics with decorator ``jit``; returns a namespace of functions.

    ``jit_inline`` (default: ``jit``) compiles the small hot helpers; on the CPU it
    inlines them at numba IR level, which removes per-call array-view overhead.
    """
    jit_inline = jit_inline or jit
    hover_command = jit_inline(V.hover_command)  # the package's one hover formula

    @jit_inline
    def rng_next(rng, i):
        x = rng[i] + _GOLDEN
        rng[i] = x
        z = (x ^ (x >> _U30)) * _MIX1
        z = (z ^ (z >> _U27)) * _MIX2
        return z ^ (z >> _U31)

    @jit_inline
    def rng_uniform(rng, i):
        """Uniform in [0, 1) with 24 random bits."""
        # Convert through a signed integer: unsigned 64-bit -> float is a multi-
        # instruction sequence on x86-64 without AVX-512.
        return float(np.int64(rng_next(rng, i) >> _U40)) * _INV_2_24

    @jit_inline
    def rng_normal(rng, i):
        """Unit-variance noise: Irwin-Hall sum of four 16-bit uniforms.

        One generator call per sample instead of Box-Muller's log/sqrt/cos; the tails
        are bounded at +-2*sqrt(3) sigma, which is harmless for sensor noise.
        """
        z = rng_next(rng, i)
        s = (z & _MASK16) + ((z >> _U16) & _MASK16) + ((z >> _U32) & _MASK16) + (z >> _U48)
        return ((float(np.int64(s)) + 2.0) * _INV_2_16 - 2.0) * _SQRT3

    @jit_inline
    def derivative(s, cmd, ep, ext, cfg, out):
        """Time derivative of the 17-dim state ``s`` under rotor commands ``cmd`` (RPM)."""
        qw = s[3]
        qx = s[4]
        qy = s[5]
        qz = s[6]
        r00 = 1.0 - 2.0 * (qy * qy + qz * qz)
        r01 = 2.0 * (qx * qy - qw * qz)
        r02 = 2.0 * (qx * qz + qw * qy)
        r10 = 2.0 * (qx * qy + qw * qz)
        r11 = 1.0 - 2.0 * (qx * qx + qz * qz)
        r12 = 2.0 * (qy * qz - qw * qx)
        r20 = 2.0 * (qx * qz - qw * qy)
        r21 = 2.0 * (qy * qz + qw * qx)
        r22 = 1.0 - 2.0 * (qx * qx + qy * qy)

        mass = cfg[C_MASS] * ep[P.P_MASS]
        ixx = cfg[C_IXX] * ep[P.P_IXX]
        iyy = cfg[C_IYY] * ep[P.P_IYY]
        izz = cfg[C_IZZ] * ep[P.P_IZZ]
        # thrust curve per RPM of the state: T = k0 + k1 rpm + k2 rpm^2 (N), scaled as a whole
        kf = cfg[C_K2] * ep[P.P_KF]
        k1 = cfg[C_K1] * ep[P.P_KF]
        k0 = cfg[C_TC0] * ep[P.P_KF]
        km = cfg[C_KM] * ep[P.P_KM]

        ge = 1.0
        if cfg[C_GROUND] > 0.5 and s[2] < P.GROUND_EFFECT_MAX_HEIGHT:
            h = max(s[2], P.PROP_RADIUS)
            ratio = P.PROP_RADIUS / (4.0 * h)
            ge = 1.0 + P.GROUND_EFFECT_COEFF * ratio * ratio

        w0 = max(s[13], 0.0)
        w1 = max(s[14], 0.0)
        w2 = max(s[15], 0.0)
        w3 = max(s[16], 0.0)
        t0 = max(kf * w0 * w0 + (k1 * w0 + k0), 0.0) * ge
        t1 = max(kf * w1 * w1 + (k1 * w1 + k0), 0.0) * ge
        t2 = max(kf * w2 * w2 + (k1 * w2 + k0), 0.0) * ge
        t3 = max(kf * w3 * w3 + (k1 * w3 + k0), 0.0) * ge

        # Body force: thrust along z plus rotor drag (linear in v_body, scaled by the
        # sum of rotor speeds, as in gym-pybullet-drones).
        vx = s[7]
        vy = s[8]
        vz = s[9]
        fbx = 0.0
        fby = 0.0
        fbz = t0 + t1 + t2 + t3
        if cfg[C_DRAG] > 0.5:
            spin = (w0 + w1 + w2 + w3) * _RPM_TO_RADS * ep[P.P_DRAG]
            vbx = r00 * vx + r10 * vy + r20 * vz
            vby = r01 * vx + r11 * vy + r21 * vz
            vbz = r02 * vx + r12 * vy + r22 * vz
            fbx = -cfg[C_DRAG_XY] * spin * vbx
            fby = -cfg[C_DRAG_XY] * spin * vby
            fbz -= cfg[C_DRAG_Z] * spin * vbz

        g = cfg[C_GRAVITY]
        out[0] = vx
        out[1] = vy
        out[2] = vz
        out[7] = (r00 * fbx + r01 * fby + r02 * fbz + ext[0]) / mass
        out[8] = (r10 * fbx + r11 * fby + r12 * fbz + ext[1]) / mass
        out[9] = (r20 * fbx + r21 * fby + r22 * fbz + ext[2]) / mass - g

        # Torques: r_i x (0, 0, T_i) = (y_i T_i, -x_i T_i, 0) plus rotor reaction torque.
        tx = cfg[C_RY] * t0 + cfg[C_RY + 1] * t1 + cfg[C_RY + 2] * t2 + cfg[C_RY + 3] * t3 + ext[3]
        ty = -(cfg[C_RX] * t0 + cfg[C_RX + 1] * t1 + cfg[C_RX + 2] * t2 + cfg[C_RX + 3] * t3) + ext[4]
        tz = km * (cfg[C_YAW_DIR] * t0 + cfg[C_YAW_DIR + 1] * t1 + cfg[C_YAW_DIR + 2] * t2
                   + cfg[C_YAW_DIR + 3] * t3) + ext[5]
        wx = s[10]
        wy = s[11]
        wz = s[12]
        # Euler's equations: J dw = tau - w x (J w), J diagonal.
        out[10] = (tx - (wy * izz * wz - wz * iyy * wy)) / ixx
        out[11] = (ty - (wz * ixx * wx - wx * izz * wz)) / iyy
        out[12] = (tz - (wx * iyy * wy - wy * ixx * wx)) / izz

        # dq/dt = 1/2 q (x) (0, w)
        out[3] = 0.5 * (-qx * wx - qy * wy - qz * wz)
        out[4] = 0.5 * (qw * wx + qy * wz - qz * wy)
        out[5] = 0.5 * (qw * wy + qz * wx - qx * wz)
        out[6] = 0.5 * (qw * wz + qx * wy - qy * wx)

        if cfg[C_MOTOR] > 0.5:
            tau_up = cfg[C_TAU_RISE] * ep[P.P_TAU_UP]
            tau_down = cfg[C_TAU_FALL] * ep[P.P_TAU_DOWN]
            for k in range(4):
                d = cmd[k] - s[13 + k]
                out[13 + k] = d / tau_up if d > 0.0 else d / tau_down
        else:
            for k in range(4):
                out[13 + k] = 0.0

    @jit
    def rk4(s, cmd, ep, ext, cfg, h, work):
        """One classical Runge-Kutta step of size ``h`` in place; renormalizes q.

        Written as a loop over the four stages so the derivative has a single call
        site (it is inlined on the CPU; one copy compiles four times faster).
        """
        acc = work[0:17]
        k = work[17:34]
        tmp = work[34:51]
        for j in range(17):
            tmp[j] = s[j]
            acc[j] = 0.0
        for stage in range(4):
            derivative(tmp, cmd, ep, ext, cfg, k)
            w = 1.0 if (stage == 0 or stage == 3) else 2.0
            c = 0.5 * h if stage < 2 else h
            for j in range(17):
                acc[j] += w * k[j]
                tmp[j] = s[j] + c * k[j]
        for j in range(17):
            s[j] = s[j] + h / 6.0 * acc[j]
        n = math.sqrt(s[3] * s[3] + s[4] * s[4] + s[5] * s[5] + s[6] * s[6])
        if n > 0.0:
            for j in range(3, 7):
                s[j] = s[j] / n

    @jit_inline
    def hover_action(ep, cfg):
        """Action in [-1, 1] whose thrust carries this env's weight (vehicles.hover_command)."""
        per_rotor = cfg[C_MASS] * ep[P.P_MASS] * cfg[C_GRAVITY] / (4.0 * ep[P.P_KF])
        return 2.0 * hover_command(per_rotor, cfg[C_TC0], cfg[C_TC1], cfg[C_TC2]) - 1.0

    @jit_inline
    def random_unit(rng, i, out, o):
        """Uniform direction on the unit sphere into out[o:o+3]."""
        z = 2.0 * rng_uniform(rng, i) - 1.0
        phi = _TWO_PI * rng_uniform(rng, i)
        r = math.sqrt(max(1.0 - z * z, 0.0))
        out[o] = r * math.cos(phi)
        out[o + 1] = r * math.sin(phi)
        out[o + 2] = z

    @jit
    def reset_env(i, state, hist, ep, vec, lo, hi, rng, steps, acc, cfg):
        """Draw this env's episode parameters and initial state."""
        for j in range(P.NUM_PARAMS):
            ep[i, j] = lo[i, j] + rng_uniform(rng, i) * (hi[i, j] - lo[i, j])
        # Latency is an integer number of control steps, uniform over {lo..hi}.
        lat = math.floor(lo[i, P.P_LATENCY] + rng_uniform(rng, i) * (hi[i, P.P_LATENCY] - lo[i, P.P_LATENCY] + 1.0))
        ep[i, P.P_LATENCY] = min(lat, hi[i, P.P_LATENCY])

        e = ep[i]
        v = vec[i]
        tr = e[P.P_TARGET_R]
        for k in range(3):
            v[P.E_TARGET + k] = cfg[C_HOME + k] + tr * (2.0 * rng_uniform(rng, i) - 1.0)
        random_unit(rng, i, v, P.E_DIST_F)
        random_unit(rng, i, v, P.E_DIST_T)
        random_unit(rng, i, v, P.E_GYRO_BIAS)
        for k in range(3):
            v[P.E_DIST_F + k] *= e[P.P_DIST_F]
            v[P.E_DIST_T + k] *= e[P.P_DIST_T]
            v[P.E_GYRO_BIAS + k] *= e[P.P_GYRO_BIAS]

        s = state[i]
        r = e[P.P_START_R]
        for k in range(3):
            s[k] = v[P.E_TARGET + k] + r * (2.0 * rng_uniform(rng, i) - 1.0)
        # Orientation: rotation by an angle uniform in [0, tilt_max] about a uniform
        # random axis, so the tilt of the body z axis never exceeds tilt_max.
        random_unit(rng, i, s, 4)
        half = 0.5 * e[P.P_START_TILT] * rng_uniform(rng, i)
        sh = math.sin(half)
        s[3] = math.cos(half)
        s[4] *= sh
        s[5] *= sh
        s[6] *= sh
        sv = e[P.P_START_V]
        sw = e[P.P_START_W]
        for k in range(3):
            s[7 + k] = sv * (2.0 * rng_uniform(rng, i) - 1.0)
        for k in range(3):
            s[10 + k] = sw * (2.0 * rng_uniform(rng, i) - 1.0)
        a_h = hover_action(e, cfg)
        rpm_h = 0.5 * (a_h + 1.0) * cfg[C_MAX_RPM]
        for k in range(4):
            s[13 + k] = rpm_h
        for h in range(HIST_LEN):
            for k in range(4):
                hist[i, h, k] = a_h
        steps[i] = 0
        for k in range(ACC_DIM):
            acc[i, k] = 0.0

    @jit
    def observe(i, state, hist, ep, vec, rng, steps, cfg, obs_p, obs_c):
        """Write the policy view (noisy) and the critic view (exact + privileged)."""
        s = state[i]
        e = ep[i]
        v = vec[i]
        op = obs_p[i]
        oc = obs_c[i]
        qw = s[3]
        qx = s[4]
        qy = s[5]
        qz = s[6]
        oc[0] = s[0] - v[0]
        oc[1] = s[1] - v[1]
        oc[2] = s[2] - v[2]
        oc[3] = 1.0 - 2.0 * (qy * qy + qz * qz)
        oc[4] = 2.0 * (qx * qy - qw * qz)
        oc[5] = 2.0 * (qx * qz + qw * qy)
        oc[6] = 2.0 * (qx * qy + qw * qz)
        oc[7] = 1.0 - 2.0 * (qx * qx + qz * qz)
        oc[8] = 2.0 * (qy * qz - qw * qx)
        oc[9] = 2.0 * (qx * qz - qw * qy)
        oc[10] = 2.0 * (qy * qz + qw * qx)
        oc[11] = 1.0 - 2.0 * (qx * qx + qy * qy)
        for k in range(6):
            oc[12 + k] = s[7 + k]
        nh = int(cfg[C_HIST])
        for h in range(nh):
            for k in range(4):
                oc[18 + 4 * h + k] = hist[i, h, k]
        base = 18 + 4 * nh
        for j in range(base):
            op[j] = oc[j]
        if cfg[C_NOISE] > 0.5:
            ns = e[P.P_NOISE]
            for k in range(3):
                op[k] += ns * P.NOISE_POSITION_M * rng_normal(rng, i)
            for k in range(9):
                op[3 + k] += ns * P.NOISE_ROTATION * rng_normal(rng, i)
            for k in range(3):
                op[12 + k] += ns * P.NOISE_VELOCITY_MPS * rng_normal(rng, i)
            for k in range(3):
                op[15 + k] += ns * P.NOISE_ANGVEL_RPS * rng_normal(rng, i)
            # the episode's gyro bias: a sensor error, on with the noise
            for k in range(3):
                op[15 + k] += v[P.E_GYRO_BIAS + k]
        # Privileged part of the critic view, roughly unit scale: rotor speeds as 2u - 1,
        # disturbance force in nominal weights, torque in mN m, gyro bias x 50 (rad/s).
        for k in range(4):
            oc[base + k] = 2.0 * s[13 + k] / cfg[C_MAX_RPM] - 1.0
        weight = cfg[C_MASS] * cfg[C_GRAVITY]
        for k in range(3):
            oc[base + 4 + k] = v[P.E_DIST_F + k] / weight
            oc[base + 7 + k] = v[P.E_DIST_T + k] * 1e3
            oc[base + 10 + k] = v[P.E_GYRO_BIAS + k] * P.GYRO_BIAS_CRITIC_SCALE
        b2 = base + 13
        for j in range(P.NUM_RANDOMIZATION):
            oc[b2 + j] = e[j]
        oc[b2 + P.P_DIST_F] = e[P.P_DIST_F] / weight
        oc[b2 + P.P_DIST_T] = e[P.P_DIST_T] * 1e3
        oc[b2 + P.P_GYRO_BIAS] = e[P.P_GYRO_BIAS] * P.GYRO_BIAS_CRITIC_SCALE
        oc[b2 + P.NUM_RANDOMIZATION] = steps[i] / cfg[C_EP_STEPS]
        oc[b2 + P.NUM_RANDOMIZATION + 1] = e[P.P_ASSIST]

    @jit_inline
    def assist_wrench(s, e, v, cfg, ext):
        """Privileged helping wrench, scaled by the assist gain (0 = the real task)."""
        gain = e[P.P_ASSIST]
        if gain <= 0.0:
            return
        qw = s[3]
        qx = s[4]
        qy = s[5]
        qz = s[6]
        # Attitude error to level, yaw 0: e_R = vee(R - R^T) / 2.
        erx = 0.5 * ((2.0 * (qy * qz + qw * qx)) - (2.0 * (qy * qz - qw * qx)))
        ery = 0.5 * ((2.0 * (qx * qz + qw * qy)) - (2.0 * (qx * qz - qw * qy)))
        erz = 0.5 * ((2.0 * (qx * qy + qw * qz)) - (2.0 * (qx * qy - qw * qz)))
        m = cfg[C_MASS] * e[P.P_MASS]
        for k in range(3):
            ext[k] += gain * m * (-_ASSIST_KP * (s[k] - v[P.E_TARGET + k]) - _ASSIST_KV * s[7 + k])
        ext[3] += gain * cfg[C_IXX] * e[P.P_IXX] * (-_ASSIST_KR * erx - _ASSIST_KW * s[10])
        ext[4] += gain * cfg[C_IYY] * e[P.P_IYY] * (-_ASSIST_KR * ery - _ASSIST_KW * s[11])
        ext[5] += gain * cfg[C_IZZ] * e[P.P_IZZ] * (-_ASSIST_KR * erz - _ASSIST_KW * s[12])

    @jit
    def step_env(i, actions, state, hist, ep, vec, lo, hi, rng, steps, acc, cfg,
                 obs_p, obs_c, fin_p, fin_c, reward, flags, ep_out, ep_params, work):
        """One full control step of env ``i``: physics, reward, termination, auto-reset, observation."""
        s = state[i]
        e = ep[i]
        v = vec[i]
        nonfinite = False
        # Shift the action ring; non-finite commands reset the env, finite ones are clipped.
        for h in range(HIST_LEN - 1, 0, -1):
            for k in range(4):
                hist[i, h, k] = hist[i, h - 1, k]
        d_act = 0.0
        act_cost = 0.0
        a_h = hover_action(e, cfg)
        for k in range(4):
            a = actions[i, k]
            if not math.isfinite(a):
                nonfinite = True
                a = 0.0
            a = min(max(a, -1.0), 1.0)
            d = a - hist[i, 1, k]
            d_act += d * d
            dh = 0.5 * (a - a_h)  # throttle (0..1 scale) minus hover throttle
            act_cost += dh * dh
            hist[i, 0, k] = a
        lat = int(e[P.P_LATENCY])
        cmd = work[51:55]
        for k in range(4):
            # normalized command u = (a + 1) / 2, as a rotor speed (RPM) target
            cmd[k] = 0.5 * (hist[i, lat, k] + 1.0) * cfg[C_MAX_RPM]
            if cfg[C_MOTOR] <= 0.5:
                s[13 + k] = cmd[k]
        ext = work[55:61]
        for k in range(3):
            ext[k] = v[P.E_DIST_F + k]
            ext[3 + k] = v[P.E_DIST_T + k]
        assist_wrench(s, e, v, cfg, ext)
        nsub = int(cfg[C_SUBSTEPS])
        h = cfg[C_DT] / nsub
        for _ in range(nsub):
            rk4(s, cmd, e, ext, cfg, h, work)
        for j in range(17):
            if not math.isfinite(s[j]):
                nonfinite = True
        steps[i] += 1

        ex = s[0] - v[0]
        ey = s[1] - v[1]
        ez = s[2] - v[2]
        pos_err = math.sqrt(ex * ex + ey * ey + ez * ez)
        speed = math.sqrt(s[7] * s[7] + s[8] * s[8] + s[9] * s[9])
        rate = math.sqrt(s[10] * s[10] + s[11] * s[11] + s[12] * s[12])
        qw = min(abs(s[3]), 1.0)
        angle = 2.0 * math.acos(qw)
        terminated = (
            nonfinite
            or not (pos_err <= cfg[C_TERM_POS])
            or speed > cfg[C_TERM_VEL]
            or rate > cfg[C_TERM_ANGVEL]
            or s[2] < 0.0
        )
        if terminated:
            r = cfg[C_R_TERM]
        else:
            cost = (
                e[P.P_W_POS] * pos_err
                + e[P.P_W_ORI] * angle
                + e[P.P_W_VEL] * speed
                + e[P.P_W_ANGVEL] * rate
                + e[P.P_W_ACT] * act_cost
                + e[P.P_W_DACT] * math.sqrt(d_act)
            )
            r = cfg[C_R_CONST] - cfg[C_R_SCALE] * cost
        reward[i] = r
        acc[i, A_RETURN] += r
        n = steps[i]
        if n > cfg[C_EP_STEPS] - cfg[C_LAST_WINDOW] and not nonfinite:
            acc[i, A_POS] += pos_err
            qx = s[4]
            qy = s[5]
            qz = s[6]
            r22 = 1.0 - 2.0 * (qx * qx + qy * qy)
            acc[i, A_TILT] += math.acos(min(max(r22, -1.0), 1.0)) * _RAD_TO_DEG
            yaw = math.atan2(2.0 * (qx * qy + s[3] * qz), 1.0 - 2.0 * (qy * qy + qz * qz))
            acc[i, A_YAW] += abs(yaw) * _RAD_TO_DEG
        truncated = (not terminated) and n >= cfg[C_EP_STEPS]
        flags[i, F_TERMINATED] = 1 if terminated else 0
        flags[i, F_TRUNCATED] = 1 if truncated else 0
        flags[i, F_NONFINITE] = 1 if nonfinite else 0
        done = terminated or truncated
        # One observe call site (inlined on the CPU): pass 0 writes the final
        # observation of a finished episode, then the env resets; the last pass
        # writes the observation returned to the learner.
        for pass_ in range(2 if done else 1):
            final = done and pass_ == 0
            op = fin_p if final else obs_p
            oc = fin_c if final else obs_c
            if final and nonfinite:
                # Never hand out NaN: the final observation of a diverged env is zeros.
                for j in range(op.shape[1]):
                    op[i, j] = 0.0
                for j in range(oc.shape[1]):
                    oc[i, j] = 0.0
            else:
                observe(i, state, hist, ep, vec, rng, steps, cfg, op, oc)
            if final:
                window = min(float(n), cfg[C_LAST_WINDOW])
                ep_out[i, O_RETURN] = acc[i, A_RETURN]
                ep_out[i, O_LENGTH] = n
                ep_out[i, O_SURVIVED] = 1.0 if truncated else 0.0
                ep_out[i, O_POS] = acc[i, A_POS] / window
                ep_out[i, O_TILT] = acc[i, A_TILT] / window
                ep_out[i, O_YAW] = acc[i, A_YAW] / window
                for j in range(P.NUM_PARAMS):
                    ep_params[i, j] = e[j]
                reset_env(i, state, hist, ep, vec, lo, hi, rng, steps, acc, cfg)

    return SimpleNamespace(
        rng_next=rng_next, rng_uniform=rng_uniform, rng_normal=rng_normal,
        derivative=derivative, rk4=rk4, hover_action=hover_action, hover_command=hover_command,
        reset_env=reset_env, observe=observe, step_env=step_env,
    )

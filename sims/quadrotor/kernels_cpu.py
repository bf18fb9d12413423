"""CPU kernels: the quadrotor step vectorized across environments (SIMD), parallel over blocks.

Two implementations of one model live here:

* ``step`` / ``physics_only`` — the production kernels. Each thread takes a block of
  environments and processes it in chunks of ``W`` envs: the per-env rows are
  gathered into a structure-of-arrays scratch buffer (``buf[row * W + lane]``), the
  physics, reward and termination run as straight-line, branch-free loops over the
  lanes in float32 (LLVM turns them into 8-wide AVX2 code), and the results are
  scattered back. Envs whose episode ended are then reset one at a time
  (``_reset_observe``: ``physics.reset_env`` and ``physics.observe`` restated with the
  random-number counter in a register; same float64 expressions, same draws), their
  cold rows prefetched as soon as the step knows they ended.
* ``step_scalar`` / ``physics_only_scalar`` — ``physics.py`` compiled for the CPU, one
  env at a time in float64 arithmetic: the reference the SIMD kernel is tested
  against (``tests/test_sim_physics.py``) and the baseline of ``benchmarks/sim.py``.

The SIMD code restates ``physics.derivative`` and ``physics.step_env`` equation for
equation; what differs is only arithmetic precision (float32 instead of float64
intermediates; the state is stored in float32 either way), divisions by per-env
constants done as multiplications by reciprocals computed once per step, and acos /
atan2 evaluated by float32 polynomials (Cephes ``acosf``/``atanf``, < 2 ulp) so that the
loops stay vectorizable. Random numbers are the same SplitMix64 streams, drawn in the
same order per env, so both kernels (and the CUDA kernel) agree to float32 tolerance.
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.core import cgutils
from numba.extending import intrinsic

from . import params as P
from . import vehicles as V
from .physics import (
    A_POS, A_RETURN, A_TILT, A_YAW, ACC_DIM, C_DRAG, C_DRAG_XY, C_DRAG_Z, C_DT, C_EP_STEPS,
    C_GRAVITY, C_GROUND, C_HIST, C_HOME, C_IXX, C_IYY, C_IZZ, C_K1, C_K2, C_KM, C_LAST_WINDOW,
    C_MASS, C_MAX_RPM, C_MOTOR, C_NOISE, C_R_CONST, C_R_SCALE, C_R_TERM, C_RX, C_RY, C_SUBSTEPS,
    C_TAU_FALL, C_TAU_RISE, C_TC0, C_TC1, C_TC2, C_TERM_ANGVEL, C_TERM_POS, C_TERM_VEL, C_YAW_DIR,
    F_NONFINITE, F_TERMINATED, F_TRUNCATED, HIST_LEN, O_LENGTH, O_POS, O_RETURN, O_SURVIVED,
    O_TILT, O_YAW, SCRATCH, build,
)


def _drop_stale_cache() -> None:
    """Delete this module's numba cache when physics.py or params.py changed.

    numba keys its cache on this file only, but the kernels inline code from the
    other three: an edit there would otherwise keep running the old compiled physics.
    """
    here = Path(__file__).resolve().parent
    digest = hashlib.sha256(b"".join((here / f).read_bytes()
                                     for f in ("physics.py", "params.py", "vehicles.py", "kernels_cpu.py"))).hexdigest()
    cache = here / "__pycache__"
    stamp = cache / "kernels_cpu.physics.sha256"
    try:
        if stamp.read_text() == digest:
            return
    except OSError:
        pass
    try:
        cache.mkdir(exist_ok=True)
        for f in cache.glob("kernels_cpu.*.nb[ic]"):
            f.unlink()
        stamp.write_text(digest)
    except OSError:
        pass  # read-only install: numba then compiles in memory or uses its own cache dir


_drop_stale_cache()

# No nnan/ninf fast-math flags: the kernels must see NaN/inf to reset diverged envs.
# "reassoc"/"contract" let LLVM vectorize and fuse (FMA); "arcp" allows x/y = x*(1/y).
_FASTMATH = {"nsz", "arcp", "contract", "afn", "reassoc"}
_OPTS = dict(cache=True, fastmath=_FASTMATH, nogil=True)
_INL = dict(inline="always", **_OPTS)
# The SIMD code divides with IEEE semantics (x/0 = inf or NaN, caught as non-finite)
# instead of numba's default Python semantics, whose ZeroDivisionError check is an
# early exit that stops LLVM from vectorizing any loop containing a division.
# Without "reassoc"/"contract": with them, the reward came out 1 ulp different in a process
# that compiled these kernels than in one that loaded them from numba's cache, so the first
# training run in a fresh checkout did not reproduce later runs of the same seed. The lane
# loops vectorize without them (full step x1.58-1.97 the scalar kernel on a noisy VM, vs
# x2.02 with them; bare RK4 loses
# its FMAs: 56-65 vs 84-95 M/s; BENCHMARKS.md).
_SOPTS = dict(_OPTS, error_model="numpy", fastmath={"nsz", "arcp", "afn"})
_SINL = dict(inline="always", **_SOPTS)

# ----------------------------------------------------------------------------------
# Scalar reference (physics.py), one env at a time.
# Everything inlined at numba IR level: array views passed between numba functions
# otherwise cost atomic refcounts that all threads share (measured 2-3x slower).
_f = build(njit(**_INL))
# numba resolves module-level names only, so unpack the namespace.
_step_env, _reset_env, _observe, _rk4 = _f.step_env, _f.reset_env, _f.observe, _f.rk4
#: physics.derivative compiled for the CPU (the CUDA kernel's code), for tests.
derivative_scalar = _f.derivative
rk4_scalar = _f.rk4

# The parallel kernels hand contiguous blocks of environments to serial, non-inlined
# block functions. The prange body is then a single call: numba's parfor passes never
# see the physics. (With the physics inlined into the prange body, numba 0.68's parfor
# lowering reordered stores in observe(): the critic view's last entries were written
# before the step counter advanced. The serial compile was correct.) One call per block
# also keeps the per-call array refcounting off the per-environment path.
# The blocks compile without the numba runtime (_nrt=False): they never allocate, and
# without it the array views taken per env (state[i], work[i]) cost no atomic
# reference counting, which 2 threads would otherwise contend on (measured 1.5-2x).
# Blocks of >= 64 envs (two SIMD chunks) keep the per-chunk set-up below a few %; up to
# 256 blocks balance the load on many-core machines (episodes reset at different
# times). Not derived from numba.get_num_threads(): that makes the kernels uncachable.
_MIN_BLOCK = 64
_MAX_BLOCKS = 256


@njit(**_OPTS)
def _num_blocks(n):
    return max(1, min(_MAX_BLOCKS, n // _MIN_BLOCK))


def num_blocks(n: int) -> int:
    return max(1, min(_MAX_BLOCKS, n // _MIN_BLOCK))


@njit(**_OPTS)
def _block(n, nblocks, b):
    return b * n // nblocks, (b + 1) * n // nblocks


# ----------------------------------------------------------------------------------
# SIMD kernel: structure-of-arrays chunks of W envs.
#
# The scratch buffer of a chunk is one flat float32 array; quantity ``r`` of lane ``j``
# is ``buf[r * W + j]``. W and the row numbers are compile-time constants, so LLVM sees
# every access as (one base pointer) + (constant offset) + j and proves the rows
# independent without run-time alias checks; each lane loop then vectorizes.
W = 32
R_S = 0  # state, 17 rows (params.py layout)
R_T = 17  # RK4 stage input, 17
R_A = 34  # RK4 weighted sum of stage derivatives, 17
R_D = 51  # stage derivative, 17
R_CMD = 68  # rotor commands, RPM, 4
R_EXT = 72  # external force (3, world) and torque (3, body)
(R_IM, R_IXX, R_IYY, R_IZZ, R_IIXX, R_IIYY, R_IIZZ, R_KF, R_KM, R_ITU, R_ITD, R_DRAG,
 R_MASS) = range(78, 91)  # per-env constants (I = inverse)
R_ACT = 91  # actions in (then clipped), 4
R_PREV = 95  # previous action, 4
R_DEL = 99  # action applied after the latency, 4
R_TGT = 103  # target, 3
(R_ASSIST, R_NOISE, R_WPOS, R_WORI, R_WVEL, R_WANG, R_WACT, R_WDACT) = range(106, 114)
R_ACC = 114  # episode accumulators, 4
R_DACT, R_ACOST, R_NONFIN, R_TERM, R_TRUNC = range(118, 123)
R_OC = 123  # critic view, first 18 entries (noise-free)
R_OP = 141  # policy view, first 18 entries (noisy)
R_RPMN = 159  # critic view: rotor speeds scaled to [-1, 1], 4
R_TFRAC = 163  # critic view: episode time fraction
R_K1, R_K0 = 164, 165  # thrust curve per RPM: linear term and constant (x scale)
R_GB = 166  # gyro bias of the episode, 3
NROWS = 169

_f32 = np.float32
_0, _1, _2, _H = _f32(0.0), _f32(1.0), _f32(2.0), _f32(0.5)
_GE_MAXH = _f32(P.GROUND_EFFECT_MAX_HEIGHT)
_PROP_R = _f32(P.PROP_RADIUS)
_GE_C = _f32(P.GROUND_EFFECT_COEFF)
_RPM_TO_RADS = _f32(2.0 * math.pi / 60.0)
_GYRO_CS = _f32(P.GYRO_BIAS_CRITIC_SCALE)
_KR, _KW, _KP, _KV = (_f32(v) for v in (400.0, 28.0, 4.0, 3.0))  # physics._ASSIST_*
_SIG_POS = _f32(P.NOISE_POSITION_M)
_SIG_ROT = _f32(P.NOISE_ROTATION)
_SIG_VEL = _f32(P.NOISE_VELOCITY_MPS)
_SIG_ANG = _f32(P.NOISE_ANGVEL_RPS)
_PI = _f32(math.pi)
_PI_2 = _f32(math.pi / 2)
_PI_4 = _f32(math.pi / 4)
_TAN_PI_8 = _f32(math.tan(math.pi / 8))
_RAD_TO_DEG = _f32(180.0 / math.pi)
_SQRT3 = _f32(math.sqrt(3.0))
_INV_2_16 = _f32(1.0 / 65536.0)
# SplitMix64 (physics.rng_next), uint64 so numba never promotes to float.
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_U16, _U27, _U30, _U31, _U32 = (np.uint64(k) for k in (16, 27, 30, 31, 32))
_MASK16X2 = np.uint64(0x0000FFFF0000FFFF)
_MASK18 = np.uint64(0x3FFFF)
_NOISE_DRAWS = 18  # physics.observe draws 3 + 9 + 3 + 3 normals
# (k + 1) * golden mod 2**64: the counter offset of draw k
_GK = tuple(np.uint64((0x9E3779B97F4A7C15 * (k + 1)) % 2**64) for k in range(_NOISE_DRAWS))
_U40, _U48 = np.uint64(40), np.uint64(48)
_MASK16 = np.uint64(0xFFFF)
_INV_2_24_F64 = 1.0 / 16777216.0
_INV_2_16_F64 = 1.0 / 65536.0
_SQRT3_F64 = math.sqrt(3.0)
_TWO_PI_F64 = 2.0 * math.pi


#: vehicles.hover_command, the package's one hover formula, inlined into the lane loops.
_hover_command = njit(**_SINL)(V.hover_command)


@njit(**_SINL)
def _vehicle(cfg):
    """The vehicle's constants from the configuration vector, as two tuples of scalars:
    geometry and drag (read inside the derivative), nominal values (per-env constants)."""
    geo = (cfg[C_RX], cfg[C_RX + 1], cfg[C_RX + 2], cfg[C_RX + 3],
           cfg[C_RY], cfg[C_RY + 1], cfg[C_RY + 2], cfg[C_RY + 3],
           cfg[C_YAW_DIR], cfg[C_YAW_DIR + 1], cfg[C_YAW_DIR + 2], cfg[C_YAW_DIR + 3],
           cfg[C_DRAG_XY], cfg[C_DRAG_Z])
    nom = (cfg[C_MASS], cfg[C_IXX], cfg[C_IYY], cfg[C_IZZ], cfg[C_K2], cfg[C_K1], cfg[C_TC0],
           cfg[C_KM], cfg[C_TAU_RISE], cfg[C_TAU_FALL])
    return geo, nom


@njit(**_SINL)
def _asin_poly(x, z):
    """asin(x) for |x| <= 0.5, z = x*x (Cephes asinf)."""
    p = ((((_f32(4.2163199048e-2) * z + _f32(2.4181311049e-2)) * z + _f32(4.5470025998e-2)) * z
          + _f32(7.4953002686e-2)) * z + _f32(1.6666752422e-1))
    return x + x * z * p


@njit(**_SINL)
def _acos(x):
    """acos(x), x in [-1, 1], branch-free float32 (Cephes acosf reduction)."""
    a = abs(x)
    big = a > _H
    z = _H * (_1 - a) if big else a * a
    s = math.sqrt(z) if big else a
    p = _asin_poly(s, z)
    r = _2 * p if big else _PI_2 - p
    return _PI - r if x < _0 else r


@njit(**_SINL)
def _acos_1m2u(u):
    """acos(1 - 2u), u in [0, 1], without forming 1 - 2u (which loses the small angles:
    acos(1 - e) ~ sqrt(2e)). Used for the tilt, acos(R22) with R22 = 1 - 2(qx^2 + qy^2)."""
    u = min(max(u, _0), _1)
    x = _1 - _2 * u
    small = u < _f32(0.25)  # x > 0.5: acos(1 - 2u) = 2 asin(sqrt(u))
    large = u > _f32(0.75)  # x < -0.5: pi - 2 asin(sqrt(1 - u))
    z = u if small else (_1 - u if large else x * x)
    s = math.sqrt(z) if (small | large) else x
    p = _asin_poly(s, z)
    return _2 * p if small else (_PI - _2 * p if large else _PI_2 - p)


@njit(**_SINL)
def _abs_atan2(y, x):
    """|atan2(y, x)|, branch-free float32 (Cephes atanf on [0, 1])."""
    ax = abs(x)
    ay = abs(y)
    mx = max(ax, ay)
    mn = min(ax, ay)
    t = mn / mx if mx > _0 else _0
    red = t > _TAN_PI_8
    u = (t - _1) / (t + _1) if red else t
    z = u * u
    r = ((((_f32(8.05374449538e-2) * z - _f32(1.38776856032e-1)) * z + _f32(1.99777106478e-1)) * z
          - _f32(3.33329491539e-1)) * z * u + u)
    r = r + _PI_4 if red else r
    r = _PI_2 - r if ay > ax else r
    return _PI - r if x < _0 else r


@njit(**_SINL)
def _derivative_rows(b, n, src, ground, drag, motor, g, geo):
    """physics.derivative of the state in rows src..src+16 into rows R_D.., lanes 0..n-1."""
    rx0, rx1, rx2, rx3 = geo[0], geo[1], geo[2], geo[3]
    ry0, ry1, ry2, ry3 = geo[4], geo[5], geo[6], geo[7]
    d0, d1, d2, d3 = geo[8], geo[9], geo[10], geo[11]
    drag_xy, drag_z = geo[12], geo[13]
    for j in range(n):
        z = b[(src + 2) * W + j]
        qw = b[(src + 3) * W + j]
        qx = b[(src + 4) * W + j]
        qy = b[(src + 5) * W + j]
        qz = b[(src + 6) * W + j]
        vx = b[(src + 7) * W + j]
        vy = b[(src + 8) * W + j]
        vz = b[(src + 9) * W + j]
        wx = b[(src + 10) * W + j]
        wy = b[(src + 11) * W + j]
        wz = b[(src + 12) * W + j]
        m0 = b[(src + 13) * W + j]
        m1 = b[(src + 14) * W + j]
        m2 = b[(src + 15) * W + j]
        m3 = b[(src + 16) * W + j]
        r00 = _1 - _2 * (qy * qy + qz * qz)
        r01 = _2 * (qx * qy - qw * qz)
        r02 = _2 * (qx * qz + qw * qy)
        r10 = _2 * (qx * qy + qw * qz)
        r11 = _1 - _2 * (qx * qx + qz * qz)
        r12 = _2 * (qy * qz - qw * qx)
        r20 = _2 * (qx * qz - qw * qy)
        r21 = _2 * (qy * qz + qw * qx)
        r22 = _1 - _2 * (qx * qx + qy * qy)
        ratio = _PROP_R / (_f32(4.0) * max(z, _PROP_R))
        ge = _1 + _GE_C * ratio * ratio if (ground and z < _GE_MAXH) else _1
        kfg = b[R_KF * W + j] * ge
        k1g = b[R_K1 * W + j] * ge
        k0g = b[R_K0 * W + j] * ge
        w0 = max(m0, _0)
        w1 = max(m1, _0)
        w2 = max(m2, _0)
        w3 = max(m3, _0)
        t0 = max(kfg * w0 * w0 + (k1g * w0 + k0g), _0)
        t1 = max(kfg * w1 * w1 + (k1g * w1 + k0g), _0)
        t2 = max(kfg * w2 * w2 + (k1g * w2 + k0g), _0)
        t3 = max(kfg * w3 * w3 + (k1g * w3 + k0g), _0)
        spin = (w0 + w1 + w2 + w3) * _RPM_TO_RADS * b[R_DRAG * W + j] if drag else _0
        vbx = r00 * vx + r10 * vy + r20 * vz
        vby = r01 * vx + r11 * vy + r21 * vz
        vbz = r02 * vx + r12 * vy + r22 * vz
        fbx = -drag_xy * spin * vbx
        fby = -drag_xy * spin * vby
        fbz = (t0 + t1 + t2 + t3) - drag_z * spin * vbz
        im = b[R_IM * W + j]
        b[(R_D + 0) * W + j] = vx
        b[(R_D + 1) * W + j] = vy
        b[(R_D + 2) * W + j] = vz
        b[(R_D + 7) * W + j] = (r00 * fbx + r01 * fby + r02 * fbz + b[(R_EXT + 0) * W + j]) * im
        b[(R_D + 8) * W + j] = (r10 * fbx + r11 * fby + r12 * fbz + b[(R_EXT + 1) * W + j]) * im
        b[(R_D + 9) * W + j] = (r20 * fbx + r21 * fby + r22 * fbz + b[(R_EXT + 2) * W + j]) * im - g
        tx = ry0 * t0 + ry1 * t1 + ry2 * t2 + ry3 * t3 + b[(R_EXT + 3) * W + j]
        ty = -(rx0 * t0 + rx1 * t1 + rx2 * t2 + rx3 * t3) + b[(R_EXT + 4) * W + j]
        tz = b[R_KM * W + j] * (d0 * t0 + d1 * t1 + d2 * t2 + d3 * t3) + b[(R_EXT + 5) * W + j]
        ixx = b[R_IXX * W + j]
        iyy = b[R_IYY * W + j]
        izz = b[R_IZZ * W + j]
        b[(R_D + 10) * W + j] = (tx - (wy * izz * wz - wz * iyy * wy)) * b[R_IIXX * W + j]
        b[(R_D + 11) * W + j] = (ty - (wz * ixx * wx - wx * izz * wz)) * b[R_IIYY * W + j]
        b[(R_D + 12) * W + j] = (tz - (wx * iyy * wy - wy * ixx * wx)) * b[R_IIZZ * W + j]
        b[(R_D + 3) * W + j] = _H * (-qx * wx - qy * wy - qz * wz)
        b[(R_D + 4) * W + j] = _H * (qw * wx + qy * wz - qz * wy)
        b[(R_D + 5) * W + j] = _H * (qw * wy + qz * wx - qx * wz)
        b[(R_D + 6) * W + j] = _H * (qw * wz + qx * wy - qy * wx)
        itu = b[R_ITU * W + j]
        itd = b[R_ITD * W + j]
        e0 = b[(R_CMD + 0) * W + j] - m0
        e1 = b[(R_CMD + 1) * W + j] - m1
        e2 = b[(R_CMD + 2) * W + j] - m2
        e3 = b[(R_CMD + 3) * W + j] - m3
        b[(R_D + 13) * W + j] = e0 * (itu if e0 > _0 else itd) if motor else _0
        b[(R_D + 14) * W + j] = e1 * (itu if e1 > _0 else itd) if motor else _0
        b[(R_D + 15) * W + j] = e2 * (itu if e2 > _0 else itd) if motor else _0
        b[(R_D + 16) * W + j] = e3 * (itu if e3 > _0 else itd) if motor else _0


@njit(**_SINL)
def _rk4_rows(b, n, h, ground, drag, motor, g, geo):
    """physics.rk4 on lanes 0..n-1 of rows R_S (in place), then renormalize q."""
    hh = _H * h
    # Two call sites with constant source rows (one per source), so that each inlined
    # derivative loop reads and writes rows at compile-time distances.
    _derivative_rows(b, n, R_S, ground, drag, motor, g, geo)
    for k in range(17):
        for j in range(n):
            d = b[(R_D + k) * W + j]
            b[(R_A + k) * W + j] = d
            b[(R_T + k) * W + j] = b[(R_S + k) * W + j] + hh * d
    for stage in range(1, 4):
        _derivative_rows(b, n, R_T, ground, drag, motor, g, geo)
        if stage < 3:
            c = hh if stage == 1 else h
            for k in range(17):
                for j in range(n):
                    d = b[(R_D + k) * W + j]
                    b[(R_A + k) * W + j] += _2 * d
                    b[(R_T + k) * W + j] = b[(R_S + k) * W + j] + c * d
        else:
            h6 = h / _f32(6.0)
            for k in range(17):
                for j in range(n):
                    b[(R_S + k) * W + j] += h6 * (b[(R_A + k) * W + j] + b[(R_D + k) * W + j])
    for j in range(n):
        qw = b[(R_S + 3) * W + j]
        qx = b[(R_S + 4) * W + j]
        qy = b[(R_S + 5) * W + j]
        qz = b[(R_S + 6) * W + j]
        nq = math.sqrt(qw * qw + qx * qx + qy * qy + qz * qz)
        inv = _1 / nq if nq > _0 else _1
        b[(R_S + 3) * W + j] = qw * inv
        b[(R_S + 4) * W + j] = qx * inv
        b[(R_S + 5) * W + j] = qy * inv
        b[(R_S + 6) * W + j] = qz * inv


@njit(**_SINL)
def _gather_scales(b, j, e):
    """Raw randomization scales of env row ``e`` (an ep row) into lane j (see _constants)."""
    b[R_MASS * W + j] = e[P.P_MASS]
    b[R_IXX * W + j] = e[P.P_IXX]
    b[R_IYY * W + j] = e[P.P_IYY]
    b[R_IZZ * W + j] = e[P.P_IZZ]
    b[R_KF * W + j] = e[P.P_KF]
    b[R_KM * W + j] = e[P.P_KM]
    b[R_ITU * W + j] = e[P.P_TAU_UP]
    b[R_ITD * W + j] = e[P.P_TAU_DOWN]
    b[R_DRAG * W + j] = e[P.P_DRAG]


@njit(**_SINL)
def _constants(b, j, nom):
    """Per-env model constants from the raw scales and the vehicle's nominal values ``nom``
    (see _vehicle), in place (vectorizable: the divisions run once per step, 8 lanes at a time)."""
    mass = nom[0] * b[R_MASS * W + j]
    ixx = nom[1] * b[R_IXX * W + j]
    iyy = nom[2] * b[R_IYY * W + j]
    izz = nom[3] * b[R_IZZ * W + j]
    b[R_MASS * W + j] = mass
    b[R_IM * W + j] = _1 / mass
    b[R_IXX * W + j] = ixx
    b[R_IYY * W + j] = iyy
    b[R_IZZ * W + j] = izz
    b[R_IIXX * W + j] = _1 / ixx
    b[R_IIYY * W + j] = _1 / iyy
    b[R_IIZZ * W + j] = _1 / izz
    skf = b[R_KF * W + j]
    b[R_KF * W + j] = nom[4] * skf
    b[R_K1 * W + j] = nom[5] * skf
    b[R_K0 * W + j] = nom[6] * skf
    b[R_KM * W + j] = nom[7] * b[R_KM * W + j]
    b[R_ITU * W + j] = _1 / (nom[8] * b[R_ITU * W + j])
    b[R_ITD * W + j] = _1 / (nom[9] * b[R_ITD * W + j])


@njit(**_SINL)
def _action(b, j, k, a_h, max_rpm, motor):
    """Sanitize action k (NaN/inf -> 0, clip to [-1, 1]); command from the delayed one.

    Returns (non-finite, squared change, squared throttle offset from hover)."""
    a = b[(R_ACT + k) * W + j]
    bad = not math.isfinite(a)
    a = _0 if bad else a
    a = min(max(a, -_1), _1)
    b[(R_ACT + k) * W + j] = a
    d = a - b[(R_PREV + k) * W + j]
    dh = _H * (a - a_h)
    dl = b[(R_DEL + k) * W + j]  # history entries are clean; the current action may not be
    dl = _0 if not math.isfinite(dl) else dl
    dl = min(max(dl, -_1), _1)
    cmd = _H * (dl + _1) * max_rpm  # u = (a + 1) / 2 as a rotor speed target
    b[(R_CMD + k) * W + j] = cmd
    if not motor:
        b[(R_S + 13 + k) * W + j] = cmd
    return bad, d * d, dh * dh


@njit(**_SINL)
def _normal(x):
    """physics.rng_normal from the SplitMix64 counter value x (after the increment)."""
    z = (x ^ (x >> _U30)) * _MIX1
    z = (z ^ (z >> _U27)) * _MIX2
    z = z ^ (z >> _U31)
    # sum of the four 16-bit fields: two pairwise sums in the 32-bit halves, then fold
    t = (z & _MASK16X2) + ((z >> _U16) & _MASK16X2)
    s = (t + (t >> _U32)) & _MASK18
    # s < 2**18: the int32 conversion is exact and vectorizes (uint64 -> float does not).
    return ((_f32(np.int32(s)) + _2) * _INV_2_16 - _2) * _SQRT3


def _prefetch_intrinsic(write):
    """``f(arr, i, off)``: prefetch the cache line at byte ``off`` of row ``i`` of an array
    (LLVM's llvm.prefetch: prefetchw when ``write``, else prefetcht0)."""

    @intrinsic
    def prefetch(typingctx, arr, i, off):
        sig = types.void(arr, types.intp, types.intp)

        def codegen(context, builder, signature, args):
            ary = context.make_array(signature.args[0])(context, builder, args[0])
            stride0 = cgutils.unpack_tuple(builder, ary.strides)[0]
            base = builder.ptrtoint(ary.data, ir.IntType(64))
            addr = builder.add(base, builder.add(builder.mul(args[1], stride0), args[2]))
            i8p = ir.IntType(8).as_pointer()
            i32 = ir.IntType(32)
            fn = cgutils.get_or_insert_function(
                builder.module, ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32]), "llvm.prefetch.p0")
            # (address, rw, locality 3 = keep in all cache levels, data cache)
            builder.call(fn, [builder.inttoptr(addr, i8p), ir.Constant(i32, write),
                              ir.Constant(i32, 3), ir.Constant(i32, 1)])
            return context.get_dummy_value()

        return sig, codegen

    return prefetch


_prefetch_r = _prefetch_intrinsic(0)
_prefetch_w = _prefetch_intrinsic(1)


@njit(**_SINL)
def _prefetch_row(a, i, write):
    """Prefetch every cache line of row i of the 2-D array a."""
    nbytes = a.shape[1] * a.itemsize
    for off in range(0, nbytes, 64):
        if write:
            _prefetch_w(a, i, off)
        else:
            _prefetch_r(a, i, off)
    if write:
        _prefetch_w(a, i, nbytes - 1)
    else:
        _prefetch_r(a, i, nbytes - 1)


# ----------------------------------------------------------------------------------
# Reset of one finished env: physics.reset_env followed by physics.observe, the same
# float64 arithmetic and the same random numbers, restated so that no draw waits on the
# previous one. physics.rng_next keeps the SplitMix64 counter in rng[i] (a store and a
# reload per draw, ~60 dependent draws per reset); SplitMix64 being a counter generator
# (Steele et al. 2014), draw k after state x0 is mix(x0 + k * golden), so here the counter
# lives in a register and the draws' hashes overlap.
@njit(**_SINL)
def _mix64(x):
    z = (x ^ (x >> _U30)) * _MIX1
    z = (z ^ (z >> _U27)) * _MIX2
    return z ^ (z >> _U31)


@njit(**_SINL)
def _uniform64(x):
    """physics.rng_uniform from the counter value x (after the increment)."""
    return float(np.int64(_mix64(x) >> _U40)) * _INV_2_24_F64


@njit(**_SINL)
def _normal64(x):
    """physics.rng_normal from the counter value x (after the increment)."""
    z = _mix64(x)
    s = (z & _MASK16) + ((z >> _U16) & _MASK16) + ((z >> _U32) & _MASK16) + (z >> _U48)
    return ((float(np.int64(s)) + 2.0) * _INV_2_16_F64 - 2.0) * _SQRT3_F64


@njit(**_SINL)
def _unit64(x, out, o):
    """physics.random_unit with counter x: uses draws x + golden and x + 2 golden."""
    z = 2.0 * _uniform64(x + _GOLDEN) - 1.0
    phi = _TWO_PI_F64 * _uniform64(x + _GOLDEN + _GOLDEN)
    r = math.sqrt(max(1.0 - z * z, 0.0))
    out[o] = r * math.cos(phi)
    out[o + 1] = r * math.sin(phi)
    out[o + 2] = z


@njit(**_SINL)
def _reset_observe(i, state, hist, ep, vec, lo, hi, rng, steps, acc, cfg, obs_p, obs_c):
    """physics.reset_env(i) then physics.observe(i): same expressions, same draws."""
    x = rng[i]
    e = ep[i]
    lo_ = lo[i]
    hi_ = hi[i]
    for j in range(P.NUM_PARAMS):
        x += _GOLDEN
        e[j] = lo_[j] + _uniform64(x) * (hi_[j] - lo_[j])
    x += _GOLDEN
    lat = math.floor(lo_[P.P_LATENCY] + _uniform64(x) * (hi_[P.P_LATENCY] - lo_[P.P_LATENCY] + 1.0))
    e[P.P_LATENCY] = min(lat, hi_[P.P_LATENCY])
    v = vec[i]
    tr = e[P.P_TARGET_R]
    for k in range(3):
        x += _GOLDEN
        v[P.E_TARGET + k] = cfg[C_HOME + k] + tr * (2.0 * _uniform64(x) - 1.0)
    _unit64(x, v, P.E_DIST_F)
    x += _GOLDEN + _GOLDEN
    _unit64(x, v, P.E_DIST_T)
    x += _GOLDEN + _GOLDEN
    _unit64(x, v, P.E_GYRO_BIAS)
    x += _GOLDEN + _GOLDEN
    for k in range(3):
        v[P.E_DIST_F + k] *= e[P.P_DIST_F]
        v[P.E_DIST_T + k] *= e[P.P_DIST_T]
        v[P.E_GYRO_BIAS + k] *= e[P.P_GYRO_BIAS]
    s = state[i]
    r = e[P.P_START_R]
    for k in range(3):
        x += _GOLDEN
        s[k] = v[P.E_TARGET + k] + r * (2.0 * _uniform64(x) - 1.0)
    _unit64(x, s, 4)
    x += _GOLDEN + _GOLDEN
    x += _GOLDEN
    half = 0.5 * e[P.P_START_TILT] * _uniform64(x)
    sh = math.sin(half)
    s[3] = math.cos(half)
    s[4] *= sh
    s[5] *= sh
    s[6] *= sh
    sv = e[P.P_START_V]
    sw = e[P.P_START_W]
    for k in range(3):
        x += _GOLDEN
        s[7 + k] = sv * (2.0 * _uniform64(x) - 1.0)
    for k in range(3):
        x += _GOLDEN
        s[10 + k] = sw * (2.0 * _uniform64(x) - 1.0)
    # physics.hover_action
    per_rotor = cfg[C_MASS] * e[P.P_MASS] * cfg[C_GRAVITY] / (4.0 * e[P.P_KF])
    a_h = 2.0 * _hover_command(per_rotor, cfg[C_TC0], cfg[C_TC1], cfg[C_TC2]) - 1.0
    rpm_h = 0.5 * (a_h + 1.0) * cfg[C_MAX_RPM]
    for k in range(4):
        s[13 + k] = rpm_h
    for h in range(HIST_LEN):
        for k in range(4):
            hist[i, h, k] = a_h
    steps[i] = 0
    for k in range(ACC_DIM):
        acc[i, k] = 0.0

    # physics.observe (steps[i] = 0)
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
            oc[18 + 4 * h + k] = a_h
    base = 18 + 4 * nh
    for j in range(base):
        op[j] = oc[j]
    if cfg[C_NOISE] > 0.5:
        ns = e[P.P_NOISE]
        for k in range(3):
            x += _GOLDEN
            op[k] += ns * P.NOISE_POSITION_M * _normal64(x)
        for k in range(9):
            x += _GOLDEN
            op[3 + k] += ns * P.NOISE_ROTATION * _normal64(x)
        for k in range(3):
            x += _GOLDEN
            op[12 + k] += ns * P.NOISE_VELOCITY_MPS * _normal64(x)
        for k in range(3):
            x += _GOLDEN
            op[15 + k] += ns * P.NOISE_ANGVEL_RPS * _normal64(x)
        for k in range(3):
            op[15 + k] += v[P.E_GYRO_BIAS + k]
    rng[i] = x
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
    oc[b2 + P.NUM_RANDOMIZATION] = 0.0
    oc[b2 + P.NUM_RANDOMIZATION + 1] = e[P.P_ASSIST]


@njit(**_SINL)
def _finite17(b, j):
    """All 17 state rows of lane j finite (written out: an inner loop would stop LLVM
    from vectorizing the lane loop)."""
    ok = math.isfinite(b[(R_S + 0) * W + j])
    ok &= math.isfinite(b[(R_S + 1) * W + j])
    ok &= math.isfinite(b[(R_S + 2) * W + j])
    ok &= math.isfinite(b[(R_S + 3) * W + j])
    ok &= math.isfinite(b[(R_S + 4) * W + j])
    ok &= math.isfinite(b[(R_S + 5) * W + j])
    ok &= math.isfinite(b[(R_S + 6) * W + j])
    ok &= math.isfinite(b[(R_S + 7) * W + j])
    ok &= math.isfinite(b[(R_S + 8) * W + j])
    ok &= math.isfinite(b[(R_S + 9) * W + j])
    ok &= math.isfinite(b[(R_S + 10) * W + j])
    ok &= math.isfinite(b[(R_S + 11) * W + j])
    ok &= math.isfinite(b[(R_S + 12) * W + j])
    ok &= math.isfinite(b[(R_S + 13) * W + j])
    ok &= math.isfinite(b[(R_S + 14) * W + j])
    ok &= math.isfinite(b[(R_S + 15) * W + j])
    ok &= math.isfinite(b[(R_S + 16) * W + j])
    return ok


@njit(_nrt=False, **_SOPTS)
def _simd_chunk(c0, n, actions, state, hist, ep, vec, lo, hi, rng, steps, acc, cfg,
                obs_p, obs_c, fin_p, fin_c, reward, flags, ep_out, ep_params, b):
    """One control step of envs c0..c0+n-1 (n <= W); see physics.step_env."""
    max_rpm = cfg[C_MAX_RPM]
    g = cfg[C_GRAVITY]
    geo, nom = _vehicle(cfg)
    tc0, tc1, tc2 = cfg[C_TC0], cfg[C_TC1], cfg[C_TC2]
    ground = cfg[C_GROUND] > 0.5
    drag = cfg[C_DRAG] > 0.5
    motor = cfg[C_MOTOR] > 0.5
    noise = cfg[C_NOISE] > 0.5
    nsub = int(cfg[C_SUBSTEPS])
    h = cfg[C_DT] / _f32(nsub)
    ep_steps = cfg[C_EP_STEPS]
    window_start = ep_steps - cfg[C_LAST_WINDOW]
    term_pos = cfg[C_TERM_POS]
    term_vel = cfg[C_TERM_VEL]
    term_ang = cfg[C_TERM_ANGVEL]
    r_term = cfg[C_R_TERM]
    r_const = cfg[C_R_CONST]
    r_scale = cfg[C_R_SCALE]
    nh = int(cfg[C_HIST])
    src_p = R_OP if noise else R_OC  # rows of the policy view's first 18 entries
    # critic-view scalings as multiplications (physics.observe divides)
    rpm_scale = _2 / max_rpm  # 2 u - 1 = rpm * scale - 1
    inv_ep_steps = _1 / ep_steps
    inv_weight = _1 / (nom[0] * g)

    # --- gather: AoS rows of the global arrays -> SoA lanes -------------------------
    for j in range(n):
        i = c0 + j
        s = state[i]
        for k in range(17):
            b[(R_S + k) * W + j] = s[k]
        e = ep[i]
        _gather_scales(b, j, e)
        lat = int(e[P.P_LATENCY])
        for k in range(4):
            a = actions[i, k]
            b[(R_ACT + k) * W + j] = a
            b[(R_PREV + k) * W + j] = hist[i, 0, k]
            b[(R_DEL + k) * W + j] = a if lat == 0 else hist[i, lat - 1, k]
        v = vec[i]
        for k in range(3):
            b[(R_TGT + k) * W + j] = v[P.E_TARGET + k]
            b[(R_EXT + k) * W + j] = v[P.E_DIST_F + k]
            b[(R_EXT + 3 + k) * W + j] = v[P.E_DIST_T + k]
            b[(R_GB + k) * W + j] = v[P.E_GYRO_BIAS + k]
        b[R_ASSIST * W + j] = e[P.P_ASSIST]
        b[R_NOISE * W + j] = e[P.P_NOISE]
        b[R_WPOS * W + j] = e[P.P_W_POS]
        b[R_WORI * W + j] = e[P.P_W_ORI]
        b[R_WVEL * W + j] = e[P.P_W_VEL]
        b[R_WANG * W + j] = e[P.P_W_ANGVEL]
        b[R_WACT * W + j] = e[P.P_W_ACT]
        b[R_WDACT * W + j] = e[P.P_W_DACT]
        for k in range(ACC_DIM):
            b[(R_ACC + k) * W + j] = acc[i, k]

    # --- model constants, actions, rotor commands, assist wrench (vectorized) -----------
    for j in range(n):
        # physics.hover_action, from the raw mass and thrust scales (before _constants)
        per_rotor = nom[0] * b[R_MASS * W + j] * g / (_f32(4.0) * b[R_KF * W + j])
        a_h = _f32(_2 * _hover_command(per_rotor, tc0, tc1, tc2) - _1)
        _constants(b, j, nom)
        bad0, d0, c0_ = _action(b, j, 0, a_h, max_rpm, motor)
        bad1, d1, c1_ = _action(b, j, 1, a_h, max_rpm, motor)
        bad2, d2, c2_ = _action(b, j, 2, a_h, max_rpm, motor)
        bad3, d3, c3_ = _action(b, j, 3, a_h, max_rpm, motor)
        b[R_NONFIN * W + j] = _1 if (bad0 | bad1 | bad2 | bad3) else _0
        b[R_DACT * W + j] = d0 + d1 + d2 + d3
        b[R_ACOST * W + j] = c0_ + c1_ + c2_ + c3_
        # privileged assist (physics.assist_wrench) on the state before the step
        gain = b[R_ASSIST * W + j]
        on = gain > _0
        qw = b[(R_S + 3) * W + j]
        qx = b[(R_S + 4) * W + j]
        qy = b[(R_S + 5) * W + j]
        qz = b[(R_S + 6) * W + j]
        erx = _H * ((_2 * (qy * qz + qw * qx)) - (_2 * (qy * qz - qw * qx)))
        ery = _H * ((_2 * (qx * qz + qw * qy)) - (_2 * (qx * qz - qw * qy)))
        erz = _H * ((_2 * (qx * qy + qw * qz)) - (_2 * (qx * qy - qw * qz)))
        gm = gain * b[R_MASS * W + j]
        fx = gm * (-_KP * (b[(R_S + 0) * W + j] - b[(R_TGT + 0) * W + j]) - _KV * b[(R_S + 7) * W + j])
        fy = gm * (-_KP * (b[(R_S + 1) * W + j] - b[(R_TGT + 1) * W + j]) - _KV * b[(R_S + 8) * W + j])
        fz = gm * (-_KP * (b[(R_S + 2) * W + j] - b[(R_TGT + 2) * W + j]) - _KV * b[(R_S + 9) * W + j])
        b[(R_EXT + 0) * W + j] += fx if on else _0
        b[(R_EXT + 1) * W + j] += fy if on else _0
        b[(R_EXT + 2) * W + j] += fz if on else _0
        tx = gain * b[R_IXX * W + j] * (-_KR * erx - _KW * b[(R_S + 10) * W + j])
        ty = gain * b[R_IYY * W + j] * (-_KR * ery - _KW * b[(R_S + 11) * W + j])
        tz = gain * b[R_IZZ * W + j] * (-_KR * erz - _KW * b[(R_S + 12) * W + j])
        b[(R_EXT + 3) * W + j] += tx if on else _0
        b[(R_EXT + 4) * W + j] += ty if on else _0
        b[(R_EXT + 5) * W + j] += tz if on else _0

    # --- physics ------------------------------------------------------------------------
    for _ in range(nsub):
        _rk4_rows(b, n, h, ground, drag, motor, g, geo)

    # --- termination, reward, episode statistics, noise-free observation (vectorized) ---
    st = steps[c0:c0 + n]
    rw = reward[c0:c0 + n]
    for j in range(n):
        nonfinite = (b[R_NONFIN * W + j] > _0) | (not _finite17(b, j))
        cnt = st[j] + 1
        st[j] = cnt
        fcnt = _f32(cnt)
        ex = b[(R_S + 0) * W + j] - b[(R_TGT + 0) * W + j]
        ey = b[(R_S + 1) * W + j] - b[(R_TGT + 1) * W + j]
        ez = b[(R_S + 2) * W + j] - b[(R_TGT + 2) * W + j]
        vx = b[(R_S + 7) * W + j]
        vy = b[(R_S + 8) * W + j]
        vz = b[(R_S + 9) * W + j]
        wx = b[(R_S + 10) * W + j]
        wy = b[(R_S + 11) * W + j]
        wz = b[(R_S + 12) * W + j]
        qw = b[(R_S + 3) * W + j]
        qx = b[(R_S + 4) * W + j]
        qy = b[(R_S + 5) * W + j]
        qz = b[(R_S + 6) * W + j]
        pos_err = math.sqrt(ex * ex + ey * ey + ez * ez)
        speed = math.sqrt(vx * vx + vy * vy + vz * vz)
        rate = math.sqrt(wx * wx + wy * wy + wz * wz)
        angle = _2 * _acos(min(abs(qw), _1))
        terminated = (nonfinite | (not (pos_err <= term_pos)) | (speed > term_vel)
                      | (rate > term_ang) | (b[(R_S + 2) * W + j] < _0))
        cost = (b[R_WPOS * W + j] * pos_err + b[R_WORI * W + j] * angle
                + b[R_WVEL * W + j] * speed + b[R_WANG * W + j] * rate
                + b[R_WACT * W + j] * b[R_ACOST * W + j]
                + b[R_WDACT * W + j] * math.sqrt(b[R_DACT * W + j]))
        r = r_term if terminated else r_const - r_scale * cost
        rw[j] = r
        b[(R_ACC + A_RETURN) * W + j] += r
        r00 = _1 - _2 * (qy * qy + qz * qz)
        r01 = _2 * (qx * qy - qw * qz)
        r02 = _2 * (qx * qz + qw * qy)
        r10 = _2 * (qx * qy + qw * qz)
        r11 = _1 - _2 * (qx * qx + qz * qz)
        r12 = _2 * (qy * qz - qw * qx)
        r20 = _2 * (qx * qz - qw * qy)
        r21 = _2 * (qy * qz + qw * qx)
        r22 = _1 - _2 * (qx * qx + qy * qy)
        last = (fcnt > window_start) & (not nonfinite)
        tilt = _acos_1m2u(qx * qx + qy * qy) * _RAD_TO_DEG
        yaw = _abs_atan2(r10, r00) * _RAD_TO_DEG
        b[(R_ACC + A_POS) * W + j] += pos_err if last else _0
        b[(R_ACC + A_TILT) * W + j] += tilt if last else _0
        b[(R_ACC + A_YAW) * W + j] += yaw if last else _0
        b[R_NONFIN * W + j] = _1 if nonfinite else _0
        b[R_TERM * W + j] = _1 if terminated else _0
        b[R_TRUNC * W + j] = _1 if ((not terminated) & (fcnt >= ep_steps)) else _0
        b[(R_OC + 0) * W + j] = ex
        b[(R_OC + 1) * W + j] = ey
        b[(R_OC + 2) * W + j] = ez
        b[(R_OC + 3) * W + j] = r00
        b[(R_OC + 4) * W + j] = r01
        b[(R_OC + 5) * W + j] = r02
        b[(R_OC + 6) * W + j] = r10
        b[(R_OC + 7) * W + j] = r11
        b[(R_OC + 8) * W + j] = r12
        b[(R_OC + 9) * W + j] = r20
        b[(R_OC + 10) * W + j] = r21
        b[(R_OC + 11) * W + j] = r22
        b[(R_OC + 12) * W + j] = vx
        b[(R_OC + 13) * W + j] = vy
        b[(R_OC + 14) * W + j] = vz
        b[(R_OC + 15) * W + j] = wx
        b[(R_OC + 16) * W + j] = wy
        b[(R_OC + 17) * W + j] = wz
        b[(R_RPMN + 0) * W + j] = b[(R_S + 13) * W + j] * rpm_scale - _1
        b[(R_RPMN + 1) * W + j] = b[(R_S + 14) * W + j] * rpm_scale - _1
        b[(R_RPMN + 2) * W + j] = b[(R_S + 15) * W + j] * rpm_scale - _1
        b[(R_RPMN + 3) * W + j] = b[(R_S + 16) * W + j] * rpm_scale - _1
        b[R_TFRAC * W + j] = fcnt * inv_ep_steps

    # Rows that only finished envs touch (lo and hi read by the reset; fin_*, ep_out and
    # ep_params written) are cold: fetch them now, while the noise and the scatter run,
    # instead of stalling on each miss in the reset loop below.
    for j in range(n):
        if b[R_TERM * W + j] > _0 or b[R_TRUNC * W + j] > _0:
            i = c0 + j
            _prefetch_row(lo, i, False)
            _prefetch_row(hi, i, False)
            _prefetch_row(fin_p, i, True)
            _prefetch_row(fin_c, i, True)
            _prefetch_row(ep_out, i, True)
            _prefetch_row(ep_params, i, True)

    # --- sensor noise: the same 18 draws per env as physics.observe ----------------------
    # SplitMix64 is a counter: draw k of an env hashes (state + (k + 1) * golden), so the
    # 18 draws are independent: one loop over the lanes with all draws written out gives
    # 18 independent hash chains per env to overlap (3x faster than a loop per draw).
    # Envs that diverged get a zero final observation and draw nothing (physics.step_env).
    if noise:
        rs = rng[c0:c0 + n]
        for j in range(n):
            x = rs[j]
            ns = b[R_NOISE * W + j]
            sp = ns * _SIG_POS
            sr = ns * _SIG_ROT
            sv = ns * _SIG_VEL
            sw = ns * _SIG_ANG
            b[(R_OP + 0) * W + j] = b[(R_OC + 0) * W + j] + sp * _normal(x + _GK[0])
            b[(R_OP + 1) * W + j] = b[(R_OC + 1) * W + j] + sp * _normal(x + _GK[1])
            b[(R_OP + 2) * W + j] = b[(R_OC + 2) * W + j] + sp * _normal(x + _GK[2])
            b[(R_OP + 3) * W + j] = b[(R_OC + 3) * W + j] + sr * _normal(x + _GK[3])
            b[(R_OP + 4) * W + j] = b[(R_OC + 4) * W + j] + sr * _normal(x + _GK[4])
            b[(R_OP + 5) * W + j] = b[(R_OC + 5) * W + j] + sr * _normal(x + _GK[5])
            b[(R_OP + 6) * W + j] = b[(R_OC + 6) * W + j] + sr * _normal(x + _GK[6])
            b[(R_OP + 7) * W + j] = b[(R_OC + 7) * W + j] + sr * _normal(x + _GK[7])
            b[(R_OP + 8) * W + j] = b[(R_OC + 8) * W + j] + sr * _normal(x + _GK[8])
            b[(R_OP + 9) * W + j] = b[(R_OC + 9) * W + j] + sr * _normal(x + _GK[9])
            b[(R_OP + 10) * W + j] = b[(R_OC + 10) * W + j] + sr * _normal(x + _GK[10])
            b[(R_OP + 11) * W + j] = b[(R_OC + 11) * W + j] + sr * _normal(x + _GK[11])
            b[(R_OP + 12) * W + j] = b[(R_OC + 12) * W + j] + sv * _normal(x + _GK[12])
            b[(R_OP + 13) * W + j] = b[(R_OC + 13) * W + j] + sv * _normal(x + _GK[13])
            b[(R_OP + 14) * W + j] = b[(R_OC + 14) * W + j] + sv * _normal(x + _GK[14])
            b[(R_OP + 15) * W + j] = (b[(R_OC + 15) * W + j] + sw * _normal(x + _GK[15])
                                        + b[(R_GB + 0) * W + j])
            b[(R_OP + 16) * W + j] = (b[(R_OC + 16) * W + j] + sw * _normal(x + _GK[16])
                                        + b[(R_GB + 1) * W + j])
            b[(R_OP + 17) * W + j] = (b[(R_OC + 17) * W + j] + sw * _normal(x + _GK[17])
                                        + b[(R_GB + 2) * W + j])
            rs[j] = x if b[R_NONFIN * W + j] > _0 else x + _GK[_NOISE_DRAWS - 1]

    # --- scatter: state, action history, accumulators, flags (scalar copies) ---------
    any_done = False
    for j in range(n):
        i = c0 + j
        s = state[i]
        for k in range(17):
            s[k] = b[(R_S + k) * W + j]
        hi_ = hist[i]
        for hh in range(HIST_LEN - 1, 0, -1):
            for k in range(4):
                hi_[hh, k] = hi_[hh - 1, k]
        for k in range(4):
            hi_[0, k] = b[(R_ACT + k) * W + j]
        for k in range(ACC_DIM):
            acc[i, k] = b[(R_ACC + k) * W + j]
        nonfinite = b[R_NONFIN * W + j] > _0
        terminated = b[R_TERM * W + j] > _0
        truncated = b[R_TRUNC * W + j] > _0
        flags[i, F_TERMINATED] = 1 if terminated else 0
        flags[i, F_TRUNCATED] = 1 if truncated else 0
        flags[i, F_NONFINITE] = 1 if nonfinite else 0
        any_done |= terminated | truncated

    # --- observations of every env (a finished env's are moved to fin_* below) ---------
    base = 18 + 4 * nh
    for j in range(n):
        i = c0 + j
        op = obs_p[i]
        oc = obs_c[i]
        for k in range(18):
            oc[k] = b[(R_OC + k) * W + j]
            op[k] = b[(src_p + k) * W + j]
        hi_ = hist[i]
        for hh in range(nh):
            for k in range(4):
                a = hi_[hh, k]
                oc[18 + 4 * hh + k] = a
                op[18 + 4 * hh + k] = a
        for k in range(4):
            oc[base + k] = b[(R_RPMN + k) * W + j]

    # --- privileged part of the critic view (physics.observe) --------------------------
    b2 = base + 13
    for j in range(n):
        i = c0 + j
        oc = obs_c[i]
        v = vec[i]
        for k in range(3):
            oc[base + 4 + k] = v[P.E_DIST_F + k] * inv_weight
            oc[base + 7 + k] = v[P.E_DIST_T + k] * _f32(1e3)
            oc[base + 10 + k] = v[P.E_GYRO_BIAS + k] * _GYRO_CS
        e = ep[i]
        for k in range(P.NUM_RANDOMIZATION):
            oc[b2 + k] = e[k]
        oc[b2 + P.P_DIST_F] = e[P.P_DIST_F] * inv_weight
        oc[b2 + P.P_DIST_T] = e[P.P_DIST_T] * _f32(1e3)
        oc[b2 + P.P_GYRO_BIAS] = e[P.P_GYRO_BIAS] * _GYRO_CS
        oc[b2 + P.NUM_RANDOMIZATION] = b[R_TFRAC * W + j]
        oc[b2 + P.NUM_RANDOMIZATION + 1] = e[P.P_ASSIST]

    # --- episode results and auto-reset of finished envs (scalar, physics.py) ----------
    if not any_done:
        return
    for j in range(n):
        if not (b[R_TERM * W + j] > _0 or b[R_TRUNC * W + j] > _0):
            continue
        i = c0 + j
        # Final observation: the one just written, or zeros for a diverged env (never NaN).
        if b[R_NONFIN * W + j] > _0:
            for k in range(fin_p.shape[1]):
                fin_p[i, k] = 0.0
            for k in range(fin_c.shape[1]):
                fin_c[i, k] = 0.0
        else:
            for k in range(fin_p.shape[1]):
                fin_p[i, k] = obs_p[i, k]
            for k in range(fin_c.shape[1]):
                fin_c[i, k] = obs_c[i, k]
        cnt = steps[i]
        window = min(_f32(cnt), cfg[C_LAST_WINDOW])
        ep_out[i, O_RETURN] = acc[i, A_RETURN]
        ep_out[i, O_LENGTH] = cnt
        ep_out[i, O_SURVIVED] = 1.0 if b[R_TRUNC * W + j] > _0 else 0.0
        ep_out[i, O_POS] = acc[i, A_POS] / window
        ep_out[i, O_TILT] = acc[i, A_TILT] / window
        ep_out[i, O_YAW] = acc[i, A_YAW] / window
        for k in range(P.NUM_PARAMS):
            ep_params[i, k] = ep[i, k]
        _reset_observe(i, state, hist, ep, vec, lo, hi, rng, steps, acc, cfg, obs_p, obs_c)


@njit(_nrt=False, **_SOPTS)
def _step_block(start, stop, actions, state, hist, ep, vec, lo, hi, rng, steps, acc, cfg,
                obs_p, obs_c, fin_p, fin_c, reward, flags, ep_out, ep_params, b):
    for c0 in range(start, stop, W):
        _simd_chunk(c0, min(W, stop - c0), actions, state, hist, ep, vec, lo, hi, rng, steps, acc,
                    cfg, obs_p, obs_c, fin_p, fin_c, reward, flags, ep_out, ep_params, b)


@njit(parallel=True, **_SOPTS)
def step(actions, state, hist, ep, vec, lo, hi, rng, steps, acc, cfg,
         obs_p, obs_c, fin_p, fin_c, reward, flags, ep_out, ep_params, work):
    """Advance every environment by one control step (SIMD; same model as physics.step_env)."""
    n = state.shape[0]
    nb = _num_blocks(n)
    for blk in prange(nb):
        lo_i, hi_i = _block(n, nb, blk)
        _step_block(lo_i, hi_i, actions, state, hist, ep, vec, lo, hi, rng, steps, acc, cfg,
                    obs_p, obs_c, fin_p, fin_c, reward, flags, ep_out, ep_params, work[blk])


@njit(_nrt=False, **_SOPTS)
def _physics_block(start, stop, state, cmd, ep, ext, cfg, h, n_steps, b):
    ground = cfg[C_GROUND] > 0.5
    drag = cfg[C_DRAG] > 0.5
    motor = cfg[C_MOTOR] > 0.5
    g = cfg[C_GRAVITY]
    geo, nom = _vehicle(cfg)
    h = _f32(h)
    for c0 in range(start, stop, W):
        n = min(W, stop - c0)
        for j in range(n):
            i = c0 + j
            for k in range(17):
                b[(R_S + k) * W + j] = state[i, k]
            for k in range(4):
                b[(R_CMD + k) * W + j] = cmd[i, k]
            for k in range(6):
                b[(R_EXT + k) * W + j] = ext[i, k]
            _gather_scales(b, j, ep[i])
        for j in range(n):
            _constants(b, j, nom)
        for _ in range(n_steps):
            _rk4_rows(b, n, h, ground, drag, motor, g, geo)
        for j in range(n):
            i = c0 + j
            for k in range(17):
                state[i, k] = b[(R_S + k) * W + j]


@njit(parallel=True, **_SOPTS)
def physics_only(state, cmd, ep, ext, cfg, h, n_steps, work):
    """Bare RK4 integration (no reward/obs/reset), SIMD, for benchmarks and physics tests."""
    n = state.shape[0]
    nb = _num_blocks(n)
    for blk in prange(nb):
        lo_i, hi_i = _block(n, nb, blk)
        _physics_block(lo_i, hi_i, state, cmd, ep, ext, cfg, h, n_steps, work[blk])


@njit(**_SOPTS)
def derivative(s, cmd, ep, ext, cfg, out):
    """Time derivative of one state (17) as the SIMD kernel computes it (for tests)."""
    b = np.zeros(NROWS * W, np.float32)
    for k in range(17):
        b[(R_S + k) * W] = s[k]
    for k in range(4):
        b[(R_CMD + k) * W] = cmd[k]
    for k in range(6):
        b[(R_EXT + k) * W] = ext[k]
    geo, nom = _vehicle(cfg)
    _gather_scales(b, 0, ep)
    _constants(b, 0, nom)
    _derivative_rows(b, 1, R_S, cfg[C_GROUND] > 0.5, cfg[C_DRAG] > 0.5, cfg[C_MOTOR] > 0.5,
                     cfg[C_GRAVITY], geo)
    for k in range(17):
        out[k] = b[(R_D + k) * W]


# ----------------------------------------------------------------------------------
# Scalar reference kernels (physics.py, one env at a time, float64 arithmetic).
@njit(_nrt=False, **_OPTS)
def _step_block_scalar(start, stop, actions, state, hist, ep, vec, lo, hi, rng, steps, acc, cfg,
                       obs_p, obs_c, fin_p, fin_c, reward, flags, ep_out, ep_params, work):
    for i in range(start, stop):
        _step_env(i, actions, state, hist, ep, vec, lo, hi, rng, steps, acc, cfg,
                  obs_p, obs_c, fin_p, fin_c, reward, flags, ep_out, ep_params, work[i])


@njit(parallel=True, **_OPTS)
def step_scalar(actions, state, hist, ep, vec, lo, hi, rng, steps, acc, cfg,
                obs_p, obs_c, fin_p, fin_c, reward, flags, ep_out, ep_params, work):
    """``step`` computed by physics.step_env one env at a time; ``work`` from scratch_scalar."""
    n = state.shape[0]
    nb = _num_blocks(n)
    for b in prange(nb):
        lo_i, hi_i = _block(n, nb, b)
        _step_block_scalar(lo_i, hi_i, actions, state, hist, ep, vec, lo, hi, rng, steps, acc, cfg,
                           obs_p, obs_c, fin_p, fin_c, reward, flags, ep_out, ep_params, work)


@njit(_nrt=False, **_OPTS)
def _reset_block(start, stop, mask, state, hist, ep, vec, lo, hi, rng, steps, acc, cfg):
    for i in range(start, stop):
        if mask[i]:
            _reset_env(i, state, hist, ep, vec, lo, hi, rng, steps, acc, cfg)


@njit(parallel=True, **_OPTS)
def reset(mask, state, hist, ep, vec, lo, hi, rng, steps, acc, cfg):
    """Reset the environments where ``mask`` is true."""
    n = state.shape[0]
    nb = _num_blocks(n)
    for b in prange(nb):
        lo_i, hi_i = _block(n, nb, b)
        _reset_block(lo_i, hi_i, mask, state, hist, ep, vec, lo, hi, rng, steps, acc, cfg)


@njit(_nrt=False, **_OPTS)
def _observe_block(start, stop, state, hist, ep, vec, rng, steps, cfg, obs_p, obs_c):
    for i in range(start, stop):
        _observe(i, state, hist, ep, vec, rng, steps, cfg, obs_p, obs_c)


@njit(parallel=True, **_OPTS)
def observe(state, hist, ep, vec, rng, steps, cfg, obs_p, obs_c):
    """Write both observation views for every environment."""
    n = state.shape[0]
    nb = _num_blocks(n)
    for b in prange(nb):
        lo_i, hi_i = _block(n, nb, b)
        _observe_block(lo_i, hi_i, state, hist, ep, vec, rng, steps, cfg, obs_p, obs_c)


@njit(_nrt=False, **_OPTS)
def _physics_block_scalar(start, stop, state, cmd, ep, ext, cfg, h, n_steps, work):
    for i in range(start, stop):
        for _ in range(n_steps):
            _rk4(state[i], cmd[i], ep[i], ext[i], cfg, h, work[i])


@njit(parallel=True, **_OPTS)
def physics_only_scalar(state, cmd, ep, ext, cfg, h, n_steps, work):
    """``physics_only`` by physics.rk4, one env at a time; ``work`` from scratch_scalar."""
    n = state.shape[0]
    nb = _num_blocks(n)
    for b in prange(nb):
        lo_i, hi_i = _block(n, nb, b)
        _physics_block_scalar(lo_i, hi_i, state, cmd, ep, ext, cfg, h, n_steps, work)


def scratch(n: int) -> np.ndarray:
    """Scratch of the SIMD kernels: one SoA chunk buffer per block of envs."""
    return np.zeros((num_blocks(n), NROWS * W), dtype=np.float32)


def scratch_scalar(n: int) -> np.ndarray:
    """Per-environment float32 scratch of the scalar kernels (RK4 stages, rotor commands)."""
    return np.zeros((n, SCRATCH), dtype=np.float32)

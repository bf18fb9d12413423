"""The per-environment parameter table, the real range of a Crazyflie, shared constants.

Conventions (used everywhere in ``sims.quadrotor``):

* World frame: z up (ENU-like), gravity ``(0, 0, -g)``.
* Body frame: x forward, y left, z up (thrust direction).
* Quaternion ``q = (w, x, y, z)``, Hamilton product, unit norm, rotating body
  vectors into the world frame: ``v_world = R(q) v_body``.
* Angular velocity ``omega`` is expressed in the body frame.
* Rotor speeds are in RPM in the state (``u * max_rpm``, u the normalized speed); the
  thrust of rotor i is the vehicle's thrust curve ``c0 + c1 u + c2 u^2`` along body z.

The vehicle's constants (mass, inertia, thrust curve, motor constants, geometry) live
in ``vehicles.py``, one preset per vehicle (``QuadrotorConfig.vehicle``); the kernels
read them at run time from the configuration vector, so one compiled kernel flies
every preset. The randomization parameters below are scales on those constants.
"""

from __future__ import annotations

import math

import numpy as np

from ..param_table import Param
from . import vehicles as V
from .vehicles import GRAVITY  # noqa: F401  (re-exported: m/s^2, as in RLtools)

# Ground effect as in gym-pybullet-drones (after Shi et al., "Neural Lander", ICRA
# 2019): extra thrust T * C_ge * (r_prop / (4 h))^2 per rotor. Crazyflie-class values.
GROUND_EFFECT_COEFF = 11.36859
PROP_RADIUS = 0.0231348  # m, Crazyflie 2.x 45 mm propeller; gym-pybullet-drones
GROUND_EFFECT_MAX_HEIGHT = 0.2  # m, above this the effect is < 0.1 % and skipped


def hover_rpm(vehicle: str = V.DEFAULT_VEHICLE, mass_scale: float = 1.0, thrust_scale: float = 1.0) -> float:
    """Rotor speed (RPM) at which four rotors carry the vehicle (no drag, no ground effect)."""
    return V.get(vehicle).hover_rpm(mass_scale, thrust_scale)


def hover_action(vehicle: str = V.DEFAULT_VEHICLE, mass_scale: float = 1.0, thrust_scale: float = 1.0) -> float:
    """The hover command as an action in [-1, 1] (``vehicles.hover_command``, the one formula)."""
    return V.get(vehicle).hover_action(mass_scale, thrust_scale)


# The order of this table is the column order of the per-env parameter arrays
# (``lo``, ``hi``, ``episode``). Kernels index it through the constants below.
PARAMS: tuple[Param, ...] = (
    # --- domain randomization (multiplicative scales on nominal constants) ----------
    Param("randomization.mass_scale", (1.0, 1.0), (0.5, 2.0), "mass x nominal"),
    Param("randomization.inertia_xx_scale", (1.0, 1.0), (0.5, 2.0), "Ixx x nominal"),
    Param("randomization.inertia_yy_scale", (1.0, 1.0), (0.5, 2.0), "Iyy x nominal"),
    Param("randomization.inertia_zz_scale", (1.0, 1.0), (0.5, 2.0), "Izz x nominal"),
    Param("randomization.thrust_coeff_scale", (1.0, 1.0), (0.5, 2.0), "thrust curve x nominal (all of c0, c1, c2)"),
    Param("randomization.torque_coeff_scale", (1.0, 1.0), (0.5, 2.0), "yaw torque/thrust x nominal"),
    Param("randomization.motor_tau_up_scale", (1.0, 1.0), (0.1, 4.0), "rise time constant x nominal"),
    Param("randomization.motor_tau_down_scale", (1.0, 1.0), (0.1, 4.0), "fall time constant x nominal"),
    Param("randomization.drag_scale", (1.0, 1.0), (0.0, 5.0), "rotor drag x nominal"),
    Param("randomization.latency_steps", (0.0, 0.0), (0.0, 7.0), "action latency, control steps (integer)"),
    Param("randomization.noise_scale", (1.0, 1.0), (0.0, 5.0), "sensor noise std x nominal"),
    Param("randomization.disturbance_force_n", (0.0, 0.0), (0.0, 0.2), "constant external force, N, random direction"),
    Param("randomization.disturbance_torque_nm", (0.0, 0.0), (0.0, 1e-3), "constant external torque, N m, random direction"),
    Param("randomization.gyro_bias_rps", (0.0, 0.0), (0.0, 0.2),
          "constant bias on the observed body rates, rad/s, random direction (policy view only)"),
    # --- task / initial-state distribution -------------------------------------------
    Param("task.start_radius_m", (0.2, 0.2), (0.0, 1.0), "initial position: uniform per axis in +-r of the target"),
    Param("task.start_tilt_rad", (math.pi / 2, math.pi / 2), (0.0, math.pi), "initial rotation angle about a uniform random axis, <= this"),
    Param("task.start_speed_mps", (1.0, 1.0), (0.0, 3.0), "initial velocity: uniform per axis in +-this"),
    Param("task.start_angvel_rps", (1.0, 1.0), (0.0, 10.0), "initial body rates: uniform per axis in +-this"),
    Param("task.target_radius_m", (0.0, 0.0), (0.0, 2.0), "target: uniform per axis in +-this around the home setpoint"),
    # --- reward weights (see sims/quadrotor/kernels.py: reward) ----------------------
    Param("reward.position", (10.0, 10.0), (0.0, 1000.0), "weight on |position error| (m)"),
    Param("reward.orientation", (2.5, 2.5), (0.0, 1000.0), "weight on rotation angle to level, yaw 0 (rad)"),
    Param("reward.linear_velocity", (0.005, 0.005), (0.0, 1000.0), "weight on |v| (m/s)"),
    Param("reward.angular_velocity", (0.0, 0.0), (0.0, 1000.0), "weight on |omega| (rad/s)"),
    Param("reward.action", (0.1, 0.1), (0.0, 1000.0), "weight on sum (throttle - hover throttle)^2"),
    Param("reward.action_rate", (0.0, 0.0), (0.0, 1000.0), "weight on |a_t - a_{t-1}|"),
    # --- privileged actions (simulation-only help, annealed to 0 by a curriculum) ----
    Param("privileged.assist_gain", (0.0, 0.0), (0.0, 1.0), "fraction of a PD attitude/position assist wrench added to the policy's"),
)

# The "real range": how far one user's Crazyflie may differ from the identified
# preset, margin by margin. A deployable policy must survive it (robolearn's
# randomized evaluation block); curricula widen the training randomization towards it.
# Engineering margins from the sources named, not measurements of one vehicle:
#
# * mass 27-37 g (Crazyflie presets): 27 g is the bare Crazyflie 2.1 with its battery
#   (Bitcraze datasheet); decks and markers add 1.6 g (Flow deck v2), ~3 g (Lighthouse
#   deck, estimate), 1.7 + 0.3 g (micro-SD deck and card, Eschmann 2024), about 0.25 g per
#   mocap marker (Pfrommer's Crazyflie model), a larger battery a few g (estimate): 37 g
#   is a two-deck build, within Bitcraze's 42 g maximum take-off weight. Expressed as a
#   scale on the preset's mass (real_world_ranges).
# * thrust curve x0.8-1.2: battery sag (the firmware compensates the PWM for the battery
#   voltage until it runs out of headroom near the end of a flight: 3.5 V under load
#   against 3.9 V is (3.5 / 3.9)^2 = 0.8x of thrust at a fixed PWM) and propeller wear
#   (chipped or bent tips) below; Förster's stand against Bitcraze's (0.89x) and new
#   propellers above. Eschmann 2024's flight identification is 0.66-0.69x at the same
#   command (see vehicles.CRAZYFLIE_2_1): outside, as another command mapping.
# * inertia x0.7-1.3 on each axis: the spread of the identifications (vehicles.py:
#   Förster +16 %, arm-corrected flight identification -24 % on x/y), plus decks.
# * yaw torque/thrust x0.75-1.25: Förster 2015 (load cell) vs Eschmann 2024 (flight), 0.78x.
# * motor time constants x0.6-1.6, rise and fall each: motor ageing (brushed coreless
#   motors lose torque as brushes wear; hot motors are slower), battery sag (less
#   voltage headroom to accelerate), and the spread of the sources (0.055-0.15 s rise).
# * rotor drag x0.5-2 (a rough model; propeller guards add drag); sensor noise x0.5-2.
# * 0-1 control steps of latency: on board, estimate-to-motor delay is a fraction of
#   the 10 ms step; the Kalman filter's lag and an off-board loop over the radio add up
#   to about one step.
# * a gyro bias of up to 1 deg/s (0.0175 rad/s) per episode, random direction: the
#   BMI088's zero-rate offset is specified at +-1 deg/s (Bosch datasheet, as we recall it;
#   not re-checked here); the firmware's start-up calibration removes most of it, and
#   temperature drift during a flight brings some back: 1 deg/s is a bound, not a typical value.
# * a constant force up to 10 % of the weight (draught, a marker cable, a lopsided deck:
#   the thrust offset the attitude controller must trim) and a torque up to 1e-5 N m.
REAL_RANGE_MASS_KG: dict[str, tuple[float, float]] = {
    "crazyflie_2_1": (0.027, 0.037),
    "l2f_paper": (0.027, 0.037),
    # bare 32 g with the 350 mAh battery (Bitcraze) to 48 g: guards (Gräfe's 44 g) and a deck
    "crazyflie_2_1_brushless": (0.032, 0.048),
}


def real_world_ranges(vehicle: str = V.DEFAULT_VEHICLE) -> dict[str, tuple[float, float]]:
    """The real range of ``vehicle`` (see above): {parameter: (low, high)}."""
    v = V.get(vehicle)
    m_lo, m_hi = REAL_RANGE_MASS_KG.get(v.name, (0.9 * v.mass, 1.2 * v.mass))
    return {
        "randomization.mass_scale": (m_lo / v.mass, m_hi / v.mass),
        "randomization.inertia_xx_scale": (0.7, 1.3),
        "randomization.inertia_yy_scale": (0.7, 1.3),
        "randomization.inertia_zz_scale": (0.7, 1.3),
        "randomization.thrust_coeff_scale": (0.8, 1.2),
        "randomization.torque_coeff_scale": (0.75, 1.25),
        "randomization.motor_tau_up_scale": (0.6, 1.6),
        "randomization.motor_tau_down_scale": (0.6, 1.6),
        "randomization.drag_scale": (0.5, 2.0),
        "randomization.latency_steps": (0.0, 1.0),
        "randomization.noise_scale": (0.5, 2.0),
        "randomization.disturbance_force_n": (0.0, 0.1 * v.mass * GRAVITY),
        "randomization.disturbance_torque_nm": (0.0, 1e-5),
        "randomization.gyro_bias_rps": (0.0, math.radians(1.0)),
    }


#: The default vehicle's real range (other code imports this name).
REAL_WORLD_RANGES: dict[str, tuple[float, float]] = real_world_ranges(V.DEFAULT_VEHICLE)

#: The parameters whose extremes ``corner_ranges`` combines; inertia and the motor
#: constants move as groups (all axes together, rise and fall together).
CORNER_GROUPS: tuple[tuple[str, ...], ...] = (
    ("randomization.mass_scale",),
    ("randomization.thrust_coeff_scale",),
    ("randomization.inertia_xx_scale", "randomization.inertia_yy_scale", "randomization.inertia_zz_scale"),
    ("randomization.motor_tau_up_scale", "randomization.motor_tau_down_scale"),
)


def corner_values(ranges: dict[str, tuple[float, float]], n: int,
                  groups: tuple[tuple[str, ...], ...] = CORNER_GROUPS) -> dict[str, np.ndarray]:
    """Per-parameter (n,) float32 values pinning env i to corner ``i * 2**G // n`` of ``ranges``
    (G groups; the corners split evenly over the envs). Corner k has group g at the high end of
    its range when bit g of k is set, the numbering of :func:`corner_ranges`. Raises ValueError
    (one line) for a grouped parameter that ``ranges`` lacks."""
    corner = np.arange(n) * 2 ** len(groups) // n
    out: dict[str, np.ndarray] = {}
    for g, names in enumerate(groups):
        high = (corner >> g) & 1
        for name in names:
            if name not in ranges:
                raise ValueError(f"corner parameter {name} has no range")
            lo, hi = ranges[name]
            out[name] = np.where(high == 1, hi, lo).astype(np.float32)
    return out


def corner_ranges(vehicle: str = V.DEFAULT_VEHICLE) -> list[dict[str, tuple[float, float]]]:
    """Every extreme combination of mass, thrust, inertia and motor constants of the real range.

    2^4 = 16 dicts, each the real range of ``vehicle`` with the four groups of
    ``CORNER_GROUPS`` pinned to their low or high end as degenerate ranges ``(v, v)``
    (inertia: all three axes together; motors: rise and fall together); the other
    parameters keep their real range. Corner k has group g at its high end when bit g
    of k is set (k = 0: everything low, k = 15: everything high).
    """
    real = real_world_ranges(vehicle)
    out = []
    for k in range(2 ** len(CORNER_GROUPS)):
        r = dict(real)
        for g, names in enumerate(CORNER_GROUPS):
            for name in names:
                v = real[name][(k >> g) & 1]
                r[name] = (v, v)
        out.append(r)
    return out


PARAM_INDEX = {p.name: i for i, p in enumerate(PARAMS)}
NUM_PARAMS = len(PARAMS)

# Column constants used inside the kernels (numba treats module-level ints as
# compile-time constants).
(P_MASS, P_IXX, P_IYY, P_IZZ, P_KF, P_KM, P_TAU_UP, P_TAU_DOWN, P_DRAG, P_LATENCY, P_NOISE, P_DIST_F, P_DIST_T,
 P_GYRO_BIAS) = range(14)
P_START_R, P_START_TILT, P_START_V, P_START_W, P_TARGET_R = range(14, 19)
P_W_POS, P_W_ORI, P_W_VEL, P_W_ANGVEL, P_W_ACT, P_W_DACT = range(19, 25)
P_ASSIST = 25
NUM_RANDOMIZATION = 14  # the first 14 columns are the dynamics (and sensor) randomization

# State vector layout, shape (N, STATE_DIM), float32.
S_POS, S_QUAT, S_VEL, S_OMEGA, S_RPM = 0, 3, 7, 10, 13
STATE_DIM = 17

# Per-episode vectors drawn at reset, shape (N, EPISODE_DIM): target, disturbance force
# (world, N) and torque (body, N m), gyro bias (body, rad/s).
E_TARGET, E_DIST_F, E_DIST_T, E_GYRO_BIAS = 0, 3, 6, 9
EPISODE_DIM = 12

# Nominal sensor noise standard deviations (scaled by randomization.noise_scale).
# Orders of magnitude of the Crazyflie's Kalman-filter output with a Lighthouse/mocap
# position source (Bitcraze, "State estimation" docs): mm-level position, ~0.01 rad
# attitude, cm/s velocity, IMU gyro noise ~ 0.01 rad/s (BMI088 datasheet, after the
# on-board low-pass filter).
NOISE_POSITION_M = 0.002
NOISE_ROTATION = 0.01
NOISE_VELOCITY_MPS = 0.01
NOISE_ANGVEL_RPS = 0.01
# Critic view: the gyro bias (rad/s) times this, roughly unit scale at the real range's 1 deg/s.
GYRO_BIAS_CRITIC_SCALE = 50.0

"""Crazyflie 2.x physical constants and the per-environment parameter table.

Conventions (used everywhere in ``sims.quadrotor``):

* World frame: z up (ENU-like), gravity ``(0, 0, -g)``.
* Body frame: x forward, y left, z up (thrust direction).
* Quaternion ``q = (w, x, y, z)``, Hamilton product, unit norm, rotating body
  vectors into the world frame: ``v_world = R(q) v_body``.
* Angular velocity ``omega`` is expressed in the body frame.
* Rotor speeds are in RPM; thrust of rotor i is ``k_f * rpm_i**2`` along body z.

Nominal constants follow the Crazyflie 2.0 model used by *Learning to Fly in
Seconds* (Eschmann et al., 2024; RLtools ``crazy_flie.h``), which in turn takes the
thrust curve and the torque/thrust ratio from J. Förster, "System Identification of
the Crazyflie 2.0 Nano Quadrocopter", BSc thesis, ETH Zürich, 2015. Using the same
numbers keeps the comparison with RLtools a comparison on the same task.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

GRAVITY = 9.81  # m/s^2, as in RLtools crazy_flie.h

# --- Crazyflie 2.x nominal constants -------------------------------------------------
MASS = 0.027  # kg, take-off mass; Förster 2015 (Table 2.1), RLtools crazy_flie.h
# Rotor positions (x, y) in the body frame, metres. RLtools crazy_flie.h places the
# rotor centres at (±0.028, ±0.028) m. Order: 0 front-right, 1 back-right,
# 2 back-left, 3 front-left (x forward, y left).
ROTOR_XY = ((0.028, -0.028), (-0.028, -0.028), (-0.028, 0.028), (0.028, 0.028))
# Reaction-torque direction about body z for each rotor (+1: rotor torque on the body
# is +z). RLtools crazy_flie.h: (-1, +1, -1, +1).
ROTOR_YAW_DIR = (-1.0, 1.0, -1.0, 1.0)
INERTIA = (3.85e-6, 3.85e-6, 5.9675e-6)  # kg m^2, diagonal; RLtools crazy_flie.h
THRUST_COEFF = 3.16e-10  # N / RPM^2; Förster 2015 (thrust vs RPM fit)
TORQUE_TO_THRUST = 0.005964552  # m (yaw torque = ratio * thrust); Förster 2015
MOTOR_TAU = 0.15  # s, first-order rotor time constant; RLtools crazy_flie.h
RPM_MIN = 0.0  # RLtools crazy_flie.h action limit
RPM_MAX = 21702.0  # RLtools crazy_flie.h action limit (thrust/weight ~ 2.25)
# Rotor drag: force on the body = -k * (sum of rotor speeds in rad/s) * v_body,
# coefficients from gym-pybullet-drones cf2x.urdf (Panerati et al., IROS 2021),
# identified after Förster 2015. kg/rad.
DRAG_XY = 9.1785e-7
DRAG_Z = 10.311e-7
# Ground effect as in gym-pybullet-drones (after Shi et al., "Neural Lander", ICRA
# 2019): extra thrust k_f rpm^2 * C_ge * (r_prop / (4 h))^2 per rotor.
GROUND_EFFECT_COEFF = 11.36859
PROP_RADIUS = 0.0231348  # m, Crazyflie 2.x 45 mm propeller; gym-pybullet-drones
GROUND_EFFECT_MAX_HEIGHT = 0.2  # m, above this the effect is < 0.1 % and skipped


def hover_rpm(mass: float = MASS, thrust_coeff: float = THRUST_COEFF) -> float:
    """RPM at which four rotors exactly carry ``mass`` (no drag, no ground effect)."""
    return math.sqrt(mass * GRAVITY / (4.0 * thrust_coeff))


@dataclass(frozen=True)
class Param:
    """One per-environment parameter, sampled uniformly in [low, high] at each reset.

    ``default`` is the nominal range; ``limits`` are hard bounds no curriculum may pass.
    """

    name: str
    default: tuple[float, float]
    limits: tuple[float, float]
    doc: str


# The order of this table is the column order of the per-env parameter arrays
# (``lo``, ``hi``, ``episode``). Kernels index it through the constants below.
PARAMS: tuple[Param, ...] = (
    # --- domain randomization (multiplicative scales on nominal constants) ----------
    Param("randomization.mass_scale", (1.0, 1.0), (0.5, 2.0), "mass x nominal"),
    Param("randomization.inertia_xx_scale", (1.0, 1.0), (0.5, 2.0), "Ixx x nominal"),
    Param("randomization.inertia_yy_scale", (1.0, 1.0), (0.5, 2.0), "Iyy x nominal"),
    Param("randomization.inertia_zz_scale", (1.0, 1.0), (0.5, 2.0), "Izz x nominal"),
    Param("randomization.thrust_coeff_scale", (1.0, 1.0), (0.5, 2.0), "k_f x nominal"),
    Param("randomization.torque_coeff_scale", (1.0, 1.0), (0.5, 2.0), "yaw torque/thrust x nominal"),
    Param("randomization.motor_tau_up_scale", (1.0, 1.0), (0.1, 4.0), "rise time constant x nominal"),
    Param("randomization.motor_tau_down_scale", (1.0, 1.0), (0.1, 4.0), "fall time constant x nominal"),
    Param("randomization.drag_scale", (1.0, 1.0), (0.0, 5.0), "rotor drag x nominal"),
    Param("randomization.latency_steps", (0.0, 0.0), (0.0, 7.0), "action latency, control steps (integer)"),
    Param("randomization.noise_scale", (1.0, 1.0), (0.0, 5.0), "sensor noise std x nominal"),
    Param("randomization.disturbance_force_n", (0.0, 0.0), (0.0, 0.2), "constant external force, N, random direction"),
    Param("randomization.disturbance_torque_nm", (0.0, 0.0), (0.0, 1e-3), "constant external torque, N m, random direction"),
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

# The "real range": how far one real Crazyflie 2.x flight may differ from the nominal
# model. A deployable policy must survive it (robolearn's randomized evaluation block);
# curricula widen the training randomization towards it. These are engineering
# margins, not measurements: mass +-10 % (battery packs and decks/markers change the
# 27-32 g take-off weight, Bitcraze CF2.1 datasheet); inertia +-15 % (the system
# identification of Foerster 2015 reports the inertia to roughly this accuracy);
# thrust coefficient +-15 % (propeller wear, and battery sag from 4.2 V to 3.7 V lowers
# the thrust at a given command); yaw torque coefficient +-15 %; motor time constants
# x0.7..1.5; drag x0.5..2; sensor noise x0.5..2; a steady force up to 5 % of the weight (draught,
# tether of a marker cable) and a torque of 1e-5 N m (a bent propeller). No action
# latency: the policy runs on board in the stabilizer loop, where estimate-to-motor
# delay is a fraction of the 10 ms control step. Flying off board over the radio adds
# about one step; randomize ``randomization.latency_steps`` in training for that.
REAL_WORLD_RANGES: dict[str, tuple[float, float]] = {
    "randomization.mass_scale": (0.9, 1.1),
    "randomization.inertia_xx_scale": (0.85, 1.15),
    "randomization.inertia_yy_scale": (0.85, 1.15),
    "randomization.inertia_zz_scale": (0.85, 1.15),
    "randomization.thrust_coeff_scale": (0.85, 1.15),
    "randomization.torque_coeff_scale": (0.85, 1.15),
    "randomization.motor_tau_up_scale": (0.7, 1.5),
    "randomization.motor_tau_down_scale": (0.7, 1.5),
    "randomization.drag_scale": (0.5, 2.0),
    "randomization.noise_scale": (0.5, 2.0),
    "randomization.disturbance_force_n": (0.0, 0.05 * MASS * GRAVITY),
    "randomization.disturbance_torque_nm": (0.0, 1e-5),
}

PARAM_INDEX = {p.name: i for i, p in enumerate(PARAMS)}
NUM_PARAMS = len(PARAMS)

# Column constants used inside the kernels (numba treats module-level ints as
# compile-time constants).
P_MASS, P_IXX, P_IYY, P_IZZ, P_KF, P_KM, P_TAU_UP, P_TAU_DOWN, P_DRAG, P_LATENCY, P_NOISE, P_DIST_F, P_DIST_T = range(13)
P_START_R, P_START_TILT, P_START_V, P_START_W, P_TARGET_R = range(13, 18)
P_W_POS, P_W_ORI, P_W_VEL, P_W_ANGVEL, P_W_ACT, P_W_DACT = range(18, 24)
P_ASSIST = 24
NUM_RANDOMIZATION = 13  # the first 13 columns are the dynamics randomization

# State vector layout, shape (N, STATE_DIM), float32.
S_POS, S_QUAT, S_VEL, S_OMEGA, S_RPM = 0, 3, 7, 10, 13
STATE_DIM = 17

# Per-episode vectors drawn at reset, shape (N, EPISODE_DIM): target, disturbances.
E_TARGET, E_DIST_F, E_DIST_T = 0, 3, 6
EPISODE_DIM = 9

# Nominal sensor noise standard deviations (scaled by randomization.noise_scale).
# Orders of magnitude of the Crazyflie's Kalman-filter output with a Lighthouse/mocap
# position source (Bitcraze, "State estimation" docs): mm-level position, ~0.01 rad
# attitude, cm/s velocity, IMU gyro noise ~ 0.01 rad/s (BMI088 datasheet, after the
# on-board low-pass filter).
NOISE_POSITION_M = 0.002
NOISE_ROTATION = 0.01
NOISE_VELOCITY_MPS = 0.01
NOISE_ANGVEL_RPS = 0.01

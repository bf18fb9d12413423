"""Per-environment parameter table of the manipulation tasks (same contract as the quadrotor's).

Every parameter is drawn uniformly in its per-env ``[low, high]`` range at each env's
reset (:meth:`ArmVecEnv.set_range` changes the range; it takes effect at the next reset).
``limits`` are hard bounds no curriculum may pass.
"""

from __future__ import annotations

import math
import numpy as np

from ..param_table import Param
from ..param_table import check_range as _check_range


PARAMS: tuple[Param, ...] = (
    # --- domain randomization, written into per-simulation model fields of the batch ----
    Param("randomization.object_mass_scale", (1.0, 1.0), (0.2, 5.0), "box mass (and inertia) x nominal 0.1 kg: body_mass, body_inertia"),
    Param("randomization.object_friction", (0.6, 0.6), (0.05, 2.0), "sliding friction of box and table: geom_friction"),
    Param("randomization.joint_damping_scale", (1.0, 1.0), (0.2, 5.0), "arm joint damping x nominal: dof_damping"),
    Param("randomization.actuator_gain_scale", (1.0, 1.0), (0.5, 2.0), "arm servo kp x nominal: actuator_gainprm/biasprm"),
    Param("randomization.latency_s", (0.0, 0.0), (0.0, 0.06), "control latency of every actuator, s: actuator_delay"),
    Param("randomization.noise_scale", (1.0, 1.0), (0.0, 5.0), "observation noise std x nominal (policy view only)"),
    # --- task / initial-state distribution ---------------------------------------------
    Param("task.object_spawn_m", (0.05, 0.05), (0.0, 0.12), "box xy: uniform in +-this around (0.4, 0)"),
    Param("task.object_yaw_rad", (0.5, 0.5), (0.0, math.pi / 2), "box yaw: uniform in +-this"),
    Param("task.goal_distance_m", (0.05, 0.2), (0.0, 0.3), "push: goal at this distance from the box, random direction"),
    Param("task.goal_height_m", (0.05, 0.15), (0.0, 0.25), "lift: goal this high above the box's start"),
    # --- privileged actions (simulation only; the curriculum drives them to 0) ----------
    Param("privileged.force_scale", (0.0, 0.0), (0.0, 1.0), "virtual force on the box, x max_virtual_force_n, from action dims 5:8"),
    Param("privileged.gravity_scale", (0.0, 0.0), (0.0, 1.0), "fraction of the box's weight cancelled"),
    Param("privileged.table_penetration", (0.0, 0.0), (0.0, 1.0), "softening of gripper-table contacts (1: the gripper passes through)"),
)

PARAM_INDEX = {p.name: i for i, p in enumerate(PARAMS)}
NUM_PARAMS = len(PARAMS)
(P_MASS, P_FRICTION, P_DAMPING, P_GAIN, P_LATENCY, P_NOISE,
 P_SPAWN, P_YAW, P_GOAL_D, P_GOAL_H, P_FORCE, P_GRAVITY, P_PENETRATION) = range(NUM_PARAMS)
RANDOMIZATION = slice(P_MASS, P_NOISE + 1)
PRIVILEGED = slice(P_FORCE, P_PENETRATION + 1)

# Nominal observation noise (std) of the policy view, scaled by randomization.noise_scale.
# Joint encoders ~1e-3 rad; velocities from differenced encoders ~1e-2 rad/s; the box pose
# as a fixed RGB-D camera with a pose estimator gives it: ~5 mm, ~0.03 rad.
NOISE_JOINT_POS = 0.002
NOISE_JOINT_VEL = 0.02
NOISE_FINGER = 0.0005
NOISE_EE = 0.002
NOISE_OBJECT_POS = 0.005
NOISE_OBJECT_ROT = 0.03


def check_range(name: str, lo: float | np.ndarray, hi: float | np.ndarray) -> None:
    """Raise ValueError naming the parameter if [lo, hi] is not inside its hard limits."""
    _check_range(PARAMS, PARAM_INDEX, name, lo, hi)

"""Vehicle presets: one table of identified constants per quadrotor (``QuadrotorConfig.vehicle``).

Model (``physics.derivative``): action ``a`` in [-1, 1] -> normalized motor command
``u = (a + 1) / 2`` in [0, 1]; each rotor's normalized speed follows ``u`` first order
with the rise constant when speeding up and the fall constant when slowing down; the
thrust of one rotor at normalized speed ``u`` is ``T(u) = c0 + c1 u + c2 u^2`` (N, clipped
at 0), its yaw reaction torque ``dir * torque_to_thrust * T``. The state stores rotor
speed in RPM (``u * max_rpm``), which the rotor-drag and critic views use.

Every constant cites its source; where sources disagree, the disagreement and the
choice are stated next to it. Frames: body x forward, y left, z up; rotor order
0 front-right, 1 back-right, 2 back-left, 3 front-left (Crazyflie M1..M4).

Sources (short names used below):

* **Eschmann 2024**: J. Eschmann, D. Albani, G. Loianno, "Data-Driven System
  Identification of Quadrotors Subject to Motor Delays", IROS 2024 (arXiv 2404.07837);
  its Crazyflie identification as shipped in the RLtools "l2f" simulator's
  ``parameters/dynamics/crazyflie.h`` (2026 version): rise/fall constants, 30.6 g
  take-off mass with decks, a flight-identified thrust curve and torque/thrust ratio.
* **Förster 2015**: J. Förster, "System Identification of the Crazyflie 2.0 Nano
  Quadrocopter", BSc thesis, ETH Zürich (IDSC), 2015: inertia by pendulum measurement
  (full matrix 16.57/16.66/29.26 e-6 kg m^2 on the diagonal), thrust vs normalized PWM
  and torque/thrust on a load cell (the pwmToThrustA/B and thrustToTorque constants of
  the crazyflie-firmware power distribution), rotor speed vs PWM, arm 46 mm.
* **Pfrommer / RotorPy**: RotorPy (Folk et al., 2023) ``crazyflie_params.py``, inertia from
  B. Pfrommer's component-mass model of the Crazyflie 2.0 (2016): 30 g, 1.43e-5 /
  1.43e-5 / 2.89e-5 kg m^2, arm 43 mm, one motor constant 0.072 s.
* **Bitcraze**: Crazyflie 2.1 datasheet (27 g take-off weight with the 250 mAh battery,
  92 mm rotor-to-rotor diagonal, max take-off weight 42 g) and the "Measuring propeller
  RPM" blog series (2015; 0 -> 25k RPM in ~180 ms; ~14.5 g thrust per rotor at full
  PWM on a stand). Motor layout (M1 front-right spins counter-clockwise seen from above,
  M2 clockwise, M3 counter-clockwise, M4 clockwise) from the Bitcraze docs.
* **Gräfe 2026**: A. Gräfe, C. Scherer, W. Hönig, S. Trimpe, "How to Model Your
  Crazyflie Brushless" (arXiv 2603.05944), as shipped in RotorPy
  ``crazyfliebrushless_params.py`` (with propeller guards).
* **l2f paper**: *Learning to Fly in Seconds* (Eschmann, Albani, Loianno, RA-L 2024),
  RLtools ``crazy_flie.h`` of that paper.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

GRAVITY = 9.81  # m/s^2, as in RLtools (l2f) and the thesis of Förster 2015


@dataclass(frozen=True)
class Vehicle:
    """Identified constants of one quadrotor (SI units, body frame x fwd / y left / z up)."""

    name: str
    mass: float  # kg, take-off mass with battery
    rotor_xy: tuple[tuple[float, float], ...]  # (x, y) of rotors 0..3, m (FR, BR, BL, FL)
    rotor_yaw_dir: tuple[float, ...]  # +1: rotor's reaction torque on the body is +z
    inertia: tuple[float, float, float]  # kg m^2, diagonal (Ixx, Iyy, Izz)
    thrust_curve: tuple[float, float, float]  # (c0, c1, c2): T(u) = c0 + c1 u + c2 u^2, N per rotor
    motor_tau_rise: float  # s, first-order constant when the rotor speeds up
    motor_tau_fall: float  # s, ... when it slows down
    torque_to_thrust: float  # m, yaw reaction torque / thrust of one rotor
    max_rpm: float  # rotor speed at u = 1, RPM (rotor drag model, critic view)
    drag_xy: float  # kg/rad, body drag force = -drag * (sum of rotor speeds, rad/s) * v_body
    drag_z: float  # kg/rad
    doc: str = ""

    def thrust(self, u: float) -> float:
        """Thrust of one rotor at normalized speed ``u`` (N)."""
        c0, c1, c2 = self.thrust_curve
        return max(c0 + c1 * u + c2 * u * u, 0.0)

    def hover_command(self, mass_scale: float = 1.0, thrust_scale: float = 1.0,
                      gravity: float = GRAVITY) -> float:
        """Normalized motor command u in [0, 1] at which four rotors carry the weight."""
        c0, c1, c2 = self.thrust_curve
        return hover_command(self.mass * mass_scale * gravity / (4.0 * thrust_scale), c0, c1, c2)

    def hover_action(self, mass_scale: float = 1.0, thrust_scale: float = 1.0,
                     gravity: float = GRAVITY) -> float:
        """The hover command as an action in [-1, 1] (``2 u - 1``)."""
        return 2.0 * self.hover_command(mass_scale, thrust_scale, gravity) - 1.0

    def hover_rpm(self, mass_scale: float = 1.0, thrust_scale: float = 1.0,
                  gravity: float = GRAVITY) -> float:
        """Rotor speed (RPM) at the hover command."""
        return self.hover_command(mass_scale, thrust_scale, gravity) * self.max_rpm

    def thrust_to_weight(self, gravity: float = GRAVITY) -> float:
        """Four rotors' thrust at u = 1 over the weight."""
        return 4.0 * self.thrust(1.0) / (self.mass * gravity)


def hover_command(thrust_per_rotor: float, c0: float, c1: float, c2: float) -> float:
    """u with ``c0 + c1 u + c2 u^2 = thrust_per_rotor`` (the positive root), clipped to [0, 1].

    The one hover formula of the package: plain arithmetic, so that ``physics.build``
    compiles this very function into the CPU and CUDA kernels. Written as
    ``2 d / (c1 + sqrt(c1^2 + 4 c2 d))`` with ``d = T - c0``: no cancellation, and it
    also holds for c2 = 0 (linear curve) and c1 = 0 (``sqrt(d / c2)``).
    """
    d = thrust_per_rotor - c0
    den = c1 + math.sqrt(max(c1 * c1 + 4.0 * c2 * d, 0.0))
    u = 2.0 * d / den if den > 0.0 else 1.0
    return min(max(u, 0.0), 1.0)


# --- rotor layout shared by the Crazyflie 2.x presets --------------------------------
# Yaw directions: Crazyflie M1 (front-right) and M3 (back-left) spin counter-clockwise
# seen from above, so their reaction torque on the body is -z (Bitcraze motor layout);
# the same signs as RLtools crazy_flie.h and RotorPy's rotor_directions.
_CF_YAW_DIR = (-1.0, 1.0, -1.0, 1.0)


def _x_layout(half_span: float) -> tuple[tuple[float, float], ...]:
    """Rotor (x, y) of an X quadrotor with rotors at +-half_span on both axes (FR, BR, BL, FL)."""
    h = half_span
    return ((h, -h), (-h, -h), (-h, h), (h, h))


# Rotor drag (gym-pybullet-drones cf2x.urdf, Panerati et al. IROS 2021, identified after
# Förster 2015): force on the body = -k (sum of rotor speeds in rad/s) v_body, kg/rad.
_CF_DRAG_XY = 9.1785e-7
_CF_DRAG_Z = 10.311e-7

L2F_PAPER = Vehicle(
    name="l2f_paper",
    # The constants of *Learning to Fly in Seconds* (RLtools crazy_flie.h), unchanged, so
    # that the comparison with RLtools stays on its task.
    mass=0.027,  # kg; RLtools crazy_flie.h (Bitcraze's 27 g take-off weight)
    rotor_xy=_x_layout(0.028),  # m; RLtools crazy_flie.h
    rotor_yaw_dir=_CF_YAW_DIR,  # RLtools crazy_flie.h (-1, +1, -1, +1)
    inertia=(3.85e-6, 3.85e-6, 5.9675e-6),  # kg m^2; RLtools crazy_flie.h
    # thrust k_f rpm^2 with k_f = 3.16e-10 N/RPM^2 (Förster 2015's fit) and rpm in
    # [0, 21702] (RLtools action limits): with u = rpm / 21702, T = k_f 21702^2 u^2.
    thrust_curve=(0.0, 0.0, 3.16e-10 * 21702.0**2),
    motor_tau_rise=0.15,  # s; RLtools crazy_flie.h (one constant for both directions)
    motor_tau_fall=0.15,
    torque_to_thrust=0.005964552,  # m; Förster 2015 via RLtools crazy_flie.h
    max_rpm=21702.0,  # RLtools crazy_flie.h action limit (thrust/weight 2.25)
    drag_xy=_CF_DRAG_XY,
    drag_z=_CF_DRAG_Z,
    doc="Learning to Fly in Seconds (RLtools crazy_flie.h): the previous nominal model",
)

CRAZYFLIE_2_1 = Vehicle(
    name="crazyflie_2_1",
    # Mass: Eschmann 2024 weighed 27 g (Bitcraze take-off weight with battery) + 1.7 g
    # micro-SD deck + 0.3 g card + 1.6 g Flow deck v2 = 30.6 g. A bare Crazyflie 2.1 is
    # 27 g (Bitcraze datasheet); research Crazyflies nearly always carry a positioning
    # deck (Flow v2 1.6 g, Lighthouse ~2-3 g) or mocap markers, so the decked mass is the
    # better centre of what users fly; the real range (params.real_world_ranges) spans
    # 27-37 g around it. The 2.1 differs from the 2.0 in radio, IMU (BMI088 instead of
    # MPU-9250), barometer and power button, not in frame, motors or propellers
    # (Bitcraze, "Crazyflie 2.1 released", 2019): the 2.0 identifications below apply.
    mass=0.0306,
    # Arm: 92 mm rotor-to-rotor diagonal (Bitcraze), 46 mm centre-to-rotor (Förster 2015;
    # crazyflie-firmware's CRAZYFLIE_ARM_LENGTH) -> 46 / sqrt(2) = 32.5 mm on each axis.
    # Disagreement: RLtools uses 28 mm per axis and RotorPy 43 mm arms (30.4 mm per axis);
    # we take the Bitcraze geometry, which is a drawing dimension, not a fit.
    rotor_xy=_x_layout(0.046 / math.sqrt(2.0)),
    rotor_yaw_dir=_CF_YAW_DIR,
    # Inertia, kg m^2. Sources disagree by 1.8x on x/y: Förster 2015's pendulum
    # measurement 1.66e-5 / 1.67e-5 / 2.93e-5; Pfrommer's component model (RotorPy)
    # 1.43e-5 / 1.43e-5 / 2.89e-5; Eschmann 2024's flight identification 0.94e-5 /
    # 0.96e-5 / 1.75e-5, identified together with a 28 mm moment arm: what flight data
    # fix is torque / inertia, so with the true 32.5 mm arm it corresponds to 1.09e-5 /
    # 1.12e-5 on x/y. We take Pfrommer's values: they lie between the direct measurement
    # (+16 %) and the arm-corrected flight identification (-24 %), so the real range's
    # +-30 % holds both; on z Förster is +1 %, Eschmann -40 % (outside, on the slow yaw).
    inertia=(1.43e-5, 1.43e-5, 2.89e-5),
    # Thrust per rotor over the normalized command, N: Förster 2015's load-cell fit over the
    # normalized PWM, T = 0.091492681 u^2 + 0.067673604 u: the model the Crazyflie
    # firmware's own power distribution uses (pwmToThrustA/B, force control mode) and,
    # with the firmware's battery-voltage compensation of the PWM, what a commanded u
    # gives until the battery runs low. T(1) = 0.160 N, thrust/weight 2.13 at 30.6 g;
    # hover at u = 0.61 (0.56 at 27 g, near the firmware PID position controller's hover
    # base thrust of 36000/65535 = 0.55, as we recall it; not re-checked here). Disagreements: Bitcraze's stand ~14.5 g = 0.142 N at
    # full PWM (0.89x); Eschmann 2024's flight identification (0.00353, 0.01437, 0.09223)
    # gives 0.66-0.69x at the same command (T/W 1.47 at 30.6 g): identified on the raw
    # command in flight, i.e. with battery sag and, we believe, without the firmware's
    # voltage compensation (not verified). With that curve a 37 g vehicle on a sagging
    # battery (the real range's heavy-and-weak corner) would have thrust/weight < 1; with
    # Förster's, 1.41 there.
    thrust_curve=(0.0, 0.067673604, 0.091492681),
    # Motor constants, s: Eschmann 2024 (l2f crazyflie.h): rise 0.0555 s (from the motor
    # manufacturer's plot, 0.040-0.080 s), fall 0.249 s. Consistent with Bitcraze's
    # 0 -> 25k RPM in ~180 ms (about 3 rise constants). Disagreement: RotorPy uses one
    # 0.072 s constant; l2f paper 0.15 s; Bitcraze notes the fall slope near hover speed
    # is similar to the rise. The real range scales both x0.6-1.6.
    motor_tau_rise=0.0555,
    motor_tau_fall=0.2494,
    # Yaw torque / thrust, m: Förster 2015 (load cell) 0.005964552; Eschmann 2024 (flight)
    # 0.004665 (0.78x). We take the direct measurement; the real range's +-25 % holds both.
    torque_to_thrust=0.005964552,
    # Rotor speed at u = 1: RLtools' 21702 RPM action limit for the same Crazyflie (its
    # k_f rpm^2 model, after Förster 2015); Bitcraze measured a step to ~25k RPM. Used by
    # the rotor-drag model and the critic view only (speed taken linear in u; the real
    # RPM-vs-PWM map is affine with an offset at PWM 0, which matters only near idle,
    # where the drag is small).
    max_rpm=21702.0,
    drag_xy=_CF_DRAG_XY,
    drag_z=_CF_DRAG_Z,
    doc="Crazyflie 2.1 (brushed): Förster 2015 thrust map, Eschmann 2024 motors and mass",
)

CRAZYFLIE_2_1_BRUSHLESS = Vehicle(
    name="crazyflie_2_1_brushless",
    # Gräfe 2026 (RotorPy crazyfliebrushless_params.py), with propeller guards: 44 g,
    # inertia 3.3e-5 / 3.6e-5 / 5.9e-5 kg m^2, 43 mm arm, thrust k_eta w^2 with
    # k_eta = 4.052e-8 N/(rad/s)^2 up to 3100 rad/s, one motor constant 0.050 s.
    # Disagreement: Bitcraze (blog, CF2.1 Brushless specification) states 32 g with the
    # 350 mAh battery (no guards) and "up to 30 g thrust" per 08028-10000KV motor with
    # 55 mm propellers; Gräfe's curve gives 39.7 g at 3100 rad/s. We keep Gräfe's
    # consistent, identified set (mass, inertia and thrust measured on the same vehicle).
    mass=0.044,
    rotor_xy=_x_layout(0.043 / math.sqrt(2.0)),  # 43 mm arm (Gräfe 2026 / RotorPy)
    # RotorPy's rotor_directions for this vehicle give these signs; that the Brushless spins
    # its propellers as the 2.1 does is RotorPy's assumption and ours (not checked against
    # Bitcraze's Brushless documentation)
    rotor_yaw_dir=_CF_YAW_DIR,
    inertia=(3.3e-5, 3.6e-5, 5.9e-5),
    thrust_curve=(0.0, 0.0, 4.052e-8 * 3100.0**2),  # N; T = k_eta (u 3100 rad/s)^2
    motor_tau_rise=0.050,  # s; Gräfe 2026 (one constant, both directions)
    motor_tau_fall=0.050,
    # Yaw torque/thrust: RotorPy k_m / k_eta = 7.8e-10 / 4.052e-8 = 0.0192 m, but its k_m
    # is the brushed Crazyflie's value copied over (its comment cites Förster 2015) with
    # another propeller; we keep the brushed vehicle's measured ratio instead (Förster).
    torque_to_thrust=0.005964552,
    max_rpm=3100.0 * 60.0 / (2.0 * math.pi),  # 29603 RPM (Gräfe 2026 rotor_speed_max)
    # Rotor drag: RotorPy's Gräfe values are in another model (induced inflow); we scale
    # the brushed vehicle's per-rad coefficients by the thrust coefficient ratio at the
    # same speed (4.052e-8 / 2.3e-8, RotorPy). An estimate, not an identification.
    drag_xy=_CF_DRAG_XY * 4.052e-8 / 2.3e-8,
    drag_z=_CF_DRAG_Z * 4.052e-8 / 2.3e-8,
    doc="Crazyflie 2.1 Brushless with propeller guards (Gräfe et al. 2026)",
)

VEHICLES: dict[str, Vehicle] = {v.name: v for v in (CRAZYFLIE_2_1, CRAZYFLIE_2_1_BRUSHLESS, L2F_PAPER)}
DEFAULT_VEHICLE = "crazyflie_2_1"


def get(name: str) -> Vehicle:
    """The preset called ``name``; a one-line ValueError listing the presets otherwise."""
    try:
        return VEHICLES[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown vehicle {name!r}; presets: {', '.join(VEHICLES)}") from None

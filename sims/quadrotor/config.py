"""Static settings of the quadrotor environment (the per-env parameters live in params.py)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import TYPE_CHECKING

from . import params as P
from . import vehicles as V

if TYPE_CHECKING:
    import numpy as np

TASKS = ("hover", "reach")

# Task-specific defaults applied on top of the parameter table.
TASK_RANGES: dict[str, dict[str, tuple[float, float]]] = {
    "hover": {},
    # Reach: a setpoint up to 0.5 m away per axis from where the vehicle starts.
    "reach": {"task.target_radius_m": (0.5, 0.5)},
}
TASK_TERMINATION_M = {"hover": 0.6, "reach": 2.0}


@dataclass(frozen=True)
class QuadrotorConfig:
    """Settings shared by all environments of one vector env.

    Defaults reproduce the hover task of *Learning to Fly in Seconds*: 100 Hz control,
    5 s episodes, starts within +-0.2 m, tilt <= 90 deg, 1 m/s, 1 rad/s. ``vehicle``
    names a preset of ``vehicles.py`` (default ``crazyflie_2_1``; ``l2f_paper`` is that
    paper's model). Actions in [-1, 1] map to the normalized motor command (a + 1) / 2.
    """

    task: str = "hover"
    vehicle: str = V.DEFAULT_VEHICLE  # preset of vehicles.py: crazyflie_2_1, l2f_paper, ...
    dt: float = 0.01  # s, control period
    substeps: int = 1  # RK4 steps per control step
    episode_steps: int = 500  # 5 s at 100 Hz
    action_history: int = 2  # past actions in the policy view (1..8)
    motor_dynamics: bool = True  # first-order motors (rise / fall constants); False: RPM = command
    rotor_drag: bool = True  # rotor (blade-flapping) drag, proportional to rotor speed x body velocity
    ground_effect: bool = True  # thrust gain near the ground (params.GROUND_EFFECT_COEFF, after Shi et al. 2019)
    sensor_noise: bool = True  # observation noise on the policy view (the critic view stays exact)
    home_target: tuple[float, float, float] = (0.0, 0.0, 1.0)  # m, world frame
    termination_position_m: float | None = None  # None: task default (0.6 hover, 2.0 reach)
    termination_velocity_mps: float = 10.0  # m/s, an episode ends above this speed
    termination_angvel_rps: float = 35.0  # rad/s, an episode ends above this body rate
    reward_scale: float = 0.1  # reward per step = reward_constant - reward_scale x weighted cost
    reward_constant: float = 1.0  # the per-step survival reward before the cost (see reward_scale)
    termination_penalty: float = 0.0  # the reward of the step that terminates an episode
    gravity: float = P.GRAVITY  # m/s^2
    ranges: dict[str, tuple[float, float]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        def bad(name: str, why: str) -> None:
            raise ValueError(f"QuadrotorConfig.{name}: {why}")

        if self.vehicle not in V.VEHICLES:
            bad("vehicle", f"unknown vehicle {self.vehicle!r}; presets: {', '.join(V.VEHICLES)}")
        if self.task not in TASKS:
            bad("task", f"must be one of {TASKS}, got {self.task!r}")
        if not (math.isfinite(self.dt) and self.dt > 0):
            bad("dt", f"must be a positive number of seconds, got {self.dt!r}")
        if int(self.substeps) != self.substeps or self.substeps < 1:
            bad("substeps", f"must be an integer >= 1, got {self.substeps!r}")
        if int(self.episode_steps) != self.episode_steps or self.episode_steps < 1:
            bad("episode_steps", f"must be an integer >= 1, got {self.episode_steps!r}")
        if int(self.action_history) != self.action_history or not 0 <= self.action_history <= 8:
            bad("action_history", f"must be an integer in 0..8, got {self.action_history!r}")
        if len(self.home_target) != 3:
            bad("home_target", f"must be 3 numbers (x, y, z in m), got {self.home_target!r}")
        if self.termination_position_m is not None and not self.termination_position_m > 0:
            bad("termination_position_m", f"must be > 0, got {self.termination_position_m!r}")
        for name, rng in self.ranges.items():
            check_range(name, rng[0], rng[1])

    @property
    def vehicle_params(self) -> V.Vehicle:
        """The vehicle preset's constants."""
        return V.get(self.vehicle)

    @property
    def rpm_min(self) -> float:
        """Rotor speed at action -1 (u = 0), RPM: 0 for every preset."""
        return 0.0

    @property
    def rpm_max(self) -> float:
        """Rotor speed at action +1 (u = 1), RPM: the vehicle's ``max_rpm``."""
        return self.vehicle_params.max_rpm

    def hover_action(self) -> float:
        """The nominal vehicle's hover command as an action in [-1, 1] (vehicles.hover_command)."""
        return self.vehicle_params.hover_action(gravity=self.gravity)

    @property
    def termination_m(self) -> float:
        if self.termination_position_m is not None:
            return float(self.termination_position_m)
        return TASK_TERMINATION_M[self.task]

    def initial_ranges(self) -> dict[str, tuple[float, float]]:
        """Parameter table defaults, then task defaults, then this config's overrides."""
        out = {p.name: p.default for p in P.PARAMS}
        out.update(TASK_RANGES[self.task])
        out.update({k: (float(v[0]), float(v[1])) for k, v in self.ranges.items()})
        return out

    def to_dict(self) -> dict:
        d = asdict(self)
        d["home_target"] = list(self.home_target)
        d["ranges"] = {k: list(v) for k, v in self.ranges.items()}
        return d

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in fields(cls)]


def migrate_sim_settings(sim: dict) -> dict:
    """Simulator settings (a run's ``env.sim``) written before the vehicle presets, in today's form.

    Those runs set ``rpm_min``/``rpm_max`` (0 and 21702 RPM) and flew the one vehicle of
    the time, today's ``l2f_paper``: the two keys are dropped and ``vehicle: l2f_paper``
    set, so an old run directory replays on its own model. Returns ``sim`` itself when
    there is nothing to migrate, a new dict otherwise; a ValueError (one line) for other
    values or for the keys next to ``vehicle``.
    """
    if "rpm_min" not in sim and "rpm_max" not in sim:
        return sim
    out = dict(sim)
    lo, hi = float(out.pop("rpm_min", 0.0)), float(out.pop("rpm_max", V.L2F_PAPER.max_rpm))
    if "vehicle" in out:
        raise ValueError("QuadrotorConfig.rpm_min/rpm_max: not settings any more (the vehicle preset fixes the "
                         "rotor speed range); remove them")
    if (lo, hi) != (0.0, V.L2F_PAPER.max_rpm):
        raise ValueError(f"QuadrotorConfig.rpm_min/rpm_max: [{lo:g}, {hi:g}] RPM is no vehicle preset's range; "
                         f"remove them and set vehicle (presets: {', '.join(V.VEHICLES)})")
    out["vehicle"] = V.L2F_PAPER.name
    return out


def check_range(name: str, lo: float | np.ndarray, hi: float | np.ndarray) -> None:
    """Raise ValueError naming the parameter if [lo, hi] is not inside its hard limits."""
    from ..param_table import check_range as check

    check(P.PARAMS, P.PARAM_INDEX, name, lo, hi)
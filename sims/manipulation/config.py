"""The arm env's settings (``ArmConfig``), in a module that does not import MuJoCo.

The run config (``robolearn.config``) mirrors these fields to validate ``env.arm``, so a
config can be read, checked and described without loading the simulator; ``env.py``
builds the MuJoCo model from them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from . import params as P

TASKS = ("push", "lift", "push_lift")
INTEGRATOR_NAMES = ("euler", "implicitfast")  # env.INTEGRATORS maps them to MuJoCo's enum


@dataclass
class ArmConfig:
    task: str = "push"
    episode_steps: int = 150  # control steps per episode
    substeps: int = 10  # physics steps per control step: 10 x 2 ms = 50 Hz control
    # Physics step (s); None keeps arm.xml's 2 ms. See the module docstring ("Time step")
    # for why 4 ms (with 5 substeps) is still a stable integration of this scene.
    timestep: float | None = None
    # None keeps arm.xml's (implicitfast); "euler" or "implicitfast" overrides it (module
    # docstring, "Time step": for this model the two differ only in cost).
    integrator: str | None = None
    ee_step_m: float = 0.02  # m per control step of the end-effector target at action 1
    yaw_step_rad: float = 0.1  # rad per control step of the gripper yaw at action 1
    max_virtual_force_n: float = 3.0  # N, the privileged virtual force at action 1 and coefficient 1
    # None: the virtual force acts anywhere. r: only near the box, full while the finger-pad
    # centre is within r of the box centre, fading linearly to 0 at 2 r (see step()).
    force_radius_m: float | None = None
    # True: the virtual force acts only while a finger pad touches something (touch sensors,
    # previous step) on top of the radius gate: help only for a push in contact, the
    # behaviour that must survive when the coefficient reaches 0.
    force_needs_touch: bool = False
    success_threshold_m: float = 0.03  # m, object-goal distance that counts as success
    terminate_on_success: bool = True  # end the episode at the first success
    success_bonus: float = 10.0  # reward added at every step within the success threshold
    fall_penalty: float = 10.0  # reward subtracted when the object falls off the table (ends the episode)
    action_penalty: float = 0.01  # x the sum of squared arm actions, per step
    approach_weight: float = 0.5  # push: pads to the box's back face; lift: pads to the box centre
    # push: None, the box-goal term is paid wherever the pads are; r: only while the pads are
    # within r of the push point (ManiSkill's PushCube-v1 dense reward gates its "place" term
    # on the TCP having reached the push pose), so the box-goal reward comes from pushing.
    place_gate_m: float | None = None
    # push: + progress_weight x (box-goal distance before the step - after it), per m: a
    # potential-based term (Ng, Harada, Russell 1999: it leaves the optimal policy unchanged)
    # that pays each push at once, where the level terms pay only once the box is near.
    progress_weight: float = 0.0
    # push: add the approach target minus the end effector and the push direction to both
    # views (``PUSH_PARTS``); the policy's are computed from its noisy estimates.
    push_features: bool = False
    home_noise_m: float = 0.02  # m, uniform noise of the end effector's start around home
    # FetchPush's interface for pushing (Gymnasium-Robotics, ``block_gripper=True``): the
    # gripper stays closed and the yaw at 0, and the action space drops the yaw and grip
    # dims (6: xyz delta, virtual force): the policy moves the closed fingers as one pusher.
    # Dims that do nothing still cost PPO: their means drift on gradient noise and use up
    # the KL budget of the adaptive learning rate.
    block_gripper: bool = False
    ranges: dict = field(default_factory=dict)  # initial per-param (low, high) overrides

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ValueError(f"task must be one of {TASKS}, got {self.task!r}")
        if self.episode_steps < 1 or self.substeps < 1:
            raise ValueError("episode_steps and substeps must be >= 1")
        if self.timestep is not None and not 0.0 < self.timestep <= 0.01:
            # solref time constants (20 ms here) must stay >= 2 timesteps (MuJoCo docs, solref)
            raise ValueError(f"timestep must be in (0, 0.01] s, got {self.timestep}")
        if self.integrator is not None and self.integrator not in INTEGRATOR_NAMES:
            raise ValueError(f"integrator must be one of {sorted(INTEGRATOR_NAMES)}, got {self.integrator!r}")
        for name, (lo, hi) in self.ranges.items():
            P.check_range(name, lo, hi)

    def initial_ranges(self) -> dict:
        r = {p.name: p.default for p in P.PARAMS}
        r.update(self.ranges)
        return r

"""Gymnasium environments: a 5-DoF arm with a parallel gripper pushing or lifting a box,
``num_envs`` MuJoCo simulations stepped together by ``mujoco.batch.Batch``.

Tasks (``ArmConfig.task``; success = the box centre within ``success_threshold_m`` of the goal):

* ``push``: a 5 cm cube to a goal on the table (xy distance). Reward: pads at the cube's
  face away from the goal (``approach_weight``) + box near the goal, tanh-shaped.
* ``lift``: the cube to a goal height above its start (3-D distance). Reward: pads at the
  cube + both pads touching + lifted + box near the goal.
* ``push_lift`` (long horizon, non-prehensile then prehensile): a 10 x 4 x 4 cm bar lies
  with its long side against a wall. It is too long to grasp end to end (8 cm opening) and a
  finger cannot get between it and the wall, so it must first be dragged away from the
  wall, then grasped across its width and lifted to a goal 4 cm off the wall. Success
  also needs both finger pads on the bar (carrying it, not pinning it). Reward: the lift
  reward + the gap opened between bar and wall (up to 2 cm).

``success_bonus`` is added at every step the box is within the threshold; with
``terminate_on_success`` (default) the episode ends there, otherwise success is judged at
the episode's last step.

Control mode: **end-effector deltas**. The policy moves a Cartesian target of the
finger-pad centre (site ``ee``) and the gripper yaw; closed-form inverse kinematics (the
hand is kept pointing down) turns the target into joint position targets of the arm's
position servos. Actions, all in [-1, 1]:

* ``0:3`` target position delta, x ``ee_step_m`` (m per control step), clipped to the
  workspace;
* ``3`` gripper yaw delta, x ``yaw_step_rad``;
* ``4`` gripper opening, absolute: -1 closed, +1 open (8 cm);
* ``5:8`` privileged virtual force on the box (world frame), x
  ``privileged.force_scale * max_virtual_force_n`` (x a gate that is 1 within
  ``force_radius_m`` of the box and 0 beyond twice that, when set; x 0 unless a finger pad
  touches something, with ``force_needs_touch``): ignored at coefficient 0.

With ``block_gripper`` (FetchPush's pushing interface, Gymnasium-Robotics
``block_gripper=True``) the gripper stays closed at yaw 0 and the action space is the 6
dims ``0:3`` and ``5:8`` of the layout above (``env.action_index``); ``step`` also takes the
full 8-dim layout. Why Cartesian deltas and not joint targets: a push is a straight line of
the pusher in task space, one action direction here, while in joint space it needs a
coordinated change of four joints that the policy would have to learn first; FetchPush,
ManiSkill's PushCube (``pd_ee_delta_pos``) and Isaac Lab's reach/lift tasks use the same
interface. The IK is closed form and vectorized over envs (``ik``), no per-env loop.

Time step: arm.xml integrates at 2 ms (``substeps`` 10 per 50 Hz control step);
``ArmConfig.timestep`` overrides it (``configs/arm_push.yaml``: 4 ms; ``arm_push_lift.yaml``:
10 ms x 4 at 25 Hz, measured against 2 ms x 20 at the same control rate: the same
penetration (18 um) and no energy at rest, the scripted drag-grasp-lift as successful and
its bar path within 0.7 mm (p90), ``benchmarks/arm_physics.py``,
``tests/test_manipulation_physics.py``). ``ArmConfig.integrator`` overrides arm.xml's
implicitfast; Euler (implicit in joint damping too) measured no cheaper here. MuJoCo's soft
contacts stay stable while the solref time constant (20 ms here) is >= 2 timesteps
(MuJoCo documentation, "solref"), and the stiffest servo (finger, kp 200 on 0.06 kg)
has omega * h = 0.23 at 4 ms, far inside the stability limit (2) of the semi-implicit
integrator; measured: the scripted push reaches the goal region as often at 4 ms as at
2 ms and the end-effector path under random actions differs by < 0.5 mm
(``tests/test_arm_control.py``).

Privileged actions (simulation-only help, each scaled by a coefficient in [0, 1] the
curriculum drives to 0; evaluation always runs at 0): the virtual force above (through
``xfrc_applied``), ``privileged.gravity_scale`` (that fraction of the box's weight is
cancelled by an upward ``xfrc_applied`` force) and ``privileged.table_penetration``
(gripper-table contacts softened through per-simulation ``pair_solimp`` and
``pair_solref``, and the target's floor lowered by up to 4 cm: at 1 the gripper passes
through the table). At 0 the physics is exactly that of ``arm.xml`` with the episode's
randomized parameters.

Domain randomization (per env, drawn at each reset, see ``params.py``) writes per-simulation
model fields of the batch: ``body_mass``/``body_inertia`` (box), ``geom_friction`` (box and
table), ``dof_damping`` (arm), ``actuator_gainprm``/``actuator_biasprm`` (arm servos),
``actuator_delay`` (control latency of every actuator, through MuJoCo's actuator history);
observation noise is added to the policy view.

Observations are a ``Dict`` with two views (layouts in ``env.policy_layout`` /
``env.critic_layout``, name -> slice):

* ``policy``: arm joint positions (5) and velocities (5), finger opening (m), gripper
  command, end-effector position (FK from the encoders), box position and quaternion as a
  camera would estimate them, goal, goal - box, box - end effector, last action; all
  estimates with noise.
* ``critic``: the same without noise, plus exact box quaternion, linear and angular
  velocity, finger-pad contact forces (touch sensors), the randomization values, the
  privilege coefficients and the episode time fraction.

Auto-reset happens in the same step (gymnasium ``AutoresetMode.SAME_STEP``), as in
``sims.quadrotor``: the final observation of a finished episode is in ``info["final_obs"]``
where ``info["_final_obs"]``; ``info["episode"]`` holds return, length, success, final
distance and the episode's parameters, where ``info["_episode"]``.
"""

from __future__ import annotations

import os
from typing import Any

import gymnasium as gym
import mujoco
import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv
from mujoco.batch import Batch

from ..single_env import SingleEnv
from . import params as P
from .config import INTEGRATOR_NAMES, TASKS, ArmConfig  # noqa: F401 - TASKS and ArmConfig are also read from here

MODEL_PATH = os.path.join(os.path.dirname(__file__), "arm.xml")
ARM_JOINTS = ("yaw", "shoulder", "elbow", "wrist_pitch", "wrist_roll")
# geometry of arm.xml (closed-form IK)
SHOULDER_Z = 0.12
L1 = L2 = 0.25
HAND = 0.12  # wrist_pitch axis to the ee site
BOX_HALF = 0.025
FINGER_MAX = 0.04
SPAWN_CENTER = (0.4, 0.0)
WORKSPACE_LO = np.array([0.15, -0.35, 0.02])
WORKSPACE_HI = np.array([0.62, 0.35, 0.35])
GOAL_LO = np.array([0.25, -0.25])
GOAL_HI = np.array([0.55, 0.25])
PENETRATION_DEPTH = 0.04  # the target may go this far lower at table_penetration 1
HOME_EE = np.array([0.3, 0.0, 0.15])
PUSH_GAP = 0.02  # push shaping: pad centre this far behind the box face (pads reach ~1.1 cm in front of it; a box yawed 0.5 rad reaches 0.9 cm further back at its corner)
PUSH_Z = 0.03  # and this high (the box centre is at BOX_HALF = 2.5 cm)
PUSH_HOVER = 0.06  # target this much higher while the pads are >= PUSH_NEAR away in xy
PUSH_NEAR = 0.04
# push_lift: a 10 x 4 x 4 cm bar lies along x with its +y face against a wall. Its long side
# exceeds the gripper's 8 cm opening and a finger cannot get between the bar and the wall,
# so it must first be dragged away from the wall (non-prehensile), then grasped across its
# 4 cm width and lifted.
BAR_HALF = np.array([0.05, 0.02, 0.02])
WALL_Y = 0.11  # wall centre; its -y face is at WALL_Y - WALL_HALF[1]
WALL_HALF = np.array([0.2, 0.01, 0.04])
PULL_M = 0.04  # the goal is this far from the wall (bar centre), above the bar's start
BAR_Y = WALL_Y - WALL_HALF[1] - BAR_HALF[1]  # bar centre at the start: touching the wall
SOLIMP_HARD = np.array([0.9, 0.95])
SOLIMP_SOFT = np.array([0.01, 0.01])
SOLREF_TIMECONST = 0.02  # arm.xml's (MuJoCo's default); x 100 at table_penetration 1
ACTION_DIM = 8
INTEGRATORS = {"euler": mujoco.mjtIntegrator.mjINT_EULER, "implicitfast": mujoco.mjtIntegrator.mjINT_IMPLICITFAST}
assert tuple(INTEGRATORS) == INTEGRATOR_NAMES
# block_gripper: the policy's actions are these dims of the full layout (xyz delta, virtual force)
PUSHER_ACTIONS = np.array([0, 1, 2, 5, 6, 7])


def ik(target: np.ndarray, yaw: np.ndarray) -> np.ndarray:
    """Joint targets (n, 5) placing the ee site at target (n, 3), hand down, gripper yaw ``yaw``.

    Yaw 0 closes the fingers along the world y axis when the arm points along x.
    Unreachable targets are projected onto the reachable shell.
    """
    x, y, z = target[:, 0], target[:, 1], target[:, 2]
    q1 = np.arctan2(y, x)
    dx = np.hypot(x, y)
    dz = z + HAND - SHOULDER_Z
    d = np.clip(np.hypot(dx, dz), 0.06, L1 + L2 - 0.005)
    c3 = (d * d - L1 * L1 - L2 * L2) / (2 * L1 * L2)
    q3 = np.arccos(np.clip(c3, -1.0, 1.0))
    q2 = np.arctan2(dx, dz) - np.arctan2(L2 * np.sin(q3), L1 + L2 * np.cos(q3))
    q4 = np.pi - q2 - q3
    q5 = q1 - yaw
    return np.stack([q1, q2, q3, q4, q5], axis=1)


def _layout(parts: list[tuple[str, int]]) -> tuple[dict, int]:
    out, i = {}, 0
    for name, k in parts:
        out[name] = slice(i, i + k)
        i += k
    return out, i


def policy_parts(action_dim: int = ACTION_DIM, push_features: bool = False) -> list[tuple[str, int]]:
    extra = PUSH_PARTS if push_features else []
    return [(k, action_dim if k == "last_action" else d) for k, d in POLICY_PARTS + extra]


def critic_parts(action_dim: int = ACTION_DIM, push_features: bool = False) -> list[tuple[str, int]]:
    extra = PUSH_PARTS if push_features else []
    return [(k, action_dim if k == "last_action" else d) for k, d in CRITIC_PARTS + extra]


def push_waypoint(obj_xy: np.ndarray, goal_xy: np.ndarray, ee: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The push task's approach target (N, 3) and push direction (N, 2), for pads at ``ee``.

    Push point: PUSH_GAP behind the box's face away from the goal (a push from there moves
    it towards the goal), at PUSH_Z; its height rises to PUSH_Z + PUSH_HOVER while the pads
    are >= PUSH_NEAR from it in xy, so that they pass over the box as a scripted push does.
    """
    d = goal_xy - obj_xy
    u = d / np.maximum(np.linalg.norm(d, axis=1), 1e-6)[:, None]
    push_xy = obj_xy - (BOX_HALF + PUSH_GAP) * u
    d_xy = np.linalg.norm(ee[:, :2] - push_xy, axis=1)
    z_des = PUSH_Z + PUSH_HOVER * np.minimum(1.0, (d_xy / PUSH_NEAR) ** 2)
    # Stay high until the pads are behind the box's back face (along u): descending as soon
    # as they are within PUSH_NEAR of the point in xy put them on the box's top when they
    # came from the goal side (a controller following this target got stuck there: median
    # pad height 6.3 cm, tests/test_arm_control.py).
    behind = np.sum((ee[:, :2] - obj_xy) * u, axis=1) < -(BOX_HALF + 0.75 * PUSH_GAP)
    z_des = np.where(behind, z_des, PUSH_Z + PUSH_HOVER)
    return np.column_stack([push_xy, z_des]), u


# push_features: the approach target (push_waypoint) minus the end effector and the push
# direction, computed in each view from that view's estimates (noisy in the policy's)
PUSH_PARTS = [("waypoint_minus_ee", 3), ("push_dir", 2)]
POLICY_PARTS = [("joint_pos", 5), ("joint_vel", 5), ("finger_width", 1), ("gripper_cmd", 1),
                ("ee_pos", 3), ("object_pos", 3), ("object_quat", 4), ("goal", 3),
                ("goal_minus_object", 3), ("object_minus_ee", 3), ("last_action", ACTION_DIM)]
CRITIC_PARTS = [("joint_pos", 5), ("joint_vel", 5), ("finger_pos", 2), ("gripper_cmd", 1),
                ("ee_pos", 3), ("object_pos", 3), ("object_quat", 4), ("object_linvel", 3),
                ("object_angvel", 3), ("goal", 3), ("goal_minus_object", 3),
                ("object_minus_ee", 3), ("touch", 2), ("last_action", ACTION_DIM),
                ("randomization", P.P_NOISE + 1), ("privileged", 3), ("time_fraction", 1)]


def load_model(task: str = "push") -> mujoco.MjModel:
    """``arm.xml``; for ``push_lift`` with the box made a bar and a wall added (MjSpec)."""
    if task != "push_lift":
        return mujoco.MjModel.from_xml_path(MODEL_PATH)
    spec = mujoco.MjSpec.from_file(MODEL_PATH)
    spec.geom("object").size = BAR_HALF
    spec.body("object").pos = [SPAWN_CENTER[0], BAR_Y, BAR_HALF[2]]
    # contype/conaffinity 3: the wall stops the box (3) and the gripper (2) alike
    spec.worldbody.add_geom(name="wall", type=mujoco.mjtGeom.mjGEOM_BOX, size=WALL_HALF,
                            pos=[SPAWN_CENTER[0], WALL_Y, WALL_HALF[2]], contype=3, conaffinity=3,
                            friction=[0.6, 0.005, 0.0001], rgba=[0.5, 0.55, 0.6, 1])
    return spec.compile()


class ArmVecEnv(VectorEnv):
    """``num_envs`` arms on one ``mujoco.batch.Batch`` (persistent, stepped on a thread pool).

    Per-env parameters (domain randomization, task distribution, privilege coefficients)
    are drawn uniformly from per-env ranges at every reset; change the ranges at run time
    with :meth:`set_range`. Returned observation arrays are owned by the env and
    overwritten by the next call: copy what you keep. ``num_threads`` 0 uses all CPUs.
    """

    metadata = {"autoreset_mode": AutoresetMode.SAME_STEP, "render_modes": []}

    def __init__(self, num_envs: int = 1, task: str = "push", seed: int | None = None,
                 num_threads: int | None = None, config: ArmConfig | None = None, **config_kwargs: Any):
        if config is None:
            config = ArmConfig(task=task, **config_kwargs)
        elif config_kwargs:
            raise ValueError("pass either config= or config keyword arguments, not both")
        if int(num_envs) != num_envs or num_envs < 1:
            raise ValueError(f"num_envs must be a positive integer, got {num_envs!r}")
        self.config = c = config
        self.task = c.task
        self.num_envs = n = int(num_envs)
        if num_threads is None:
            num_threads = 1 if n < 64 else 0
        # the policy's action dims, indices into the full layout (module docstring)
        self.action_index = PUSHER_ACTIONS if c.block_gripper else np.arange(ACTION_DIM)
        self.action_dim = na = len(self.action_index)
        pf = c.push_features and c.task == "push"
        self.policy_layout, dp = _layout(policy_parts(na, pf))
        self.critic_layout, dc = _layout(critic_parts(na, pf))
        box = lambda d: spaces.Box(-np.inf, np.inf, (d,), np.float32)  # noqa: E731
        self.single_observation_space = spaces.Dict({"policy": box(dp), "critic": box(dc)})
        self.single_action_space = spaces.Box(-1.0, 1.0, (na,), np.float32)
        self.observation_space = gym.vector.utils.batch_space(self.single_observation_space, n)
        self.action_space = gym.vector.utils.batch_space(self.single_action_space, n)
        self.param_names = [p.name for p in P.PARAMS]

        # ---- model and batch
        self.model = m = load_model(c.task)
        if c.timestep is not None:
            m.opt.timestep = c.timestep
        if c.integrator is not None:
            m.opt.integrator = INTEGRATORS[c.integrator]
        self._half = BAR_HALF if c.task == "push_lift" else np.full(3, BOX_HALF)
        self.batch = b = Batch(m, n, nthread=num_threads, persistent=True)
        self._qpos, self._qvel, self._ctrl = b.bind("qpos"), b.bind("qvel"), b.bind("ctrl")
        self._xfrc = b.bind("xfrc_applied")
        self._history = b.bind("history")
        self._site_xpos = b.bind("site_xpos")
        self._sensordata = b.bind("sensordata")
        jid = [m.joint(j).id for j in ARM_JOINTS]
        self._arm_q = np.array([m.jnt_qposadr[j] for j in jid])
        self._arm_v = np.array([m.jnt_dofadr[j] for j in jid])
        self._finger_q = np.array([m.jnt_qposadr[m.joint(j).id] for j in ("finger_l", "finger_r")])
        oq = m.jnt_qposadr[m.joint("object").id]
        ov = m.jnt_dofadr[m.joint("object").id]
        self._obj_q, self._obj_v = slice(oq, oq + 7), slice(ov, ov + 6)
        self._obj_body = m.body("object").id
        self._ee_site = m.site("ee").id
        self._goal_site = m.site("goal").id
        self._box_geom, self._table_geom = m.geom("object").id, m.geom("table").id
        self._arm_act = np.array([m.actuator(j).id for j in ARM_JOINTS])
        self._jnt_lo = m.jnt_range[jid, 0].copy()
        self._jnt_hi = m.jnt_range[jid, 1].copy()
        self._hist_cols = np.concatenate([
            m.actuator_historyadr[i] + 2 + m.actuator_history[i, 0] + np.arange(m.actuator_history[i, 0])
            for i in range(m.nu)])
        self._hist_act = np.repeat(np.arange(m.nu), m.actuator_history[:, 0])
        self._max_delay = m.opt.timestep * (m.actuator_history[:, 0].min() - 2)
        # nominal values and the expanded per-simulation fields
        self._mass0 = m.body_mass[self._obj_body]
        self._inertia0 = m.body_inertia[self._obj_body].copy()
        self._damping0 = m.dof_damping[self._arm_v].copy()
        self._kp0 = m.actuator_gainprm[self._arm_act, 0].copy()
        self._f_mass = b.expand("body_mass")
        self._f_inertia = b.expand("body_inertia")
        self._f_friction = b.expand("geom_friction")
        self._f_damping = b.expand("dof_damping")
        self._f_gain = b.expand("actuator_gainprm")
        self._f_bias = b.expand("actuator_biasprm")
        self._f_delay = b.expand("actuator_delay")
        self._f_solimp = b.expand("pair_solimp")
        self._f_solref = b.expand("pair_solref")
        self._g = -float(m.opt.gravity[2])

        # ---- per-env episode arrays
        ranges = c.initial_ranges()
        self._lo = np.array([[ranges[p][0] for p in self.param_names]] * n, dtype=np.float64)
        self._hi = np.array([[ranges[p][1] for p in self.param_names]] * n, dtype=np.float64)
        self._ep = np.zeros((n, P.NUM_PARAMS))
        self._goal = np.zeros((n, 3))
        self._target = np.zeros((n, 3))
        self._yaw = np.zeros(n)
        self._last_action = np.zeros((n, na))  # in the policy's layout
        self._steps = np.zeros(n, np.int64)
        self._d_og = np.zeros(n)  # push: box-goal xy distance after the last step (progress term)
        self._return = np.zeros(n)
        self._obs_p = np.zeros((n, dp), np.float32)
        self._obs_c = np.zeros((n, dc), np.float32)
        # per-step work arrays, allocated once (the step reuses them)
        self._z = np.zeros((n, 24))  # observation noise draws
        self._a_full = np.zeros((n, ACTION_DIM))  # the policy's actions in the full layout
        self._ws_lo = np.tile(WORKSPACE_LO, (n, 1))  # the target's lower bound, per episode
        self._rng = np.random.default_rng(seed)
        self._needs_reset = True

    # ------------------------------------------------------------------ resets
    def _reset_ids(self, ids: np.ndarray) -> None:
        k = len(ids)
        if k == 0:
            return
        rng, c, m = self._rng, self.config, self.model
        ep = self._lo[ids] + (self._hi[ids] - self._lo[ids]) * rng.random((k, P.NUM_PARAMS))
        self._ep[ids] = ep
        # domain randomization and privileges: per-simulation model fields
        ob = self._obj_body
        self._f_mass[ids, ob] = self._mass0 * ep[:, P.P_MASS]
        self._f_inertia[ids, ob] = self._inertia0 * ep[:, P.P_MASS, None]
        self._f_friction[ids, self._box_geom, 0] = ep[:, P.P_FRICTION]
        self._f_friction[ids, self._table_geom, 0] = ep[:, P.P_FRICTION]
        self._f_damping[ids[:, None], self._arm_v] = self._damping0 * ep[:, P.P_DAMPING, None]
        kp = self._kp0 * ep[:, P.P_GAIN, None]
        self._f_gain[ids[:, None], self._arm_act, 0] = kp
        self._f_bias[ids[:, None], self._arm_act, 1] = -kp
        self._f_delay[ids] = np.minimum(ep[:, P.P_LATENCY], self._max_delay)[:, None]
        s = ep[:, P.P_PENETRATION, None, None]
        self._f_solimp[ids, :, 0:2] = (1 - s) * SOLIMP_HARD + s * SOLIMP_SOFT
        self._f_solref[ids, :, 0] = SOLREF_TIMECONST * 100.0 ** s[:, :, 0]
        self.batch.set_const(ids)  # body_mass/inertia feed mj_setConst's derived constants
        self.batch.reset(ids, stage=mujoco.mjtStage.mjSTAGE_NONE)
        # initial state: arm near home with the fingers open, box on the table
        target = HOME_EE + rng.uniform(-c.home_noise_m, c.home_noise_m, (k, 3))
        q = ik(target, np.zeros(k))
        qpos = self._qpos[ids]
        qpos[:, self._arm_q] = q
        finger0 = 0.0 if c.block_gripper else FINGER_MAX
        qpos[:, self._finger_q] = finger0
        xy = np.asarray(SPAWN_CENTER) + ep[:, P.P_SPAWN, None] * rng.uniform(-1, 1, (k, 2))
        yaw = ep[:, P.P_YAW] * rng.uniform(-1, 1, k)
        if self.task == "push_lift":  # flush against the wall: spawn along it only, no yaw
            xy[:, 1] = BAR_Y
            yaw[:] = 0.0
        qpos[:, self._obj_q] = np.column_stack(
            [xy, np.full(k, self._half[2]), np.cos(yaw / 2), np.zeros((k, 2)), np.sin(yaw / 2)])
        self._qpos[ids] = qpos
        ctrl = np.zeros((k, m.nu))
        ctrl[:, self._arm_act] = q
        ctrl[:, -2:] = finger0
        self._ctrl[ids] = ctrl
        # delayed actuators start from a history filled with the initial controls
        self._history[ids[:, None], self._hist_cols] = ctrl[:, self._hist_act]
        self.batch.forward(ids, stage=mujoco.mjtStage.mjSTAGE_VEL)
        # goals
        if self.task == "push":
            th = rng.uniform(-np.pi, np.pi, k)
            g = xy + ep[:, P.P_GOAL_D, None] * np.column_stack([np.cos(th), np.sin(th)])
            self._goal[ids] = np.column_stack([np.clip(g, GOAL_LO, GOAL_HI), np.full(k, BOX_HALF)])
        elif self.task == "lift":
            self._goal[ids] = np.column_stack([xy, BOX_HALF + ep[:, P.P_GOAL_H]])
        else:
            self._goal[ids] = np.column_stack([xy[:, 0], xy[:, 1] - PULL_M, self._half[2] + ep[:, P.P_GOAL_H]])
        self._target[ids] = target
        self._ws_lo[ids, 2] = WORKSPACE_LO[2] - PENETRATION_DEPTH * ep[:, P.P_PENETRATION]
        self._d_og[ids] = np.linalg.norm(self._goal[ids, :2] - xy, axis=1)
        self._yaw[ids] = 0.0
        self._last_action[ids] = 0.0
        if not c.block_gripper:
            self._last_action[ids, 4] = 1.0
        self._steps[ids] = 0
        self._return[ids] = 0.0

    def reset(self, *, seed: int | None = None,
              options: dict[str, Any] | None = None) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Reset all envs, or those of ``options["reset_mask"]`` (bool (N,))."""
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        options = options or {}
        unknown = set(options) - {"reset_mask"}
        if unknown:
            raise ValueError(f"unknown reset option(s) {sorted(unknown)}; use reset_mask")
        mask = np.ones(self.num_envs, bool)
        if "reset_mask" in options:
            mask = np.asarray(options["reset_mask"], bool)
            if mask.shape != (self.num_envs,):
                raise ValueError(f"reset_mask must have shape ({self.num_envs},), got {mask.shape}")
        self._reset_ids(np.flatnonzero(mask))
        self._observe()
        self._needs_reset = False
        return self._obs(), {}

    # ------------------------------------------------------------------- step
    def step(self, actions: Any) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """Step all envs with actions (N, action_dim) in [-1, 1] (or (N, 8), the full layout); see the module docstring."""
        if self._needs_reset:
            raise RuntimeError("call reset() before step()")
        a = np.asarray(actions, dtype=np.float64)
        if a.shape not in ((self.num_envs, self.action_dim), (self.num_envs, ACTION_DIM)):
            raise ValueError(f"actions must have shape ({self.num_envs}, {self.action_dim}), got {a.shape}")
        a = np.clip(a, -1.0, 1.0)
        if a.shape[1] != ACTION_DIM:  # the policy's layout -> the full one (blocked dims 0)
            self._a_full[:, self.action_index] = a
            a = self._a_full
        c, ep = self.config, self._ep
        self._target += c.ee_step_m * a[:, 0:3]
        np.clip(self._target, self._ws_lo, WORKSPACE_HI, out=self._target)
        if not c.block_gripper:
            self._yaw = np.clip(self._yaw + c.yaw_step_rad * a[:, 3], -np.pi / 2, np.pi / 2)
        q = np.clip(ik(self._target, self._yaw), self._jnt_lo, self._jnt_hi)
        ctrl = self._ctrl
        ctrl[:, self._arm_act] = q
        ctrl[:, -2:] = 0.0 if c.block_gripper else (0.5 * FINGER_MAX) * (a[:, 4:5] + 1.0)
        force = (ep[:, P.P_FORCE, None] * c.max_virtual_force_n) * a[:, 5:8]
        if c.force_radius_m is not None:
            # Gated "telekinesis": an ungated force lets the policy move the box from afar, so
            # it never learns to approach and push; when the coefficient reaches 0 nothing
            # transfers (measured: 80 % success at coefficient 0.2, 2 % at 0). Gated, using
            # the privilege needs the approach the real task needs.
            d = np.linalg.norm(self._qpos[:, self._obj_q][:, :3] - self._site_xpos[:, self._ee_site], axis=1)
            force *= np.clip(2.0 - d / c.force_radius_m, 0.0, 1.0)[:, None]
        if c.force_needs_touch:
            force *= (self._sensordata[:, :2].sum(axis=1) > 0.0)[:, None]
        force[:, 2] += ep[:, P.P_GRAVITY] * self._f_mass[:, self._obj_body] * self._g
        self._xfrc[:, self._obj_body, 0:3] = force
        self._last_action = a[:, self.action_index]
        self.batch.step(nstep=c.substeps, stage=mujoco.mjtStage.mjSTAGE_VEL)
        self._steps += 1

        # reward, success, termination
        obj = self._qpos[:, self._obj_q]
        ee = self._site_xpos[:, self._ee_site]
        if self.task == "push":
            d_og = np.linalg.norm(obj[:, :2] - self._goal[:, :2], axis=1)
            # Approach shaping: reward the finger pads for being at the box's face away from
            # the goal (where a push moves it towards the goal), not at its centre: with the
            # centre as target (FetchPush's dense reward) PPO first learns to hover over the
            # box and 0.5 M steps gave < 5 % success. Sign: towards the goal is +u.
            # The target height is PUSH_Z only once the pads are above the push point (xy):
            # with a 3-D distance to a low point the pads went low first and were blocked by
            # the box when the point was on its far side (6-7 cm from it on average after
            # 1 M steps). Far in xy the target is 6 cm higher, over the box, as a scripted
            # push goes.
            wp, _ = push_waypoint(obj[:, :2], self._goal[:, :2], ee)
            d_push = np.linalg.norm(ee - wp, axis=1)
            place = 1 - np.tanh(10 * d_og)
            if c.place_gate_m is not None:
                place = np.where(d_push < c.place_gate_m, place, 0.0)
            reward = c.approach_weight * (1 - np.tanh(10 * d_push)) + place
            reward += c.progress_weight * (self._d_og - d_og)
            self._d_og = d_og.copy()
        else:
            d_og = np.linalg.norm(obj[:, :3] - self._goal, axis=1)
            d_eo = np.linalg.norm(obj[:, :3] - ee, axis=1)
            touch = self._sensordata[:, :2]
            grasp = (touch > 0.1).all(axis=1)
            lifted = obj[:, 2] > self._half[2] + 0.01
            reward = (c.approach_weight * (1 - np.tanh(10 * d_eo)) + 0.5 * grasp + 0.5 * lifted
                      + 1.5 * (1 - np.tanh(10 * d_og)))
            if self.task == "push_lift":
                # the non-prehensile stage: gap between the bar and the wall, up to 2 cm
                gap = (WALL_Y - WALL_HALF[1]) - (obj[:, 1] + self._half[1])
                reward += 0.5 * np.clip(gap / 0.02, 0.0, 1.0)
        reward -= c.action_penalty * np.sum(a[:, :5] ** 2, axis=1)
        success = d_og < c.success_threshold_m
        if self.task == "push_lift":  # held in the gripper, not pinned against the wall
            success &= grasp
        fell = obj[:, 2] < -0.05
        bad = ~np.isfinite(self._qpos).all(axis=1)
        reward = np.where(success, reward + c.success_bonus, reward)
        reward = np.where(fell, reward - c.fall_penalty, reward)
        reward[bad] = 0.0
        term = fell | bad | (success & c.terminate_on_success)
        trunc = ~term & (self._steps >= c.episode_steps)
        self._return += reward
        self._observe()
        done = term | trunc
        info: dict = {"nonfinite_resets": int(bad.sum())}
        if done.any():
            ids = np.flatnonzero(done)
            info["final_obs"] = {"policy": self._obs_p.copy(), "critic": self._obs_c.copy()}
            info["_final_obs"] = done
            info["episode"] = {
                "return": self._return.astype(np.float32),
                "length": self._steps.astype(np.float32),
                "success": success & ~bad,
                "object_goal_distance_m": d_og.astype(np.float32),
                "params": self._ep.astype(np.float32),
            }
            info["_episode"] = done
            self._reset_ids(ids)
            self._observe()
        return self._obs(), reward.astype(np.float32), term, trunc, info

    # ------------------------------------------------------------ observations
    def _obs(self) -> dict[str, np.ndarray]:
        return {"policy": self._obs_p, "critic": self._obs_c}

    def _observe(self) -> None:
        n, rng, pl, cl = self.num_envs, self._rng, self.policy_layout, self.critic_layout
        qpos, qvel = self._qpos, self._qvel
        jp, jv = qpos[:, self._arm_q], qvel[:, self._arm_v]
        fq = qpos[:, self._finger_q]
        obj = qpos[:, self._obj_q]
        ee = self._site_xpos[:, self._ee_site]
        goal = self._goal
        cmd = self._ctrl[:, -1:] * (2.0 / FINGER_MAX) - 1.0
        C = self._obs_c
        C[:, cl["joint_pos"]] = jp
        C[:, cl["joint_vel"]] = jv
        C[:, cl["finger_pos"]] = fq
        C[:, cl["gripper_cmd"]] = cmd
        C[:, cl["ee_pos"]] = ee
        C[:, cl["object_pos"]] = obj[:, :3]
        C[:, cl["object_quat"]] = obj[:, 3:]
        C[:, cl["object_linvel"]] = qvel[:, self._obj_v][:, :3]
        C[:, cl["object_angvel"]] = qvel[:, self._obj_v][:, 3:]
        C[:, cl["goal"]] = goal
        C[:, cl["goal_minus_object"]] = goal - obj[:, :3]
        C[:, cl["object_minus_ee"]] = obj[:, :3] - ee
        C[:, cl["touch"]] = self._sensordata[:, :2]
        C[:, cl["last_action"]] = self._last_action
        C[:, cl["randomization"]] = self._ep[:, P.RANDOMIZATION]
        C[:, cl["privileged"]] = self._ep[:, P.PRIVILEGED]
        C[:, cl["time_fraction"]] = (self._steps / self.config.episode_steps)[:, None]
        # policy view: what the robot's encoders and a camera-based pose estimator give
        s = self._ep[:, P.P_NOISE, None]
        z = rng.standard_normal(out=self._z)
        jp_n = jp + s * P.NOISE_JOINT_POS * z[:, 0:5]
        jv_n = jv + s * P.NOISE_JOINT_VEL * z[:, 5:10]
        fw = fq.sum(axis=1, keepdims=True) + s * P.NOISE_FINGER * z[:, 10:11]
        ee_n = ee + s * P.NOISE_EE * z[:, 11:14]
        op = obj[:, :3] + s * P.NOISE_OBJECT_POS * z[:, 14:17]
        oq = obj[:, 3:] + s * (0.5 * P.NOISE_OBJECT_ROT) * z[:, 17:21]
        oq /= np.linalg.norm(oq, axis=1, keepdims=True)
        oq *= np.where(oq[:, :1] < 0, -1.0, 1.0)
        Pp = self._obs_p
        Pp[:, pl["joint_pos"]] = jp_n
        Pp[:, pl["joint_vel"]] = jv_n
        Pp[:, pl["finger_width"]] = fw
        Pp[:, pl["gripper_cmd"]] = cmd
        Pp[:, pl["ee_pos"]] = ee_n
        Pp[:, pl["object_pos"]] = op
        Pp[:, pl["object_quat"]] = oq
        Pp[:, pl["goal"]] = goal
        Pp[:, pl["goal_minus_object"]] = goal - op
        Pp[:, pl["object_minus_ee"]] = op - ee_n
        Pp[:, pl["last_action"]] = self._last_action
        if "push_dir" in pl:
            wp, u = push_waypoint(obj[:, :2], goal[:, :2], ee)
            C[:, cl["waypoint_minus_ee"]] = wp - ee
            C[:, cl["push_dir"]] = u
            wp, u = push_waypoint(op[:, :2], goal[:, :2], ee_n)
            Pp[:, pl["waypoint_minus_ee"]] = wp - ee_n
            Pp[:, pl["push_dir"]] = u

    # ----------------------------------------------------- parameters at run time
    def get_range(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """Per-env (low, high) of parameter ``name`` (copies)."""
        j = self._index(name)
        return self._lo[:, j].copy(), self._hi[:, j].copy()

    def set_range(self, name: str, low: Any, high: Any, env_ids: Any = None) -> None:
        """Set per-env sampling range of ``name``; takes effect at each env's next reset."""
        j = self._index(name)
        ids = slice(None) if env_ids is None else np.asarray(env_ids, np.int64)
        new_lo = np.broadcast_to(np.asarray(low, np.float64), self._lo[ids, j].shape)
        new_hi = np.broadcast_to(np.asarray(high, np.float64), self._hi[ids, j].shape)
        P.check_range(name, new_lo, new_hi)
        self._lo[ids, j] = new_lo
        self._hi[ids, j] = new_hi

    def _index(self, name: str) -> int:
        if name not in P.PARAM_INDEX:
            raise KeyError(f"unknown parameter {name!r}; known: {', '.join(self.param_names)}")
        return P.PARAM_INDEX[name]

    @property
    def episode_params(self) -> np.ndarray:
        """Parameter values (N, NUM_PARAMS) of the episodes now running."""
        return self._ep

    @property
    def goals(self) -> np.ndarray:
        """Goal positions (N, 3) of the box centre, world frame."""
        return self._goal

    @property
    def object_pose(self) -> np.ndarray:
        """Exact box pose (N, 7): position, quaternion wxyz (a copy)."""
        pose: np.ndarray = self._qpos[:, self._obj_q].copy()
        return pose

    @property
    def ee_target(self) -> np.ndarray:
        """Commanded end-effector position (N, 3) the actions move (a copy)."""
        return self._target.copy()

    @property
    def ee_pos(self) -> np.ndarray:
        """Exact end-effector (finger-pad centre) position (N, 3) (a copy)."""
        pos: np.ndarray = self._site_xpos[:, self._ee_site].copy()
        return pos

    def get_model_data(self, env_id: int) -> tuple[mujoco.MjModel, mujoco.MjData]:
        """MjModel (with env_id's randomized fields) and MjData of one env, e.g. to render."""
        model = self.batch.get_model(env_id)
        data = self.batch.get_data(env_id)
        model.site_pos[self._goal_site] = self._goal[env_id]
        return model, data


class ArmEnv(SingleEnv):
    """Single arm with the standard gymnasium API (a 1-env ``ArmVecEnv``)."""

    def __init__(self, task: str = "push", config: ArmConfig | None = None, **config_kwargs: Any):
        self._adopt(ArmVecEnv(1, task=task, config=config, **config_kwargs))

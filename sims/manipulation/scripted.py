"""Scripted controllers on the exact state, using no privilege (they prove the tasks are
solvable; usable as demonstrators).

``ScriptedPush``: move above a point behind the box (away from the goal), lower the closed
gripper to the table, push the box towards the goal. ``ScriptedPushLift``: press on the
bar, drag it off the wall, grasp it across its width, lift it."""

from __future__ import annotations

import numpy as np

from .env import ACTION_DIM, BAR_HALF, BAR_Y, BOX_HALF, ArmVecEnv


class ScriptedPush:
    def __init__(self, num_envs: int, speed: float = 0.5):
        self.phase = np.zeros(num_envs, np.int64)
        self.speed = speed

    def reset(self, mask: np.ndarray | None = None) -> None:
        self.phase[slice(None) if mask is None else np.asarray(mask, bool)] = 0

    def __call__(self, env: ArmVecEnv) -> np.ndarray:
        obj, ee, goal, target = env.object_pose[:, :3], env.ee_pos, env.goals, env.ee_target
        d = goal[:, :2] - obj[:, :2]
        u = d / np.maximum(np.linalg.norm(d, axis=1, keepdims=True), 1e-6)
        des = np.empty_like(ee)
        des[:, :2] = obj[:, :2] - u * (BOX_HALF + 0.03)
        des[:, 2] = 0.08
        p1, p2 = self.phase == 1, self.phase == 2
        des[p1, 2] = 0.03
        des[p2, :2] = obj[p2, :2] + 0.02 * u[p2]
        des[p2, 2] = 0.03
        err = np.linalg.norm(des - ee, axis=1)
        up0, up1 = (self.phase == 0) & (err < 0.015), p1 & (err < 0.01)
        self.phase[up0] = 1
        self.phase[up1] = 2
        a = np.zeros((env.num_envs, ACTION_DIM))
        a[:, :3] = np.clip((des - target) / env.config.ee_step_m, -self.speed, self.speed)
        a[:, 4] = -1.0
        return a


class ScriptedPushLift:
    """A scripted solution of ``push_lift`` on the exact state, without privileges: press the
    closed fingers lightly on the bar's top and drag it >= 2.5 cm away from the wall
    (non-prehensile), rise, come down open around the bar, close and lift to the goal.
    Phases per env. The press is light on purpose: pad friction (1.5) must beat the
    table's (0.6) on the normal force plus the bar's weight, and the servos must still move
    the pads sideways against it; a hard press pins the arm (tried: 14 N, the bar moved 1 cm)."""

    def __init__(self, num_envs: int, speed: float = 0.5):
        self.phase = np.zeros(num_envs, np.int64)
        self.timer = np.zeros(num_envs, np.int64)
        self.speed = speed

    def reset(self, mask: np.ndarray | None = None) -> None:
        m = slice(None) if mask is None else np.asarray(mask, bool)
        self.phase[m] = 0
        self.timer[m] = 0

    def __call__(self, env: ArmVecEnv) -> np.ndarray:
        obj, ee, goal, target = env.object_pose[:, :3], env.ee_pos, env.goals, env.ee_target
        top = obj[:, 2] + BAR_HALF[2]
        ph = self.phase
        des = obj.copy()
        grip = np.full(len(ph), -1.0)
        des[:, 2] = top + 0.05  # 0: above the bar, closed
        press = top + 0.013  # pad tips are 2 cm below the ee site: 7 mm into the top, a light press
        des[ph == 1, 2] = press[ph == 1]  # 1: press on the top
        p2 = ph == 2  # 2: drag away from the wall
        des[p2, 1] = BAR_Y - 0.045  # drag the pads (and by friction the bar) away from the wall
        des[p2, 2] = press[p2]
        p3 = ph == 3  # 3: rise and open
        des[p3, 2] = top[p3] + 0.05
        grip[p3] = 1.0
        p4 = ph == 4  # 4: come down open around the bar
        des[p4, 2] = obj[p4, 2] + 0.01
        grip[p4] = 1.0
        p5 = ph == 5  # 5: close (hold position)
        des[p5, 2] = obj[p5, 2] + 0.01
        p6 = ph == 6  # 6: lift to the goal
        des[p6] = goal[p6] + np.array([0.0, 0.0, 0.01])
        err = np.linalg.norm(des - ee, axis=1)
        self.timer += 1
        nxt = ((ph == 0) & (err < 0.01)) | ((ph == 1) & (self.timer > 15)) | (p2 & (obj[:, 1] < BAR_Y - 0.025)) \
            | (p3 & (err < 0.01)) | (p4 & (err < 0.01)) | (p5 & (self.timer > 15))
        self.phase[nxt] += 1
        self.timer[nxt] = 0
        a = np.zeros((env.num_envs, ACTION_DIM))
        speed = np.where(p2, 0.25 * self.speed, self.speed)[:, None]  # drag slowly: the bar must follow
        a[:, :3] = np.clip((des - target) / env.config.ee_step_m, -speed, speed)
        a[:, 4] = grip
        return a

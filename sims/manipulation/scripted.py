"""A scripted push controller on the exact state (proves the push task is solvable; usable
as a demonstrator). It uses no privilege: move above a point behind the box (away from the
goal), lower the closed gripper to the table, push the box towards the goal."""

from __future__ import annotations

import numpy as np

from .env import ACTION_DIM, BOX_HALF


class ScriptedPush:
    def __init__(self, num_envs: int, speed: float = 0.5):
        self.phase = np.zeros(num_envs, np.int64)
        self.speed = speed

    def reset(self, mask=None) -> None:
        self.phase[slice(None) if mask is None else np.asarray(mask, bool)] = 0

    def __call__(self, env) -> np.ndarray:
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

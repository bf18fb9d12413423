"""Manipulation tasks (push, lift, push_lift) for a 5-DoF arm with a parallel gripper, batched with
``mujoco.batch.Batch``, with privileged actions and per-env domain randomization.

See ``env.py`` for the control mode (end-effector deltas), observations and privileges,
``params.py`` for the per-env parameter table and ``arm.xml`` for the model.
"""

from .env import ArmConfig, ArmEnv, ArmVecEnv, ik, load_model
from .params import PARAM_INDEX, PARAMS

__all__ = ["ArmConfig", "ArmEnv", "ArmVecEnv", "ik", "load_model", "PARAMS", "PARAM_INDEX"]

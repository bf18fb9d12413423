"""Simulators. Importing this package registers the gymnasium environment ids."""

import gymnasium as gym

_IDS = {"robolearn/QuadrotorHover-v0": "hover", "robolearn/QuadrotorReach-v0": "reach"}

for _id, _task in _IDS.items():
    if _id not in gym.registry:
        gym.register(
            id=_id,
            entry_point="sims.quadrotor.env:QuadrotorEnv",
            vector_entry_point="sims.quadrotor.env:QuadrotorVecEnv",
            kwargs={"task": _task},
        )

_ARM_IDS = {"robolearn/ArmPush-v0": "push", "robolearn/ArmLift-v0": "lift", "robolearn/ArmPushLift-v0": "push_lift"}

for _id, _task in _ARM_IDS.items():
    if _id not in gym.registry:
        gym.register(
            id=_id,
            entry_point="sims.manipulation.env:ArmEnv",
            vector_entry_point="sims.manipulation.env:ArmVecEnv",
            kwargs={"task": _task},
        )

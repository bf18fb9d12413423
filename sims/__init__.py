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

"""Crazyflie 2.x quadrotor simulator: numba CPU and numba-cuda kernels, gymnasium envs.

See ``params.py`` for the frame/quaternion conventions and parameter sources.
"""

from .config import QuadrotorConfig
from .env import QuadrotorEnv, QuadrotorVecEnv
from .params import PARAMS, PARAM_INDEX, hover_action, hover_rpm
from .vehicles import VEHICLES, Vehicle

__all__ = ["QuadrotorConfig", "QuadrotorEnv", "QuadrotorVecEnv", "PARAMS", "PARAM_INDEX", "VEHICLES", "Vehicle",
           "hover_action", "hover_rpm"]

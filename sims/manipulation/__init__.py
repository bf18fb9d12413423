"""Manipulation tasks (push, lift, push_lift) for a 5-DoF arm with a parallel gripper, batched with
``mujoco.batch.Batch``, with privileged actions and per-env domain randomization.

See ``env.py`` for the control mode (end-effector deltas), observations and privileges,
``params.py`` for the per-env parameter table, ``config.py`` for the settings (no MuJoCo
import: the env classes load MuJoCo on first use) and ``arm.xml`` for the model.
"""

from typing import TYPE_CHECKING, Any

from .config import ArmConfig
from .params import PARAM_INDEX, PARAMS

if TYPE_CHECKING:
    from .env import ArmEnv, ArmVecEnv, ik, load_model

__all__ = ["ArmConfig", "ArmEnv", "ArmVecEnv", "ik", "load_model", "PARAMS", "PARAM_INDEX"]
_ENV = ("ArmEnv", "ArmVecEnv", "ik", "load_model")  # from env.py, which imports MuJoCo: loaded on first use


def __getattr__(name: str) -> Any:
    if name in _ENV:
        from . import env

        return getattr(env, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

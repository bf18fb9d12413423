"""Isaac Gym (IsaacGymEnvs ``VecTask``) tasks behind the project's vector-env contract.

Isaac Gym itself is not a dependency: the adapter is typed against ``isaacgym-stubs`` and
tested against a fake gym module (tests/fake_isaacgym.py). See the README for what is
and is not exercised.
"""

from .env import IsaacGymVecEnv
from .params import DEFAULT_PARAMS, IsaacParam, SimHandles, tensor_param
from .task import VecTaskLike

__all__ = ["DEFAULT_PARAMS", "IsaacGymVecEnv", "IsaacParam", "SimHandles", "VecTaskLike", "tensor_param"]

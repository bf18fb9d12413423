"""Stable-Baselines3 integration: robolearn's envs, asymmetric policies and curricula in SB3.

* :class:`SB3VecEnv` / :func:`make_vec_env`: a robolearn vector env as an SB3 ``VecEnv``;
* :class:`AsymmetricActorCriticPolicy` (PPO, A2C), :class:`AsymmetricTD3Policy`,
  :class:`AsymmetricSACPolicy`: the actor reads only the ``policy`` observation key, the
  critic(s) only ``critic``;
* :class:`TeacherCallback`: a ``teachers/`` curriculum driven from ``learn()``;
* :func:`policy_from_sb3` / :func:`write_run_dir`: a trained model as ``policy.pt`` in a
  run directory that ``robolearn export`` and ``robolearn eval`` accept
  (CLI: ``robolearn sb3-export``).
"""

from .callback import TeacherCallback
from .export import policy_from_sb3, write_run_dir
from .policies import AsymmetricActorCriticPolicy, AsymmetricSACPolicy, AsymmetricTD3Policy, DictKeyExtractor
from .vec_env import SB3VecEnv, find_sb3_vec_env, make_vec_env

__all__ = [
    "SB3VecEnv", "make_vec_env", "find_sb3_vec_env", "AsymmetricActorCriticPolicy", "AsymmetricTD3Policy",
    "AsymmetricSACPolicy", "DictKeyExtractor", "TeacherCallback", "policy_from_sb3", "write_run_dir",
]

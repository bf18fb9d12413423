"""SB3 model -> the policy format (``policy.pt``, ``robolearn.actor/1``) and a run directory ``robolearn export`` reads.

The deterministic SB3 action is an MLP on the (``VecNormalize``-normalized) ``policy``
view: PPO/A2C ``action_net(policy_net(x))`` clipped to the action space, TD3 ``mu(x)``
(tanh output), SAC ``tanh(mu(latent_pi(x)))``. ``VecNormalize``'s statistics become the
policy's ``obs_mean`` / ``obs_std`` / ``obs_clip`` (``robolearn.normalizer.frozen_stats``,
the conversion robolearn's own normalizer uses), so the exported actor takes raw
observations like every robolearn policy.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.vec_env import VecNormalize
from torch import nn

from ..config import RunConfig
from ..errors import UserError
from firmware_export.policy_file import PolicySpec

from ..networks import ACTIVATIONS, spec_from_actor
from ..normalizer import FrozenNorm, frozen_stats
from .policies import AsymmetricActorCriticPolicy, AsymmetricSACPolicy, AsymmetricTD3Policy

ALGOS = ("ppo", "a2c", "sac", "td3")
_ACT_NAMES = {cls: name for name, cls in ACTIVATIONS.items()}
NO_CLIP = 1e9  # obs_clip without VecNormalize: no clipping in practice


def _activation(modules: list[nn.Module]) -> str:
    acts = {type(m) for m in modules if not isinstance(m, nn.Linear)}
    names = {_ACT_NAMES.get(a) for a in acts}
    if len(names) > 1 or None in names:
        raise UserError(f"SB3 actor uses activations {sorted(a.__name__ for a in acts)}; policy.pt supports one of "
                        f"{', '.join(ACTIVATIONS)}")
    name = names.pop() if names else None
    return name or "tanh"  # no hidden layer: the activation is never applied


def _actor_net(policy: nn.Module) -> tuple[list[nn.Module], str, str]:
    """(hidden layers + output layer, output activation, observation key) of the deterministic actor."""
    if isinstance(policy, AsymmetricActorCriticPolicy):
        if policy.use_sde:
            raise UserError("SB3 policy uses gSDE; export supports the Gaussian (use_sde=False) PPO/A2C actor")
        return [*policy.mlp_extractor.policy_net, policy.action_net], "none", policy.actor_key
    if isinstance(policy, AsymmetricTD3Policy):
        mods = list(policy.actor.mu)
        if not isinstance(mods[-1], nn.Tanh):
            raise UserError("TD3 actor does not end in tanh; cannot export it")
        return mods[:-1], "tanh", policy.actor_key
    if isinstance(policy, AsymmetricSACPolicy):
        if policy.actor.use_sde:
            raise UserError("SB3 policy uses gSDE; export supports the SAC actor with use_sde=False")
        return [*policy.actor.latent_pi, policy.actor.mu], "tanh", policy.actor_key
    raise UserError(f"policy class {type(policy).__name__} is not one of robolearn's asymmetric SB3 policies "
                    "(AsymmetricActorCriticPolicy, AsymmetricTD3Policy, AsymmetricSACPolicy)")


def policy_from_sb3(model: BaseAlgorithm, vec_normalize: VecNormalize | None = None) -> PolicySpec:
    """The deployable actor of an SB3 model trained with a robolearn asymmetric policy.

    ``vec_normalize``: the ``VecNormalize`` the model was trained in (its ``policy``
    statistics are folded in), or None if observations were not normalized.
    """
    policy = model.policy
    mods, out_act, key = _actor_net(policy)
    obs_space, space = policy.observation_space, policy.action_space
    if not isinstance(obs_space, spaces.Dict) or not isinstance(space, spaces.Box):
        raise UserError("the SB3 model does not take Dict observations and give Box actions (a robolearn env's spaces)")
    obs_dim = int(spaces.flatdim(obs_space.spaces[key]))
    low, high = torch.as_tensor(space.low, dtype=torch.float32), torch.as_tensor(space.high, dtype=torch.float32)
    if out_act == "tanh" and not (torch.all(low == -1) and torch.all(high == 1)):
        # SB3 rescales tanh outputs to [low, high]; policy.pt has no output affine.
        raise UserError("SAC/TD3 export needs the action space [-1, 1] (the robolearn envs' space)")
    norm = _normalizer(vec_normalize, key, obs_dim)
    return spec_from_actor(norm, nn.Sequential(*mods).cpu(), _activation(mods), low, high, output_activation=out_act)


def _normalizer(vec_normalize: VecNormalize | None, key: str, obs_dim: int) -> FrozenNorm:
    if vec_normalize is None or not vec_normalize.norm_obs:
        mean, std = np.zeros(obs_dim, np.float32), np.ones(obs_dim, np.float32)
        return FrozenNorm(mean, std, NO_CLIP)
    stats = vec_normalize.obs_rms
    if isinstance(stats, dict) and key not in stats:
        raise UserError(f"VecNormalize does not normalize the {key!r} observation key; export it without "
                        "--vecnormalize or normalize that key")
    rms = stats[key] if isinstance(stats, dict) else stats
    mean, var = np.asarray(rms.mean, np.float64), np.asarray(rms.var, np.float64)
    if mean.shape != (obs_dim,):
        raise UserError(f"VecNormalize statistics have shape {mean.shape}, the policy takes {obs_dim} observations")
    # VecNormalize: clip((x - mean) / sqrt(var + epsilon), -clip_obs, clip_obs), robolearn's formula.
    m32, s32 = frozen_stats(mean, var, float(vec_normalize.epsilon))
    return FrozenNorm(m32, s32, float(vec_normalize.clip_obs))


def load_model(path: str | Path, algo: str) -> BaseAlgorithm:
    """``ALGO.load(path)`` on the CPU, with one-line errors. SB3 zips hold pickles: load your own models only."""
    import stable_baselines3 as sb3

    if algo not in ALGOS:
        raise UserError(f"--algo must be one of {', '.join(ALGOS)}, got {algo!r}")
    path = Path(path)
    if not path.is_file():
        raise UserError(f"SB3 model not found: {path}")
    cls: type[BaseAlgorithm] = getattr(sb3, algo.upper())
    try:
        return cls.load(path, device="cpu")
    except Exception as e:  # noqa: BLE001 - a wrong or corrupt file shows as any of many errors
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise UserError(f"cannot load {path} as an SB3 {algo.upper()} model: {type(e).__name__}: {first[:200]}") from None


def load_vec_normalize(path: str | Path) -> VecNormalize:
    """Statistics saved with ``VecNormalize.save`` (a pickle: load your own files only)."""
    import pickle

    path = Path(path)
    if not path.is_file():
        raise UserError(f"VecNormalize file not found: {path}")
    try:
        with open(path, "rb") as f:
            vn = pickle.load(f)
    except Exception as e:  # noqa: BLE001
        raise UserError(f"cannot read {path} as saved VecNormalize statistics: {type(e).__name__}: {e}") from None
    if not isinstance(vn, VecNormalize):
        raise UserError(f"{path} holds a {type(vn).__name__}, not saved VecNormalize statistics")
    return vn


def write_run_dir(model: BaseAlgorithm, cfg: RunConfig, out: str | Path, vec_normalize: VecNormalize | None = None,
                  evaluate: bool = True, source: str | None = None) -> tuple[Path, dict[str, Any] | None]:
    """A run directory (``config.yaml``, ``policy.pt``, ``eval.json``, plots) for an SB3 model.

    ``cfg`` is the robolearn run config whose env the model was trained on; ``robolearn
    export`` and ``robolearn eval`` read the simulator settings from it.
    """
    from ..config import dump_config
    from ..logging.run_dir import RunDir
    from ..policy import save_policy
    from ..train import finish_run

    policy = policy_from_sb3(model, vec_normalize)
    _check_env_match(policy, cfg)
    run = RunDir(out).create()
    run.write_config(dump_config(cfg))
    save_policy(policy, run.policy)
    result = None
    if evaluate:
        info = {"algo": f"sb3-{type(model).__name__.lower()}", "seed": cfg.seed, "env_steps": int(model.num_timesteps),
                "sb3_model": source}
        result = finish_run(run, cfg, policy, info)
    return run.path, result


def _check_env_match(policy: PolicySpec, cfg: RunConfig) -> None:
    from ..envs import make_env

    env = make_env(cfg, num_envs=1, backend="cpu")
    want = (env.single_observation_space["policy"].shape[0], env.single_action_space.shape[0])
    got = (policy.obs_dim, policy.act_dim)
    if want != got:
        raise UserError(f"the SB3 model takes {got[0]} observations and gives {got[1]} actions, the config's env has "
                        f"{want[0]} and {want[1]}; pass the config (and --set overrides) the model was trained with")

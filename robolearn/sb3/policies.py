"""Asymmetric actor-critic policies for Stable-Baselines3 (PPO, SAC, TD3).

SB3 gives the actor and the critic the same observation (with ``MultiInputPolicy``, all
keys of a Dict observation, concatenated; SB3 issue #1182). Here the actor reads only
the ``policy`` key (what the robot can estimate on board) and the critic(s) only the
``critic`` key (exact and privileged state), as in robolearn's own trainers: each side
gets a :class:`DictKeyExtractor` for its key, so the actor has no path to critic data.

Use them with SB3 as usual::

    PPO(AsymmetricActorCriticPolicy, env, policy_kwargs={"init_action": -0.1})
    TD3(AsymmetricTD3Policy, env)
    SAC(AsymmetricSACPolicy, env)
"""

from __future__ import annotations

from typing import Any

import torch
from gymnasium import spaces
from stable_baselines3.common.policies import ActorCriticPolicy, ContinuousCritic
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor, MlpExtractor, create_mlp
from stable_baselines3.common.type_aliases import Schedule
from stable_baselines3.sac.policies import Actor as SACActor
from stable_baselines3.sac.policies import SACPolicy
from stable_baselines3.td3.policies import Actor as TD3Actor
from stable_baselines3.td3.policies import TD3Policy
from torch import nn


class DictKeyExtractor(BaseFeaturesExtractor):
    """Features = one key of a Dict observation, flattened; the other keys are never read."""

    def __init__(self, observation_space: spaces.Space, key: str = "policy"):
        if not isinstance(observation_space, spaces.Dict) or key not in observation_space.spaces:
            have = list(observation_space.spaces) if isinstance(observation_space, spaces.Dict) else observation_space
            raise ValueError(f"DictKeyExtractor: the observation space has no key {key!r} (it has {have})")
        super().__init__(observation_space, features_dim=int(spaces.flatdim(observation_space.spaces[key])))
        self.key = key

    def forward(self, observations: dict[str, torch.Tensor]) -> torch.Tensor:
        return observations[self.key].flatten(1)


def _keys_only(kind: str, actor_key: str, kwargs: dict[str, Any]) -> None:
    """Force one extractor per network (SB3 would otherwise share one over all keys)."""
    if kwargs.get("share_features_extractor"):
        raise ValueError(f"{kind}: the actor and critic read different keys; share_features_extractor must be False")
    kwargs["share_features_extractor"] = False
    # SB3 also builds throwaway extractors from these; make them the cheap per-key kind.
    kwargs["features_extractor_class"] = DictKeyExtractor
    kwargs["features_extractor_kwargs"] = {"key": actor_key}


class AsymmetricMlpExtractor(MlpExtractor):
    """SB3's ``MlpExtractor`` whose value network takes the critic view's size, not the actor's."""

    def __init__(self, pi_dim: int, vf_dim: int, net_arch: list[int] | dict[str, list[int]],
                 activation_fn: type[nn.Module], device: torch.device | str = "cpu"):
        super().__init__(pi_dim, net_arch, activation_fn, device)
        vf = net_arch.get("vf", []) if isinstance(net_arch, dict) else net_arch
        self.value_net = nn.Sequential(*create_mlp(vf_dim, -1, list(vf), activation_fn)).to(device)
        self.latent_dim_vf = vf[-1] if vf else vf_dim

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        raise RuntimeError("the actor and critic have different inputs: use forward_actor / forward_critic")


class AsymmetricActorCriticPolicy(ActorCriticPolicy):
    """PPO/A2C policy: Gaussian actor on ``actor_key``, value network on ``critic_key``.

    ``init_action``: initial mean action (the output bias), e.g. the quadrotor's hover
    throttle (``robolearn.tasks.quadrotor.env.hover_action``); SB3's default is 0.
    """

    def __init__(self, observation_space: spaces.Space, action_space: spaces.Space, lr_schedule: Schedule,
                 *args: Any, actor_key: str = "policy", critic_key: str = "critic", init_action: float = 0.0,
                 **kwargs: Any):
        self.actor_key, self.critic_key, self.init_action = actor_key, critic_key, float(init_action)
        _keys_only(type(self).__name__, actor_key, kwargs)
        super().__init__(observation_space, action_space, lr_schedule, *args, **kwargs)

    def _build(self, lr_schedule: Schedule) -> None:
        # One extractor per key, in place before the networks on top of them are sized.
        self.features_extractor = self.pi_features_extractor = DictKeyExtractor(self.observation_space, self.actor_key)
        self.vf_features_extractor = DictKeyExtractor(self.observation_space, self.critic_key)
        self.features_dim = self.pi_features_extractor.features_dim
        super()._build(lr_schedule)
        assert isinstance(self.action_net, nn.Linear)  # DiagGaussian (use_sde=False) and gSDE heads
        with torch.no_grad():
            self.action_net.bias.fill_(self.init_action)

    def _build_mlp_extractor(self) -> None:
        self.mlp_extractor = AsymmetricMlpExtractor(self.pi_features_extractor.features_dim,
                                                    self.vf_features_extractor.features_dim,
                                                    self.net_arch, self.activation_fn, self.device)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(actor_key=self.actor_key, critic_key=self.critic_key, init_action=self.init_action)
        for k in ("features_extractor_class", "features_extractor_kwargs"):  # set by __init__
            data.pop(k, None)
        return data


class AsymmetricTD3Policy(TD3Policy):
    """TD3 policy: deterministic actor (and target) on ``actor_key``, twin Q-networks on ``critic_key``."""

    def __init__(self, observation_space: spaces.Space, action_space: spaces.Box, lr_schedule: Schedule,
                 *args: Any, actor_key: str = "policy", critic_key: str = "critic", **kwargs: Any):
        self.actor_key, self.critic_key = actor_key, critic_key
        _keys_only(type(self).__name__, actor_key, kwargs)
        super().__init__(observation_space, action_space, lr_schedule, *args, **kwargs)

    def make_actor(self, features_extractor: BaseFeaturesExtractor | None = None) -> TD3Actor:
        return super().make_actor(DictKeyExtractor(self.observation_space, self.actor_key))

    def make_critic(self, features_extractor: BaseFeaturesExtractor | None = None) -> ContinuousCritic:
        return super().make_critic(DictKeyExtractor(self.observation_space, self.critic_key))

    def _get_constructor_parameters(self) -> dict[str, Any]:
        return _off_policy_parameters(super()._get_constructor_parameters(), self.actor_key, self.critic_key)


class AsymmetricSACPolicy(SACPolicy):
    """SAC policy: squashed-Gaussian actor on ``actor_key``, twin Q-networks on ``critic_key``."""

    def __init__(self, observation_space: spaces.Space, action_space: spaces.Box, lr_schedule: Schedule,
                 *args: Any, actor_key: str = "policy", critic_key: str = "critic", **kwargs: Any):
        self.actor_key, self.critic_key = actor_key, critic_key
        _keys_only(type(self).__name__, actor_key, kwargs)
        super().__init__(observation_space, action_space, lr_schedule, *args, **kwargs)

    def make_actor(self, features_extractor: BaseFeaturesExtractor | None = None) -> SACActor:
        return super().make_actor(DictKeyExtractor(self.observation_space, self.actor_key))

    def make_critic(self, features_extractor: BaseFeaturesExtractor | None = None) -> ContinuousCritic:
        return super().make_critic(DictKeyExtractor(self.observation_space, self.critic_key))

    def _get_constructor_parameters(self) -> dict[str, Any]:
        return _off_policy_parameters(super()._get_constructor_parameters(), self.actor_key, self.critic_key)


def _off_policy_parameters(data: dict[str, Any], actor_key: str, critic_key: str) -> dict[str, Any]:
    data.update(actor_key=actor_key, critic_key=critic_key)
    for k in ("features_extractor_class", "features_extractor_kwargs", "share_features_extractor"):
        data.pop(k, None)  # set by __init__
    return data

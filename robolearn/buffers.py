"""Storage for on-policy rollouts (time x env) and off-policy transitions (ring buffer)."""

from __future__ import annotations

import torch

# (obs_policy, obs_critic, actions, rewards, next_obs_policy, next_obs_critic, terminated)
Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]


class RolloutBuffer:
    """One PPO rollout: ``steps`` transitions of ``num_envs`` envs, preallocated.

    Observations are copied in (the env owns and overwrites its arrays). ``values`` has
    ``steps + 1`` rows: the last one is the value of the observation after the rollout.
    """

    def __init__(self, steps: int, num_envs: int, policy_dim: int, critic_dim: int, act_dim: int,
                 device: torch.device | str = "cpu"):
        T, N = steps, num_envs
        z = lambda *s: torch.zeros(*s, device=device)  # noqa: E731
        self.steps, self.num_envs = T, N
        self.obs_policy = z(T, N, policy_dim)
        self.obs_critic = z(T + 1, N, critic_dim)
        self.actions = z(T, N, act_dim)
        self.logprobs = z(T, N)
        self.rewards = z(T, N)
        self.dones = z(T, N)  # 1 where the episode ended at this step (terminated or truncated)
        self.values = z(T + 1, N)
        self.advantages = z(T, N)
        self.returns = z(T, N)
        # truncated transitions: (step index, env index, final critic observation)
        self.trunc_t: list[torch.Tensor] = []
        self.trunc_env: list[torch.Tensor] = []
        self.trunc_obs: list[torch.Tensor] = []

    def clear_truncations(self) -> None:
        self.trunc_t, self.trunc_env, self.trunc_obs = [], [], []

    def add_truncations(self, t: int, env_ids: torch.Tensor, final_critic_obs: torch.Tensor) -> None:
        self.trunc_t.append(torch.full_like(env_ids, t))
        self.trunc_env.append(env_ids)
        self.trunc_obs.append(final_critic_obs)

    def truncations(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None:
        """(step idx, env idx, final critic obs) of all truncated transitions, or None."""
        if not self.trunc_t:
            return None
        return torch.cat(self.trunc_t), torch.cat(self.trunc_env), torch.cat(self.trunc_obs)


class ReplayBuffer:
    """Uniform replay of transitions with both observation views, stored as a ring buffer."""

    def __init__(self, capacity: int, policy_dim: int, critic_dim: int, act_dim: int,
                 device: torch.device | str = "cpu"):
        z = lambda *s: torch.zeros(*s, device=device)  # noqa: E731
        self.capacity = int(capacity)
        self.obs_policy = z(capacity, policy_dim)
        self.obs_critic = z(capacity, critic_dim)
        self.next_obs_policy = z(capacity, policy_dim)
        self.next_obs_critic = z(capacity, critic_dim)
        self.actions = z(capacity, act_dim)
        self.rewards = z(capacity)
        self.terminated = z(capacity)  # 1 only for true terminations: truncations bootstrap
        self.pos = 0
        self.size = 0

    def add(self, obs_p: torch.Tensor, obs_c: torch.Tensor, act: torch.Tensor, rew: torch.Tensor,
            next_obs_p: torch.Tensor, next_obs_c: torch.Tensor, terminated: torch.Tensor) -> None:
        """Add a batch of n transitions (n <= capacity), overwriting the oldest."""
        n = act.shape[0]
        idx = (torch.arange(n, device=self.actions.device) + self.pos) % self.capacity
        self.obs_policy[idx] = obs_p
        self.obs_critic[idx] = obs_c
        self.actions[idx] = act
        self.rewards[idx] = rew
        self.next_obs_policy[idx] = next_obs_p
        self.next_obs_critic[idx] = next_obs_c
        self.terminated[idx] = terminated
        self.pos = (self.pos + n) % self.capacity
        self.size = min(self.size + n, self.capacity)

    def sample(self, batch_size: int, generator: torch.Generator | None = None) -> Batch:
        idx = torch.randint(0, self.size, (batch_size,), device=self.actions.device, generator=generator)
        return (self.obs_policy[idx], self.obs_critic[idx], self.actions[idx], self.rewards[idx],
                self.next_obs_policy[idx], self.next_obs_critic[idx], self.terminated[idx])

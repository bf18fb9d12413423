"""TD3 pieces: Polyak target update, replay bookkeeping, a short learning run."""

import numpy as np
import torch
from torch import nn

from fake_envs import PointMassVecEnv, ScriptedVecEnv
from robolearn.buffers import ReplayBuffer
from robolearn.config import NetworkConfig, TD3Config
from robolearn.td3 import TD3, polyak_update


def test_polyak_update_moves_target_by_tau():
    torch.manual_seed(0)
    src, tgt = nn.Linear(3, 2), nn.Linear(3, 2)
    w_t0, w_s = tgt.weight.detach().clone(), src.weight.detach().clone()
    polyak_update(tgt, src, 0.1)
    torch.testing.assert_close(tgt.weight, 0.9 * w_t0 + 0.1 * w_s)
    for _ in range(200):
        polyak_update(tgt, src, 0.1)
    torch.testing.assert_close(tgt.weight, w_s, atol=1e-6, rtol=0)
    polyak_update(tgt, nn.Linear(3, 2), 0.0)  # tau=0 keeps the target
    torch.testing.assert_close(tgt.weight, w_s, atol=1e-6, rtol=0)


def test_replay_buffer_wraps_around():
    buf = ReplayBuffer(5, 1, 1, 1)
    for k in range(3):
        x = torch.full((2, 1), float(k))
        buf.add(x, x, x, x[:, 0], x, x, torch.zeros(2))
    assert buf.size == 5 and buf.pos == 1
    # slots 0..4 got k=0,0,1,1,2 then k=2 overwrote slot 0
    assert buf.rewards.tolist() == [2.0, 0.0, 1.0, 1.0, 2.0]
    sample = buf.sample(64, torch.Generator().manual_seed(0))
    assert sample[0].shape == (64, 1)


def _td3(env, **kw):
    cfg = TD3Config(**{"buffer_size": 10_000, "batch_size": 32, "learning_starts": 0, **kw})
    net = NetworkConfig(actor_hidden=[16], critic_hidden=[32], init_action="zero")
    return TD3(env, cfg, net, seed=0)


def test_transitions_keep_final_obs_and_flag_only_terminations():
    env = ScriptedVecEnv(lengths=[3, 2], terminate=[False, True])
    td3 = _td3(env, learning_starts=10_000)
    td3.reset()
    for _ in range(3):
        td3.step_env()
    b = td3.buffer
    assert b.size == 6
    # rows are (step 0: env0, env1), (step 1: ...), (step 2: ...)
    assert b.terminated[:6].tolist() == [0, 0, 0, 1, 0, 0]
    # env 1 terminated at step 1: next obs is the final obs (marked +100), not the reset one
    assert b.next_obs_critic[3, 1].item() == 102
    # env 0 truncated at step 2: stored with its final obs and terminated = 0 -> bootstrapped
    assert b.next_obs_critic[4, 1].item() == 103 and b.terminated[4] == 0
    assert b.next_obs_critic[0, 1].item() == 1


def test_td3_improves_point_mass():
    env = PointMassVecEnv(num_envs=16, horizon=40, seed=0)
    td3 = _td3(env, batch_size=128, learning_starts=1000, gamma=0.95, updates_per_step=1.0,
               actor_lr=3e-3, critic_lr=3e-3, tau=0.02)
    eval_env = PointMassVecEnv(num_envs=64, horizon=40, seed=5)

    def ret():
        obs, _ = eval_env.reset(seed=1)
        total, alive = np.zeros(64), np.ones(64, bool)
        for _ in range(40):
            a = td3.act(torch.from_numpy(obs["policy"])).numpy()
            obs, r, te, tr, _ = eval_env.step(a)
            total += r * alive
            alive &= ~(te | tr)
        return total.mean()

    before = ret()
    for _ in range(80):
        td3.iterate()
    after = ret()
    print(f"td3 point mass: return before {before:.1f}, after {after:.1f}")
    assert after > 20 and after > before + 10, (before, after)


def test_td3_state_dict_roundtrip():
    a = _td3(PointMassVecEnv(num_envs=8))
    a.iterate()
    b = _td3(PointMassVecEnv(num_envs=8))
    b.load_state_dict(a.state_dict())
    x = torch.randn(4, 2)
    torch.testing.assert_close(a.act(x), b.act(x))
    exported = a.export_policy()
    from robolearn.networks import actor_from_export

    torch.testing.assert_close(actor_from_export(exported)(x), a.act(x))

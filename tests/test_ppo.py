"""PPO pieces: GAE, truncation bootstrap, rollout bookkeeping, and learning a tiny task."""

import numpy as np
import pytest
import torch

from fake_envs import PointMassVecEnv, ScriptedVecEnv
from robolearn.config import NetworkConfig, PPOConfig
from robolearn.ppo import PPO, bootstrap_truncated, compute_gae


def test_gae_matches_hand_computation():
    gamma, lam = 0.9, 0.8
    rewards = torch.tensor([[1.0, 0.0], [2.0, 0.0], [3.0, 1.0]])
    values = torch.tensor([[0.5, 0.0], [1.0, 0.0], [1.5, 0.0], [2.0, 10.0]])
    dones = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 0.0]])
    adv, ret = compute_gae(rewards, values, dones, gamma, lam)
    # env 0: the episode ends at t=1, so t=1 does not look at V(s_2)
    #   t=2: 3 + 0.9*2.0 - 1.5 = 3.3;  t=1: 2 - 1.0 = 1.0;  t=0: (1 + 0.9*1.0 - 0.5) + 0.72*1.0 = 2.12
    # env 1: t=2: 1 + 0.9*10 = 10;  t=1: 0.72*10 = 7.2;  t=0: 0.72*7.2 = 5.184
    expected_adv = torch.tensor([[2.12, 5.184], [1.0, 7.2], [3.3, 10.0]])
    torch.testing.assert_close(adv, expected_adv)
    torch.testing.assert_close(ret, expected_adv + values[:-1])


def test_gae_lambda_one_is_discounted_return_minus_value():
    torch.manual_seed(0)
    T, gamma = 6, 0.95
    r = torch.randn(T, 1)
    v = torch.randn(T + 1, 1)
    adv, ret = compute_gae(r, v, torch.zeros(T, 1), gamma, 1.0)
    g = v[T].clone()
    for t in range(T - 1, -1, -1):
        g = r[t] + gamma * g
        torch.testing.assert_close(ret[t], g)


def test_bootstrap_truncated_adds_discounted_final_value():
    rewards = torch.ones(4, 3)
    bootstrap_truncated(rewards, torch.tensor([1, 3]), torch.tensor([2, 0]), torch.tensor([5.0, -2.0]), 0.9)
    expected = torch.ones(4, 3)
    expected[1, 2] += 4.5
    expected[3, 0] += -1.8
    torch.testing.assert_close(rewards, expected)


def _small_ppo(env, **kw):
    cfg = PPOConfig(**{"rollout_steps": 6, "epochs": 1, "minibatches": 1, "gamma": 0.9, **kw})
    net = NetworkConfig(actor_hidden=[8], critic_hidden=[8], critic_activation="tanh")
    return PPO(env, cfg, net, seed=0)


def test_rollout_bootstraps_truncation_but_not_termination():
    # env 0 truncates every 3 steps, env 1 terminates every 2 steps; reward 1 per step.
    env = ScriptedVecEnv(lengths=[3, 2], terminate=[False, True])
    episodes = []
    ppo = _small_ppo(env)
    ppo.on_episodes = lambda ep, mask: episodes.append((ep["length"][mask].copy(), mask.copy()))
    ppo.collect()
    buf, gamma = ppo.buf, ppo.cfg.gamma
    # every episode end is a done, whatever its kind
    expected_dones = torch.zeros(6, 2)
    expected_dones[[2, 5], 0] = 1
    expected_dones[[1, 3, 5], 1] = 1
    torch.testing.assert_close(buf.dones, expected_dones)
    with torch.no_grad():
        v_final = ppo.model.value(torch.tensor([[0.0, 103.0]]))[0]  # env 0's final observation
    expected_r = torch.ones(6, 2)
    expected_r[[2, 5], 0] += gamma * v_final
    torch.testing.assert_close(buf.rewards, expected_r)
    # the advantage at a truncated step bootstraps from the final observation, not the reset one
    with torch.no_grad():
        v2 = ppo.model.value(torch.tensor([[0.0, 2.0]]))[0]
    torch.testing.assert_close(buf.advantages[2, 0], 1 + gamma * v_final - v2, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(buf.advantages[5, 0], 1 + gamma * v_final - v2, rtol=1e-5, atol=1e-5)
    # observations were copied (the env's arrays are reused) and env steps counted
    assert buf.obs_critic[1, 0, 1] == 1 and buf.obs_critic[3, 0, 1] == 0
    assert ppo.env_steps == 12
    assert sum(len(l) for l, _ in episodes) == 5


def test_update_reports_finite_stats_and_changes_weights():
    env = PointMassVecEnv(num_envs=32, horizon=20)
    ppo = _small_ppo(env, minibatches=2, epochs=2)
    before = [p.detach().clone() for p in ppo.model.parameters()]
    stats = ppo.iterate()
    assert all(np.isfinite(v) for v in stats.values()), stats
    assert any(not torch.equal(a, b) for a, b in zip(before, ppo.model.parameters()))
    # the normalizers saw the rollout
    assert ppo.model.policy_norm.count.item() == 32 + 32 * 6


def _eval_return(ppo, env, episodes_steps=40):
    obs, _ = env.reset(seed=123)
    total = np.zeros(env.num_envs)
    alive = np.ones(env.num_envs, bool)
    for _ in range(episodes_steps):
        a = ppo.act(torch.from_numpy(obs["policy"])).numpy()
        obs, r, term, trunc, _ = env.step(a)
        total += r * alive
        alive &= ~(term | trunc)
    return total.mean()


def test_ppo_learns_point_mass_in_seconds():
    env = PointMassVecEnv(num_envs=128, horizon=40, seed=1)
    cfg = PPOConfig(rollout_steps=16, epochs=4, minibatches=4, lr=3e-3, gamma=0.95, init_std=0.5)
    net = NetworkConfig(actor_hidden=[16, 16], critic_hidden=[32, 32], init_action="zero")
    ppo = PPO(env, cfg, net, seed=1)
    eval_env = PointMassVecEnv(num_envs=128, horizon=40, seed=2)
    before = _eval_return(ppo, eval_env)
    for _ in range(40):
        ppo.iterate()
    after = _eval_return(ppo, eval_env)
    # optimum: walk 1.5 m to the target at 0.1 m/step then stay: return ~ 40 - 11.25 = 28.7
    print(f"point mass: return before {before:.1f}, after {after:.1f}")
    assert after > 24.0, (before, after)
    assert after > before + 10


def test_state_dict_roundtrip_reproduces_actions():
    env = PointMassVecEnv(num_envs=16)
    a = _small_ppo(env)
    a.iterate()
    b = _small_ppo(PointMassVecEnv(num_envs=16))
    b.load_state_dict(a.state_dict())
    x = torch.randn(5, 2)
    torch.testing.assert_close(a.act(x), b.act(x))
    assert b.env_steps == a.env_steps and b.lr == a.lr


@pytest.mark.parametrize("clip_value", [False, True])
def test_value_clipping_option_runs(clip_value):
    ppo = _small_ppo(PointMassVecEnv(num_envs=16), clip_value=clip_value)
    stats = ppo.iterate()
    assert np.isfinite(stats["loss/value"])


def _anneal_ppo(total, **kw):
    cfg = PPOConfig(**{"rollout_steps": 6, "epochs": 2, "minibatches": 2, "gamma": 0.9, **kw})
    net = NetworkConfig(actor_hidden=[8], critic_hidden=[8], critic_activation="tanh")
    return PPO(PointMassVecEnv(num_envs=32), cfg, net, seed=0, total_env_steps=total)


def test_step_size_anneal_is_flat_then_linear_to_the_factor():
    ppo = _anneal_ppo(1200, anneal_start=0.5, anneal_factor=0.01)
    for steps, want in [(0, 1.0), (600, 1.0), (900, 0.505), (1200, 0.01), (2400, 0.01)]:
        ppo.env_steps = steps
        assert ppo.anneal_scale() == pytest.approx(want), steps
    # no budget, or anneal_start 1.0 (the default): no anneal
    assert _anneal_ppo(None, anneal_start=0.5).anneal_scale() == 1.0
    off = _anneal_ppo(1200)
    off.env_steps = 1200
    assert off.anneal_scale() == 1.0


def test_step_size_anneal_scales_a_fixed_learning_rate():
    ppo = _anneal_ppo(384, lr_schedule="fixed", lr=1e-3, anneal_start=0.0, anneal_factor=0.1)
    ppo.iterate()  # at env step 0: the full rate
    assert ppo.optimizer.param_groups[0]["lr"] == pytest.approx(1e-3)
    ppo.iterate()  # at 192 of 384: halfway down to 0.1x
    assert ppo.optimizer.param_groups[0]["lr"] == pytest.approx(1e-3 * 0.55)
    assert ppo.lr == pytest.approx(1e-3 * 0.55)


def test_step_size_anneal_lowers_the_adaptive_kl_target():
    # The first minibatch of an update has KL 0 (the policy is the rollout's), every later one
    # a small positive KL. Without the anneal those are all under half of target_kl 0.01, so the
    # rate grows 1.5x per minibatch; annealed to a target of 1e-8 every later one is over
    # twice the target, so the rate shrinks.
    plain = _anneal_ppo(1000, lr=1e-3)
    annealed = _anneal_ppo(1000, lr=1e-3, anneal_start=0.0, anneal_factor=1e-6)
    for ppo in (plain, annealed):
        ppo.env_steps = 1000
        stats = ppo.iterate()
        assert 0 < stats["kl"] < 0.005, stats
    assert plain.lr == pytest.approx(1e-3 * 1.5 ** 4)
    assert annealed.lr == pytest.approx(1e-3 * 1.5 / 1.5 ** 3)
    assert annealed.step_scale == pytest.approx(1e-6)


# The point mass is symmetric under x -> -x: observations (x, last action) and the action change sign.
POINT_MASS_MIRROR = [(np.array([0, 1]), np.array([-1.0, -1.0], np.float32), np.array([0]),
                      np.array([-1.0], np.float32))]


def _mirror_gap(ppo, x):
    with torch.no_grad():
        return (ppo.model.action_mean(x) + ppo.model.action_mean(-x)).abs().mean().item()


def test_symmetry_images_go_round_robin_over_the_symmetries():
    from robolearn.ppo import symmetry_images

    two = POINT_MASS_MIRROR + [(np.array([1, 0]), np.ones(2, np.float32), np.array([0]), np.ones(1, np.float32))]
    syms = [tuple(torch.as_tensor(v) for v in sym) for sym in two]
    x = torch.arange(10.0).reshape(5, 2)
    img, a_idx, a_sign = symmetry_images(x, syms)
    torch.testing.assert_close(img[0::2], -x[0::2])  # rows 0, 2, 4: the mirror
    torch.testing.assert_close(img[1::2], x[1::2].flip(1))  # rows 1, 3: the swap
    assert a_idx.shape == (5, 1) and (a_idx == 0).all()
    torch.testing.assert_close(a_sign[:, 0], torch.tensor([-1.0, 1.0, -1.0, 1.0, -1.0]))
    with pytest.raises(ValueError, match="symmetries"):
        PPO(PointMassVecEnv(num_envs=16), PPOConfig(symmetry_coef=1.0), NetworkConfig(), seed=0)


def test_symmetry_loss_makes_the_actor_symmetric():
    """An actor started off-symmetric (mean 0.3 everywhere): after a few updates the mirror
    loss has removed most of the gap; without it the gap stays."""
    x = torch.tensor([[0.5, 0.0], [1.0, 0.1], [1.5, -0.1]])
    gaps = {}
    for coef in (0.0, 10.0):
        cfg = PPOConfig(rollout_steps=8, epochs=2, minibatches=2, symmetry_coef=coef)
        ppo = PPO(PointMassVecEnv(num_envs=32, seed=3), cfg, NetworkConfig(actor_hidden=[8]), seed=0,
                  init_action=0.3, symmetries=POINT_MASS_MIRROR)
        start = _mirror_gap(ppo, x)
        for _ in range(10):
            stats = ppo.iterate()
        gaps[coef] = _mirror_gap(ppo, x)
    assert start == pytest.approx(0.6, abs=0.05)
    assert "loss/symmetry" in stats
    print(f"mirror gap: start {start:.3f}, after 10 iterations without the loss {gaps[0.0]:.3f}, with it {gaps[10.0]:.3f}")
    assert gaps[10.0] < 0.1 and gaps[0.0] > 0.3, gaps


def test_trainer_wires_the_quadrotor_symmetries_and_refuses_an_env_without_them():
    from robolearn.config import load_config
    from robolearn.envs import make_env
    from robolearn.errors import UserError
    from robolearn.train import make_algorithm

    cfg = load_config(None, ["ppo.symmetry_coef=1.0", "env.num_envs=8"])
    algo = make_algorithm(cfg, make_env(cfg), lambda ep, mask: None)
    assert len(algo._sym) == 3
    assert all(len(oi) == algo.policy_dim and len(ai) == algo.act_dim for oi, _, ai, _ in algo._sym)
    with pytest.raises(UserError, match="symmetry_coef"):
        make_algorithm(cfg, PointMassVecEnv(num_envs=8), lambda ep, mask: None)


# --------------------------------------------------------------------------- smoothness (CAPS)
def _consecutive_change(ppo) -> float:
    """Mean |mu(s_t) - mu(s_t+1)| over the last rollout's within-episode pairs."""
    buf, m = ppo.buf, ppo.model
    with torch.no_grad():
        mu = m.action_mean(buf.obs_policy.reshape(-1, ppo.policy_dim)).reshape(buf.obs_policy.shape[0], ppo.num_envs, -1)
    d = (mu[1:] - mu[:-1]).norm(dim=-1)
    keep = buf.dones[:-1] == 0
    return float(d[keep].mean())


def test_episode_step_counter_follows_the_envs_own():
    env = PointMassVecEnv(num_envs=16, horizon=5, seed=1)
    ppo = PPO(env, PPOConfig(rollout_steps=12, epochs=1, minibatches=1), NetworkConfig(actor_hidden=[8]), seed=0)
    for _ in range(3):
        ppo.collect()
        np.testing.assert_array_equal(ppo._ep_step.numpy(), env.t)
    # the rollout rows: row t holds the step index of the state it acted on
    assert ppo._rollout_ep_step.max() == 4 and ppo._rollout_ep_step.min() == 0


def test_temporal_smoothness_loss_smooths_the_actor():
    changes, stats = {}, {}
    for coef in (0.0, 3.0):
        cfg = PPOConfig(rollout_steps=16, epochs=2, minibatches=2, smoothness_coef=coef, smoothness_fraction=1.0)
        ppo = PPO(PointMassVecEnv(num_envs=32, seed=3), cfg, NetworkConfig(actor_hidden=[16]), seed=0)
        for _ in range(15):
            stats[coef] = ppo.iterate()
        changes[coef] = _consecutive_change(ppo)
    print(f"mean |mu(s_t) - mu(s_t+1)|: without the loss {changes[0.0]:.4f}, with it {changes[3.0]:.4f}")
    assert "loss/smooth_temporal" in stats[3.0] and "loss/smooth_temporal" not in stats[0.0]
    assert changes[3.0] < 0.5 * changes[0.0], changes


def test_smoothness_gate_past_the_episode_leaves_the_update_unchanged():
    """With smoothness_after_steps beyond every episode the losses weigh no row: the weights
    after the updates are those of a run without them (the gate really gates)."""
    weights = []
    for cfg in (PPOConfig(rollout_steps=8, epochs=2, minibatches=2),
                PPOConfig(rollout_steps=8, epochs=2, minibatches=2, smoothness_coef=5.0, smoothness_after_steps=1000)):
        ppo = PPO(PointMassVecEnv(num_envs=16, horizon=20, seed=2), cfg, NetworkConfig(actor_hidden=[8]), seed=0)
        for _ in range(3):
            ppo.iterate()
        weights.append(torch.cat([p.detach().flatten() for p in ppo.model.actor.parameters()]))
    torch.testing.assert_close(weights[0], weights[1], rtol=0, atol=0)


def test_spatial_smoothness_loss_flattens_the_actor_around_its_states():
    slopes = {}
    for coef in (0.0, 3.0):
        cfg = PPOConfig(rollout_steps=16, epochs=2, minibatches=2, smoothness_spatial_coef=coef,
                        smoothness_spatial_std=0.3, smoothness_fraction=1.0)
        ppo = PPO(PointMassVecEnv(num_envs=32, seed=3), cfg, NetworkConfig(actor_hidden=[16]), seed=0)
        for _ in range(15):
            stats = ppo.iterate()
        x = ppo.model.policy_norm(ppo.buf.obs_policy.reshape(-1, ppo.policy_dim))
        e = 0.1 * torch.randn(x.shape, generator=torch.Generator().manual_seed(0))
        with torch.no_grad():
            slopes[coef] = float((ppo.model.actor(x + e) - ppo.model.actor(x)).norm(dim=-1).mean())
    assert "loss/smooth_spatial" in stats
    assert slopes[3.0] < 0.5 * slopes[0.0], slopes

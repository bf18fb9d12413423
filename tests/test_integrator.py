"""The actor's integrator state: closed forms, per-env resets, symmetries, and the format-2 actor."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from robolearn.integrator import IntegratedObsEnv, IntegratorSpec
from robolearn.networks import DeterministicActor, actor_from_export, export_actor, with_integrator
from fake_envs import PointMassVecEnv


def test_constant_input_integrates_linearly_then_clamps():
    spec = IntegratorSpec((0,), gain=0.01, limit=0.05)
    z = np.zeros((1, 1), np.float32)
    obs = np.array([[2.0, 0.0]], np.float32)
    for k in range(1, 3):
        spec.step(z, obs)
        assert z[0, 0] == pytest.approx(0.02 * k, rel=1e-6)
    spec.step(z, obs)
    assert z[0, 0] == pytest.approx(0.05)  # 0.06 clamped: anti-windup
    spec.step(z, -obs)
    assert z[0, 0] == pytest.approx(0.03, rel=1e-5)  # unwinds at once from the clamp


def test_bad_specs_name_the_problem():
    with pytest.raises(ValueError, match="outside the policy observation"):
        IntegratorSpec((5,), 0.01, 1.0).check(3)
    with pytest.raises(ValueError, match="repeats"):
        IntegratorSpec((0, 0), 0.01, 1.0).check(3)
    with pytest.raises(ValueError, match="limit"):
        IntegratorSpec((0,), 0.01, float("inf")).check(3)


def test_wrapper_restarts_the_integral_of_finished_episodes_only():
    env = PointMassVecEnv(num_envs=4, horizon=3, start=1.0)
    w = IntegratedObsEnv(env, IntegratorSpec((0,), gain=1.0, limit=100.0))
    obs, _ = w.reset(seed=0)
    assert obs["policy"].shape == (4, 3) and obs["critic"].shape == (4, 4)
    np.testing.assert_allclose(obs["policy"][:, 2], obs["policy"][:, 0])  # z = gain * x0 after the reset
    total = obs["policy"][:, 0].copy()
    for t in range(1, 3):
        obs, _, term, trunc, info = w.step(np.zeros((4, 1), np.float32))
        total += obs["policy"][:, 0]
        np.testing.assert_allclose(obs["policy"][:, 2], total, rtol=1e-6)
        np.testing.assert_allclose(obs["critic"][:, 3], total, rtol=1e-6)
    obs, _, term, trunc, info = w.step(np.zeros((4, 1), np.float32))  # the horizon: all truncate
    assert trunc.all()
    # the truncated episode's final view carries its own integral; the new episode starts afresh
    np.testing.assert_allclose(info["final_obs"]["critic"][:, 3], total + info["final_obs"]["policy"][:, 0],
                               rtol=1e-6)
    np.testing.assert_allclose(obs["policy"][:, 2], obs["policy"][:, 0], rtol=1e-6)


def test_symmetries_map_the_integral_like_the_entry_it_integrates():
    pytest.importorskip("numba")
    from sims.quadrotor import QuadrotorConfig, QuadrotorVecEnv

    env = QuadrotorVecEnv(num_envs=2, config=QuadrotorConfig(action_history=2), seed=0)
    spec = IntegratorSpec((0, 1, 2), gain=0.05, limit=10.0)
    w = IntegratedObsEnv(env, spec)
    p = env.single_observation_space["policy"].shape[0]
    rng = np.random.default_rng(0)
    seq = rng.normal(size=(20, 1, p)).astype(np.float32)
    for o_idx, o_sign, _, _ in w.policy_symmetries():
        z, zm = np.zeros((1, 3), np.float32), np.zeros((1, 3), np.float32)
        for o in seq:
            spec.step(z, o)
            spec.step(zm, o[:, o_idx[:p]] * o_sign[:p])
        full = np.concatenate([seq[-1], z], 1)
        np.testing.assert_allclose((full[:, o_idx] * o_sign)[:, p:], zm, rtol=1e-5, atol=1e-7)


def _stateful_dict(obs_dim: int = 5, k: int = 2) -> tuple[dict, IntegratorSpec]:
    torch.manual_seed(0)
    spec = IntegratorSpec(tuple(range(k)), gain=0.1, limit=0.3)
    actor = DeterministicActor(obs_dim + k, 4, [8, 8], "tanh")
    with torch.no_grad():
        actor.norm.update(torch.randn(256, obs_dim + k))
        for prm in actor.net.parameters():
            prm.normal_(0, 0.5)
    return with_integrator(actor.spec(), spec).to_dict(), spec


def test_format_2_actor_integrates_then_acts_and_resets_per_row():
    d, spec = _stateful_dict()
    assert d["format"] == "robolearn.actor/2" and d["obs_dim"] == 5
    actor = actor_from_export(d)
    plain = DeterministicActor(7, 4, [8, 8], "tanh")  # the same network on concat(obs, z), by hand
    plain.norm = actor.norm  # the file's normalizer
    plain.net.load_state_dict(actor.net.state_dict())
    obs = torch.randn(6, 3, 5)
    z = torch.zeros(3, 2)
    for t in range(6):
        if t == 3:
            actor.reset_state(torch.tensor([True, False, False]))
            z[0] = 0
        z = (z + spec.gain * obs[t, :, :2]).clamp(-spec.limit, spec.limit)
        torch.testing.assert_close(actor(obs[t]), plain(torch.cat([obs[t], z], 1)), rtol=0, atol=0)
    actor.reset_state()
    torch.testing.assert_close(actor(obs[0]), plain(torch.cat([obs[0], spec.gain * obs[0, :, :2]], 1)))


def test_format_1_files_still_load_stateless():
    actor = DeterministicActor(5, 4, [8], "tanh")
    d = export_actor(actor.norm, actor.net, "tanh")
    assert d["format"] == "robolearn.actor/1"
    back = actor_from_export(d)
    assert not back.stateful
    x = torch.randn(3, 5)
    torch.testing.assert_close(back(x), back(x))  # no state: the same input, the same output


def test_a_controller_resets_a_stateful_actors_rows_with_its_episodes():
    from robolearn.controllers import TorchActorController

    d, spec = _stateful_dict()
    actor = actor_from_export(d)
    c = TorchActorController(actor)
    obs = {"policy": np.random.default_rng(0).normal(size=(3, 5)).astype(np.float32)}
    c.act(obs)
    c.act(obs)
    z = actor._z.clone()
    c.reset(np.array([False, True, False]))
    assert torch.equal(actor._z[1], torch.zeros(2)) and torch.equal(actor._z[[0, 2]], z[[0, 2]])

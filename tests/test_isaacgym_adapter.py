"""sims.isaac.IsaacGymVecEnv on a fake Isaac Gym (tests/fake_isaacgym.py): observation
views, reset semantics, truncation vs termination, parameters applied at the next reset
through the property setters, and the project's trainers and teachers running on it."""

import ast
import math

import numpy as np
import pytest
import torch

from fake_isaacgym import CartTask, Gym
from sims.isaac import IsaacGymVecEnv, tensor_param
from sims.isaac.params import DEFAULT_PARAMS

START = tensor_param("task.start_x", "start_x", (0.5, 0.5), (0.0, 1.9))
PARAMS = (*DEFAULT_PARAMS, START)


def make(n=4, horizon=10, output="torch", **kw):
    task = CartTask(num_envs=n, max_episode_length=horizon)
    return task, IsaacGymVecEnv(task, PARAMS, seed=0, output=output, **kw)


def _stub_gym_methods(tmp_path):
    """{method: positional parameter names} of gymapi.Gym in the installed isaacgym-stubs."""
    from test_typecheck import write_isaacgym_stubs

    try:
        pyi = write_isaacgym_stubs(tmp_path) / "isaacgym" / "gymapi.pyi"
    except FileNotFoundError as e:
        pytest.skip(str(e))
    tree = ast.parse(pyi.read_text())
    cls = {n.name: n for n in tree.body if isinstance(n, ast.ClassDef)}
    # None where the stub takes *args (an overloaded binding): any positional parameters fit
    methods = {f.name: None if f.args.vararg else [a.arg for a in f.args.args]
               for f in cls["Gym"].body if isinstance(f, ast.FunctionDef)}
    fields = {c: {t.target.id for t in cls[c].body if isinstance(t, ast.AnnAssign)}
              for c in ("RigidBodyProperties", "RigidShapeProperties")}
    return methods, fields


FAKE_ONLY = {"create_sim", "add_env", "prepare", "cart_properties"}


def test_fake_gym_has_the_stub_signatures(tmp_path):
    methods, fields = _stub_gym_methods(tmp_path)
    fake = [m for m in vars(Gym) if not m.startswith("_") and callable(getattr(Gym, m)) and m not in FAKE_ONLY]
    assert "set_actor_rigid_body_properties" in fake
    for m in fake:
        assert m in methods, f"gymapi.Gym has no method {m}"
        ours = list(Gym.__dict__[m].__code__.co_varnames[:Gym.__dict__[m].__code__.co_argcount])
        assert methods[m] is None or ours == methods[m], f"{m}: fake {ours} vs stub {methods[m]}"
    assert {"mass", "invMass", "flags"} <= fields["RigidBodyProperties"]
    assert {"friction", "restitution", "rolling_friction", "torsion_friction"} <= fields["RigidShapeProperties"]


@pytest.mark.parametrize("output", ["torch", "numpy"])
def test_reset_returns_policy_and_critic_views(output):
    task, env = make(output=output)
    obs, info = env.reset()
    assert info == {}
    kind = torch.Tensor if output == "torch" else np.ndarray
    assert isinstance(obs["policy"], kind) and isinstance(obs["critic"], kind)
    assert env.single_observation_space["policy"].shape == (2,)
    assert env.single_observation_space["critic"].shape == (4 + len(PARAMS),)
    assert tuple(obs["policy"].shape) == (4, 2) and tuple(obs["critic"].shape) == (4, 4 + len(PARAMS))
    np.testing.assert_allclose(np.asarray(obs["policy"]), task.obs_buf.numpy())
    np.testing.assert_allclose(np.asarray(obs["critic"])[:, :4], task.states_buf.numpy())
    np.testing.assert_allclose(np.asarray(obs["critic"])[:, 4:], [[1, 1, 1, 1, 0.5]] * 4)
    # reset_idx ran for every env and the first observation is the reset state
    assert task.reset_idx_calls == [[0, 1, 2, 3]]
    np.testing.assert_allclose(np.abs(np.asarray(obs["policy"])[:, 0]), 0.5)
    assert env.param_names == [p.name for p in PARAMS]


def test_critic_falls_back_to_obs_without_states_and_params_are_optional():
    task = CartTask(num_envs=2)
    task.num_states = 0
    env = IsaacGymVecEnv(task, PARAMS, critic_params=False)
    obs, _ = env.reset()
    assert env.single_observation_space["critic"].shape == (2,)
    torch.testing.assert_close(obs["critic"], obs["policy"])


def test_step_before_reset_and_bad_inputs_raise():
    _, env = make()
    with pytest.raises(RuntimeError, match="reset"):
        env.step(np.zeros((4, 1), np.float32))
    env.reset()
    with pytest.raises(ValueError, match="shape"):
        env.step(np.zeros((4, 2), np.float32))
    with pytest.raises(ValueError, match="unknown parameter"):
        env.set_range("randomization.nope", 1, 1)
    with pytest.raises(ValueError, match="limits"):
        env.set_range("randomization.mass_scale", 0.01, 1.0)
    with pytest.raises(ValueError, match="low"):
        env.set_range("randomization.mass_scale", 2.0, 1.0)
    with pytest.raises(ValueError, match="unknown reset option"):
        env.reset(options={"mask": 1})
    with pytest.raises(ValueError, match="duplicate"):
        IsaacGymVecEnv(CartTask(num_envs=1), (START, START))


def test_truncation_at_time_limit_and_termination_when_out_of_bounds():
    horizon = 6
    task, env = make(n=2, horizon=horizon, output="numpy")
    env.set_range("task.start_x", 1.9, 1.9, env_ids=[1])  # env 1 starts near the edge
    obs, _ = env.reset()
    push = np.array([[0.0], [1.0]], np.float32)
    push[1] *= np.sign(obs["policy"][1, 0])  # push env 1 outwards: it leaves |x| <= 2
    rewards, t_end = [], None
    for t in range(horizon + 2):
        obs, rew, term, trunc, info = env.step(push)
        rewards.append(rew.copy())
        if term[1]:
            t_end = t
            fin = info["final_obs"]
            assert info["_final_obs"][1] and not info["_final_obs"][0]
            assert abs(fin["policy"][1, 0]) > 2.0  # the final observation, before the reset
            assert abs(obs["policy"][1, 0]) == pytest.approx(1.9)  # the new episode's first
            assert not trunc[1] and not info["episode"]["survived"][1]
            assert info["episode"]["length"][1] == t + 1
            assert info["episode"]["return"][1] == pytest.approx(sum(r[1] for r in rewards), rel=1e-5)
            push[1] = 0.0
        if trunc[0]:
            # progress_buf reaches max_episode_length - 1 after horizon - 1 steps (VecTask's rule)
            assert t == horizon - 2 and not term[0]
            assert info["episode"]["survived"][0] and info["_episode"][0]
            assert info["episode"]["length"][0] == horizon - 1
            np.testing.assert_allclose(info["episode"]["params"][0, -1], 0.5)
            assert abs(obs["policy"][0, 0]) == pytest.approx(0.5)
            break
    assert t_end is not None and t_end < horizon - 2
    # the adapter reset env 1 itself: the task's deferred reset never resets it a second time
    assert task.reset_idx_calls == [[0, 1], [1], [0]]


def test_set_range_applies_at_next_reset_through_property_setters():
    task, env = make(n=3)
    gym = task.gym
    env.reset()
    m0, d0, k0, mu0 = gym.cart_properties()
    np.testing.assert_allclose(m0, 1.0)
    gym.calls.clear()
    env.set_range("randomization.mass_scale", 2.0, 2.0, env_ids=[0, 2])
    env.set_range("randomization.dof_damping_scale", 3.0, 3.0, env_ids=[0])
    env.set_range("randomization.friction_scale", 0.5, 0.5)
    env.set_range("randomization.dof_stiffness_scale", 1.0, 4.0, env_ids=[2])
    lo, hi = env.get_range("randomization.dof_stiffness_scale")
    np.testing.assert_allclose(lo, [1, 1, 1])
    np.testing.assert_allclose(hi, [1, 1, 4])
    # nothing reaches the simulation before a reset
    assert gym.calls == []
    np.testing.assert_allclose(gym.cart_properties()[0], m0)
    env.reset(options={"env_ids": [0, 2]})
    m, d, k, mu = gym.cart_properties()
    np.testing.assert_allclose(m, [2.0, 1.0, 2.0])
    np.testing.assert_allclose(d, [0.3, 0.1, 0.1], rtol=1e-6)
    np.testing.assert_allclose(mu, [0.25, 0.5, 0.25])  # env 1 not reset yet: nominal friction
    assert 1.0 <= env.episode_params[2, 3] <= 4.0
    # every actor of a reset env is scaled (the second actor too), nothing of env 1 is touched
    masses = [sum(p.mass for p in gym.get_actor_rigid_body_properties(gym.get_env(task.sim, 0), 1))]
    assert masses == [pytest.approx(0.4)]
    assert {i for _, i in gym.calls} == {0, 2}
    assert all(gym.recompute_inertia)
    # the privileged view reports the episode's values; the dynamics follow the new mass
    obs, _, _, _, _ = env.step(torch.ones(3, 1))
    critic = obs["critic"]
    np.testing.assert_allclose(critic[:, 2], [2.0, 1.0, 2.0])
    np.testing.assert_allclose(critic[:, 4], [2.0, 1.0, 2.0])
    v = obs["policy"][:, 1]
    assert v[1] > 1.8 * v[0] > 0  # F/m: half the acceleration at double mass (damping aside)


def test_unchanged_parameters_make_no_setter_calls():
    task, env = make(n=3)
    env.reset()
    task.gym.calls.clear()
    env.reset()
    assert task.gym.calls == []
    env.set_range("randomization.mass_scale", 1.0, 1.5)
    env.reset()
    assert [c for c, _ in task.gym.calls] == ["set_actor_rigid_body_properties"] * 6  # 3 envs x 2 actors


def test_task_parameter_is_written_before_reset_idx():
    task, env = make(n=2)
    env.set_range("task.start_x", 1.2, 1.2, env_ids=[1])
    obs, _ = env.reset()
    np.testing.assert_allclose(task.start_x.numpy(), [0.5, 1.2])
    np.testing.assert_allclose(obs["policy"][:, 0].abs().numpy(), [0.5, 1.2])


def test_nonfinite_actions_end_that_episode():
    task, env = make(n=3)
    env.reset()
    act = torch.zeros(3, 1)
    act[1] = float("nan")
    obs, rew, term, trunc, info = env.step(act)
    assert info["nonfinite_resets"] == 1
    assert term.tolist() == [False, True, False] and not trunc.any()
    assert torch.isfinite(obs["policy"]).all() and torch.isfinite(rew).all()


def test_seeded_resets_repeat():
    task_a, a = make()
    task_b, b = make()
    for env in (a, b):
        env.set_range("randomization.mass_scale", 0.5, 2.0)
        env.reset(seed=7)
    np.testing.assert_array_equal(a.episode_params, b.episode_params)
    np.testing.assert_array_equal(task_a.gym.cart_properties()[0], task_b.gym.cart_properties()[0])


def test_ppo_td3_and_a_teacher_run_on_the_adapter_unchanged():
    from robolearn.config import NetworkConfig, PPOConfig, TD3Config
    from robolearn.curriculum import apply_proposals
    from robolearn.tasks.quadrotor.curriculum import outcomes_from_arrays
    from robolearn.logging.run_dir import EpisodeStats
    from robolearn.ppo import PPO
    from robolearn.td3 import TD3
    from teachers.schedule import LinearItem, LinearSchedule

    task, env = make(n=8, horizon=8, output="numpy")
    net = NetworkConfig(actor_hidden=[16], critic_hidden=[16])
    stats = EpisodeStats(env.param_names)
    ppo = PPO(env, PPOConfig(rollout_steps=8, epochs=2, minibatches=2), net, seed=0, on_episodes=stats.add)
    teacher = LinearSchedule([LinearItem("randomization.mass_scale", (1.0, 1.0), (0.5, 2.0), 0, 128)])
    ppo.reset(seed=0)
    for _ in range(3):
        assert apply_proposals(env, teacher, ppo.env_steps) == 1
        out = ppo.iterate()
        assert all(math.isfinite(v) for v in out.values())
        arrays = stats.arrays()
        assert len(arrays["return"]) > 0
        teacher.update(outcomes_from_arrays(arrays, env.param_names, ppo.env_steps))
        stats.clear()
    assert ppo.env_steps == 3 * 8 * 8
    # the schedule widened the mass range and episodes started since ran with drawn masses
    lo, hi = env.get_range("randomization.mass_scale")
    assert lo.max() < 1.0 < hi.min()
    masses = task.gym.cart_properties()[0]
    assert np.unique(masses).size > 1
    np.testing.assert_allclose(masses, env.episode_params[:, 0], rtol=1e-6)
    assert ppo.export_policy()  # a deployable actor came out

    _, env2 = make(n=4, horizon=8, output="torch")
    td3 = TD3(env2, TD3Config(batch_size=16, learning_starts=16), net, seed=0)
    td3.reset(seed=0)
    for _ in range(3):
        assert all(math.isfinite(v) for v in td3.iterate().values())
    assert td3.env_steps > 16


def test_envs_are_reset_once_even_if_reset_idx_leaves_reset_buf_set():
    class LazyTask(CartTask):
        def reset_idx(self, env_ids):  # some tasks leave the bookkeeping to the caller
            keep = self.reset_buf.clone(), self.progress_buf.clone()
            super().reset_idx(env_ids)
            self.reset_buf[:], self.progress_buf[:] = keep

    task = LazyTask(num_envs=2, max_episode_length=4)
    env = IsaacGymVecEnv(task, PARAMS)
    env.reset()
    for _ in range(5):
        _, _, term, trunc, _ = env.step(torch.zeros(2, 1))
        assert not term.any()
    # one time-out at step 3 for both envs; the task's deferred reset adds no second reset_idx
    assert task.reset_idx_calls == [[0, 1], [0, 1]]

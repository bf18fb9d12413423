"""The long-horizon task (robolearn/ArmPushLift-v0): a bar against a wall must be dragged
away from it (non-prehensile) before it can be grasped and lifted."""

import gymnasium as gym
import numpy as np
import pytest

import sims  # noqa: F401  (registers the ids)
from sims.manipulation import ArmEnv, ArmVecEnv
from sims.manipulation.env import ACTION_DIM, BAR_HALF, BAR_Y, PULL_M, WALL_HALF, WALL_Y
from sims.manipulation.scripted import ScriptedPushLift


def test_gymnasium_and_sb3_env_checkers_pass():
    from gymnasium.utils.env_checker import check_env
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    env = gym.make("robolearn/ArmPushLift-v0").unwrapped
    assert isinstance(env, ArmEnv) and env.vec.task == "push_lift"
    check_env(env, skip_render_check=True)
    sb3_check_env(gym.make("robolearn/ArmPushLift-v0").unwrapped, warn=True)
    venv = gym.make_vec("robolearn/ArmPushLift-v0", num_envs=3)
    assert isinstance(venv, ArmVecEnv) and venv.task == "push_lift"


def test_bar_rests_against_the_wall_and_goal_is_above_away_from_it():
    env = ArmVecEnv(8, task="push_lift", seed=0)
    env.reset()
    m = env.model
    assert np.allclose(m.geom_size[m.geom("object").id], BAR_HALF)
    # the bar's long side (10 cm) exceeds the gripper's opening (2 x 4 cm)
    assert 2 * BAR_HALF[0] > 2 * 0.04 > 2 * BAR_HALF[1]
    np.testing.assert_allclose(env.object_pose[:, 1] + BAR_HALF[1], WALL_Y - WALL_HALF[1])
    for _ in range(20):  # the arm holds still: the bar stays put, flush with the wall
        env.step(np.tile([0, 0, 0, 0, 1, 0, 0, 0], (8, 1)))
    np.testing.assert_allclose(env.object_pose[:, 1], BAR_Y, atol=2e-3)
    np.testing.assert_allclose(env.object_pose[:, 2], BAR_HALF[2], atol=2e-3)
    g = env.goals
    np.testing.assert_allclose(g[:, 1], BAR_Y - PULL_M)
    assert np.all((g[:, 2] - BAR_HALF[2] >= 0.05) & (g[:, 2] - BAR_HALF[2] <= 0.15))


def _run(env, ctl, n):
    env.reset()
    done = np.zeros(n, bool)
    res = np.zeros(n, bool)
    for _ in range(env.config.episode_steps + 1):
        obs, rew, term, trunc, info = env.step(ctl(env))
        if "episode" in info:
            first = info["_episode"] & ~done
            res[first] = info["episode"]["success"][first]
            done |= info["_episode"]
        if done.all():
            break
    assert done.all()
    return res


def test_scripted_drag_then_grasp_solves_it_without_privileges():
    """Solvable at privilege 0: press on the bar, drag it off the wall, grasp, lift."""
    n = 16
    env = ArmVecEnv(n, task="push_lift", seed=3, episode_steps=250)
    assert np.all(env.get_range("privileged.force_scale")[1] == 0)
    res = _run(env, ScriptedPushLift(n), n)
    assert res.mean() >= 0.9, res.mean()


def test_grasping_without_the_drag_fails():
    """The non-prehensile step is needed: the same controller started at its grasp phase
    (bar still against the wall) cannot close around the bar."""
    n = 16
    env = ArmVecEnv(n, task="push_lift", seed=3, episode_steps=250)
    ctl = ScriptedPushLift(n)
    ctl.reset()
    ctl.phase[:] = 3  # rise/open, come down around the bar, close, lift
    orig_reset = ctl.reset
    ctl.reset = lambda mask=None: None  # keep the phase at the first reset
    res = _run(env, ctl, n)
    ctl.reset = orig_reset
    assert res.mean() <= 0.1, res.mean()


def test_the_bar_at_the_goal_without_a_grasp_is_not_success():
    # success needs both finger pads on the bar: carried to the goal by the virtual force
    # (weight cancelled) with the gripper open and away, the episode does not succeed
    env = ArmVecEnv(2, task="push_lift", seed=0, episode_steps=100)
    env.set_range("privileged.force_scale", 1, 1)
    env.set_range("privileged.gravity_scale", 1, 1)
    obs, _ = env.reset()
    vel = env.critic_layout["object_linvel"]
    for _ in range(99):
        d = env.goals - env.object_pose[:, :3]
        a = np.zeros((2, ACTION_DIM))
        a[:, 4] = 1.0
        a[:, 5:8] = np.clip(0.3 * (d / 0.02 - obs["critic"][:, vel] / 0.1), -1, 1)  # PD on the box
        obs, rew, term, trunc, info = env.step(a)
        assert not term.any()
    assert np.all(np.linalg.norm(env.goals - env.object_pose[:, :3], axis=1) < 0.02)
    assert np.all(obs["critic"][:, env.critic_layout["touch"]] == 0)
    obs, rew, term, trunc, info = env.step(a)
    assert trunc.all() and not info["episode"]["success"].any()


@pytest.mark.parametrize("task", ["push", "lift"])
def test_other_tasks_keep_the_cube_and_no_wall(task):
    env = ArmVecEnv(1, task=task)
    assert env.model.geom("object").size[0] == pytest.approx(0.025)
    with pytest.raises(KeyError):
        env.model.geom("wall")


def test_push_lift_config_builds_the_task_and_all_three_teachers():
    from pathlib import Path

    from robolearn.tasks.arm.curriculum import build_arm_teacher
    from robolearn.config import load_config
    from robolearn.envs import make_env

    cfg = load_config(Path(__file__).resolve().parent.parent / "configs" / "arm_push_lift.yaml")
    env = make_env(cfg, num_envs=2)
    # 5 s episodes at the config's control rate (25 Hz: 125 steps)
    dt = env.model.opt.timestep * env.config.substeps
    assert env.task == "push_lift" and env.config.episode_steps * dt == pytest.approx(5.0)
    assert env.config.force_radius_m is not None and env.config.force_needs_touch  # help only in contact
    assert len(build_arm_teacher(cfg).task_space) == 3

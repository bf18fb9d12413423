"""The arm's end-effector (Cartesian delta) control, the FetchPush-style blocked gripper and
the coarser physics step used for training (sims.manipulation)."""

import numpy as np
import pytest

from sims.manipulation import ArmVecEnv
from sims.manipulation.env import ACTION_DIM, BOX_HALF
from sims.manipulation.scripted import ScriptedPush


def _settle(env: ArmVecEnv, steps: int) -> None:
    for _ in range(steps):
        env.step(np.zeros((env.num_envs, ACTION_DIM)))


@pytest.mark.parametrize("physics", [{}, {"timestep": 0.004, "substeps": 5}])
@pytest.mark.parametrize("axis", [0, 1, 2])
def test_ee_moves_by_the_commanded_delta(axis, physics):
    """Commanding +0.5 on one axis for 6 steps moves the finger-pad centre 6 x 0.5 x ee_step_m
    (6 cm) along that axis, in free space, within 4 mm once the servos settle; the other two
    axes move < 4 mm."""
    env = ArmVecEnv(4, seed=0, episode_steps=1000, home_noise_m=0.0, **physics)
    env.set_range("task.object_spawn_m", 0.0, 0.0)  # the box at (0.4, 0), clear of the path
    env.reset()
    _settle(env, 25)
    start = env.ee_pos.copy()
    a = np.zeros((4, ACTION_DIM))
    a[:, axis] = 0.5 if axis != 0 else -0.5  # -x: away from the box
    for _ in range(6):
        env.step(a)
    _settle(env, 40)
    moved = env.ee_pos - start
    want = np.zeros(3)
    want[axis] = 6 * a[0, axis] * env.config.ee_step_m
    np.testing.assert_allclose(env.ee_target - start, np.broadcast_to(want, (4, 3)), atol=2e-3)
    np.testing.assert_allclose(moved, np.broadcast_to(want, (4, 3)), atol=4e-3)


def test_blocked_gripper_stays_closed_and_ignores_yaw_and_grip_actions():
    env = ArmVecEnv(8, seed=0, episode_steps=1000, block_gripper=True)
    obs, _ = env.reset()
    rng = np.random.default_rng(0)
    a = np.zeros((8, ACTION_DIM))
    for _ in range(30):
        a[:, 3:5] = rng.uniform(-1, 1, (8, 2))  # yaw and grip: ignored
        obs, *_ = env.step(a)
    fingers = env.batch.qpos[:, env._finger_q]
    assert np.all(fingers < 2e-3), fingers
    assert np.all(env._yaw == 0.0)
    np.testing.assert_allclose(env.batch.qpos[:, env._arm_q[4]], env.batch.qpos[:, env._arm_q[0]], atol=0.02)
    # the same actions without the block open the fingers and turn the hand
    env = ArmVecEnv(8, seed=0, episode_steps=1000)
    env.reset()
    a[:, 3:5] = 1.0
    for _ in range(30):
        env.step(a)
    assert np.all(env.batch.qpos[:, env._finger_q] > 0.03)
    assert np.all(env._yaw > 1.0)


def test_4ms_physics_step_follows_the_2ms_arm_path():
    """The training config integrates at 4 ms (5 substeps per 50 Hz control step) instead of
    arm.xml's 2 ms: the arm must follow the same end-effector path under random actions."""
    rng = np.random.default_rng(3)
    acts = rng.uniform(-0.5, 0.5, (60, 16, ACTION_DIM))
    acts[:, :, 5:] = 0.0
    paths = []
    for physics in ({}, {"timestep": 0.004, "substeps": 5}):
        env = ArmVecEnv(16, seed=0, episode_steps=1000, **physics)
        env.reset(seed=0)
        p = []
        for a in acts:
            env.step(a)
            p.append(env.ee_pos.copy())
        paths.append(np.array(p))
    err = np.linalg.norm(paths[0] - paths[1], axis=2)
    assert np.median(err) < 5e-4 and err.max() < 2e-3, (np.median(err), err.max())


def test_4ms_physics_step_pushes_the_box_as_2ms_does():
    """Contacts at 4 ms: the scripted push (exact state, no privilege) brings the box within
    3 cm of its goal as often as at 2 ms (measured 28 / 32 at 2 ms, 30 / 32 at 4 ms) and the
    pushed box sinks <= 1.5 mm into the table (at 10 ms: 2.8 mm)."""
    reached = {}
    for ts, sub in ((0.002, 10), (0.004, 5)):
        n = 32
        env = ArmVecEnv(n, seed=1, terminate_on_success=False, timestep=ts, substeps=sub)
        env.reset(seed=1)
        ctl = ScriptedPush(n)
        reach = np.zeros(n, bool)
        z_min = np.inf
        for _ in range(env.config.episode_steps - 1):
            env.step(ctl(env))
            reach |= np.linalg.norm(env.object_pose[:, :2] - env.goals[:, :2], axis=1) < 0.03
            z_min = min(z_min, env.object_pose[:, 2].min())
        reached[ts] = reach.mean()
        assert z_min > BOX_HALF - 1.5e-3, (ts, z_min)
    assert reached[0.004] >= 0.8 and abs(reached[0.004] - reached[0.002]) <= 0.1, reached


def test_timestep_is_validated():
    with pytest.raises(ValueError, match="timestep"):
        ArmVecEnv(1, timestep=0.05)


def test_progress_reward_sums_to_the_box_goal_distance_gained():
    """The potential-based progress term: over an episode it adds up to progress_weight x
    (initial - final box-goal distance), whatever the path (other terms switched off)."""
    n = 16
    env = ArmVecEnv(n, seed=2, episode_steps=60, terminate_on_success=False, approach_weight=0.0,
                    place_gate_m=0.0, progress_weight=50.0, action_penalty=0.0, success_bonus=0.0,
                    timestep=0.004, substeps=5)
    env.reset(seed=2)
    d0 = np.linalg.norm(env.object_pose[:, :2] - env.goals[:, :2], axis=1)
    ctl = ScriptedPush(n)
    total = np.zeros(n)
    for _ in range(59):
        _, rew, *_ = env.step(ctl(env))
        total += rew
    d1 = np.linalg.norm(env.object_pose[:, :2] - env.goals[:, :2], axis=1)
    assert np.abs(d0 - d1).max() > 0.03  # the boxes were pushed
    np.testing.assert_allclose(total, 50.0 * (d0 - d1), atol=1e-4)


def test_push_features_lead_the_pads_to_the_push_point():
    """A controller that only follows the policy view's waypoint_minus_ee (noisy estimates)
    brings the pads to the push point: behind the box, on the side away from the goal."""
    n = 32
    env = ArmVecEnv(n, seed=4, episode_steps=1000, block_gripper=True, push_features=True,
                    timestep=0.004, substeps=5)
    obs, _ = env.reset(seed=4)
    pl = env.policy_layout
    for _ in range(60):
        a = np.zeros((n, env.action_dim))
        a[:, :3] = np.clip(obs["policy"][:, pl["waypoint_minus_ee"]] / env.config.ee_step_m, -0.5, 0.5)
        obs, *_ = env.step(a)
    box, goal, ee = env.object_pose[:, :2], env.goals[:, :2], env.ee_pos
    u = (goal - box) / np.linalg.norm(goal - box, axis=1, keepdims=True)
    along = np.sum((ee[:, :2] - box) * u, axis=1)  # the pads' offset from the box centre along u
    assert np.median(along) < -BOX_HALF and np.mean(along < 0) >= 0.9, along
    assert np.median(ee[:, 2]) < 0.045, ee[:, 2]  # low: at the box's side, not over it
    # the critic's copy is exact, the policy's differs by the estimate noise only
    cl = env.critic_layout
    d = obs["critic"][:, cl["push_dir"]] - obs["policy"][:, pl["push_dir"]]
    assert 0 < np.abs(d).max() < 0.5


def test_touch_gated_force_needs_a_pad_in_contact():
    """force_needs_touch: near the box but not touching, the virtual force does nothing; while
    the pads push the box it adds to the push (the box moves further than pushed alone)."""
    def push(gap, coef, follow):
        env = ArmVecEnv(2, seed=0, episode_steps=1000, block_gripper=True, force_radius_m=0.03,
                        force_needs_touch=True, timestep=0.004, substeps=5)
        env.set_range("privileged.force_scale", coef, coef)
        env.set_range("task.object_spawn_m", 0, 0)
        env.set_range("task.object_yaw_rad", 0, 0)
        env.reset()
        box = np.array([0.4, 0.0, 0.03])
        for k in range(40):  # above the point gap behind the box's -x face, then down to it
            target = box + (-(BOX_HALF + 0.011 + gap), 0.0, 0.08 if k < 20 else 0.0)
            a = np.zeros((2, env.action_dim))
            a[:, :3] = np.clip((target - env.ee_target) / env.config.ee_step_m, -0.5, 0.5)
            env.step(a)
        start = env.object_pose[:, 0].copy()
        a = np.zeros((2, env.action_dim))
        a[:, 0] = 0.25 if follow else 0.0  # the pads push on at 25 cm/s, or stay
        a[:, 3] = 1.0  # virtual force +x (dim 5 of the full layout)
        for _ in range(8):
            env.step(a)
        return env.object_pose[:, 0] - start

    # 1.5 cm behind the face, within the radius gate, no contact: nothing moves
    assert np.abs(push(0.015, 1.0, follow=False)).max() < 1e-4
    pushed, helped = push(0.0, 0.0, follow=True), push(0.0, 1.0, follow=True)
    assert np.all(pushed > 0.01) and np.all(helped > pushed + 0.005), (pushed, helped)

"""The manipulation envs (sims.manipulation): gymnasium contract, observation views,
privileged actions, per-env domain randomization, autoreset, determinism, solvability."""

import gymnasium as gym
import mujoco
import numpy as np
import pytest

import sims  # noqa: F401  (registers the ids)
from sims.manipulation import ArmEnv, ArmVecEnv, load_model
from sims.manipulation import params as P
from sims.manipulation.env import ACTION_DIM, BOX_HALF
from sims.manipulation.scripted import ScriptedPush


@pytest.mark.parametrize("env_id", ["robolearn/ArmPush-v0", "robolearn/ArmLift-v0"])
def test_gymnasium_and_sb3_env_checkers_pass(env_id):
    from gymnasium.utils.env_checker import check_env
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    env = gym.make(env_id).unwrapped
    assert isinstance(env, ArmEnv)
    check_env(env, skip_render_check=True)
    sb3_check_env(gym.make(env_id).unwrapped, warn=True)


def test_make_vec_uses_the_batched_vector_env():
    venv = gym.make_vec("robolearn/ArmLift-v0", num_envs=4)
    assert isinstance(venv, ArmVecEnv) and venv.task == "lift"
    obs, _ = venv.reset(seed=1)
    dp, dc = venv.single_observation_space["policy"].shape[0], venv.single_observation_space["critic"].shape[0]
    assert obs["policy"].shape == (4, dp) and obs["critic"].shape == (4, dc)
    assert obs["policy"].dtype == np.float32 and obs["critic"].dtype == np.float32
    assert venv.single_action_space.shape == (ACTION_DIM,)
    assert np.all(venv.single_action_space.low == -1) and np.all(venv.single_action_space.high == 1)
    obs, rew, term, trunc, info = venv.step(np.zeros((4, ACTION_DIM), np.float32))
    assert rew.shape == (4,) and rew.dtype == np.float32 and term.dtype == bool and trunc.dtype == bool
    with pytest.raises(ValueError):
        venv.step(np.zeros((4, 3)))


def test_critic_holds_exact_state_policy_is_noisy():
    env = ArmVecEnv(256, seed=0)
    obs, _ = env.reset()
    for _ in range(3):
        obs, *_ = env.step(np.zeros((256, ACTION_DIM)))
    pl, cl = env.policy_layout, env.critic_layout
    crit, pol = obs["critic"], obs["policy"]
    qpos, qvel = env.batch.qpos, env.batch.qvel
    f32 = lambda x: np.asarray(x, np.float32)  # noqa: E731
    np.testing.assert_array_equal(crit[:, cl["object_pos"]], f32(env.object_pose[:, :3]))
    np.testing.assert_array_equal(crit[:, cl["object_quat"]], f32(env.object_pose[:, 3:]))
    np.testing.assert_array_equal(crit[:, cl["joint_pos"]], f32(qpos[:, env._arm_q]))
    np.testing.assert_array_equal(crit[:, cl["object_linvel"]], f32(qvel[:, env._obj_v][:, :3]))
    np.testing.assert_array_equal(crit[:, cl["ee_pos"]], f32(env.ee_pos))
    np.testing.assert_array_equal(crit[:, cl["privileged"]], f32(env.episode_params[:, P.PRIVILEGED]))
    np.testing.assert_array_equal(crit[:, cl["randomization"]], f32(env.episode_params[:, P.RANDOMIZATION]))
    np.testing.assert_array_equal(crit[:, cl["goal"]], pol[:, pl["goal"]])
    # the policy's box position is a camera estimate: unbiased, ~5 mm noise
    err = pol[:, pl["object_pos"]] - crit[:, cl["object_pos"]]
    assert np.all(err != 0)
    assert abs(err.mean()) < 1e-3 and 0.7 * P.NOISE_OBJECT_POS < err.std() < 1.3 * P.NOISE_OBJECT_POS
    jerr = pol[:, pl["joint_pos"]] - crit[:, cl["joint_pos"]]
    assert 0.7 * P.NOISE_JOINT_POS < jerr.std() < 1.3 * P.NOISE_JOINT_POS
    q = pol[:, pl["object_quat"]]
    np.testing.assert_allclose(np.linalg.norm(q, axis=1), 1, atol=1e-5)
    # without noise the policy view is the exact state
    env.set_range("randomization.noise_scale", 0, 0)
    obs, _ = env.reset()
    np.testing.assert_allclose(obs["policy"][:, pl["object_pos"]], obs["critic"][:, cl["object_pos"]], atol=1e-7)
    np.testing.assert_allclose(obs["policy"][:, pl["joint_pos"]], obs["critic"][:, cl["joint_pos"]], atol=1e-7)


def _plain_rollout(model, env, i, actions):
    """Step env i with actions through the env, and a copy of its state with mj_step on model."""
    data = mujoco.MjData(model)
    spec = mujoco.mjtState.mjSTATE_INTEGRATION
    mujoco.mj_setState(model, data, env.batch.state[i], spec)
    out_env, out_plain = [], []
    for a in actions:
        env.step(a)
        data.ctrl[:] = env.batch.ctrl[i]
        data.xfrc_applied[:] = env.batch.xfrc_applied[i]
        for _ in range(env.config.substeps):
            mujoco.mj_step(model, data)
        out_env.append(env.batch.qpos[i].copy())
        out_plain.append(data.qpos.copy())
    return np.array(out_env), np.array(out_plain)


def test_privileges_at_zero_leave_the_physics_unchanged():
    """Nominal parameters, privileges 0, privileged action dims at full scale: the env's
    physics is a plain mj_step rollout of arm.xml, bit for bit."""
    env = ArmVecEnv(2, seed=0, episode_steps=1000)
    env.reset()
    rng = np.random.default_rng(0)
    actions = rng.uniform(-1, 1, (25, 2, ACTION_DIM))
    actions[:, :, 5:8] = 1.0  # ignored at force_scale 0
    got, want = _plain_rollout(load_model(), env, 1, actions)
    np.testing.assert_array_equal(got, want)
    assert np.ptp(got[:, env._arm_q], axis=0).max() > 0.05  # the arm did move


def test_randomized_env_matches_plain_mujoco_on_its_model():
    """With randomized fields (mass, friction, damping, gains, latency) the env is a plain
    rollout of its per-simulation model, and that model holds the episode's values."""
    env = ArmVecEnv(3, seed=1, episode_steps=1000)
    for name in ("randomization.object_mass_scale", "randomization.joint_damping_scale",
                 "randomization.actuator_gain_scale"):
        env.set_range(name, 0.5, 2.0)
    env.set_range("randomization.object_friction", 0.3, 1.2)
    env.set_range("randomization.latency_s", 0.01, 0.05)
    env.reset()
    i = 2
    model = env.batch.get_model(i)
    ep = env.episode_params[i]
    np.testing.assert_allclose(model.body_mass[env._obj_body], 0.1 * ep[P.P_MASS])
    np.testing.assert_allclose(model.actuator_delay, ep[P.P_LATENCY])
    rng = np.random.default_rng(1)
    got, want = _plain_rollout(model, env, i, rng.uniform(-1, 1, (20, 3, ACTION_DIM)))
    np.testing.assert_array_equal(got, want)


def test_latency_delays_the_arm():
    env = ArmVecEnv(2, seed=0)
    env.set_range("randomization.latency_s", [0.0, 0.04], [0.0, 0.04])
    env.reset()
    q0 = env.batch.qpos[:, env._arm_q].copy()
    a = np.zeros((2, ACTION_DIM))
    a[:, 2] = 1.0
    env.step(a)  # 20 ms: the undelayed arm moves, the 40 ms-delayed one has not received it
    moved = np.abs(env.batch.qpos[:, env._arm_q] - q0).max(axis=1)
    assert moved[0] > 10 * moved[1] and moved[1] < 1e-4


def _box_after(force_scale, action_dims, value, steps=10, gravity_scale=0.0):
    env = ArmVecEnv(2, seed=0, episode_steps=1000)
    env.set_range("privileged.force_scale", force_scale, force_scale)
    env.set_range("privileged.gravity_scale", gravity_scale, gravity_scale)
    env.reset()
    start = env.object_pose[:, :3]
    a = np.zeros((2, ACTION_DIM))
    a[:, 4] = 1.0  # fingers stay open, arm stays home (above the box)
    a[:, action_dims] = value
    for _ in range(steps):
        env.step(a)
    return env.object_pose[:, :3] - start


def test_privileged_force_moves_the_box_only_when_enabled():
    moved = _box_after(1.0, 5, 1.0)  # +x, 3 N on a 0.1 kg box on mu 0.6
    assert np.all(moved[:, 0] > 0.02)
    still = _box_after(0.0, 5, 1.0)
    assert np.abs(still).max() < 1e-4
    up = _box_after(1.0, 7, 1.0)  # lifts it
    assert np.all(up[:, 2] > 0.02)
    assert np.abs(_box_after(0.0, 7, 1.0)).max() < 1e-4


def test_gated_virtual_force_acts_only_near_the_box():
    def push(radius, target):
        env = ArmVecEnv(2, seed=0, episode_steps=1000, force_radius_m=radius)
        env.set_range("privileged.force_scale", 1, 1)
        env.set_range("task.object_spawn_m", 0, 0)
        env.reset()
        start = env.object_pose[:, :3]
        for k in range(40):  # bring the pads above ``target``, then down to it; force dims at zero
            a = np.zeros((2, ACTION_DIM))
            goal = target + (0.0, 0.0, 0.08 if k < 20 else 0.0)
            a[:, :3] = np.clip((goal - env.ee_target) / env.config.ee_step_m, -0.5, 0.5)
            env.step(a)
        assert np.abs(env.object_pose[:, :3] - start).max() < 1e-3
        d = np.linalg.norm(env.ee_pos - env.object_pose[:, :3], axis=1)
        a = np.zeros((2, ACTION_DIM))
        a[:, 5] = 1.0  # +x, away from the arm
        a[:, :3] = 0.0
        start = env.object_pose[:, :3]
        for _ in range(5):
            env.step(a)
        return env.object_pose[:, 0] - start[:, 0], d

    box = np.array([0.4, 0.0, BOX_HALF])
    near = box + [-0.04, 0, 0.005]  # pads 5 mm behind the box face: gate >= 0.75
    far = box + [-0.15, 0, 0.10]  # 18 cm away: beyond twice the radius
    moved, d = push(0.04, near)
    assert np.all(d < 0.05) and np.all(moved > 0.01), (d, moved)
    moved, d = push(0.04, far)
    assert np.all(d > 0.08) and np.abs(moved).max() < 1e-4, (d, moved)
    moved, _ = push(None, far)  # ungated: the force acts from afar
    assert np.all(moved > 0.01)


def test_privileged_gravity_cancels_the_weight():
    # at gravity_scale 1 a small upward force (0.15 N < weight 0.98 N) lifts the box
    assert np.all(_box_after(0.05, 7, 1.0, gravity_scale=1.0)[:, 2] > 0.005)
    assert np.abs(_box_after(0.05, 7, 1.0, gravity_scale=0.0)).max() < 1e-4


def test_table_penetration_softens_gripper_table_contacts():
    def lowest_ee(pen):
        env = ArmVecEnv(2, seed=0, episode_steps=1000)
        env.set_range("privileged.table_penetration", pen, pen)
        env.set_range("task.object_spawn_m", 0, 0)
        env.reset()
        a = np.zeros((2, ACTION_DIM))
        a[:, 1] = 1.0  # move sideways, away from the box, then down
        for _ in range(8):
            env.step(a)
        a[:] = 0
        a[:, 2] = -1.0
        zs = []
        for _ in range(25):
            env.step(a)
            zs.append(env.ee_pos[:, 2])
        return np.min(zs)
    # the pad tips are 2 cm below the ee site: at 0 they stop on the table (the target's
    # floor), at 1 the target may go 4 cm lower and the soft contact lets the pads sink in
    assert lowest_ee(0.0) > 0.019
    assert lowest_ee(1.0) < -0.01


def test_domain_randomization_ranges_are_per_env_and_respected():
    n = 64
    env = ArmVecEnv(n, seed=3)
    half = np.arange(n) < n // 2
    env.set_range("randomization.object_mass_scale", 0.5, 2.0, env_ids=np.flatnonzero(half))
    env.set_range("randomization.object_friction", 0.2, 1.5)
    env.set_range("randomization.joint_damping_scale", 0.5, 3.0)
    env.set_range("randomization.actuator_gain_scale", 0.6, 1.5)
    env.set_range("task.goal_distance_m", 0.1, 0.1)
    lo, hi = env.get_range("randomization.object_mass_scale")
    assert np.all(lo[half] == 0.5) and np.all(hi[~half] == 1.0)
    env.reset()
    ep = env.episode_params
    b = env.batch
    mass = b.expanded("body_mass")[:, env._obj_body] / 0.1
    np.testing.assert_allclose(mass, ep[:, P.P_MASS])
    assert np.all((mass[half] >= 0.5) & (mass[half] <= 2.0)) and np.ptp(mass[half]) > 0.5
    np.testing.assert_allclose(mass[~half], 1.0)
    fr = b.expanded("geom_friction")[:, env._box_geom, 0]
    assert np.all((fr >= 0.2) & (fr <= 1.5)) and np.ptp(fr) > 0.5
    np.testing.assert_allclose(b.expanded("geom_friction")[:, env._table_geom, 0], fr)
    damp = b.expanded("dof_damping")[:, env._arm_v] / env._damping0
    np.testing.assert_allclose(damp, np.repeat(ep[:, P.P_DAMPING, None], 5, 1))
    kp = b.expanded("actuator_gainprm")[:, env._arm_act, 0] / env._kp0
    assert np.all((kp >= 0.6) & (kp <= 1.5)) and np.ptp(kp) > 0.4
    np.testing.assert_allclose(b.expanded("actuator_biasprm")[:, env._arm_act, 1], -kp * env._kp0)
    d = np.linalg.norm(env.goals[:, :2] - env.object_pose[:, :2], axis=1)
    assert np.all(d <= 0.1 + 1e-9) and np.median(d) > 0.09  # clipped to the goal region only
    with pytest.raises(ValueError):
        env.set_range("randomization.object_mass_scale", 0.1, 1.0)  # below the hard limit
    with pytest.raises(ValueError):
        env.set_range("privileged.force_scale", 0.5, 0.2)
    with pytest.raises(KeyError):
        env.set_range("no.such", 0, 1)


def test_autoreset_truncation_and_episode_info():
    env = ArmVecEnv(4, seed=0, episode_steps=5)
    env.set_range("privileged.force_scale", [0, 0, 1, 1], [0, 0, 1, 1])
    obs, _ = env.reset()
    a = np.zeros((4, ACTION_DIM))
    for k in range(4):
        obs, rew, term, trunc, info = env.step(a)
        assert not trunc.any() and "episode" not in info
    before = env.object_pose
    obs, rew, term, trunc, info = env.step(a)
    assert trunc.all() and not term.any()
    assert info["_episode"].all() and info["_final_obs"].all()
    ep = info["episode"]
    np.testing.assert_array_equal(ep["length"], 5)
    assert ep["success"].dtype == bool and not ep["success"].any()
    assert ep["params"].shape == (4, P.NUM_PARAMS)
    np.testing.assert_array_equal(ep["params"][:, P.P_FORCE], [0, 0, 1, 1])
    cl = env.critic_layout
    fin = info["final_obs"]["critic"]
    np.testing.assert_allclose(fin[:, cl["time_fraction"]], 1.0)
    np.testing.assert_allclose(fin[:, cl["object_pos"]], before[:, :3], atol=1e-3)
    # same-step reset: the returned obs is the new episode's first
    np.testing.assert_allclose(obs["critic"][:, cl["time_fraction"]], 0.0)
    assert not np.allclose(obs["critic"][:, cl["object_pos"]], fin[:, cl["object_pos"]])


def test_success_terminates_with_bonus_and_falling_box_terminates():
    env = ArmVecEnv(2, seed=0)
    env.set_range("privileged.force_scale", 1, 1)
    env.set_range("task.goal_distance_m", 0.06, 0.06)
    env.reset()
    # the virtual force pushes the box to its goal
    for _ in range(60):
        d = env.goals[:, :2] - env.object_pose[:, :2]
        a = np.zeros((2, ACTION_DIM))
        a[:, 4] = 1
        a[:, 5:7] = np.clip(d / 0.05, -1, 1) * 0.5
        obs, rew, term, trunc, info = env.step(a)
        if term.any():
            break
    assert term.any() and info["episode"]["success"][term].all()
    assert np.all(rew[term] > env.config.success_bonus * 0.9)


def test_determinism_under_seed():
    def roll(seed):
        env = ArmVecEnv(3, seed=seed, episode_steps=7)
        env.set_range("randomization.object_mass_scale", 0.5, 2.0)
        env.set_range("randomization.latency_s", 0.0, 0.04)
        env.set_range("privileged.force_scale", 0.0, 1.0)
        obs, _ = env.reset()
        rng = np.random.default_rng(0)
        out = [obs["policy"].copy(), obs["critic"].copy()]
        for _ in range(12):  # crosses an autoreset
            obs, rew, *_ = env.step(rng.uniform(-1, 1, (3, ACTION_DIM)))
            out += [obs["policy"].copy(), obs["critic"].copy(), rew.copy()]
        return out

    a, b, c = roll(5), roll(5), roll(6)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    assert not all(np.array_equal(x, y) for x, y in zip(a, c))
    # reset(seed=...) re-seeds
    env = ArmVecEnv(2, seed=0)
    o1 = env.reset(seed=9)[0]["policy"].copy()
    env.step(np.zeros((2, ACTION_DIM)))
    o2 = env.reset(seed=9)[0]["policy"].copy()
    np.testing.assert_array_equal(o1, o2)


def test_scripted_push_reaches_the_goal_on_the_easy_setting():
    """The task is solvable without privileges: a scripted controller on the exact state
    pushes the box 8 cm to its goal (easy setting: small spawn area, no box yaw)."""
    n = 32
    env = ArmVecEnv(n, seed=1)
    env.set_range("task.goal_distance_m", 0.08, 0.08)
    env.set_range("task.object_spawn_m", 0.03, 0.03)
    env.set_range("task.object_yaw_rad", 0.0, 0.0)
    env.reset()
    ctl = ScriptedPush(n)
    results = []
    done = np.zeros(n, bool)
    while not done.all():
        obs, rew, term, trunc, info = env.step(ctl(env))
        if "episode" in info:
            first = info["_episode"] & ~done
            results += list(info["episode"]["success"][first])
            done |= info["_episode"]
            ctl.reset(info["_episode"])
    assert len(results) == n
    assert np.mean(results) >= 0.9, np.mean(results)


def test_lift_task_goal_and_grasp_reward():
    env = ArmVecEnv(8, task="lift", seed=0)
    env.reset()
    g, o = env.goals, env.object_pose
    np.testing.assert_allclose(g[:, :2], o[:, :2])
    h = g[:, 2] - BOX_HALF
    assert np.all((h >= 0.05) & (h <= 0.15))
    # lifting the box with the virtual force earns more than leaving it
    env.set_range("privileged.force_scale", 1, 1)
    env.reset()
    a = np.zeros((8, ACTION_DIM))
    a[:, 7] = 0.4
    r_lift = sum(env.step(a)[1].mean() for _ in range(5))
    env.set_range("privileged.force_scale", 0, 0)
    env.reset()
    r_stay = sum(env.step(a)[1].mean() for _ in range(5))
    assert r_lift > r_stay

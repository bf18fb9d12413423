"""Stable-Baselines3 integration: the VecEnv adapter, the asymmetric policies, the curriculum
callback, export to a run directory, and SB3 PPO learning an easy hover task."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("stable_baselines3", reason="stable-baselines3 is not installed")

from stable_baselines3 import PPO, SAC, TD3  # noqa: E402
from stable_baselines3.common.vec_env import VecNormalize  # noqa: E402

from robolearn.config import load_config  # noqa: E402
from robolearn.envs import make_env
from robolearn.tasks.quadrotor.env import hover_action  # noqa: E402
from robolearn.sb3 import (AsymmetricActorCriticPolicy, AsymmetricSACPolicy, AsymmetricTD3Policy,  # noqa: E402
                           SB3VecEnv, TeacherCallback, make_vec_env, policy_from_sb3)
from teachers.base import RangeProposal, Teacher  # noqa: E402
from cli_helpers import assert_error, cli  # noqa: E402

# The easy hover variant: start 5 cm from the target, level, at rest; 2 s episodes.
# the budgets below were measured on the l2f_paper vehicle (the configs' one; the bare
# defaults fly crazyflie_2_1)
EASY = ["env.sim.vehicle=l2f_paper", "env.sim.episode_steps=200", "env.ranges.task.start_radius_m=[0.05,0.05]",
        "env.ranges.task.start_tilt_rad=[0,0]", "env.ranges.task.start_speed_mps=[0,0]",
        "env.ranges.task.start_angvel_rps=[0,0]", "curriculum.teacher=none"]


@pytest.fixture(autouse=True)
def sb3_logs_in_tmp(tmp_path, monkeypatch):
    """SB3's learn() creates a log folder even with nothing to log (``$TMPDIR/SB3-<date>``
    unless ``SB3_LOGDIR`` is set): keep it in the test's tmp_path."""
    monkeypatch.setenv("SB3_LOGDIR", str(tmp_path / "sb3_logs"))


def config(*sets):
    return load_config(None, list(sets))


@pytest.fixture
def one_thread():
    """Small batches run faster on one thread than fanned out over busy cores (numba and torch)."""
    import numba

    before = numba.get_num_threads(), torch.get_num_threads()
    numba.set_num_threads(1)
    torch.set_num_threads(1)
    yield
    numba.set_num_threads(before[0])
    torch.set_num_threads(before[1])


# ----------------------------------------------------------------------------- VecEnv adapter
def test_vec_env_reproduces_the_simulator_with_sb3_conventions():
    cfg = config("env.num_envs=6", "env.sim.episode_steps=7", "env.sim.termination_position_m=0.25")
    raw, env = make_env(cfg, seed=3), make_vec_env(cfg, seed=3)
    seen = []
    env.add_episode_listener(lambda ep, mask: seen.append(int(mask.sum())))
    obs_a, _ = raw.reset(seed=5)
    env.seed(5)
    obs_b = env.reset()
    for k in ("policy", "critic"):
        np.testing.assert_array_equal(obs_a[k], obs_b[k])
    rng = np.random.default_rng(0)
    terminated = truncated = ended = 0
    for t in range(30):
        # some envs leave the 0.25 m box (terminated), the others hit the 7-step limit (truncated)
        act = rng.uniform(-1, 1, (6, 4)).astype(np.float32) * (1.0 if t % 2 else 0.1)
        keep = {k: v.copy() for k, v in obs_b.items()}
        o1, r1, term, trunc, info = raw.step(act)
        o2, r2, dones, infos = env.step(act)
        np.testing.assert_array_equal(r1, r2)
        np.testing.assert_array_equal(dones, term | trunc)
        for k in ("policy", "critic"):
            np.testing.assert_array_equal(o1[k], o2[k])
            np.testing.assert_array_equal(keep[k], obs_b[k])  # returned arrays are the caller's copies
        for i in range(6):
            if dones[i]:
                assert infos[i]["TimeLimit.truncated"] == bool(trunc[i] and not term[i])
                assert infos[i]["episode"]["l"] == int(info["episode"]["length"][i])
                assert infos[i]["episode"]["r"] == pytest.approx(float(info["episode"]["return"][i]))
                for k in ("policy", "critic"):
                    np.testing.assert_array_equal(infos[i]["terminal_observation"][k], info["final_obs"][k][i])
            else:
                assert infos[i] == {}
        terminated += int((term & ~trunc).sum())
        truncated += int((trunc & ~term).sum())
        ended += int(dones.sum())
        obs_b = o2
    assert terminated > 0 and truncated > 0
    assert sum(seen) == ended  # the listener got every finished episode
    assert len({id(d) for d in infos}) == 6  # distinct dicts: SB3 wrappers write into them


# ----------------------------------------------------------------------------- asymmetric policies
def _obs_batch(env, n_steps=5):
    obs = env.reset()
    for _ in range(n_steps):
        obs, *_ = env.step(np.zeros((env.num_envs, 4), np.float32))
    return obs


def _perturb(obs, key, rng, nan=False):
    out = {k: v.copy() for k, v in obs.items()}
    out[key] = (rng.normal(0, 100, out[key].shape)).astype(np.float32)
    if nan:
        out[key][:, ::3] = np.nan
    return out


@pytest.mark.parametrize("algo", ["ppo", "td3", "sac"])
def test_actor_never_sees_critic_data_and_critic_never_sees_policy_data(algo):
    env = make_vec_env(config("env.num_envs=8"), seed=0)
    kw = dict(policy_kwargs={"net_arch": [16, 16]}, seed=0, device="cpu")
    if algo == "ppo":
        model = PPO(AsymmetricActorCriticPolicy, env, n_steps=8, **kw)
    elif algo == "td3":
        model = TD3(AsymmetricTD3Policy, env, learning_starts=0, buffer_size=100, **kw)
    else:
        model = SAC(AsymmetricSACPolicy, env, learning_starts=0, buffer_size=100, **kw)
    policy = model.policy
    rng = np.random.default_rng(1)
    obs = _obs_batch(env)

    def actions(o):
        with torch.no_grad():
            t, _ = policy.obs_to_tensor(o)
            if algo == "ppo":
                d = policy.get_distribution(t).distribution
                return torch.cat([d.mean, d.stddev], -1).numpy()
            if algo == "sac":
                mean, log_std, _ = policy.actor.get_action_dist_params(t)
                return torch.cat([mean, log_std], -1).numpy()
            return policy.actor(t).numpy()

    def values(o):
        with torch.no_grad():
            t, _ = policy.obs_to_tensor(o)
            if algo == "ppo":
                return policy.predict_values(t).numpy()
            a = torch.zeros(len(o["policy"]), 4)
            return torch.cat(policy.critic(t, a), -1).numpy()

    a0, v0 = actions(obs), values(obs)
    # Critic data changed arbitrarily, even to NaN: the actor's output is bit-identical ...
    for nan in (False, True):
        np.testing.assert_array_equal(actions(_perturb(obs, "critic", rng, nan)), a0)
    # ... while the critic does read it, and ignores the policy view.
    assert not np.allclose(values(_perturb(obs, "critic", rng)), v0)
    np.testing.assert_array_equal(values(_perturb(obs, "policy", rng, nan=True)), v0)
    assert not np.allclose(actions(_perturb(obs, "policy", rng)), a0)
    # The actor's first layer is sized for the policy view, the critic's for the critic view.
    dims = env.observation_space["policy"].shape[0], env.observation_space["critic"].shape[0]
    if algo == "ppo":
        first = policy.mlp_extractor.policy_net[0], policy.mlp_extractor.value_net[0]
    else:
        first = (policy.actor.mu if algo == "td3" else policy.actor.latent_pi)[0], policy.critic.q_networks[0][0]
    assert first[0].in_features == dims[0] and first[1].in_features == dims[1] + (0 if algo == "ppo" else 4)


def test_asymmetric_ppo_policy_survives_save_and_load(tmp_path):
    env = make_vec_env(config("env.num_envs=4"), seed=0)
    model = PPO(AsymmetricActorCriticPolicy, env, n_steps=8, batch_size=32, seed=0, device="cpu",
                policy_kwargs={"net_arch": {"pi": [8], "vf": [16]}, "init_action": 0.3})
    obs = _obs_batch(env)
    a, _ = model.predict(obs, deterministic=True)
    np.testing.assert_allclose(a, 0.3, atol=0.05)  # the initial mean action is init_action
    model.save(tmp_path / "m.zip")
    loaded = PPO.load(tmp_path / "m.zip", device="cpu")
    assert isinstance(loaded.policy, AsymmetricActorCriticPolicy) and loaded.policy.init_action == 0.3
    np.testing.assert_array_equal(loaded.predict(obs, deterministic=True)[0], a)


# ----------------------------------------------------------------------------- curriculum callback
class RecordingTeacher(Teacher):
    """Proposes task.start_radius_m = 0.45, 0.35, 0.25, ... (one step per update); records what it was told."""

    task_space = {"task.start_radius_m": (0.0, 1.0)}

    def __init__(self):
        self.updates, self.proposed_at = [], []

    def update(self, outcomes):
        self.updates.append(outcomes)

    def propose(self, env_steps):
        self.proposed_at.append(env_steps)
        r = round(0.45 - 0.1 * len(self.updates), 2)
        return [RangeProposal("task.start_radius_m", r, r)]

    def state_dict(self):
        return {}

    def load_state_dict(self, state):
        pass


def test_teacher_callback_closes_the_curriculum_loop(one_thread):
    cfg = config("env.num_envs=8", "env.sim.episode_steps=10", "curriculum.teacher=none")
    env = make_vec_env(cfg, seed=0)
    finished = []
    env.add_episode_listener(lambda ep, mask: finished.append(int(mask.sum())))
    teacher = RecordingTeacher()
    cb = TeacherCallback(teacher)
    model = PPO(AsymmetricActorCriticPolicy, VecNormalize(env), n_steps=16, batch_size=64, n_epochs=1, seed=0,
                device="cpu", policy_kwargs={"net_arch": [8]})
    model.learn(16 * 8 * 3, callback=cb)
    # one proposal at the start and one after each of the 3 rollouts, at SB3's env-step count
    assert teacher.proposed_at == [0, 128, 256, 384]
    assert len(teacher.updates) == 3 and [u.env_steps for u in teacher.updates] == [128, 256, 384]
    # every finished episode was reported exactly once, with the parameters it ran with
    assert sum(len(u) for u in teacher.updates) == sum(finished) == cb.episodes_reported > 0
    radius = [set(np.round(u.column("task.start_radius_m"), 3)) for u in teacher.updates]
    print("start radius of the episodes in each update:", radius)
    assert radius[0] == {0.2}  # the config's value: these episodes began at learn()'s first reset
    # later episodes ran with the values proposed before they were reported
    assert 0.45 in radius[1] and radius[1] <= {0.2, 0.45, 0.35}
    assert 0.35 in radius[2] and radius[2] <= {0.45, 0.35, 0.25}
    lo, hi = env.get_range("task.start_radius_m")
    assert np.allclose(lo, 0.15) and np.allclose(hi, 0.15)  # the last proposal is in the env


def test_teacher_callback_from_config_runs_the_reward_schedule(one_thread):
    cfg = config("env.num_envs=8", "env.sim.episode_steps=10", "curriculum.teacher=reward_schedule",
                 "curriculum.reward_schedule.interval_env_steps=100")
    env = make_vec_env(cfg, seed=0)
    model = PPO(AsymmetricActorCriticPolicy, env, n_steps=16, batch_size=64, n_epochs=1, seed=0, device="cpu",
                policy_kwargs={"net_arch": [8]})
    start = env.get_range("reward.action")[0][0]
    model.learn(16 * 8 * 2, callback=TeacherCallback.from_config(cfg))
    assert env.get_range("reward.action")[0][0] > start  # the schedule raised the action weight


# ----------------------------------------------------------------------------- learning
@pytest.mark.slow
def test_sb3_ppo_with_the_asymmetric_policy_learns_easy_hover(one_thread):
    torch.manual_seed(0)
    # 2 past commands (26 policy inputs), as this budget was measured with: the default's 8
    # (50 inputs, for hard starts) needs more than 100k SB3 steps on this easy task.
    cfg = config("env.num_envs=64", "env.sim.action_history=2", *EASY)
    env = VecNormalize(make_vec_env(cfg, seed=0), gamma=0.99)
    model = PPO(AsymmetricActorCriticPolicy, env, n_steps=32, batch_size=1024, n_epochs=10, learning_rate=1e-3,
                seed=0, device="cpu", policy_kwargs={"net_arch": {"pi": [32, 32], "vf": [64, 64]},
                                                     "log_std_init": -1.0, "init_action": hover_action(cfg)})

    def evaluate(episodes=64):
        ev = make_vec_env(cfg, seed=12345, num_envs=episodes)
        obs, done = ev.reset(), np.zeros(episodes, bool)
        ret, survived = np.zeros(episodes), np.zeros(episodes, bool)
        while not done.all():
            act, _ = model.predict(env.normalize_obs(obs), deterministic=True)
            obs, r, d, infos = ev.step(act)
            ret += np.where(done, 0.0, r)
            for i in np.flatnonzero(d & ~done):
                survived[i] = infos[i]["TimeLimit.truncated"]
            done |= d
        return ret.mean(), survived.mean()

    ret0, surv0 = evaluate()
    model.learn(100_000)
    ret1, surv1 = evaluate()
    print(f"SB3 PPO easy hover: return {ret0:.1f} -> {ret1:.1f}, survival {surv0:.0%} -> {surv1:.0%}")
    assert surv0 < 0.2 and surv1 > 0.8
    assert ret1 > 1.5 * ret0


# ----------------------------------------------------------------------------- export
@pytest.mark.parametrize("algo", ["ppo", "td3", "sac"])
def test_policy_from_sb3_reproduces_the_deterministic_action(algo):
    from robolearn.networks import actor_from_export

    env = VecNormalize(make_vec_env(config("env.num_envs=8"), seed=0), clip_obs=5.0)
    kw = dict(policy_kwargs={"net_arch": [16, 8]}, seed=0, device="cpu")
    cls = {"ppo": (PPO, AsymmetricActorCriticPolicy), "td3": (TD3, AsymmetricTD3Policy),
           "sac": (SAC, AsymmetricSACPolicy)}[algo]
    model = cls[0](cls[1], env, **kw, **({"n_steps": 8} if algo == "ppo" else {"learning_starts": 0}))
    model.learn(64)  # statistics and weights away from their initial values
    raw = env.get_original_obs()
    raw = {k: np.concatenate([v, v * 3.0]) for k, v in raw.items()}  # includes values the clip acts on
    actor = actor_from_export(policy_from_sb3(model, env))
    with torch.no_grad():
        got = actor(torch.from_numpy(raw["policy"])).numpy()
    want, _ = model.predict(env.normalize_obs(raw), deterministic=True)
    np.testing.assert_allclose(got, want, atol=2e-5)
    assert actor.output_activation == ("none" if algo == "ppo" else "tanh")


def test_sb3_export_cli_makes_a_run_directory_that_robolearn_export_accepts(tmp_path, capsys, one_thread):
    import json

    from robolearn.policy import load_policy

    sets = ["env.num_envs=8", "eval.episodes=16", "eval.episode_steps=50", "eval.plots=false"]
    cfg_file = tmp_path / "cfg.yaml"
    cfg_file.write_text("env:\n  sim: {action_history: 3}\n")
    cfg = load_config(cfg_file, sets)
    env = VecNormalize(make_vec_env(cfg, seed=0))
    model = PPO(AsymmetricActorCriticPolicy, env, n_steps=16, seed=0, device="cpu",
                policy_kwargs={"net_arch": {"pi": [16, 16], "vf": [32]}})
    model.learn(256)
    model.save(tmp_path / "model.zip")
    env.save(str(tmp_path / "vecnormalize.pkl"))

    run = tmp_path / "run"
    args = ["sb3-export", tmp_path / "model.zip", "--config", cfg_file, "--vecnormalize", tmp_path / "vecnormalize.pkl",
            "--out", run, *[a for s in sets for a in ("--set", s)]]
    code, out, err = cli(*args, capsys=capsys)
    assert code == 0, err
    assert "next: robolearn export" in out
    assert {"config.yaml", "policy.pt", "eval.json"} <= {p.name for p in run.iterdir()}
    ev = json.loads((run / "eval.json").read_text())
    assert ev["algo"] == "sb3-ppo" and ev["episodes"] == 16 and 0.0 <= ev["survival_rate"] <= 1.0
    obs = env.get_original_obs()
    with torch.no_grad():
        got = load_policy(run / "policy.pt")(torch.from_numpy(obs["policy"])).numpy()
    np.testing.assert_allclose(got, model.predict(env.normalize_obs(obs), deterministic=True)[0], atol=2e-5)

    code, out, err = cli("export", run, "--format", "onnx", capsys=capsys)
    assert code == 0, err
    report = json.loads((run / "export" / "export_report.json").read_text())
    assert report["verification"]["onnx_vs_torch"]["max_abs"] < 1e-4
    assert report["network"]["layers"] == [cfg_obs_dim(cfg), 16, 16, 4]


def cfg_obs_dim(cfg) -> int:
    return make_env(cfg, num_envs=1).single_observation_space["policy"].shape[0]


def test_sb3_export_cli_errors_are_one_line(tmp_path, capsys):
    env = make_vec_env(config("env.num_envs=4"), seed=0)
    PPO(AsymmetricActorCriticPolicy, env, n_steps=8, batch_size=32, device="cpu").save(tmp_path / "m.zip")
    cfg_file = tmp_path / "cfg.yaml"
    cfg_file.write_text("env:\n  sim: {action_history: 5}\n")  # a different policy view size
    base = ["--out", tmp_path / "run", "--no-eval"]
    assert_error(*cli("sb3-export", tmp_path / "none.zip", "--config", cfg_file, *base, capsys=capsys)[::2],
                 "SB3 model not found")
    assert_error(*cli("sb3-export", tmp_path / "m.zip", "--config", cfg_file, *base, capsys=capsys)[::2],
                 "the SB3 model takes 26 observations")
    assert_error(*cli("sb3-export", tmp_path / "m.zip", "--config", cfg_file, "--algo", "dqn", *base,
                      capsys=capsys)[::2], "--algo must be one of")
    assert_error(*cli("sb3-export", tmp_path / "m.zip", "--config", cfg_file, "--algo", "td3", *base,
                      capsys=capsys)[::2], "cannot load")
    (tmp_path / "junk.pkl").write_bytes(b"not a pickle")
    assert_error(*cli("sb3-export", tmp_path / "m.zip", "--config", cfg_file, "--vecnormalize", tmp_path / "junk.pkl",
                      *base, capsys=capsys)[::2], "VecNormalize")
    assert not (tmp_path / "run").exists()



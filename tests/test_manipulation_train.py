"""Training wiring of the arm (env.name: arm): run directory, privileged curriculum,
evaluation at privilege 0, one-line config errors, the evaluation video."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from robolearn.tasks.arm.curriculum import build_arm_teacher, privileged_names
from robolearn.tasks.arm.evaluate import evaluate_arm, run_arm_block
from robolearn.config import load_config
from robolearn.curriculum import apply_proposals
from robolearn.envs import make_env
from robolearn.errors import ConfigError, UserError
from teachers.base import EpisodeOutcomes

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "configs" / "arm_push.yaml"
TINY = ["env.num_envs=16", "env.arm.episode_steps=10", "ppo.rollout_steps=8", "train.total_env_steps=512",
        "eval.episodes=6", "eval.episode_steps=20", "network.critic_hidden=[32]", "train.progress=false",
        "curriculum.privileged.window=4", "curriculum.privileged.success_threshold=0.0",
        "curriculum.privileged.param=privileged.*"]


def robolearn(*args, timeout=300, env=None):
    e = dict(os.environ, PYTHONPATH=str(ROOT), COLUMNS="200", **(env or {}))
    return subprocess.run([sys.executable, "-m", "robolearn.cli", *map(str, args)], capture_output=True,
                          text=True, cwd=ROOT, env=e, timeout=timeout)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("arm") / "run"
    r = robolearn("train", CONFIG, "--out", out, *[a for kv in TINY for a in ("--set", kv)])
    assert r.returncode == 0, r.stderr[-2000:]
    return out, r


def test_run_directory_is_complete_and_shapes_come_from_the_env(tiny_run):
    out, r = tiny_run
    assert "eval (privileges 0): success" in r.stdout
    cfg = load_config(out / "config.yaml")
    assert cfg.env.name == "arm" and cfg.task == "push"
    header = (out / "metrics.csv").read_text().splitlines()[0].split(",")
    assert "episode/success" in header and "episode/object_goal_distance_m" in header
    assert "episode/survival" not in header
    # one annealing teacher per privilege coefficient, all logged
    for name in privileged_names():
        assert f"curriculum/{name}" in header
    assert list((out / "checkpoints").glob("ckpt_*.pt"))
    assert (out / "plots" / "learning_curves.png").stat().st_size > 0
    assert (out / "plots" / "box_paths.png").stat().st_size > 0
    pol = torch.load(out / "policy.pt", weights_only=True)
    env = make_env(cfg, num_envs=1)
    # configs/arm_push.yaml: blocked gripper (6 action dims) and the push features (+5 obs)
    assert pol["obs_dim"] == env.single_observation_space["policy"].shape[0] == 42
    assert pol["act_dim"] == env.single_action_space.shape[0] == 6
    ev = json.loads((out / "eval.json").read_text())
    assert ev["env"] == "arm" and ev["episodes"] == 6 and 0.0 <= ev["success_rate"] <= 1.0
    assert ev["object_goal_distance_m"] > 0
    assert ev["privileged_max"] == {n: 0.0 for n in privileged_names()}


def test_curriculum_lowered_the_privileges_during_the_tiny_run(tiny_run):
    # success_threshold 0 and window 4: every 4 episodes each coefficient steps down by 0.2
    out, _ = tiny_run
    ck = torch.load(sorted((out / "checkpoints").glob("ckpt_*.pt"))[-1], weights_only=False)
    coefs = [t["coef"] for t in ck["teacher"]["teachers"]]
    assert len(coefs) == 3 and all(c < 1.0 for c in coefs), coefs


def test_eval_runs_at_privilege_zero_when_training_runs_with_privileges():
    over = TINY + ["env.ranges.privileged.force_scale=[1,1]", "env.ranges.privileged.gravity_scale=[0.5,0.5]",
                   "env.ranges.privileged.table_penetration=[1,1]", "curriculum.teacher=none",
                   "env.arm.force_radius_m=null",  # ungated: the force acts from the arm's home pose
                   "env.arm.force_needs_touch=false"]
    cfg = load_config(CONFIG, over)

    class Pushy(torch.nn.Module):  # a fixed policy that uses the force dims as hard as it can
        def forward(self, obs):
            a = torch.zeros(obs.shape[0], 8)
            a[:, 5:8] = 1.0
            return a

    train_env = make_env(cfg, num_envs=4)
    obs, _ = train_env.reset(seed=0)
    np.testing.assert_array_equal(train_env.episode_params[:, -3:], [[1, 0.5, 1]] * 4)
    start = train_env.object_pose[:, :3]
    for _ in range(8):  # within the 10-step training episodes
        obs, *_ = train_env.step(Pushy()(torch.from_numpy(obs["policy"])).numpy())
    assert np.all(np.linalg.norm(train_env.object_pose[:, :3] - start, axis=1) > 0.01)  # in training it works

    res, trajs = evaluate_arm(Pushy(), cfg, episodes=4, record=4)
    assert res["privileged_max"] == {n: 0.0 for n in privileged_names()}
    assert res["nominal"]["ranges"]["privileged.force_scale"] == [0.0, 0.0]
    assert "train_ranges" not in res  # env.ranges randomizes nothing but privileges
    # in the evaluation the same policy leaves the box where it was
    obj = slice(7, 10)  # qpos: 5 arm joints, 2 fingers, then the box's free joint
    for t in trajs:
        assert len(t["qpos"]) == 20  # the initial state + 19 steps (the 20th ends the episode)
        np.testing.assert_allclose(t["qpos"][-1, obj], t["qpos"][0, obj], atol=1e-3)


def test_train_ranges_block_keeps_randomization_but_zeroes_privileges():
    cfg = load_config(CONFIG, TINY + ["env.ranges.randomization.object_mass_scale=[2,2]",
                                      "env.ranges.privileged.force_scale=[1,1]"])
    res, _ = evaluate_arm(lambda o: torch.zeros(o.shape[0], 8), cfg, episodes=3)
    blk = res["train_ranges"]
    assert blk["ranges"]["randomization.object_mass_scale"] == [2.0, 2.0]
    assert blk["privileged_max"]["privileged.force_scale"] == 0.0


def test_privileged_glob_builds_one_teacher_per_coefficient_and_drives_the_env():
    cfg = load_config(CONFIG, TINY + ["curriculum.privileged.window=2", "curriculum.privileged.success_threshold=0.5"])
    teacher = build_arm_teacher(cfg)
    assert set(teacher.task_space) == set(privileged_names())
    env = make_env(cfg, num_envs=2)
    apply_proposals(env, teacher, 0)
    env.reset(seed=0)
    np.testing.assert_array_equal(env.episode_params[:, -3:], 1.0)
    params = env.episode_params.copy()
    fail = EpisodeOutcomes(np.zeros(2), np.zeros(2, bool), params, env.param_names, np.arange(2))
    teacher.update(fail)
    assert apply_proposals(env, teacher, 0) == 0  # no success: nothing changes
    teacher.update(EpisodeOutcomes(np.zeros(2), np.ones(2, bool), params, env.param_names, np.arange(2)))
    apply_proposals(env, teacher, 0)
    env.reset(seed=0)
    np.testing.assert_allclose(env.episode_params[:, -3:], 1.0 - cfg.curriculum.privileged.step)
    # a single coefficient
    one = build_arm_teacher(load_config(CONFIG, TINY + ["curriculum.privileged.param=privileged.force_scale"]))
    assert list(one.task_space) == ["privileged.force_scale"]
    two = build_arm_teacher(load_config(CONFIG, TINY + [
        "curriculum.privileged.param=privileged.force_scale, privileged.table_*"]))
    assert set(two.task_space) == {"privileged.force_scale", "privileged.table_penetration"}


@pytest.mark.parametrize("override, fragments", [
    ("env.arm.taks=push", ["env.arm.taks", "unknown key", "task"]),
    ("env.arm.task=juggle", ["env.arm.task", "'push'"]),
    ("env.ranges.mass_scale=[1,2]", ["env.ranges.mass_scale", "unknown parameter"]),
    ("env.ranges.privileged.force_scale=[0,2]", ["env.ranges.privileged.force_scale", "hard limits"]),
    ("env.arm.episode_steps=0", ["episode_steps"]),
    ("env.name=boat", ["env.name", "'arm'"]),
])
def test_bad_arm_config_is_one_line_naming_the_key(override, fragments):
    with pytest.raises(ConfigError) as e:
        load_config(CONFIG, [override])
    msg = str(e.value)
    assert "\n" not in msg
    for f in fragments:
        assert f in msg, (f, msg)


@pytest.mark.parametrize("override, fragments", [
    ("curriculum.privileged.param=privileged.assist_gain", ["curriculum.privileged.param", "privileged.*"]),
    ("curriculum.teacher=adr", ["curriculum.teacher", "'adr'", "privileged"]),
    ("network.init_action=hover", ["network.init_action", "zero"]),
])
def test_arm_wiring_errors_name_the_key(override, fragments, tmp_path):
    out = tmp_path / "never"
    r = robolearn("train", CONFIG, "--set", override, "--no-progress", "--out", out)
    assert r.returncode == 2, (r.stdout, r.stderr)
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in r.stderr, r.stderr
    for f in fragments:
        assert f in lines[0], (f, lines[0])
    assert not out.exists()  # refused before anything is written


def test_eval_cli_and_video(tiny_run):
    out, _ = tiny_run
    r = robolearn("eval", out, "--episodes", "3", "--json", "--video", "--video-episodes", "2")
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout[:r.stdout.rindex("}") + 1])
    assert res["episodes"] == 3 and res["privileged_max"] == {n: 0.0 for n in privileged_names()}
    gif = out / "videos" / "eval.gif"
    if not gif.exists():
        line = [ln for ln in r.stderr.splitlines() if ln.startswith("video skipped:")]
        assert len(line) == 1, r.stderr
        pytest.skip(line[0])
    from PIL import Image

    im = Image.open(gif)
    assert im.size == (640, 240)  # two 320x240 tiles side by side
    assert im.n_frames == 10  # the initial state + 19 steps (the 20th ends the episode), every 2nd
    frames = []
    for k in (0, im.n_frames - 1):
        im.seek(k)
        frames.append(np.asarray(im.convert("RGB"), np.float32))
    assert frames[0].std() > 10  # a scene, not a blank image
    assert np.abs(frames[0] - frames[1]).mean() > 0.1  # the arm moved


def test_write_video_reports_why_when_no_backend_renders(tmp_path):
    from robolearn.tasks.arm.video import write_video

    traj = {"qpos": np.zeros((3, 14)), "goal": np.zeros(3), "success": False}
    out, reason = write_video([traj], tmp_path / "v.gif", backends=["no-such-gl"])
    assert out is None and not (tmp_path / "v.gif").exists()
    assert reason.startswith("no OpenGL") and "no-such-gl" in reason and "\n" not in reason


def test_eval_video_without_gl_prints_one_line_and_skips(tiny_run):
    out, _ = tiny_run
    gif = out / "videos" / "eval.gif"
    gif.unlink(missing_ok=True)
    env = {k: v for k, v in os.environ.items() if k != "MUJOCO_GL"}
    env["ROBOLEARN_VIDEO_GL"] = "no-such-gl"  # the backends the video tries: none that exists
    r = subprocess.run([sys.executable, "-m", "robolearn.cli", "eval", str(out), "--episodes", "2", "--video"],
                       capture_output=True, text=True, cwd=ROOT, env=dict(env, PYTHONPATH=str(ROOT)), timeout=300)
    assert r.returncode == 0, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("video skipped: no OpenGL"), r.stderr
    assert "no-such-gl" in lines[0]
    assert not gif.exists()


def test_make_env_and_teacher_reject_what_the_arm_cannot_do():
    cfg = load_config(CONFIG, ["env.arm.num_threads=1"])
    env = make_env(cfg, num_envs=2)
    assert env.num_envs == 2 and env.task == "push"
    with pytest.raises(UserError):
        from robolearn.envs import init_action

        init_action(load_config(CONFIG, ["network.init_action=hover"]))


@pytest.fixture(scope="module")
def tiny_ablation(tmp_path_factory):
    """The push-lift ablation command on a tiny budget: 3 arms x 1 seed, 2 iterations each."""
    out = tmp_path_factory.mktemp("ablation")
    sets = ["env.num_envs=8", "ppo.rollout_steps=8", "eval.episodes=2", "eval.episode_steps=20",
            "network.critic_hidden=[32]", "eval.plots=false"]
    r = robolearn("bench", "arm-ablation", "--seeds", "1", "--env-steps", "128", "--out", out,
                  *[a for kv in sets for a in ("--set", kv)], timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    return out


def test_ablation_runs_the_three_arms_and_evaluates_them_at_privilege_zero(tiny_ablation):
    import csv

    summary = json.loads((tiny_ablation / "ablation.json").read_text())
    assert set(summary["arms"]) == {"curriculum", "none", "drop"} and summary["drop_at_env_steps"] == 64
    for arm, s in summary["arms"].items():
        (run,) = s["runs"]
        assert run["env_steps"] == 128 and run["nominal"]["privileged_max"] == {n: 0.0 for n in privileged_names()}
        lo, hi = run["nominal"]["wilson95"]
        assert 0.0 <= lo <= run["nominal"]["success_rate"] <= hi <= 1.0
        assert "train_ranges" in run  # the config randomizes: the domain-randomized block ran too
        cfg = load_config(Path(run["run_dir"]) / "config.yaml")
        assert cfg.task == "push_lift"
        with open(Path(run["run_dir"]) / "metrics.csv", newline="") as f:
            rows = list(csv.DictReader(f))
        col = [float(r["curriculum/privileged.force_scale.high"]) for r in rows] if arm == "drop" else None
        if arm == "drop":  # full strength for the first half (64 steps = 1 iteration), 0 after it
            assert col == [1.0, 0.0], col
        elif arm == "none":
            assert cfg.curriculum.teacher == "none"
        else:
            assert [float(r["curriculum/privileged.gravity_scale"]) for r in rows][0] == 1.0
    assert (tiny_ablation / "plots" / "privileges.png").stat().st_size > 1000


def test_eval_video_of_a_push_lift_run(tiny_ablation):
    run = tiny_ablation / "curriculum" / "seed0"
    r = robolearn("eval", run, "--episodes", "2", "--json", "--video", "--video-episodes", "1")
    assert r.returncode == 0, r.stderr
    gif = run / "videos" / "eval.gif"
    if not gif.exists():
        line = [ln for ln in r.stderr.splitlines() if ln.startswith("video skipped:")]
        assert len(line) == 1, r.stderr
        pytest.skip(line[0])
    from PIL import Image

    im = Image.open(gif)
    assert im.size == (320, 240) and im.n_frames >= 5
    im.seek(0)
    frame = np.asarray(im.convert("RGB"), np.float32)
    assert frame.std() > 10  # a scene, not a blank image

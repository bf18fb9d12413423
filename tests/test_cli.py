"""The command line: one-line errors with exit code 2, and a complete small run."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

ROOT = Path(__file__).resolve().parent.parent
QUICK = ["--set", "env.num_envs=64", "--set", "ppo.rollout_steps=8", "--set", "train.total_env_steps=2048",
         "--set", "eval.episodes=20", "--set", "eval.episode_steps=50", "--set", "network.critic_hidden=[16]",
         "--no-progress"]


def robolearn(*args, cwd=None, timeout=300):
    env = dict(os.environ, PYTHONPATH=str(ROOT), COLUMNS="200")
    return subprocess.run([sys.executable, "-m", "robolearn.cli", *map(str, args)], capture_output=True,
                          text=True, cwd=cwd or ROOT, env=env, timeout=timeout)


def assert_one_line_error(r, *fragments):
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("error: "), lines[0]
    assert "Traceback" not in r.stderr + r.stdout
    for f in fragments:
        assert f in lines[0], (f, lines[0])
    return lines[0]


@pytest.fixture()
def cfg_file(tmp_path):
    def write(text):
        p = tmp_path / "cfg.yaml"
        p.write_text(text)
        return p
    return write


def test_unknown_config_key(cfg_file):
    p = cfg_file("ppo:\n  learning_rate: 0.001\n")
    line = assert_one_line_error(robolearn("train", p), "ppo.learning_rate")
    assert "lr" in line and "gae_lambda" in line  # lists the allowed keys


def test_wrong_type_in_config(cfg_file):
    p = cfg_file("env:\n  num_envs: many\n")
    assert_one_line_error(robolearn("train", p), "env.num_envs", "int")


def test_bad_literal_lists_allowed_values(cfg_file):
    p = cfg_file("env:\n  sim:\n    task: backflip\n")
    assert_one_line_error(robolearn("train", p), "env.sim.task", "'hover'", "'reach'")


def test_simulator_rejects_value(cfg_file):
    p = cfg_file("env:\n  ranges:\n    randomization.mass_scale: [0.1, 3.0]\n")
    assert_one_line_error(robolearn("train", p), "randomization.mass_scale", "hard limits")


def test_invalid_yaml(cfg_file):
    p = cfg_file("ppo: [unclosed\n")
    assert_one_line_error(robolearn("train", p), "invalid YAML")


def test_bad_set_override():
    assert_one_line_error(robolearn("train", "--set", "ppo.lr"), "KEY=VALUE")
    assert_one_line_error(robolearn("train", "--set", "ppo.nope=3"), "ppo.nope")
    assert_one_line_error(robolearn("train", "--set", "ppo.lr=fast"), "ppo.lr")


def test_missing_files():
    assert_one_line_error(robolearn("train", "does/not/exist.yaml"), "not found", "exist.yaml")
    assert_one_line_error(robolearn("eval", "no_such_run"), "not found", "no_such_run")
    assert_one_line_error(robolearn("train", "--resume", "no_such_run"), "no_such_run")


def test_bad_cli_arguments():
    assert_one_line_error(robolearn("train", "--device", "tpu"), "--device")
    assert_one_line_error(robolearn("train", "--seed", "abc"), "--seed")
    assert_one_line_error(robolearn("train", "--frobnicate"), "--frobnicate")
    assert_one_line_error(robolearn("eval"), "RUN_DIR")


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "run"
    r = robolearn("train", "--out", out, "--seed", "3", *QUICK)
    assert r.returncode == 0, r.stdout + r.stderr
    return out


def test_train_leaves_a_complete_run_directory(small_run):
    out = small_run
    for name in ("config.yaml", "metrics.csv", "policy.pt", "eval.json", "plots/learning_curves.png",
                 "plots/flight.png"):
        assert (out / name).is_file(), name
    assert list(out.glob("events.out.tfevents.*")), "no TensorBoard event file"
    assert list((out / "checkpoints").glob("ckpt_*.pt"))
    import yaml

    cfg = yaml.safe_load((out / "config.yaml").read_text())
    assert cfg["seed"] == 3 and cfg["env"]["num_envs"] == 64 and cfg["ppo"]["rollout_steps"] == 8
    assert cfg["ppo"]["gae_lambda"] == 0.95  # fully resolved: defaults are written too
    ev = json.loads((out / "eval.json").read_text())
    for block in ("nominal", "real_range", "corners"):
        for key in ("episodes", "survival_rate", "position_error_m", "tilt_deg", "yaw_deg", "settling_time_s",
                    "command_rate", "high_frequency_share", "train_wall_time_s", "env_steps"):
            assert key in ev[block], (block, key)
        assert ev[block]["episodes"] == 20
    assert ev["env_steps"] >= 2048
    lines = (out / "metrics.csv").read_text().splitlines()
    assert lines[0].startswith("iteration,env_steps") and len(lines) >= 5


def test_policy_pt_is_a_plain_weights_only_dict(small_run):
    d = torch.load(small_run / "policy.pt", weights_only=True)
    assert isinstance(d, dict)
    from robolearn.config import load_config

    net = load_config(ROOT / "configs/quadrotor_hover.yaml").network  # the default, its base resolved
    k = len(net.integrator.index)  # the default actor integrates its position error (format 2)
    assert d["format"] == "robolearn.actor/2" and d["integrator.index"].tolist() == net.integrator.index
    assert d["obs_mean"].shape == d["obs_std"].shape == (d["obs_dim"] + k,)
    assert d["activation"] == net.actor_activation
    assert d["hidden_sizes"].tolist() == net.actor_hidden
    n = sum(v.numel() for k, v in d.items() if k.startswith("layers."))
    assert n <= 4096
    from robolearn import load_policy

    actor = load_policy(small_run / "policy.pt")
    a = actor(torch.zeros(3, d["obs_dim"]))
    assert a.shape == (3, 4) and torch.all(a.abs() <= 1)


def test_load_run_gives_config_and_policy_or_a_one_line_reason(small_run, tmp_path):
    import shutil

    from robolearn.errors import UserError
    from robolearn.policy import load_run

    cfg, actor = load_run(small_run)
    assert cfg.seed == yaml.safe_load((small_run / "config.yaml").read_text())["seed"]
    assert actor(torch.zeros(2, actor.obs_dim)).shape == (2, 4)
    unfinished = tmp_path / "unfinished"
    shutil.copytree(small_run, unfinished)
    (unfinished / "policy.pt").unlink()
    with pytest.raises(UserError, match="no policy.pt"):
        load_run(unfinished)
    with pytest.raises(UserError, match="no config.yaml"):
        load_run(tmp_path)


def test_eval_json_output(small_run):
    r = robolearn("eval", small_run, "--episodes", "10", "--json")
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    assert res["nominal"]["episodes"] == 10 and 0 <= res["nominal"]["survival_rate"] <= 1
    r = robolearn("eval", small_run, "--episodes", "10")
    assert r.returncode == 0 and "nominal" in r.stdout


def test_corrupt_policy_and_checkpoint(small_run, tmp_path):
    import shutil

    bad = tmp_path / "bad_run"
    shutil.copytree(small_run, bad)
    (bad / "policy.pt").write_bytes(b"\x00garbage" * 10)
    assert_one_line_error(robolearn("eval", bad), "corrupt", "policy.pt")
    for ck in (bad / "checkpoints").glob("ckpt_*.pt"):
        ck.write_bytes(ck.read_bytes()[:100])  # truncated write
    assert_one_line_error(robolearn("train", "--resume", bad), "corrupt", "ckpt_")


def test_out_dir_with_a_run_is_refused(small_run):
    assert_one_line_error(robolearn("train", "--out", small_run, *QUICK), "already holds a run", "--resume")


def test_help_lists_subcommands():
    r = robolearn("--help")
    assert r.returncode == 0
    for cmd in ("train", "eval", "bench"):
        assert cmd in r.stdout

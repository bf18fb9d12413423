"""Faults a new user runs into (issue 25): resume, checkpoints, signals, non-finite training,
a full disk, foreign --out folders, unsafe pickles. Tiny runs (64 envs, one torch thread)."""

import csv
import errno
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from fake_envs import PointMassVecEnv
from robolearn.checkpoint import list_checkpoints, load_checkpoint, safe_load
from robolearn.config import DEFAULT_CONFIG, NetworkConfig, PPOConfig, TD3Config, load_config
from robolearn.errors import CheckpointError, TrainingDiverged, UserError
from robolearn.logging.run_dir import MetricsLogger, RunDir, read_metrics
from robolearn.ppo import PPO
from robolearn.td3 import TD3
from robolearn.train import train

ROOT = Path(__file__).resolve().parent.parent
CFG = ROOT / DEFAULT_CONFIG
ITERS = 6
TINY = ["env.num_envs=64", "ppo.rollout_steps=8", f"train.total_env_steps={64 * 8 * ITERS}",
        "network.critic_hidden=[16]", "train.torch_threads=1", "train.checkpoint_every_s=0.001",
        "train.progress=false", "polish.iterations=0", "trim.episodes=0", "curriculum.hard_starts.pool_draws=2000",
        "eval.episodes=8", "eval.episode_steps=40", "eval.plots=false", "seed=11"]


def tiny(*extra):
    return load_config(CFG, TINY + list(extra))


def cli(*args, timeout=300):
    env = dict(os.environ, PYTHONPATH=str(ROOT), COLUMNS="200")
    return subprocess.run([sys.executable, "-m", "robolearn.cli", *map(str, args)], capture_output=True,
                          text=True, cwd=ROOT, env=env, timeout=timeout)


def one_line(r):
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert r.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), (r.returncode, r.stderr)
    assert "Traceback" not in r.stderr + r.stdout
    return lines[0]


def policy_equal(a, b):
    pa, pb = torch.load(a, weights_only=True), torch.load(b, weights_only=True)
    return all(torch.equal(x, y) for x, y in zip(_flat(pa), _flat(pb))) and len(_flat(pa)) == len(_flat(pb))


def _flat(d):
    if isinstance(d, torch.Tensor):
        return [d]
    if isinstance(d, dict):
        return [t for k in sorted(d) for t in _flat(d[k])]
    if isinstance(d, (list, tuple)):
        return [t for v in d for t in _flat(v)]
    return []


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An uninterrupted tiny run (no evaluation)."""
    out = tmp_path_factory.mktemp("ref") / "run"
    res = train(tiny(), out=out, evaluate_at_end=False)
    assert not res.interrupted
    return out


# ------------------------------------------------------------------ seeds and usage errors
def test_bad_seeds_are_usage_errors_before_anything_is_written(tmp_path):
    for seed in ("-1", "1e23", str(2**32)):
        line = one_line(cli("train", "--out", tmp_path / "r", "--seed", seed))
        assert "--seed" in line
    line = one_line(cli("train", "--out", tmp_path / "r", "--set", "eval.seed=-5"))
    assert "'eval.seed'" in line
    assert not (tmp_path / "r").exists()
    assert "--seed" in one_line(cli("eval", tmp_path, "--seed", "-1"))


# ------------------------------------------------------------------ resume
def test_resume_refuses_an_architecture_change_before_writing(reference, tmp_path):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(reference, run)
    before = (run / "config.yaml").read_bytes()
    line = one_line(cli("train", "--resume", run, "--set", "network.actor_hidden=[16,16]", "--no-eval"))
    assert "network.actor_hidden" in line and "[16, 16]" in line and "start a new run with --out" in line
    assert (run / "config.yaml").read_bytes() == before
    line = one_line(cli("train", "--resume", run, "--set", "env.num_envs=32", "--no-eval"))
    assert "env.num_envs" in line
    assert (run / "config.yaml").read_bytes() == before
    # a compatible change is accepted: the run is finished, so this only re-exports
    res = train(load_config(None, ["train.progress=false"], base=__import__("yaml").safe_load(before)),
                resume=run, evaluate_at_end=False)
    assert not res.interrupted


def test_truncated_newest_checkpoint_falls_back_and_eval_uses_policy_pt(reference, tmp_path, capfd):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(reference, run)
    cks = list_checkpoints(run / "checkpoints")
    assert len(cks) >= 2
    newest = cks[-1]
    older_it = load_checkpoint(cks[-2])["iteration"]
    newest.write_bytes(newest.read_bytes()[:200])  # a torn write (e.g. a copy cut off)
    cfg = load_config(None, ["train.progress=false"], base=__import__("yaml").safe_load((run / "config.yaml").read_text()))
    res = train(cfg, resume=run, evaluate_at_end=False)
    err = capfd.readouterr().err
    assert f"skipped checkpoint {newest.name}" in err and f"kept as {newest.name}.bad" in err
    assert (run / "checkpoints" / f"{newest.name}.bad").exists()  # kept aside, not deleted
    assert res.env_steps == 64 * 8 * ITERS and older_it < ITERS
    with open(run / "metrics.csv", newline="") as f:
        assert [int(r["iteration"]) for r in csv.DictReader(f)] == list(range(1, ITERS + 1))
    assert policy_equal(run / "policy.pt", reference / "policy.pt")  # the resumed run is the same run
    # every checkpoint bad: eval still works from policy.pt (with a notice per bad file)
    for ck in list_checkpoints(run / "checkpoints"):
        ck.write_bytes(b"\x00" * 10)
    r = cli("eval", run, "--episodes", "4")
    assert r.returncode == 0, r.stderr
    assert "notice: skipped checkpoint" in r.stderr and "Traceback" not in r.stderr
    assert all(p.exists() for p in list_checkpoints(run / "checkpoints"))  # eval moves nothing


def test_sigint_between_rollout_and_update_keeps_the_checkpoint_whole_and_resumes_identically(
        reference, tmp_path, monkeypatch):
    """SIGINT arrives after iteration 3's rollout, before its update: the iteration is finished,
    the final checkpoint counts its env steps and the iteration together, and the resumed run
    ends bit-identical to the uninterrupted one (one thread)."""
    real_update = PPO.update

    def update(self):
        if self.iteration == 2:
            os.kill(os.getpid(), signal.SIGINT)
        return real_update(self)

    monkeypatch.setattr(PPO, "update", update)
    run = tmp_path / "run"
    res = train(tiny(), out=run, evaluate_at_end=False)
    assert res.interrupted and res.stop_signal == signal.SIGINT
    ck = load_checkpoint(list_checkpoints(run / "checkpoints")[-1])
    assert ck["iteration"] == 3 and ck["env_steps"] == 3 * 64 * 8
    monkeypatch.setattr(PPO, "update", real_update)
    res = train(tiny(), resume=run, evaluate_at_end=False)
    assert not res.interrupted
    ck = load_checkpoint(list_checkpoints(run / "checkpoints")[-1])
    assert ck["iteration"] == ITERS and ck["env_steps"] == ITERS * 64 * 8
    assert policy_equal(run / "policy.pt", reference / "policy.pt")
    assert list(read_metrics(run / "metrics.csv")["iteration"]) == list(range(1, ITERS + 1))


def test_tensorboard_is_trimmed_on_resume_and_gets_no_empty_event_file(reference, tmp_path):
    import shutil

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run = tmp_path / "run"
    shutil.copytree(reference, run)
    cks = list_checkpoints(run / "checkpoints")
    for ck in cks[1:]:  # as if killed after the oldest kept checkpoint: its later steps are logged again
        ck.unlink()
    assert load_checkpoint(cks[0])["iteration"] < ITERS
    train(tiny(), resume=run, evaluate_at_end=False)
    n_files = len(list(run.glob("events.out.tfevents.*")))
    assert n_files == 2
    train(tiny(), resume=run, evaluate_at_end=False)  # finished: nothing is logged, no new event file
    assert len(list(run.glob("events.out.tfevents.*"))) == n_files
    acc = EventAccumulator(str(run))
    acc.Reload()
    steps = [e.step for e in acc.Scalars("loss/policy")]
    assert steps == [64 * 8 * i for i in range(1, ITERS + 1)], steps


def test_sigterm_checkpoints_and_exits_143(tmp_path):
    run = tmp_path / "run"
    args = ["--set", "env.num_envs=64", "--set", "ppo.rollout_steps=8", "--set", "train.total_env_steps=2000000",
            "--set", "network.critic_hidden=[16]", "--set", "train.checkpoint_every_s=1000", "--no-progress", "--no-eval"]
    env = dict(os.environ, PYTHONPATH=str(ROOT), COLUMNS="200")
    p = subprocess.Popen([sys.executable, "-m", "robolearn.cli", "train", "--out", str(run), *args], cwd=ROOT,
                         env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and p.poll() is None:  # until a few iterations are logged
        if (run / "metrics.csv").exists() and len((run / "metrics.csv").read_text().splitlines()) > 3:
            break
        time.sleep(0.1)
    assert p.poll() is None, p.communicate()[1][-2000:]
    p.send_signal(signal.SIGTERM)
    out, err = p.communicate(timeout=120)
    assert p.returncode == 143, (p.returncode, err)
    assert "stopped by SIGTERM" in out and "--resume" in out and "Traceback" not in err
    ck = load_checkpoint(list_checkpoints(run / "checkpoints")[-1])  # the final checkpoint, whole iterations
    assert ck["env_steps"] == ck["iteration"] * 64 * 8 and ck["iteration"] >= 3
    assert (run / "policy.pt").exists()


# ------------------------------------------------------------------ --out
def test_out_refuses_a_foreign_folder_unless_forced(tmp_path):
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "config.yml").write_text("my own file\n")
    (foreign / "notes.txt").write_text("keep me\n")
    line = one_line(cli("train", "--out", foreign))
    assert "--force" in line and str(foreign) in line
    assert sorted(p.name for p in foreign.iterdir()) == ["config.yml", "notes.txt"]
    res = train(tiny(f"train.total_env_steps={64 * 8}"), out=foreign, evaluate_at_end=False, force=True)
    assert not res.interrupted and (foreign / "notes.txt").read_text() == "keep me\n"
    with pytest.raises(UserError, match="already holds a run; continue it with --resume"):
        train(tiny(), out=foreign, evaluate_at_end=False, force=True)  # --force never overwrites a run


# ------------------------------------------------------------------ non-finite training
def test_non_finite_weights_stop_training_with_one_line_and_no_policy(tmp_path, monkeypatch):
    real_update = PPO.update

    def update(self):
        out = real_update(self)
        if self.iteration == 3:  # the 4th update: its weights become NaN (as after lr = 1e30)
            with torch.no_grad():
                self.model.actor[0].weight.fill_(float("nan"))
        return out

    monkeypatch.setattr(PPO, "update", update)
    run = tmp_path / "run"
    with pytest.raises(TrainingDiverged) as e:
        train(tiny(), out=run, evaluate_at_end=False)
    msg = str(e.value)
    assert "\n" not in msg and "iteration 4" in msg and "non-finite" in msg and "likely cause" in msg
    assert "ppo.lr" in msg and "policy.pt was not written" in msg
    assert not (run / "policy.pt").exists()
    cks = list_checkpoints(run / "checkpoints")
    assert cks and f"the last good checkpoint {cks[-1].name} is kept" in msg
    for ck in cks:
        state = load_checkpoint(ck)["algo_state"]["model"]
        assert all(torch.isfinite(t).all() for t in state.values() if t.is_floating_point())
    assert cks[-1].name == "ckpt_000000003.pt"
    assert list(read_metrics(run / "metrics.csv")["iteration"]) == [1, 2, 3, 4]  # the good ones, and the one that failed


def test_ppo_stops_before_a_non_finite_loss_reaches_the_weights():
    env = PointMassVecEnv(num_envs=16)
    ppo = PPO(env, PPOConfig(rollout_steps=8, minibatches=2), NetworkConfig(actor_hidden=[8], critic_hidden=[8],
                                                                             init_action="zero"))
    ppo.iterate()
    with torch.no_grad():
        ppo.model.log_std.fill_(float("inf"))  # the loss becomes non-finite
    before = [p.detach().clone() for p in ppo.model.critic.parameters()]
    with pytest.raises(TrainingDiverged, match="iteration 2: non-finite loss"):
        ppo.iterate()
    assert all(torch.equal(a, b) for a, b in zip(before, ppo.model.critic.parameters()))


def test_td3_stops_on_a_non_finite_loss():
    env = PointMassVecEnv(num_envs=8)
    td3 = TD3(env, TD3Config(buffer_size=1000, batch_size=16, learning_starts=0),
              NetworkConfig(actor_hidden=[8], critic_hidden=[8], init_action="zero"))
    td3.iterate()
    with torch.no_grad():
        td3.q1.q[0].weight.fill_(float("nan"))
    with pytest.raises(TrainingDiverged, match="iteration 2: non-finite critic loss"):
        td3.iterate()


def test_metrics_csv_writes_nan_as_nan_and_missing_as_empty(tmp_path):
    run = RunDir(tmp_path).create(force=True)
    log = MetricsLogger(run, tensorboard=False)
    log.log({"iteration": 1, "loss": float("nan"), "x": float("inf"), "episode": None}, step=1)
    log.close()
    rows = (tmp_path / "metrics.csv").read_text().splitlines()
    assert rows[1] == "1,nan,inf,"


# ------------------------------------------------------------------ full disk, unwritable
def test_full_disk_is_one_line_the_last_checkpoint_stays_and_resume_works(tmp_path, monkeypatch):
    """ENOSPC while a checkpoint is written (simulated in os.fsync of the checkpoint's tmp file)."""
    import robolearn.checkpoint as ckmod

    real_fsync = os.fsync
    calls = {"n": 0}

    def fsync(fd):
        name = os.readlink(f"/proc/self/fd/{fd}") if os.path.exists(f"/proc/self/fd/{fd}") else ""
        if ".ckpt_" in name and name.endswith(".tmp"):
            calls["n"] += 1
            if calls["n"] >= 3:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_fsync(fd)

    monkeypatch.setattr(ckmod.os, "fsync", fsync)
    run = tmp_path / "run"
    with pytest.raises(UserError) as e:
        train(tiny(), out=run, evaluate_at_end=False)
    msg = str(e.value)
    assert "\n" not in msg and "No space left on device" in msg and f"--resume {run}" in msg
    cks = list_checkpoints(run / "checkpoints")
    assert len(cks) == 2 and f"the last good checkpoint {cks[-1].name} is intact" in msg
    for ck in cks:
        load_checkpoint(ck)
    assert not list(run.rglob("*.tmp"))  # the failed write left nothing behind
    monkeypatch.setattr(ckmod.os, "fsync", real_fsync)  # space is back
    res = train(tiny(), resume=run, evaluate_at_end=False)
    assert not res.interrupted and res.env_steps == 64 * 8 * ITERS


def test_full_and_read_only_tmpfs(tmp_path):
    """A real full disk: the run dir on a small tmpfs (root only; otherwise skipped with the reason)."""
    from benchmarks.faults import full_disk

    r = full_disk(tmp_path)
    if "skipped" in r:
        pytest.skip(r["skipped"])
    assert r["full_exit"] == 2 and r["full_line"] and "No space left on device" in r["full_line"], r
    assert r["checkpoints_after_full"] >= 1 and not r["corrupt_after_full"] and not r["tmp_files_left"], r
    if "readonly_exit" in r:
        assert r["readonly_exit"] == 2 and r["readonly_line"] and "Read-only file system" in r["readonly_line"], r
    assert r["resume_exit"] == 0 and r["policy_written"] and not r["corrupt_after_resume"], r


def test_unwritable_run_dir_is_one_line(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    line = one_line(cli("train", "--out", blocker / "run", "--set", "env.num_envs=8"))
    assert "cannot write" in line or "not a directory" in line.lower(), line


# ------------------------------------------------------------------ files
def test_unsafe_pickle_is_named_and_not_loaded(tmp_path):
    p = tmp_path / "policy.pt"
    torch.save({"obj": PointMassVecEnv}, p)  # a class: not weights-only
    with pytest.raises(CheckpointError) as e:
        safe_load(p, "policy file")
    assert "unsafe pickle" in str(e.value) and "not loaded" in str(e.value) and "\n" not in str(e.value)


def test_cli_uses_no_private_typer_module():
    import typer

    import robolearn.cli as cli_mod

    src = Path(cli_mod.__file__).read_text()
    assert "import typer._click" not in src and "from typer._click" not in src
    assert issubclass(typer.BadParameter, cli_mod._CLICK_EXCEPTION)

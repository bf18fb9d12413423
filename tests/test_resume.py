"""A training process killed mid-run (SIGKILL) resumes and finishes; nothing on disk is corrupt."""

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
TOTAL = 64 * 8 * 60  # 60 iterations of 64 envs x 8 steps
ARGS = ["--set", "env.num_envs=64", "--set", "ppo.rollout_steps=8", "--set", f"train.total_env_steps={TOTAL}",
        "--set", "train.checkpoint_every_s=0.001", "--set", "network.critic_hidden=[16]", "--no-progress", "--no-eval"]


def _cmd(*args):
    return [sys.executable, "-m", "robolearn.cli", *map(str, args)]


def _env():
    return dict(os.environ, PYTHONPATH=str(ROOT), COLUMNS="200")


def test_killed_run_resumes_to_completion(tmp_path):
    run = tmp_path / "run"
    p = subprocess.Popen(_cmd("train", "--out", run, "--seed", "5", *ARGS), cwd=ROOT, env=_env(),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    # Kill it (no chance to clean up) once a few checkpoints have been written.
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and p.poll() is None:
        if len(list((run / "checkpoints").glob("ckpt_*.pt"))) >= 2:
            break
        time.sleep(0.05)
    assert p.poll() is None, "training ended before it could be killed: " + p.stderr.read().decode()[-2000:]
    os.killpg(p.pid, signal.SIGKILL)
    p.wait()

    cks = sorted((run / "checkpoints").glob("ckpt_*.pt"))
    assert cks and not (run / "policy.pt").exists()
    for ck in cks:  # every checkpoint on disk loads: atomic writes, no torn file
        d = torch.load(ck, weights_only=True)
        assert d["iteration"] < 60
    last_it = torch.load(cks[-1], weights_only=True)["iteration"]

    r = subprocess.run(_cmd("train", "--resume", run, "--no-progress", "--no-eval"), cwd=ROOT, env=_env(),
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    final = torch.load(sorted((run / "checkpoints").glob("ckpt_*.pt"))[-1], weights_only=True)
    assert final["iteration"] == 60 and final["env_steps"] == TOTAL
    assert final["iteration"] > last_it
    torch.load(run / "policy.pt", weights_only=True)
    # metrics.csv: one row per iteration 1..60, in order, no duplicates from the killed attempt
    with open(run / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    its = [int(float(r["iteration"])) for r in rows]
    assert its == list(range(1, 61)), its

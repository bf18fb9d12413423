"""Fault figures of the trainer (issue 25): kill -9 at random moments, a full disk, fuzzed configs.

    python -m benchmarks.faults kill [--kills 20] [--seed 0] [--json]
    python -m benchmarks.faults disk [--json]
    python -m benchmarks.faults configs [--examples 10000] [--json]

``kill``: one uninterrupted run of a tiny config (one torch thread, polish and trim on),
then the same run killed with SIGKILL at ``--kills`` random moments (uniform over the
uninterrupted run's wall time: start-up, training, checkpoint writes, polish, trim,
evaluation) and resumed with ``--resume`` after each kill until it finishes. Reports how
many kills hit a live process, how many resumes finished, whether any file on disk failed
to load, and whether the final policy.pt is bit-identical to the uninterrupted one.

``disk``: the run directory on a 2 MiB tmpfs (needs root to mount; otherwise says so):
the run stops with one line, the last good checkpoint loads, and the run resumes and
finishes once the tmpfs is remounted larger.

``configs``: hypothesis-generated configs and ``--set`` overrides through ``load_config``:
counts tracebacks (anything but a one-line ConfigError), errors that do not name a key.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# The issue-3 recipe (it has the polish and the trim, which the kills must also hit): 12 iterations
# of 64 envs x 8 steps, a 16-unit critic, a short polish and trim, a short evaluation
TINY = ["configs/quadrotor_hover_l2f.yaml", "--set", "env.num_envs=64", "--set", "ppo.rollout_steps=8", "--set", "train.total_env_steps=6144",
        "--set", "network.critic_hidden=[16]", "--set", "train.torch_threads=1",
        "--set", "train.checkpoint_every_s=0.001", "--set", "polish.iterations=3", "--set", "polish.starts=8",
        "--set", "trim.episodes=8", "--set", "trim.steps=120", "--set", "trim.keep=40",
        "--set", "eval.episodes=16", "--set", "eval.episode_steps=60", "--set", "curriculum.hard_starts.pool_draws=2000",
        "--no-progress"]


def _cmd(*args: Any) -> list[str]:
    return [sys.executable, "-m", "robolearn.cli", *map(str, args)]


def _env() -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=str(ROOT), COLUMNS="200")


def _policy_tensors(path: Path) -> dict:
    import torch

    return torch.load(path, map_location="cpu", weights_only=True)


def same_policy(a: Path, b: Path) -> bool:
    """Bit-identical policy.pt contents (every tensor equal, every other value equal)."""
    import torch

    def eq(x: Any, y: Any) -> bool:
        if isinstance(x, torch.Tensor):
            return isinstance(y, torch.Tensor) and x.dtype == y.dtype and torch.equal(x, y)
        if isinstance(x, dict):
            return isinstance(y, dict) and x.keys() == y.keys() and all(eq(x[k], y[k]) for k in x)
        if isinstance(x, (list, tuple)):
            return isinstance(y, (list, tuple)) and len(x) == len(y) and all(eq(u, v) for u, v in zip(x, y))
        return bool(x == y)

    return eq(_policy_tensors(a), _policy_tensors(b))


def check_files(run: Path) -> list[str]:
    """Files of a run directory that do not load (an empty list: all intact)."""
    import torch
    import yaml

    bad = []
    for ck in sorted((run / "checkpoints").glob("ckpt_*.pt")):
        try:
            torch.load(ck, map_location="cpu", weights_only=True)
        except Exception as e:  # noqa: BLE001 - any failure is a corrupt file
            bad.append(f"{ck.name}: {type(e).__name__}")
    for name, load in (("policy.pt", lambda p: torch.load(p, weights_only=True)),
                       ("eval.json", lambda p: json.loads(p.read_text())),
                       ("config.yaml", lambda p: yaml.safe_load(p.read_text()))):
        p = run / name
        if p.exists():
            try:
                load(p)
            except Exception as e:  # noqa: BLE001
                bad.append(f"{name}: {type(e).__name__}")
    if (run / "metrics.csv").exists():
        with open(run / "metrics.csv", newline="") as f:
            rows = list(csv.reader(f))
        if any(len(r) != len(rows[0]) for r in rows[1:]):
            bad.append("metrics.csv: a torn row")
    return bad


def metrics_iterations(run: Path) -> list[int]:
    with open(run / "metrics.csv", newline="") as f:
        return [int(float(r["iteration"])) for r in csv.DictReader(f)]


def _quality(run: Path) -> dict:
    """eval.json's evaluation blocks without their wall times."""
    r = json.loads((run / "eval.json").read_text())
    return {b: {k: v for k, v in r[b].items() if "wall_time" not in k} for b in ("nominal", "randomized") if b in r}


def uninterrupted(root: Path, args: list[str] = TINY) -> tuple[Path, float]:
    ref = root / "uninterrupted"
    t0 = time.perf_counter()
    r = subprocess.run(_cmd("train", "--out", ref, "--seed", 7, *args), cwd=ROOT, env=_env(),
                       capture_output=True, text=True, timeout=900)
    if r.returncode != 0:
        raise RuntimeError(f"the uninterrupted run failed: {r.stderr[-2000:]}")
    return ref, time.perf_counter() - t0


def kill_trial(ref: Path, run: Path, delay: float, args: list[str] = TINY) -> dict:
    """Start the run, SIGKILL it after ``delay`` s, check every file, resume it to the end
    (``--out`` again if it was killed before config.yaml existed), compare with ``ref``."""
    p = subprocess.Popen(_cmd("train", "--out", run, "--seed", 7, *args), cwd=ROOT, env=_env(),
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    time.sleep(delay)
    alive = p.poll() is None
    if alive:
        os.killpg(p.pid, signal.SIGKILL)
    p.wait()
    n_ck = len(list((run / "checkpoints").glob("ckpt_*.pt"))) if run.exists() else 0
    stage = ("finished" if not alive else "start-up" if n_ck == 0 else
             "training/polish/trim" if not (run / "policy.pt").exists() else "evaluation")
    corrupt = check_files(run) if run.exists() else []
    if alive:
        cmd = (_cmd("train", "--resume", run, "--no-progress") if (run / "config.yaml").exists()
               else _cmd("train", "--out", run, "--seed", 7, *args))
        fin = subprocess.run(cmd, cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=900)
        rc, err = fin.returncode, fin.stderr
    else:
        rc, err = p.returncode, p.stderr.read().decode() if p.stderr else ""
    corrupt += check_files(run)
    n_iter = len(metrics_iterations(ref))
    ok = rc == 0
    return {"delay_s": round(delay, 3), "killed": alive, "stage": stage, "checkpoints_at_kill": n_ck,
            "resumed_and_finished": ok, "error": "" if ok else err[-500:], "corrupt": corrupt,
            "metrics_ok": ok and metrics_iterations(run) == list(range(1, n_iter + 1)),
            "policy_bit_identical": ok and same_policy(ref / "policy.pt", run / "policy.pt"),
            "eval_identical": ok and _quality(ref) == _quality(run)}


def kill_resume(kills: int, seed: int, root: Path, args: list[str] = TINY) -> dict:
    """Independent trials at moments uniform over the uninterrupted run's wall time, until
    ``kills`` of them hit a live process."""
    ref, t_ref = uninterrupted(root, args)
    rng = random.Random(seed)
    trials: list[dict] = []
    span = t_ref
    # A trial that finished before its kill (the machine ran faster than during the
    # uninterrupted run) does not count: the span shrinks to that trial's time, and it is redrawn.
    while sum(t["killed"] for t in trials) < kills and len(trials) < 3 * kills:
        t0 = time.perf_counter()
        t = kill_trial(ref, root / f"killed-{len(trials)}", rng.uniform(0.0, span), args)
        trials.append(t)
        if not t["killed"]:
            span = min(span, time.perf_counter() - t0)
    return {
        "kills": kills, "seed": seed, "uninterrupted_wall_s": round(t_ref, 2),
        "trials": len(trials), "hit_a_live_process": sum(t["killed"] for t in trials),
        "stages": {st: sum(t["stage"] == st for t in trials) for st in ("start-up", "training/polish/trim", "evaluation", "finished")},
        "resumed_and_finished": sum(t["resumed_and_finished"] for t in trials),
        "corrupt_files": sum(len(t["corrupt"]) for t in trials),
        "metrics_ok": sum(t["metrics_ok"] for t in trials),
        "policy_bit_identical": sum(t["policy_bit_identical"] for t in trials),
        "eval_identical": sum(t["eval_identical"] for t in trials),
        "attempts": trials,
    }


def _mount(dir_: Path, size: str, remount: bool = False, ro: bool = False) -> str | None:
    """Mount (or remount) a tmpfs of ``size`` on ``dir_``; the reason it failed, or None."""
    opts = ("remount," if remount else "") + ("ro," if ro else "") + f"size={size}"
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(dir_)], capture_output=True, text=True)
    return None if r.returncode == 0 else (r.stderr.strip() or f"mount exited {r.returncode}")


def _one_line_error(r: subprocess.CompletedProcess) -> str | None:
    lines = [ln for ln in r.stderr.splitlines() if ln.strip() and not ln.startswith("notice:")]
    if r.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in r.stderr:
        return lines[0]
    return None


def full_disk(root: Path, args: list[str] = TINY) -> dict:
    """A run on a tmpfs that fills up, then one remounted read-only; see the module doc."""
    mnt = root / "disk"
    mnt.mkdir()
    why = _mount(mnt, "3m")
    if why is not None:
        return {"skipped": f"cannot mount a tmpfs here ({why}); run as root"}
    try:
        run = mnt / "run"
        filler = mnt / "filler"
        free = shutil.disk_usage(mnt).free
        filler.write_bytes(b"\0" * max(0, free - 400_000))  # ~400 kB left: a few checkpoints fit
        full = subprocess.run(_cmd("train", "--out", run, "--seed", 7, *args), cwd=ROOT, env=_env(),
                              capture_output=True, text=True, timeout=900)
        out: dict[str, Any] = {"full_exit": full.returncode, "full_line": _one_line_error(full),
                               "full_stderr_tail": full.stderr[-300:],
                               "checkpoints_after_full": len(list((run / "checkpoints").glob("ckpt_*.pt"))),
                               "corrupt_after_full": check_files(run),
                               "tmp_files_left": [p.name for p in run.rglob(".*.tmp")]}
        filler.unlink()  # space is back
        # read-only: the run directory cannot be written at all
        why = _mount(mnt, "3m", remount=True, ro=True)
        if why is None:
            ro = subprocess.run(_cmd("train", "--resume", run, "--no-progress"), cwd=ROOT, env=_env(),
                                capture_output=True, text=True, timeout=900)
            out |= {"readonly_exit": ro.returncode, "readonly_line": _one_line_error(ro)}
            _mount(mnt, "3m", remount=True)
        else:
            out["readonly"] = f"skipped: cannot remount read-only ({why})"
        res = subprocess.run(_cmd("train", "--resume", run, "--no-progress"), cwd=ROOT, env=_env(),
                             capture_output=True, text=True, timeout=900)
        out |= {"resume_exit": res.returncode, "resume_stderr_tail": res.stderr[-300:],
                "corrupt_after_resume": check_files(run), "policy_written": (run / "policy.pt").exists()}
        return out
    finally:
        subprocess.run(["umount", str(mnt)], capture_output=True)


def fuzz_configs(examples: int, seed: int = 0) -> dict:
    """Generated configs and --set overrides through load_config (tests/test_config_fuzz.py's strategies)."""
    sys.path.insert(0, str(ROOT / "tests"))
    from config_fuzz import run_fuzz  # type: ignore[import-not-found]  # tests/config_fuzz.py

    return run_fuzz(examples, seed)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.faults", description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="what", required=True)
    k = sub.add_parser("kill")
    k.add_argument("--kills", type=int, default=20)
    k.add_argument("--seed", type=int, default=0)
    k.add_argument("--steps", type=int, default=None, help="train.total_env_steps (default: TINY's 6144)")
    k.add_argument("--json", action="store_true")
    c = sub.add_parser("configs")
    c.add_argument("--examples", type=int, default=10_000)
    c.add_argument("--json", action="store_true")
    d = sub.add_parser("disk")
    d.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="robolearn-faults-"))
    try:
        if a.what == "kill":
            args = TINY + (["--set", f"train.total_env_steps={a.steps}"] if a.steps else [])
            res = kill_resume(a.kills, a.seed, root, args)
        elif a.what == "disk":
            res = full_disk(root)
        else:
            res = fuzz_configs(a.examples)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    if a.json:
        print(json.dumps(res, indent=2))
    else:
        for key, v in res.items():
            if key != "attempts":
                print(f"{key}: {v}")


if __name__ == "__main__":
    main()

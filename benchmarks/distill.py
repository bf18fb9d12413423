"""Distil a trained hover policy into another actor with DAgger (issue 3 experiment).

    python -m benchmarks.distill --teacher RUN_DIR --student RUN_DIR --out DIR [--rounds 8]
    robolearn bench distill --teacher RUN_DIR --student RUN_DIR --out DIR

DAgger (Ross, Gordon & Bagnell, AISTATS 2011): each round flies ``--envs`` episodes of
``--steps`` steps, a share ``--hard-fraction`` of them from the hard corner of the start
distribution (``robolearn.tasks.quadrotor.hard_starts.hard_corner_draw``, seed 77777: neither the evaluation's
starts nor the failure benchmark's pool), labels every visited observation with the
teacher's deterministic command, adds them to the data of all earlier rounds and fits the
student to it by least squares. Round 0 executes the teacher's command in half of the
envs at each step (the mixture policy of DAgger with beta = 0.5); later rounds fly the
student alone, so the data follow the states the student itself reaches.

The student keeps its architecture and its observation normalizer (the statistics
exported with it); only its MLP is fitted. Where the teacher commands a saturated +-1 and
the student's output already lies beyond it, the error counts as zero: the clip makes
both the same command. The out directory is a run directory for ``robolearn eval`` and
``robolearn export``: the student's ``config.yaml``, ``policy.pt``, ``eval.json``, and
``distill.json`` with the per-round history.

Why: a 128-128 actor trained with PPO on 4x the budget survives more of the hard corner
than the 28-24 actor of the default config, which fits the MCU. Distilling the first into
the second tells whether the small actor can hold such a policy at all (BENCHMARKS.md,
issue 3). The teacher's cost (~1 min of training) does not fit the 15 s training bar.

From Python: ``distill(teacher_run, student_run, out, ...) -> dict`` and
``print_distill(result, out)``; both commands above call these two.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

if TYPE_CHECKING:
    from robolearn.networks import DeterministicActor


def imitation_loss(raw: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error of the student's pre-clip output, zero where both saturate alike."""
    err = raw - target
    same = ((target >= 0.999) & (raw > 1.0)) | ((target <= -0.999) & (raw < -1.0))
    return torch.where(same, torch.zeros_like(err), err).square().mean()


@torch.no_grad()
def collect(cfg: Any, teacher: DeterministicActor, student: DeterministicActor, pool: np.ndarray, envs: int,
            steps: int, hard_fraction: float, beta: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Policy observations visited by the (beta-mixed) student, and the teacher's commands there."""
    from robolearn.envs import make_env
    from robolearn.tasks.quadrotor.env import eval_ranges

    rng = np.random.default_rng(seed)
    env = make_env(cfg, num_envs=envs, seed=seed, ranges=eval_ranges(cfg, False), backend="cpu",
                   episode_steps=steps)
    ids = np.flatnonzero(rng.random(envs) < hard_fraction)
    if len(ids) and len(pool):
        env.set_start_states(pool[rng.integers(0, len(pool), len(ids))], ids)
    obs, _ = env.reset(seed=seed)
    xs, ys = [], []
    for _ in range(steps):
        o = torch.from_numpy(obs["policy"]).clone()
        a_t = teacher(o)
        xs.append(o)
        ys.append(a_t)
        a = a_t
        if beta < 1.0:
            use_teacher = torch.from_numpy(rng.random(envs) < beta).unsqueeze(1)
            a = torch.where(use_teacher, a_t, student(o))
        obs, *_ = env.step(a.numpy())
    return torch.cat(xs), torch.cat(ys)


def fit(student: DeterministicActor, opt: torch.optim.Optimizer, z: torch.Tensor, y: torch.Tensor, epochs: int,
        batch: int, gen: torch.Generator) -> float:
    """``epochs`` passes of minibatch least squares over (normalized observations z, y); returns the last
    minibatch's loss."""
    loss = torch.zeros(())
    for _ in range(epochs):
        perm = torch.randperm(len(z), generator=gen)
        for k in range(0, len(z), batch):
            idx = perm[k:k + batch]
            raw = student.net(z[idx])
            if student.output_activation == "tanh":
                raw = torch.tanh(raw)
            loss = imitation_loss(raw, y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return float(loss.detach())


def distill(teacher_run: str | Path, student_run: str | Path, out: str | Path, rounds: int = 8, envs: int = 2048,
            steps: int = 300, hard_fraction: float = 0.5, epochs: int = 3, lr: float = 3e-4, batch: int = 8192,
            seed: int = 0, pool_draws: int = 200_000, hard_eval: int = 2000) -> dict:
    """Run DAgger from ``teacher_run``'s policy into ``student_run``'s; write a run directory at ``out``."""
    from robolearn.checkpoint import atomic_write_text
    from robolearn.config import dump_config
    from robolearn.errors import UserError
    from robolearn.logging.run_dir import write_eval
    from robolearn.tasks.quadrotor.evaluate import evaluate
    from robolearn.tasks.quadrotor.hard_starts import hard_corner_draw
    from robolearn.logging.run_dir import RunDir
    from robolearn.policy import load_run, save_policy

    from .failures import HARD_SEED, hard_corner, survival

    _, teacher = load_run(teacher_run)
    cfg, student = load_run(student_run)
    if teacher.obs_dim != student.obs_dim:
        raise UserError(f"teacher sees {teacher.obs_dim} observations, student {student.obs_dim}: "
                        "train both with the same env.sim.action_history")
    if rounds < 1 or envs < 1 or steps < 1:
        raise UserError("--rounds, --envs and --steps must be >= 1")
    if not 0.0 <= hard_fraction <= 1.0:
        raise UserError(f"--hard-fraction must be in [0, 1], got {hard_fraction}")
    teacher.requires_grad_(False)
    student.norm.requires_grad_(False)
    pool = hard_corner_draw(cfg, pool_draws, seed=77777) if hard_fraction > 0 else np.zeros((0, 17), np.float32)
    held_out = hard_corner(cfg, hard_eval) if hard_eval > 0 else None

    def score(pol: torch.nn.Module) -> dict:
        surv, _ = survival(pol, cfg, cfg.eval.episodes, cfg.eval.seed)
        r = {"survival_rate": float(surv.mean()), "failed": int((~surv).sum())}
        if held_out is not None:
            r["hard_corner_survival"] = float(survival(pol, cfg, 0, HARD_SEED + 1, starts=held_out)[0].mean())
        return r

    history = [{"round": -1, "teacher": score(teacher), "student": score(student)}]
    opt = torch.optim.Adam(student.net.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    zs: list[torch.Tensor] = []  # each round's observations, normalized once (the normalizer is frozen)
    ys: list[torch.Tensor] = []
    t0 = time.perf_counter()
    for r in range(rounds):
        x, y = collect(cfg, teacher, student, pool, envs, steps, hard_fraction, 0.5 if r == 0 else 0.0,
                       seed=seed * 1000 + 100 + r)
        with torch.no_grad():
            zs.append(student.norm(x))
        ys.append(y)
        loss = fit(student, opt, torch.cat(zs), torch.cat(ys), epochs, batch, gen)
        history.append({"round": r, "samples": int(sum(len(a) for a in zs)), "loss": loss, "student": score(student)})
        print(json.dumps(history[-1]), flush=True)
    wall = time.perf_counter() - t0

    run = RunDir(out)  # the trainer's file names, written atomically as the trainer writes them
    run.path.mkdir(parents=True, exist_ok=True)
    run.write_config(dump_config(cfg))
    save_policy(student.spec(), run.policy)
    ev, _ = evaluate(student, cfg)
    write_eval(ev, run.eval)
    result = {"teacher_run": str(teacher_run), "student_run": str(student_run), "rounds": rounds, "envs": envs,
              "steps": steps, "hard_fraction": hard_fraction, "epochs": epochs, "lr": lr, "seed": seed,
              "distill_wall_time_s": wall, "history": history,
              "nominal": ev["nominal"], "randomized": ev.get("real_range")}
    atomic_write_text(json.dumps(result, indent=1), run.path / "distill.json")
    return result


def print_distill(r: dict, out: str | Path) -> None:
    """One JSON line: where the student went and its nominal (and randomized) evaluation."""
    n = r["nominal"]
    print(json.dumps({"out": str(out), "survival": n["survival_rate"], "position_error_m": n["position_error_m"],
                      "yaw_deg": n["yaw_deg"], "survival_randomized": (r["randomized"] or {}).get("survival_rate"),
                      "distill_wall_time_s": r["distill_wall_time_s"]}))


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--teacher", required=True, help="run directory of the policy to imitate")
    ap.add_argument("--student", required=True, help="run directory of the policy to fine-tune (its architecture)")
    ap.add_argument("--out", required=True, help="run directory to write")
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--envs", type=int, default=2048)
    ap.add_argument("--steps", type=int, default=300, help="control steps per round and env")
    ap.add_argument("--hard-fraction", type=float, default=0.5, help="share of each round's starts from the hard corner")
    ap.add_argument("--epochs", type=int, default=3, help="passes over the aggregated data per round")
    ap.add_argument("--lr", type=float, default=3e-4)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    r = distill(a.teacher, a.student, a.out, a.rounds, a.envs, a.steps, a.hard_fraction, a.epochs, a.lr, seed=a.seed)
    print_distill(r, a.out)
    return r


if __name__ == "__main__":
    main()

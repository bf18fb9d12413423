"""Arm training throughput, before and after, side by side in one run (issue 24).

    robolearn bench arm-throughput [--rounds 5] [--iterations 2] [--variant NAME=CONFIG[;override...]]
    python -m benchmarks.arm_throughput ...

Per variant (a config plus overrides; default: ``before`` = ``configs/arm_push.yaml`` as it
was, ``after`` = ``configs/arm_push_lift.yaml``), three rates in env steps per second of
wall time, on the variant's own ``env.arm.num_threads`` and ``train.torch_threads``:

* ``raw``: ``mujoco.batch.Batch.step(nstep=substeps)`` alone on the variant's model, number
  of simulations and threads, from the env's states (copied before each window);
* ``env``: ``ArmVecEnv.step`` with uniform random actions (IK, privileged forces, physics,
  reward, resets, both observation views), and ``env / raw`` (the bar: >= 0.8);
* ``train``: whole PPO iterations (rollout + values + GAE + update), after a warm-up one.

The windows of all variants are interleaved round by round (the machine is shared: a
slow phase hits every variant alike); each figure is the median over ``--rounds``, and
the ratio ``after / before`` is the median of the per-round ratios. CPU seconds of the
process are reported too (``*_per_cpu_s``: with 2 threads they count both).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
from pathlib import Path
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

DEFAULT_VARIANTS = {
    # configs/arm_push.yaml before issue 24 (its physics and threads; the task is push)
    "before": ("configs/arm_push.yaml", ["env.arm.timestep=0.004", "env.arm.substeps=10", "env.arm.num_threads=1",
                                         "train.torch_threads=1", "network.critic_hidden=[128,128]"]),
    "after": ("configs/arm_push_lift.yaml", []),
}


@dataclass
class Variant:
    name: str
    config: str
    overrides: list[str]
    env: Any = None
    algo: Any = None
    raw: Any = None
    torch_threads: int = 1
    rates: dict[str, list[float]] = field(default_factory=dict)

    def add(self, key: str, value: float) -> None:
        self.rates.setdefault(key, []).append(value)


def parse_variant(s: str) -> tuple[str, str, list[str]]:
    name, eq, rest = s.partition("=")
    if not eq or not name or not rest:
        raise ValueError(f"--variant {s!r}: write NAME=CONFIG[;override;...], "
                         "e.g. 'fast=configs/arm_push_lift.yaml;env.arm.num_threads=1'")
    config, *ov = rest.split(";")
    return name, config, [o for o in ov if o]


def build(v: Variant, extra: list[str]) -> None:
    import torch
    from mujoco.batch import Batch

    from robolearn.config import load_config
    from robolearn.envs import make_env
    from robolearn.ppo import PPO

    cfg = load_config(v.config, ["curriculum.teacher=none"] + v.overrides + extra)
    v.torch_threads = cfg.train.torch_threads
    torch.set_num_threads(v.torch_threads)
    v.env = make_env(cfg, num_envs=cfg.env.num_envs, seed=0)
    v.algo = PPO(v.env, cfg.ppo, cfg.network, seed=0)
    v.algo.iterate()  # warm-up: the env is mid-episode, the network initialized
    v.raw = Batch(v.env.model, v.env.num_envs, nthread=v.env.batch.nthread, persistent=True)


def _window(fn: Any, calls: int) -> tuple[float, float]:
    fn()
    w0, c0 = time.perf_counter(), time.process_time()
    for _ in range(calls):
        fn()
    return time.perf_counter() - w0, time.process_time() - c0


def measure_round(v: Variant, env_calls: int, iterations: int, rng: np.random.Generator) -> None:
    import mujoco
    import torch

    torch.set_num_threads(v.torch_threads)
    env, n = v.env, v.env.num_envs
    sub = env.config.substeps
    acts = rng.uniform(-1, 1, (env_calls + 1, n, env.action_dim)).astype(np.float32)
    k = [0]

    def env_step() -> None:
        env.step(acts[k[0] % len(acts)])
        k[0] += 1

    v.raw.state[:] = env.batch.state
    v.raw.forward()
    w, c = _window(lambda: v.raw.step(nstep=sub, stage=mujoco.mjtStage.mjSTAGE_VEL), env_calls)
    v.add("raw", n * env_calls / w)
    v.add("raw_cpu", n * env_calls / c)
    w, c = _window(env_step, env_calls)
    v.add("env", n * env_calls / w)
    v.add("env_cpu", n * env_calls / c)
    v.add("env_over_raw", v.rates["env"][-1] / v.rates["raw"][-1])
    steps = v.algo.cfg.rollout_steps * n
    w0, c0 = time.perf_counter(), time.process_time()
    for _ in range(iterations):
        v.algo.iterate()
    v.add("train", steps * iterations / (time.perf_counter() - w0))
    v.add("train_cpu", steps * iterations / (time.process_time() - c0))


def describe(v: Variant) -> dict:
    e = v.env
    cfg = v.algo.cfg
    return {"config": v.config, "overrides": v.overrides, "task": e.task, "num_envs": e.num_envs,
            "timestep_s": float(e.model.opt.timestep), "substeps": e.config.substeps,
            "control_hz": round(1.0 / (e.model.opt.timestep * e.config.substeps), 3),
            "mujoco_threads": e.batch.nthread, "torch_threads": v.torch_threads,
            "rollout_steps": cfg.rollout_steps, "epochs": cfg.epochs, "minibatches": cfg.minibatches,
            "critic_params": sum(p.numel() for p in v.algo.model.critic.parameters()),
            "actor_params": sum(p.numel() for p in v.algo.model.actor.parameters())}


def run_arm_throughput(rounds: int = 5, iterations: int = 2, env_calls: int = 40, variants: list[str] | None = None,
                       extra: list[str] | None = None, json_out: str | Path | None = None) -> dict:
    """Measure every variant (``NAME=CONFIG[;override;...]``; default: before and after),
    interleaved round by round; returns the result dict (also written to ``json_out``).
    Raises ValueError on a bad argument."""
    if rounds < 1 or iterations < 1 or env_calls < 1:
        raise ValueError("--rounds, --iterations and --env-calls must be >= 1")
    specs = [parse_variant(s) for s in variants] if variants else [
        (k, c, list(o)) for k, (c, o) in DEFAULT_VARIANTS.items()]
    vs = [Variant(name, config, ov) for name, config, ov in specs]
    for v in vs:
        build(v, list(extra or []))
    rng = np.random.default_rng(0)
    for r in range(rounds):
        for v in vs:
            measure_round(v, env_calls, iterations, rng)
        print(f"round {r + 1}/{rounds}: " + "; ".join(
            f"{v.name} train {v.rates['train'][-1]:,.0f} env {v.rates['env'][-1]:,.0f} raw {v.rates['raw'][-1]:,.0f}"
            for v in vs), flush=True)
    out: dict = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                 "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs",
                 "rounds": rounds, "iterations": iterations, "env_calls": env_calls,
                 "variants": {}}
    for v in vs:
        med = {k: float(np.median(x)) for k, x in v.rates.items()}
        out["variants"][v.name] = describe(v) | {
            "raw_env_steps_per_s": round(med["raw"]), "env_steps_per_s": round(med["env"]),
            "env_over_raw": round(med["env_over_raw"], 3), "train_env_steps_per_s": round(med["train"]),
            "raw_env_steps_per_cpu_s": round(med["raw_cpu"]), "env_steps_per_cpu_s": round(med["env_cpu"]),
            "train_env_steps_per_cpu_s": round(med["train_cpu"]),
            "bar_env_ge_80pct_raw": bool(med["env_over_raw"] >= 0.8)}
    base = vs[0]
    for v in vs[1:]:
        ratios = np.array(v.rates["train"]) / np.array(base.rates["train"])
        out["variants"][v.name][f"train_speedup_vs_{base.name}"] = round(float(np.median(ratios)), 2)
        out["variants"][v.name][f"train_speedup_vs_{base.name}_per_round"] = [round(float(x), 2) for x in ratios]
    if json_out:
        with open(json_out, "w") as f:
            json.dump(out, f, indent=1)
    return out


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5, help="interleaved rounds (medians are reported)")
    ap.add_argument("--iterations", type=int, default=2, help="PPO iterations per variant and round")
    ap.add_argument("--env-calls", type=int, default=40, help="env (and raw) steps per window")
    ap.add_argument("--variant", action="append", default=[],
                    help="NAME=CONFIG[;override;...] (repeatable; default: before and after)")
    ap.add_argument("--set", action="append", default=[], dest="extra",
                    help="override applied to every variant, e.g. env.num_envs=64")
    ap.add_argument("--json", help="also write the result to this file")
    args = ap.parse_args(argv)
    try:
        out = run_arm_throughput(args.rounds, args.iterations, args.env_calls, args.variant, args.extra, args.json)
    except ValueError as e:
        raise SystemExit(f"error: {e}") from None
    print(json.dumps(out, indent=1))
    return out


if __name__ == "__main__":
    main()

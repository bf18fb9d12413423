"""Manipulation env throughput against raw ``mujoco.batch`` physics on the same model.

    python -m benchmarks.manipulation [--envs 256] [--threads 1,2] [--seconds 2] [--repeats 5]

Env rate: full ``ArmVecEnv.step`` calls (IK, privileged forces, 10 physics substeps,
reward, termination, auto-reset, both observation views with noise), counted in physics
steps (env steps x substeps) so that it compares with the raw rate. Raw rate:
``Batch.step(nstep=substeps)`` alone on the same model, number of simulations, thread
count and states (copied from the env after its reset), once as a default batch
(not persistent, no stage) and once configured as the env's (persistent, stage VEL).
The bar (issue 7) is env >= 80 % of raw. "hold" steps the env with zero actions (the arm
holds its pose: the same physics as the raw batch); "random" with uniform random actions
(the arm moves, touches the box and table: more contacts, more physics per step).
Each figure is the best of ``--repeats`` windows, the measurements interleaved.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import mujoco
import numpy as np


def _rate(fn, items: int, seconds: float) -> float:
    calls, t0 = 0, time.perf_counter()
    while True:
        fn()
        calls += 1
        dt = time.perf_counter() - t0
        if dt >= seconds:
            return calls * items / dt


def measure(num_envs: int, threads: int, seconds: float, repeats: int) -> dict:
    from mujoco.batch import Batch

    from sims.manipulation import ArmVecEnv

    env = ArmVecEnv(num_envs, seed=0, num_threads=threads, episode_steps=10**9)
    env.reset()
    sub = env.config.substeps
    zero = np.zeros((num_envs, 8), np.float32)
    rng = np.random.default_rng(0)
    rand = rng.uniform(-1, 1, (64, num_envs, 8)).astype(np.float32)
    k = [0]

    def env_random():
        env.step(rand[k[0] % 64])
        k[0] += 1

    raws = {}
    for name, persistent, stage in (("raw_default", False, mujoco.mjtStage.mjSTAGE_NONE),
                                    ("raw_as_env", True, mujoco.mjtStage.mjSTAGE_VEL)):
        b = Batch(env.model, num_envs, nthread=threads, persistent=persistent)
        b.state[:] = env.batch.state
        b.forward()
        raws[name] = (b, stage)

    fns = {
        "env_hold": (lambda: env.step(zero), num_envs * sub),
        "env_random": (env_random, num_envs * sub),
    }
    for name, (b, stage) in raws.items():
        fns[name] = (lambda b=b, stage=stage: b.step(nstep=sub, stage=stage), num_envs * sub)
    best = {name: 0.0 for name in fns}
    for fn, _ in fns.values():
        fn()  # warm-up
    # the env with zero actions and the raw batches start from the same states
    env.reset(seed=0)
    for b, _ in raws.values():
        b.state[:] = env.batch.state
    for _ in range(repeats):
        for name, (fn, items) in fns.items():
            if name == "env_random":
                continue
            best[name] = max(best[name], _rate(fn, items, seconds / repeats))
    env.reset(seed=0)
    for _ in range(repeats):
        best["env_random"] = max(best["env_random"], _rate(env_random, num_envs * sub, seconds / repeats))
    raw = max(best["raw_default"], best["raw_as_env"])
    return {
        "num_envs": num_envs,
        "threads": threads,
        "substeps": sub,
        **{f"{k}_physics_steps_per_s": round(v) for k, v in best.items()},
        "env_steps_per_s_hold": round(best["env_hold"] / sub),
        "env_steps_per_s_random": round(best["env_random"] / sub),
        "env_over_raw_hold": round(best["env_hold"] / raw, 3),
        "env_over_raw_random": round(best["env_random"] / raw, 3),
        "bar_env_ge_80pct_raw": bool(best["env_hold"] >= 0.8 * raw),
    }


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--envs", default="256", help="comma-separated numbers of envs")
    ap.add_argument("--threads", default="1,2", help="comma-separated thread counts")
    ap.add_argument("--seconds", type=float, default=2.0, help="timed seconds per figure")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--json", help="also write the results to this file")
    args = ap.parse_args(argv)
    rows = []
    for n in (int(x) for x in args.envs.split(",")):
        for t in (int(x) for x in args.threads.split(",")):
            row = measure(n, t, args.seconds, args.repeats)
            rows.append(row)
            print(json.dumps(row), flush=True)
    meta = {"machine": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
            "mujoco": mujoco.__version__}
    print(json.dumps(meta))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"meta": meta, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()

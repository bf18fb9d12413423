"""Simulator throughput: full transitions/s and bare RK4 steps/s.

    python -m benchmarks.sim [--envs 1,1024,16384] [--seconds 1.0] [--backend cpu|cuda]

A full transition is what a learner pays per sample: action latency buffer,
physics (RK4), reward, termination, auto-reset and both observation views. The
bare physics rate is RK4 integration alone. Each figure is the best of ``--repeats``
timed windows (the first call, which compiles or loads the kernels, is excluded).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import numpy as np


def _best_rate(fn, items_per_call: int, seconds: float, repeats: int) -> float:
    fn()  # warm-up: JIT compile / cache load
    best = 0.0
    for _ in range(repeats):
        calls = 0
        t0 = time.perf_counter()
        while True:
            fn()
            calls += 1
            dt = time.perf_counter() - t0
            if dt >= seconds / repeats:
                break
        best = max(best, calls * items_per_call / dt)
    return best


def full_transitions(num_envs: int, backend: str, seconds: float, repeats: int) -> float:
    from sims.quadrotor import QuadrotorVecEnv

    env = QuadrotorVecEnv(num_envs, seed=0, backend=backend)
    env.reset()
    rng = np.random.default_rng(0)
    actions = rng.uniform(-1, 1, (num_envs, 4)).astype(np.float32)
    if backend == "cuda":
        from numba import cuda

        actions = cuda.to_device(actions)

        def fn():
            env.step(actions)
            cuda.synchronize()
    else:
        def fn():
            env.step(actions)
    return _best_rate(fn, num_envs, seconds, repeats)


def bare_physics(num_envs: int, backend: str, seconds: float, repeats: int, inner: int = 100) -> float:
    from sims.quadrotor import QuadrotorVecEnv
    from sims.quadrotor.params import hover_rpm

    env = QuadrotorVecEnv(num_envs, seed=0)
    env.reset()
    state = env.state.copy()
    cmd = np.full((num_envs, 4), hover_rpm(), np.float32)
    ext = np.zeros((num_envs, 6), np.float32)
    ep, cfg = env._a["ep"], env._a["cfg"]
    if backend == "cuda":
        from numba import cuda

        from sims.quadrotor import kernels_cuda as kg

        d = [cuda.to_device(x) for x in (state, cmd, ep, ext, cfg)]

        def fn():
            kg.physics_only[kg.blocks(num_envs), kg.THREADS](*d, np.float32(0.01), inner)
            cuda.synchronize()
    else:
        from sims.quadrotor import kernels_cpu as kc

        work = kc.scratch(num_envs)

        def fn():
            kc.physics_only(state, cmd, ep, ext, cfg, 0.01, inner, work)
    return _best_rate(fn, num_envs * inner, seconds, repeats)


def _si(rate: float) -> str:
    return f"{rate / 1e6:8.3f} M" if rate >= 1e6 else f"{rate / 1e3:8.1f} k"


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--envs", default="1,1024,16384", help="comma-separated env counts")
    ap.add_argument("--seconds", type=float, default=3.0, help="timed seconds per figure")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--backend", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    try:
        counts = [int(x) for x in args.envs.split(",")]
    except ValueError:
        ap.error(f"--envs must be comma-separated integers, got {args.envs!r}")
    import numba

    result = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "threads": numba.get_num_threads(),
        "backend": args.backend,
        "full_transitions_per_s": {},
    }
    for n in counts:
        result["full_transitions_per_s"][n] = full_transitions(n, args.backend, args.seconds, args.repeats)
    n_bare = max(counts)
    result["bare_rk4_steps_per_s"] = {n_bare: bare_physics(n_bare, args.backend, args.seconds, args.repeats)}
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"backend={args.backend} threads={result['threads']} ({result['machine']})")
        for n, r in result["full_transitions_per_s"].items():
            print(f"  full transitions/s, {n:>6} envs: {_si(r)}")
        for n, r in result["bare_rk4_steps_per_s"].items():
            print(f"  bare RK4 steps/s,   {n:>6} envs: {_si(r)}")
    return result


if __name__ == "__main__":
    main()

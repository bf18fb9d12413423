"""Simulator throughput: full transitions/s and bare RK4 steps/s.

    python -m benchmarks.sim [--envs 1,1024,16384] [--seconds 1.0] [--backend cpu|cuda]
                             [--reference] [--cpu-time]

A full transition is what a learner pays per sample: action latency buffer,
physics (RK4), reward, termination, auto-reset and both observation views. The
bare physics rate is RK4 integration alone. Each figure is the best of ``--repeats``
timed windows (the first call, which compiles or loads the kernels, is excluded).

``--reference`` also times the CPU kernels' scalar reference (physics.py one env at a
time, the CPU kernel before vectorization), alternating windows with the production
kernel so that both see the same machine load. ``--cpu-time`` divides by the process's
CPU time instead of wall time: on a machine shared with other jobs this is the rate
per core actually used (with several threads it sums all threads' time).

From Python: ``run_sim_bench(envs, seconds, repeats, backend, reference, cpu_time) -> dict``
and ``print_sim_bench(result, as_json)``; both commands above call these two.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections.abc import Sequence

import numpy as np


def _best_rates(fns, items_per_call: int, seconds: float, repeats: int, cpu_time: bool = False) -> list:
    """Best rate of each function over ``repeats`` windows, the functions' windows alternating."""
    clock = time.process_time if cpu_time else time.perf_counter
    for fn in fns:
        fn()  # warm-up: JIT compile / cache load
    best = [0.0] * len(fns)
    for _ in range(repeats):
        for k, fn in enumerate(fns):
            calls = 0
            t0 = time.perf_counter()
            c0 = clock()
            while True:
                fn()
                calls += 1
                if time.perf_counter() - t0 >= seconds / repeats:
                    break
            best[k] = max(best[k], calls * items_per_call / max(clock() - c0, 1e-9))
    return best


def _best_rate(fn, items_per_call: int, seconds: float, repeats: int, cpu_time: bool = False) -> float:
    return _best_rates([fn], items_per_call, seconds, repeats, cpu_time)[0]


def _full_fn(num_envs: int, backend: str, kernel: str = "simd"):
    from types import SimpleNamespace

    from sims.quadrotor import QuadrotorVecEnv

    env = QuadrotorVecEnv(num_envs, seed=0, backend=backend)
    if kernel == "scalar":  # the scalar reference kernel behind the same env
        from sims.quadrotor import kernels_cpu as kc

        env._k = SimpleNamespace(step=kc.step_scalar, reset=kc.reset, observe=kc.observe)
        env._work = kc.scratch_scalar(num_envs)
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
    return fn


def full_transitions(num_envs: int, backend: str, seconds: float, repeats: int,
                     cpu_time: bool = False) -> float:
    return _best_rate(_full_fn(num_envs, backend), num_envs, seconds, repeats, cpu_time)


def _bare_fn(num_envs: int, backend: str, inner: int, kernel: str = "simd"):
    from sims.quadrotor import QuadrotorVecEnv
    env = QuadrotorVecEnv(num_envs, seed=0)
    env.reset()
    state = env.state.copy()
    cmd = np.full((num_envs, 4), env.config.vehicle_params.hover_rpm(), np.float32)
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

        if kernel == "scalar":
            work, kern = kc.scratch_scalar(num_envs), kc.physics_only_scalar
        else:
            work, kern = kc.scratch(num_envs), kc.physics_only

        def fn():
            kern(state, cmd, ep, ext, cfg, 0.01, inner, work)
    return fn


def bare_physics(num_envs: int, backend: str, seconds: float, repeats: int, inner: int = 100,
                 cpu_time: bool = False) -> float:
    return _best_rate(_bare_fn(num_envs, backend, inner), num_envs * inner, seconds, repeats, cpu_time)


def _si(rate: float) -> str:
    return f"{rate / 1e6:8.3f} M" if rate >= 1e6 else f"{rate / 1e3:8.1f} k"


REFERENCE_NEEDS_CPU = "--reference compares the CPU kernels; use it with --backend cpu"


def parse_envs(text: str) -> list[int]:
    """``"1,1024,16384"`` -> ``[1, 1024, 16384]``; ValueError naming ``--envs`` otherwise."""
    try:
        return [int(x) for x in text.split(",")]
    except ValueError:
        raise ValueError(f"--envs must be comma-separated integers, got {text!r}") from None


def run_sim_bench(envs: Sequence[int] = (1, 1024, 16384), seconds: float = 3.0, repeats: int = 5,
                  backend: str = "cpu", reference: bool = False, cpu_time: bool = False) -> dict:
    """Full transitions/s at each env count in ``envs`` and bare RK4 steps/s at the largest; each
    the best of ``repeats`` windows of ``seconds / repeats`` s (per second of process CPU time
    with ``cpu_time``). ``reference`` also times the scalar reference kernel, windows alternating.

    Raises ValueError for ``reference`` with a backend other than ``cpu``.
    """
    import numba

    if reference and backend != "cpu":
        raise ValueError(REFERENCE_NEEDS_CPU)
    result: dict = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "threads": numba.get_num_threads(),
        "backend": backend,
        "clock": "process CPU time" if cpu_time else "wall",
        "full_transitions_per_s": {},
    }
    if reference:
        result["reference_full_transitions_per_s"] = {}
    # with --reference each figure gets the same timed seconds per kernel
    secs = seconds * (2 if reference else 1)
    counts = list(envs)
    for n in counts:
        fns = [_full_fn(n, backend)]
        if reference:
            fns.append(_full_fn(n, backend, "scalar"))
        rates = _best_rates(fns, n, secs, repeats, cpu_time)
        result["full_transitions_per_s"][n] = rates[0]
        if reference:
            result["reference_full_transitions_per_s"][n] = rates[1]
    n_bare, inner = max(counts), 100
    fns = [_bare_fn(n_bare, backend, inner)]
    if reference:
        fns.append(_bare_fn(n_bare, backend, inner, "scalar"))
    rates = _best_rates(fns, n_bare * inner, secs, repeats, cpu_time)
    result["bare_rk4_steps_per_s"] = {n_bare: rates[0]}
    if reference:
        result["reference_bare_rk4_steps_per_s"] = {n_bare: rates[1]}
    return result


def print_sim_bench(result: dict, as_json: bool = False) -> None:
    """Print :func:`run_sim_bench`'s result: as JSON, or one line per figure (with the ratio to
    the scalar reference where it was timed)."""
    if as_json:
        print(json.dumps(result, indent=2))
        return
    print(f"backend={result['backend']} threads={result['threads']} ({result['machine']}), "
          f"per second of {result['clock']}")
    ref = result.get("reference_full_transitions_per_s", {})
    for n, r in result["full_transitions_per_s"].items():
        extra = f"   scalar reference {_si(ref[n])}  (x{r / ref[n]:.2f})" if n in ref else ""
        print(f"  full transitions/s, {n:>6} envs: {_si(r)}{extra}")
    ref = result.get("reference_bare_rk4_steps_per_s", {})
    for n, r in result["bare_rk4_steps_per_s"].items():
        extra = f"   scalar reference {_si(ref[n])}  (x{r / ref[n]:.2f})" if n in ref else ""
        print(f"  bare RK4 steps/s,   {n:>6} envs: {_si(r)}{extra}")


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--envs", default="1,1024,16384", help="comma-separated env counts")
    ap.add_argument("--seconds", type=float, default=3.0, help="timed seconds per figure")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--backend", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--reference", action="store_true",
                    help="also time the scalar reference CPU kernel (windows alternate with the SIMD one)")
    ap.add_argument("--cpu-time", action="store_true", help="rates per second of process CPU time")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    try:
        counts = parse_envs(args.envs)
    except ValueError as e:
        ap.error(str(e))
    if args.reference and args.backend != "cpu":
        ap.error(REFERENCE_NEEDS_CPU)
    result = run_sim_bench(counts, args.seconds, args.repeats, args.backend, args.reference, args.cpu_time)
    print_sim_bench(result, args.json)
    return result


if __name__ == "__main__":
    main()

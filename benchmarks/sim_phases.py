"""Where the SIMD CPU step spends its time: cycles per env in each phase of a chunk.

    python -m benchmarks.sim_phases [--envs 16384] [--steps 200] [--hover]

Compiles an instrumented copy of ``kernels_cpu._simd_chunk``: a time-stamp-counter read
(``llvm.readcyclecounter``, rdtsc on x86) at each ``# --- phase`` comment of its source,
accumulated per chunk. One thread, 1 process; chunks whose total exceeds 1.5x the median
(preempted by another process) are dropped, so the figures hold on a loaded machine
better than wall time does. TSC cycles tick at the nominal clock, not the core's.
The instrumented copy is compiled without the cache (a minute or more).
"""

from __future__ import annotations

import argparse
import inspect
import time

import numpy as np


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--envs", type=int, default=16384)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--hover", action="store_true", help="hover actions (few resets) instead of uniform random")
    args = ap.parse_args(argv)

    import numba
    from llvmlite import ir
    from numba import njit, types
    from numba.core.cgutils import get_or_insert_function
    from numba.extending import intrinsic

    from sims.quadrotor import QuadrotorVecEnv
    from sims.quadrotor import kernels_cpu as kc

    numba.set_num_threads(1)

    @intrinsic
    def rdtsc(typingctx):
        def codegen(context, builder, signature, args):
            fn = get_or_insert_function(builder.module, ir.FunctionType(ir.IntType(64), []),
                                        "llvm.readcyclecounter")
            return builder.call(fn, [])
        return types.uint64(), codegen

    src = inspect.getsource(kc._simd_chunk.py_func)
    out, names = [], []
    for line in src.splitlines():
        if line.startswith("    # --- "):
            k = len(names)
            out.append(f"    t1 = rdtsc(); cyc[ci, {k - 1}] = t1 - t0; t0 = t1" if k else "    t0 = rdtsc()")
            names.append(line.strip("# -").split(" (")[0].split(":")[0][:40])
        out.append(line)
    out.append(f"    t1 = rdtsc(); cyc[ci, {len(names) - 1}] = t1 - t0")
    body = "\n".join(out).replace("def _simd_chunk(", "def _chunk_timed(cyc, ci, ")
    body = "\n".join(l for l in body.splitlines() if not l.startswith("@njit"))
    g = dict(vars(kc), rdtsc=rdtsc)
    exec(body, g)
    opts = dict(kc._SOPTS, cache=False)
    chunk = njit(_nrt=False, **opts)(g["_chunk_timed"])

    @njit(_nrt=False, **opts)
    def step_timed(cyc, actions, state, hist, ep, vec, lo, hi, rng, steps, acc, cfg,
                   obs_p, obs_c, fin_p, fin_c, reward, flags, ep_out, ep_params, work):
        n = state.shape[0]
        nb = kc._num_blocks(n)
        ci = 0
        for blk in range(nb):
            start, stop = kc._block(n, nb, blk)
            for c0 in range(start, stop, kc.W):
                chunk(cyc, ci, c0, min(kc.W, stop - c0), actions, state, hist, ep, vec, lo, hi, rng, steps,
                      acc, cfg, obs_p, obs_c, fin_p, fin_c, reward, flags, ep_out, ep_params, work[blk])
                ci += 1

    keys = ["state", "hist", "ep", "vec", "lo", "hi", "rng", "steps", "acc", "cfg", "obs_p", "obs_c",
            "fin_p", "fin_c", "reward", "flags", "ep_out", "ep_params"]
    n = args.envs
    env = QuadrotorVecEnv(n, seed=0)
    env.reset()
    actions = np.random.default_rng(0).uniform(-1, 1, (n, 4)).astype(np.float32)
    if args.hover:
        actions[:] = env._a["hist"][:, 0, :]  # each env's hover action (the reset fills the history with it)
    arrays = [env._a[k] for k in keys]
    work = kc.scratch(n)
    nb = kc.num_blocks(n)
    nchunks = sum(-(-((b + 1) * n // nb - b * n // nb) // kc.W) for b in range(nb))
    cyc = np.zeros((args.steps, nchunks, len(names)), np.uint64)
    t_compile = time.process_time()
    step_timed(cyc[0], actions, *arrays, work)
    t_compile = time.process_time() - t_compile
    dones = 0
    t0 = time.process_time()
    for r in range(args.steps):
        step_timed(cyc[r], actions, *arrays, work)
        dones += int(env._a["flags"][:, :2].sum())
    cpu = time.process_time() - t0
    total = cyc.sum(axis=2).astype(np.float64)
    keep = total < 1.5 * np.median(total)
    per_env = [float(cyc[:, :, p][keep].mean()) / kc.W for p in range(len(names))]
    tot = sum(per_env)
    print(f"{n} envs, {'hover' if args.hover else 'random'} actions: {args.steps * n / cpu / 1e6:.2f} M steps "
          f"per CPU-second instrumented; {dones / (args.steps * n) * 100:.1f} % of envs reset per step; "
          f"{keep.mean() * 100:.0f} % of chunks kept (compile {t_compile:.0f} s)")
    for nm, c in zip(names, per_env):
        print(f"  {nm:40s} {c:7.1f} TSC cycles/env  {c / tot * 100:5.1f} %")
    print(f"  {'total':40s} {tot:7.1f}")
    return {"phases": dict(zip(names, per_env)), "total_cycles_per_env": tot}


if __name__ == "__main__":
    main()

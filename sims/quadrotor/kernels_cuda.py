"""CUDA kernels (numba-cuda): the same physics source as the CPU kernels, one thread per env.

Runs on a GPU, or on the CPU under ``NUMBA_ENABLE_CUDASIM=1`` (how CI tests it).
"""

from __future__ import annotations

from numba import cuda, float32

from .physics import SCRATCH, build

_f = build(cuda.jit(device=True))
THREADS = 128
# numba resolves module-level names only, so unpack the namespace.
_step_env, _reset_env, _observe, _rk4 = _f.step_env, _f.reset_env, _f.observe, _f.rk4


@cuda.jit
def step(actions, state, hist, ep, vec, lo, hi, rng, steps, acc, cfg,
         obs_p, obs_c, fin_p, fin_c, reward, flags, ep_out, ep_params):
    i = cuda.grid(1)
    if i < state.shape[0]:
        work = cuda.local.array(SCRATCH, float32)
        _step_env(i, actions, state, hist, ep, vec, lo, hi, rng, steps, acc, cfg,
                    obs_p, obs_c, fin_p, fin_c, reward, flags, ep_out, ep_params, work)


@cuda.jit
def reset(mask, state, hist, ep, vec, lo, hi, rng, steps, acc, cfg):
    i = cuda.grid(1)
    if i < state.shape[0] and mask[i]:
        _reset_env(i, state, hist, ep, vec, lo, hi, rng, steps, acc, cfg)


@cuda.jit
def observe(state, hist, ep, vec, rng, steps, cfg, obs_p, obs_c):
    i = cuda.grid(1)
    if i < state.shape[0]:
        _observe(i, state, hist, ep, vec, rng, steps, cfg, obs_p, obs_c)


@cuda.jit
def physics_only(state, cmd, ep, ext, cfg, h, n_steps):
    i = cuda.grid(1)
    if i < state.shape[0]:
        work = cuda.local.array(SCRATCH, float32)
        for _ in range(n_steps):
            _rk4(state[i], cmd[i], ep[i], ext[i], cfg, h, work)


def blocks(n: int) -> int:
    return (n + THREADS - 1) // THREADS

"""CPU kernels: the shared physics compiled with numba, parallel over environments."""

from __future__ import annotations

from numba import njit, prange

from .physics import SCRATCH, build

# No nnan/ninf fast-math flags: the kernels must see NaN/inf to reset diverged envs.
_FASTMATH = {"nsz", "arcp", "contract", "afn", "reassoc"}
_OPTS = dict(cache=True, fastmath=_FASTMATH, nogil=True)

# Everything inlined at numba IR level: array views passed between numba functions
# otherwise cost atomic refcounts that all threads share (measured 2-3x slower).
_f = build(njit(inline="always", **_OPTS))
derivative = _f.derivative
rk4 = _f.rk4
# numba resolves module-level names only, so unpack the namespace.
_step_env, _reset_env, _observe, _rk4 = _f.step_env, _f.reset_env, _f.observe, _f.rk4


@njit(parallel=True, **_OPTS)
def step(actions, state, hist, ep, vec, lo, hi, rng, steps, acc, cfg,
         obs_p, obs_c, fin_p, fin_c, reward, flags, ep_out, ep_params, work):
    """Advance every environment by one control step (see physics.step_env)."""
    for i in prange(state.shape[0]):
        _step_env(i, actions, state, hist, ep, vec, lo, hi, rng, steps, acc, cfg,
                    obs_p, obs_c, fin_p, fin_c, reward, flags, ep_out, ep_params, work[i])


@njit(parallel=True, **_OPTS)
def reset(mask, state, hist, ep, vec, lo, hi, rng, steps, acc, cfg):
    """Reset the environments where ``mask`` is true."""
    for i in prange(state.shape[0]):
        if mask[i]:
            _reset_env(i, state, hist, ep, vec, lo, hi, rng, steps, acc, cfg)


@njit(parallel=True, **_OPTS)
def observe(state, hist, ep, vec, rng, steps, cfg, obs_p, obs_c):
    """Write both observation views for every environment."""
    for i in prange(state.shape[0]):
        _observe(i, state, hist, ep, vec, rng, steps, cfg, obs_p, obs_c)


@njit(parallel=True, **_OPTS)
def physics_only(state, cmd, ep, ext, cfg, h, n_steps, work):
    """Bare RK4 integration (no reward/obs/reset), for benchmarks and physics tests."""
    for i in prange(state.shape[0]):
        for _ in range(n_steps):
            _rk4(state[i], cmd[i], ep[i], ext[i], cfg, h, work[i])


def scratch(n: int):
    import numpy as np

    return np.zeros((n, SCRATCH), dtype=np.float32)

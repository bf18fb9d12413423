"""CPU kernels: the shared physics compiled with numba, parallel over environments."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
from numba import njit, prange

from .physics import SCRATCH, build


def _drop_stale_cache() -> None:
    """Delete this module's numba cache when physics.py or params.py changed.

    numba keys its cache on this file only, but the kernels inline code from the
    other two: an edit there would otherwise keep running the old compiled physics.
    """
    here = Path(__file__).resolve().parent
    digest = hashlib.sha256(b"".join((here / f).read_bytes()
                                     for f in ("physics.py", "params.py", "kernels_cpu.py"))).hexdigest()
    cache = here / "__pycache__"
    stamp = cache / "kernels_cpu.physics.sha256"
    try:
        if stamp.read_text() == digest:
            return
    except OSError:
        pass
    try:
        cache.mkdir(exist_ok=True)
        for f in cache.glob("kernels_cpu.*.nb[ic]"):
            f.unlink()
        stamp.write_text(digest)
    except OSError:
        pass  # read-only install: numba then compiles in memory or uses its own cache dir


_drop_stale_cache()

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

# The parallel kernels hand contiguous blocks of environments to serial, non-inlined
# block functions. The prange body is then a single call: numba's parfor passes never
# see the physics. (With the physics inlined into the prange body, numba 0.68's parfor
# lowering reordered stores in observe(): the critic view's last entries were written
# before the step counter advanced. The serial compile was correct.) One call per block
# also keeps the per-call array refcounting off the per-environment path.
# The blocks compile without the numba runtime (_nrt=False): they never allocate, and
# without it the array views taken per env (state[i], work[i]) cost no atomic
# reference counting, which 2 threads would otherwise contend on (measured 1.5-2x).
# Blocks of >= 16 envs keep the call overhead below 1 %; up to 256 blocks balance the
# load on many-core machines (episodes reset at different times). Not derived from
# numba.get_num_threads(): that makes the kernels uncachable (a ctypes global).
_MIN_BLOCK = 16
_MAX_BLOCKS = 256


@njit(**_OPTS)
def _num_blocks(n):
    return max(1, min(_MAX_BLOCKS, n // _MIN_BLOCK))


@njit(**_OPTS)
def _block(n, nblocks, b):
    return b * n // nblocks, (b + 1) * n // nblocks


@njit(_nrt=False, **_OPTS)
def _step_block(start, stop, actions, state, hist, ep, vec, lo, hi, rng, steps, acc, cfg,
                obs_p, obs_c, fin_p, fin_c, reward, flags, ep_out, ep_params, work):
    for i in range(start, stop):
        _step_env(i, actions, state, hist, ep, vec, lo, hi, rng, steps, acc, cfg,
                  obs_p, obs_c, fin_p, fin_c, reward, flags, ep_out, ep_params, work[i])


@njit(parallel=True, **_OPTS)
def step(actions, state, hist, ep, vec, lo, hi, rng, steps, acc, cfg,
         obs_p, obs_c, fin_p, fin_c, reward, flags, ep_out, ep_params, work):
    """Advance every environment by one control step (see physics.step_env)."""
    n = state.shape[0]
    nb = _num_blocks(n)
    for b in prange(nb):
        lo_i, hi_i = _block(n, nb, b)
        _step_block(lo_i, hi_i, actions, state, hist, ep, vec, lo, hi, rng, steps, acc, cfg,
                    obs_p, obs_c, fin_p, fin_c, reward, flags, ep_out, ep_params, work)


@njit(_nrt=False, **_OPTS)
def _reset_block(start, stop, mask, state, hist, ep, vec, lo, hi, rng, steps, acc, cfg):
    for i in range(start, stop):
        if mask[i]:
            _reset_env(i, state, hist, ep, vec, lo, hi, rng, steps, acc, cfg)


@njit(parallel=True, **_OPTS)
def reset(mask, state, hist, ep, vec, lo, hi, rng, steps, acc, cfg):
    """Reset the environments where ``mask`` is true."""
    n = state.shape[0]
    nb = _num_blocks(n)
    for b in prange(nb):
        lo_i, hi_i = _block(n, nb, b)
        _reset_block(lo_i, hi_i, mask, state, hist, ep, vec, lo, hi, rng, steps, acc, cfg)


@njit(_nrt=False, **_OPTS)
def _observe_block(start, stop, state, hist, ep, vec, rng, steps, cfg, obs_p, obs_c):
    for i in range(start, stop):
        _observe(i, state, hist, ep, vec, rng, steps, cfg, obs_p, obs_c)


@njit(parallel=True, **_OPTS)
def observe(state, hist, ep, vec, rng, steps, cfg, obs_p, obs_c):
    """Write both observation views for every environment."""
    n = state.shape[0]
    nb = _num_blocks(n)
    for b in prange(nb):
        lo_i, hi_i = _block(n, nb, b)
        _observe_block(lo_i, hi_i, state, hist, ep, vec, rng, steps, cfg, obs_p, obs_c)


@njit(_nrt=False, **_OPTS)
def _physics_block(start, stop, state, cmd, ep, ext, cfg, h, n_steps, work):
    for i in range(start, stop):
        for _ in range(n_steps):
            _rk4(state[i], cmd[i], ep[i], ext[i], cfg, h, work[i])


@njit(parallel=True, **_OPTS)
def physics_only(state, cmd, ep, ext, cfg, h, n_steps, work):
    """Bare RK4 integration (no reward/obs/reset), for benchmarks and physics tests."""
    n = state.shape[0]
    nb = _num_blocks(n)
    for b in prange(nb):
        lo_i, hi_i = _block(n, nb, b)
        _physics_block(lo_i, hi_i, state, cmd, ep, ext, cfg, h, n_steps, work)


def scratch(n: int) -> np.ndarray:
    """Per-environment float32 scratch for the RK4 stages and rotor commands."""
    return np.zeros((n, SCRATCH), dtype=np.float32)

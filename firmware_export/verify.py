"""Checks that every exported form computes the same actor.

* ONNX (onnxruntime) against torch in float64 (:func:`forward_torch`) on random and recorded
  observations;
* the generated C, compiled with the host ``cc`` into ``c_harness.c``, against
  onnxruntime (float32) or against the int8 weights emulated in numpy (int8);
* whole episodes step by step (a sequence of observations after a reset, the integrator
  state carried): torch/numpy reference, onnxruntime and the C, for stateless actors too;
* the closed-loop effect of int8 weights: the same simulator episodes flown with the
  float and with the int8 actor.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np

from .c_codegen import Int8Model, int8_network
from .errors import ExportError
from .policy_file import PolicySpec, step_numpy

if TYPE_CHECKING:
    from sims.quadrotor.config import QuadrotorConfig

HARNESS = Path(__file__).with_name("c_harness.c")
# Strict C99 with every warning an error; -Wdouble-promotion because the Cortex-M4F FPU
# is single precision only (ARM DDI 0439B, section 7.1): any double would be emulated.
CFLAGS = ("-O2", "-std=c99", "-pedantic", "-Wall", "-Wextra", "-Werror", "-Wdouble-promotion",
          "-Wshadow", "-Wconversion")
# The only external symbols policy.c may need (<math.h>; no heap, no other libc).
ALLOWED_UNDEFINED = {"tanhf", "expf"}


def find_cc() -> str:
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if not cc or not shutil.which(cc):
        raise ExportError("no C compiler found (cc): install one (Debian: apt-get install gcc) "
                          "or export without the c format (--format onnx)")
    return cc


def random_observations(spec: PolicySpec, n: int, seed: int = 0) -> np.ndarray:
    """Observations around the normalizer's statistics: mostly within +-4 std, and one
    in ten far out (+-30 std) so the observation clip is exercised too."""
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n, spec.obs_dim)) * 2.0
    far = rng.random(n) < 0.1
    z[far] *= 15.0
    d = spec.obs_dim  # the raw observation's part of the normalizer
    obs: np.ndarray = (spec.obs_mean[:d] + z * spec.obs_std[:d]).astype(np.float32)
    return obs


def random_episodes(spec: PolicySpec, episodes: int, steps: int, seed: int = 0) -> np.ndarray:
    """(E, T, obs_dim) observation sequences: a random walk around the normalizer's mean
    (so the integrated entries drift, hold a sign for a while and reach the anti-windup
    clamp), with one step in fifty far out (the observation clip)."""
    rng = np.random.default_rng(seed)
    d = spec.obs_dim
    walk = np.cumsum(rng.standard_normal((episodes, steps, d)) * 0.3, axis=1)
    walk += rng.standard_normal((episodes, 1, d)) * 1.5  # a per-episode offset
    walk[rng.random((episodes, steps)) < 0.02] *= 10.0
    obs: np.ndarray = (spec.obs_mean[:d] + walk * spec.obs_std[:d]).astype(np.float32)
    return obs


def max_abs(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64)))) if len(a) else 0.0


# ------------------------------------------------------------------------------- C
def compile_harness(c_dir: Path, build_dir: Path) -> Path:
    """Compile policy.c + the harness with the strict flags; returns the executable."""
    cc = find_cc()
    exe = build_dir / "policy_harness"
    cmd = [cc, *CFLAGS, "-I", str(c_dir), str(c_dir / "policy.c"), str(HARNESS), "-o", str(exe), "-lm"]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        first = (r.stderr.strip().splitlines() or ["?"])[0]
        raise ExportError(f"the generated C does not compile with {cc} ({first[:200]}); this is an exporter bug")
    return exe


def undefined_symbols(c_dir: Path, build_dir: Path) -> set[str]:
    """External symbols of policy.o (``nm -u``): shows what the C needs from libc."""
    cc = find_cc()
    obj = build_dir / "policy.o"
    r = subprocess.run([cc, *CFLAGS, "-c", str(c_dir / "policy.c"), "-o", str(obj)], capture_output=True, text=True)
    if r.returncode != 0:
        raise ExportError(f"the generated C does not compile: {(r.stderr.strip().splitlines() or ['?'])[0][:200]}")
    nm = shutil.which("nm")
    if nm is None:
        raise ExportError("nm (binutils) not found: install binutils to check the C's dependencies")
    out = subprocess.run([nm, "-u", str(obj)], capture_output=True, text=True, check=True).stdout
    return {line.split()[-1] for line in out.splitlines() if line.strip()}


def run_harness(exe: Path, obs: np.ndarray, act_dim: int, work: Path, state_dim: int = 0,
                episode_steps: int = 1) -> tuple[np.ndarray, np.ndarray, str]:
    """The compiled C on ``obs`` (N, obs_dim), reset before every ``episode_steps``-th
    observation: (actions (N, act_dim), states after each step (N, k), stdout)."""
    fin, fout = work / "obs.f32", work / "act.f32"
    np.ascontiguousarray(obs, np.float32).tofile(fin)
    r = subprocess.run([str(exe), str(fin), str(fout), str(int(episode_steps))], capture_output=True, text=True)
    if r.returncode != 0:
        raise ExportError(f"the C harness failed (exit {r.returncode}): {r.stderr.strip()[:200]}")
    out = np.fromfile(fout, np.float32).reshape(-1, act_dim + state_dim)
    if len(out) != len(obs):
        raise ExportError(f"the C harness returned {len(out)} actions for {len(obs)} observations")
    return out[:, :act_dim], out[:, act_dim:], r.stdout


def c_actions(c_dir: Path, obs: np.ndarray, act_dim: int, state_dim: int = 0) -> tuple[np.ndarray, str, set[str]]:
    """Compile ``c_dir``'s policy.c, run it on ``obs`` (each the first step after a reset);
    (actions, harness stdout, undefined symbols)."""
    with tempfile.TemporaryDirectory(prefix="robolearn_c_") as tmp:
        work = Path(tmp)
        exe = compile_harness(c_dir, work)
        act, _, stdout = run_harness(exe, obs, act_dim, work, state_dim)
        syms = undefined_symbols(c_dir, work)
    return act, stdout, syms


def c_episodes(c_dir: Path, obs: np.ndarray, act_dim: int, state_dim: int) -> tuple[np.ndarray, np.ndarray]:
    """Whole episodes (E, T, obs_dim) through the compiled C, ``robolearn_policy_reset()``
    at each episode's start: actions (E, T, act_dim) and states (E, T, k)."""
    e, t = obs.shape[:2]
    with tempfile.TemporaryDirectory(prefix="robolearn_c_") as tmp:
        work = Path(tmp)
        exe = compile_harness(c_dir, work)
        act, z, _ = run_harness(exe, obs.reshape(e * t, -1), act_dim, work, state_dim, t)
    return act.reshape(e, t, act_dim), z.reshape(e, t, state_dim)


# ------------------------------------------------------------------- simulator
def recorded_observations(spec: PolicySpec, sim_config: QuadrotorConfig, n_envs: int = 32, steps: int = 150,
                          seed: int = 0) -> np.ndarray:
    """Policy observations met when the policy itself flies the simulator (float actor)."""
    from sims.quadrotor import QuadrotorVecEnv

    return recorded_episodes(spec, sim_config, n_envs, steps, seed).reshape(-1, spec.obs_dim)


def recorded_episodes(spec: PolicySpec, sim_config: QuadrotorConfig, n_envs: int = 32, steps: int = 150,
                      seed: int = 0) -> np.ndarray:
    """(n_envs, steps, obs_dim): the observation sequences met when the policy (float,
    state carried) flies the simulator from a reset; an env that ends its episode early
    restarts, so sequences stay aligned with the policy's own state only until then
    (keep ``steps`` below the episode length for whole episodes)."""
    from sims.quadrotor import QuadrotorVecEnv

    env = QuadrotorVecEnv(n_envs, config=sim_config, seed=seed)
    obs, _ = env.reset(seed=seed)
    out = []
    z = np.zeros((n_envs, spec.state_dim), np.float32)
    for _ in range(steps):
        o = obs["policy"].copy()
        out.append(o)
        a, z = step_numpy(spec, o, z, dtype=np.float32)
        obs, _, term, trunc, _ = env.step(a.astype(np.float32))
        z[term | trunc] = 0.0  # the env restarted that episode: reset the policy too
    return np.stack(out, 1).astype(np.float32)


def fly(spec: PolicySpec, sim_config: QuadrotorConfig, weights: list[np.ndarray] | None, episodes: int, seed: int,
        network: Callable[[np.ndarray], np.ndarray] | None = None) -> dict:
    """Fly ``episodes`` episodes (one per env, fixed seed) with the numpy actor; survival
    rate and mean last-second position error (m) of the surviving episodes."""
    from sims.quadrotor import QuadrotorVecEnv

    env = QuadrotorVecEnv(episodes, config=sim_config, seed=seed)
    obs, _ = env.reset(seed=seed)
    done = np.zeros(episodes, bool)
    survived = np.zeros(episodes, bool)
    pos = np.full(episodes, np.nan)
    z = np.zeros((episodes, spec.state_dim), np.float32)
    for _ in range(int(sim_config.episode_steps)):
        a, z = step_numpy(spec, obs["policy"], z, weights=weights, dtype=np.float32)
        if network is not None:  # same integrator, another network (the int8 emulation)
            o = np.asarray(obs["policy"], np.float32)
            a = network(np.concatenate([o, z], axis=-1) if spec.state_dim else o)
        act = a.astype(np.float32)
        obs, _, term, trunc, info = env.step(act)
        new = (term | trunc) & ~done
        if new.any():
            ep = info["episode"]
            survived[new] = ep["survived"][new]
            pos[new] = ep["position_error_m"][new]
            done |= new
        if done.all():
            break
    ok = survived & done
    return {"episodes": episodes, "survival_rate": float(ok.mean()),
            "position_error_m": float(np.mean(pos[ok])) if ok.any() else None}


def closed_loop_int8(spec: PolicySpec, sim_config: QuadrotorConfig, int8: list[np.ndarray] | Int8Model,
                     episodes: int = 32, seed: int = 12345) -> dict:
    """The same episodes flown with float32 and with int8: an :class:`Int8Model` (the int8 C
    emulated exactly: int8 weights, q15 activations) or dequantized weights (float activations)."""
    if isinstance(int8, Int8Model):
        model = int8
        res = fly(spec, sim_config, None, episodes, seed, network=lambda x: int8_network(spec, model, x))
        note = "numpy emulation of the int8 C (int8 weights, q15 activations), nominal simulator config of the run"
    else:
        res = fly(spec, sim_config, int8, episodes, seed)
        note = "dequantized int8 weights with float activations, nominal simulator config of the run"
    return {"float32": fly(spec, sim_config, None, episodes, seed), "int8": res, "seed": seed, "note": note}

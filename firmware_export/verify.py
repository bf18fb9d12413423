"""Checks that every exported form computes the same actor.

* ONNX (onnxruntime) against torch in float64 (:func:`forward_torch`) on random and recorded
  observations;
* the generated C, compiled with the host ``cc`` into ``c_harness.c``, against
  onnxruntime (float32) or against the int8 weights emulated in numpy (int8);
* the closed-loop effect of int8 weights: the same simulator episodes flown with the
  float and with the int8 actor.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .errors import ExportError
from .policy_file import PolicySpec, forward_numpy

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
    obs: np.ndarray = (spec.obs_mean + z * spec.obs_std).astype(np.float32)
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


def run_harness(exe: Path, obs: np.ndarray, act_dim: int, work: Path) -> tuple[np.ndarray, str]:
    """Actions from the compiled C for ``obs`` (N, obs_dim); also its stdout."""
    fin, fout = work / "obs.f32", work / "act.f32"
    np.ascontiguousarray(obs, np.float32).tofile(fin)
    r = subprocess.run([str(exe), str(fin), str(fout)], capture_output=True, text=True)
    if r.returncode != 0:
        raise ExportError(f"the C harness failed (exit {r.returncode}): {r.stderr.strip()[:200]}")
    act = np.fromfile(fout, np.float32).reshape(-1, act_dim)
    if len(act) != len(obs):
        raise ExportError(f"the C harness returned {len(act)} actions for {len(obs)} observations")
    return act, r.stdout


def c_actions(c_dir: Path, obs: np.ndarray, act_dim: int) -> tuple[np.ndarray, str, set[str]]:
    """Compile ``c_dir``'s policy.c, run it on ``obs``; (actions, harness stdout, undefined symbols)."""
    with tempfile.TemporaryDirectory(prefix="robolearn_c_") as tmp:
        work = Path(tmp)
        exe = compile_harness(c_dir, work)
        act, stdout = run_harness(exe, obs, act_dim, work)
        syms = undefined_symbols(c_dir, work)
    return act, stdout, syms


# ------------------------------------------------------------------- simulator
def recorded_observations(spec: PolicySpec, sim_config: QuadrotorConfig, n_envs: int = 32, steps: int = 150,
                          seed: int = 0) -> np.ndarray:
    """Policy observations met when the policy itself flies the simulator (float actor)."""
    from sims.quadrotor import QuadrotorVecEnv

    env = QuadrotorVecEnv(n_envs, config=sim_config, seed=seed)
    obs, _ = env.reset(seed=seed)
    out = []
    for _ in range(steps):
        o = obs["policy"].copy()
        out.append(o)
        obs, *_ = env.step(forward_numpy(spec, o, dtype=np.float32).astype(np.float32))
    return np.concatenate(out).astype(np.float32)


def fly(spec: PolicySpec, sim_config: QuadrotorConfig, weights: list[np.ndarray] | None, episodes: int, seed: int) -> dict:
    """Fly ``episodes`` episodes (one per env, fixed seed) with the numpy actor; survival
    rate and mean last-second position error (m) of the surviving episodes."""
    from sims.quadrotor import QuadrotorVecEnv

    env = QuadrotorVecEnv(episodes, config=sim_config, seed=seed)
    obs, _ = env.reset(seed=seed)
    done = np.zeros(episodes, bool)
    survived = np.zeros(episodes, bool)
    pos = np.full(episodes, np.nan)
    for _ in range(int(sim_config.episode_steps)):
        act = forward_numpy(spec, obs["policy"], weights=weights, dtype=np.float32).astype(np.float32)
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


def closed_loop_int8(spec: PolicySpec, sim_config: QuadrotorConfig, int8_weights: list[np.ndarray], episodes: int = 32,
                     seed: int = 12345) -> dict:
    """The same episodes flown with float32 and with int8 weights (emulated in numpy)."""
    return {"float32": fly(spec, sim_config, None, episodes, seed),
            "int8": fly(spec, sim_config, int8_weights, episodes, seed),
            "seed": seed, "note": "numpy emulation of the int8 C (dequantized weights), nominal simulator config of the run"}

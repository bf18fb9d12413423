"""Can the hover starts a policy fails be survived at all? (issue 3)

    python -m benchmarks.recoverability RUN_DIR [--controls 50] [--horizon 1.0]
                                        [--restarts 4] [--iters 400] [--json OUT]
    python -m benchmarks.recoverability RUN_DIR --peak-only I,J,... [--horizon 0.6]
    python -m benchmarks.recoverability RUN_DIR --peak-only I,J,... --grow 0.4,0.7,1.0,1.3
    robolearn bench recoverability RUN_DIR [...]

Costs minutes: the step is compiled with torch.compile (inductor, needs a C++ compiler;
~5 min to compile on a loaded 2-core machine, cached afterwards for the same batch
shape), then ~2 s per Adam iteration for 320 sequences of 100 steps there.

For the nominal evaluation block of ``RUN_DIR`` (the same 1,000 fixed-seed starts as
``eval.json``), this finds the starts the trained policy fails, and for each of them
(plus a random sample of starts it survives, as a control of the optimiser) searches for
an open-loop rotor-command sequence that keeps the vehicle inside the termination bound:

* the dynamics are a differentiable torch replica of ``sims/quadrotor/physics.py``
  (first-order motors with separate rise/fall constants, thrust ``k_f rpm^2``, rotor
  reaction torque, rotor drag, ground effect, RK4 at ``dt`` with quaternion
  renormalisation, the action clip to [-1, 1]); ``tests/test_recoverability.py``
  checks it against the numba kernel to float32 precision;
* commands are ``tanh`` of free parameters (a sigmoid, rescaled to [-1, 1], so the clip
  never cuts the gradient), one per rotor and control step over ``--horizon`` seconds,
  optimised with Adam from ``--restarts`` initialisations (the policy's own commands,
  hover, full throttle, random ones);
* the objective penalises leaving a margin inside every termination bound (position
  0.6 m, speed 10 m/s, body rate 35 rad/s) at every step, and the final state's speed,
  body rate, tilt and position error (ending slow and upright near the target);
* every optimised sequence is then *replayed in the real simulator* (numba kernel,
  sensor noise on), after which the trained policy flies the rest of the 5 s episode.
  A start counts as **saved** only if that replay survives the whole episode.

"Unsaved" is evidence, not proof, that no controller can save a start: the optimiser is
local. "Saved" is a proof by example (in this simulator). The report also gives, per
start, the peak termination ratio of the best sequence over the horizon (max of
position error / 0.6 m, speed / 10 m/s, rate / 35 rad/s; above 1 even the best sequence
found leaves the bound). ``--peak-only`` runs a dedicated search on chosen starts that
minimises only that peak (a smooth maximum), with no hand-over.

From Python: ``run_recoverability(run_dir, ...) -> dict`` and ``print_recoverability(result)``;
both commands above call these two.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sims.quadrotor import params as P
from sims.quadrotor import vehicles as V
from sims.quadrotor.config import QuadrotorConfig

RPM_TO_RADS = 2.0 * math.pi / 60.0


# --------------------------------------------------------------------------- dynamics
@dataclass(frozen=True)
class TorchQuadrotor:
    """The nominal vehicle of ``sims/quadrotor/physics.py`` as batched torch functions.

    Nominal parameters only (every randomization scale 1, no latency, no disturbance,
    no assist): the setting of the nominal evaluation block. States are (B, 17) in the
    simulator's layout (pos, quat wxyz, vel, body rates, RPM); actions (B, 4) in [-1, 1].
    """

    dt: float = 0.01
    substeps: int = 1
    vehicle: str = V.DEFAULT_VEHICLE
    gravity: float = P.GRAVITY
    motor_dynamics: bool = True
    rotor_drag: bool = True
    ground_effect: bool = True

    @classmethod
    def from_config(cls, c: QuadrotorConfig) -> TorchQuadrotor:
        return cls(dt=c.dt, substeps=c.substeps, vehicle=c.vehicle, gravity=c.gravity,
                   motor_dynamics=c.motor_dynamics, rotor_drag=c.rotor_drag, ground_effect=c.ground_effect)

    def derivative(self, s: torch.Tensor, cmd: torch.Tensor) -> torch.Tensor:
        """ds/dt of (B, 17) states under rotor commands (B, 4) in RPM (physics.derivative)."""
        qw, qx, qy, qz = s[:, 3], s[:, 4], s[:, 5], s[:, 6]
        r00 = 1.0 - 2.0 * (qy * qy + qz * qz)
        r01 = 2.0 * (qx * qy - qw * qz)
        r02 = 2.0 * (qx * qz + qw * qy)
        r10 = 2.0 * (qx * qy + qw * qz)
        r11 = 1.0 - 2.0 * (qx * qx + qz * qz)
        r12 = 2.0 * (qy * qz - qw * qx)
        r20 = 2.0 * (qx * qz - qw * qy)
        r21 = 2.0 * (qy * qz + qw * qx)
        r22 = 1.0 - 2.0 * (qx * qx + qy * qy)
        veh = V.get(self.vehicle)
        c0, c1, c2 = veh.thrust_curve
        w = s[:, 13:17].clamp(min=0.0)
        u = w / veh.max_rpm
        thrust = (c0 + c1 * u + c2 * u * u).clamp(min=0.0)  # (B, 4), vehicles.Vehicle.thrust
        if self.ground_effect:
            h = s[:, 2].clamp(min=P.PROP_RADIUS)
            ratio = P.PROP_RADIUS / (4.0 * h)
            ge = torch.where(s[:, 2] < P.GROUND_EFFECT_MAX_HEIGHT, 1.0 + P.GROUND_EFFECT_COEFF * ratio * ratio,
                             torch.ones_like(h))
            thrust = thrust * ge[:, None]
        vx, vy, vz = s[:, 7], s[:, 8], s[:, 9]
        fbz = thrust.sum(1)
        fbx = torch.zeros_like(fbz)
        fby = torch.zeros_like(fbz)
        if self.rotor_drag:
            spin = w.sum(1) * RPM_TO_RADS
            vbx = r00 * vx + r10 * vy + r20 * vz
            vby = r01 * vx + r11 * vy + r21 * vz
            vbz = r02 * vx + r12 * vy + r22 * vz
            fbx = -veh.drag_xy * spin * vbx
            fby = -veh.drag_xy * spin * vby
            fbz = fbz - veh.drag_z * spin * vbz
        m = veh.mass
        ax = (r00 * fbx + r01 * fby + r02 * fbz) / m
        ay = (r10 * fbx + r11 * fby + r12 * fbz) / m
        az = (r20 * fbx + r21 * fby + r22 * fbz) / m - self.gravity
        rx = torch.tensor([xy[0] for xy in veh.rotor_xy], dtype=s.dtype)
        ry = torch.tensor([xy[1] for xy in veh.rotor_xy], dtype=s.dtype)
        yd = torch.tensor(veh.rotor_yaw_dir, dtype=s.dtype)
        tx = (thrust * ry).sum(1)
        ty = -(thrust * rx).sum(1)
        tz = veh.torque_to_thrust * (thrust * yd).sum(1)
        ixx, iyy, izz = veh.inertia
        wx, wy, wz = s[:, 10], s[:, 11], s[:, 12]
        dwx = (tx - (wy * izz * wz - wz * iyy * wy)) / ixx
        dwy = (ty - (wz * ixx * wx - wx * izz * wz)) / iyy
        dwz = (tz - (wx * iyy * wy - wy * ixx * wx)) / izz
        dq = torch.stack([0.5 * (-qx * wx - qy * wy - qz * wz), 0.5 * (qw * wx + qy * wz - qz * wy),
                          0.5 * (qw * wy + qz * wx - qx * wz), 0.5 * (qw * wz + qx * wy - qy * wx)], 1)
        if self.motor_dynamics:
            d = cmd - s[:, 13:17]
            # separate rise and fall time constants
            drpm = torch.where(d > 0.0, d / veh.motor_tau_rise, d / veh.motor_tau_fall)
        else:
            drpm = torch.zeros_like(cmd)
        return torch.cat([s[:, 7:10], dq, torch.stack([ax, ay, az], 1), torch.stack([dwx, dwy, dwz], 1), drpm], 1)

    def rk4(self, s: torch.Tensor, cmd: torch.Tensor, h: float) -> torch.Tensor:
        k1 = self.derivative(s, cmd)
        k2 = self.derivative(s + 0.5 * h * k1, cmd)
        k3 = self.derivative(s + 0.5 * h * k2, cmd)
        k4 = self.derivative(s + h * k3, cmd)
        out = s + h / 6.0 * (k1 + 2.0 * k2 + 2.0 * k3 + k4)
        q = out[:, 3:7]
        return torch.cat([out[:, :3], q / q.norm(dim=1, keepdim=True), out[:, 7:]], 1)

    def hover_action(self) -> float:
        """The normalized command [-1, 1] at which the nominal vehicle hovers."""
        return V.get(self.vehicle).hover_action(gravity=self.gravity)

    def step(self, s: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """One control step (physics.step_env without reward/termination bookkeeping)."""
        a = action.clamp(-1.0, 1.0)
        cmd = 0.5 * (a + 1.0) * V.get(self.vehicle).max_rpm
        if not self.motor_dynamics:
            s = torch.cat([s[:, :13], cmd], 1)
        h = self.dt / self.substeps
        for _ in range(self.substeps):
            s = self.rk4(s, cmd, h)
        return s


# ------------------------------------------------------------------ eval starts/outcomes
def eval_env(cfg: Any, episodes: int, seed: int) -> Any:
    """The nominal evaluation block's env, reset exactly as robolearn.tasks.quadrotor.evaluate does."""
    from robolearn.envs import make_env
    from robolearn.tasks.quadrotor.env import eval_ranges

    env = make_env(cfg, num_envs=episodes, seed=seed, ranges=eval_ranges(cfg, False), backend="cpu",
                   episode_steps=cfg.eval.episode_steps)
    return env


@torch.inference_mode()
def rollout(env: Any, policy: torch.nn.Module, obs: dict, steps: int, prefix: np.ndarray | None = None,
            record: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Run every env once to its first done; returns (survived (N,), length (N,), actions (N, record, 4)).

    ``prefix`` (N, H, 4): open-loop actions for the first H steps, then the policy.
    ``record``: keep the actions of the first ``record`` steps (after a done they are
    the next episode's and meaningless).
    """
    n = env.num_envs
    rec = np.zeros((n, record, 4), np.float32)
    done = np.zeros(n, bool)
    survived = np.zeros(n, bool)
    length = np.zeros(n, np.int64)
    for t in range(steps + 1):
        act = policy(torch.from_numpy(obs["policy"])).numpy()
        if prefix is not None and t < prefix.shape[1]:
            act = prefix[:, t].astype(np.float32)
        if t < record:
            rec[:, t] = act
        obs, _, term, trunc, info = env.step(act)
        new = (term | trunc) & ~done
        if new.any():
            survived[new] = info["episode"]["survived"][new]
            length[new] = info["episode"]["length"][new]
            done |= new
        if done.all():
            break
    return survived, length, rec


# ----------------------------------------------------------------------- optimiser
def objective_terms(step: Any, s0: torch.Tensor, u: torch.Tensor, target: torch.Tensor,
                    bounds: tuple[float, float, float], margin: float,
                    peak_only: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Loss per sequence (B,) and its peak termination ratio over the horizon (B,).

    The termination ratio of a state is max(|p - target| / position bound, |v| / speed
    bound, |w| / rate bound): the simulator ends the episode when it exceeds 1.

    Running: quadratic penalties beyond a margin inside each termination bound (the
    constraint) plus a small pull towards the target (so the sequence does not park at
    the margin); final: speed, body rate, tilt and position error, so that the state
    handed to the policy at the end of the horizon is near hover.

    With ``peak_only`` the loss is a smooth maximum (log-sum-exp, temperature 1/50) of
    the termination ratio over the horizon and nothing else: the cleanest test of whether
    any sequence stays inside at all.
    """
    s = s0
    viol = torch.zeros(s0.shape[0], dtype=s0.dtype)
    peak = torch.zeros(s0.shape[0], dtype=s0.dtype)
    ratios = []
    horizon = u.shape[1]
    for t in range(horizon):
        s = step(s, torch.tanh(u[:, t]))
        e = (s[:, :3] - target).norm(dim=1)
        ratio = torch.stack([e / bounds[0], s[:, 7:10].norm(dim=1) / bounds[1], s[:, 10:13].norm(dim=1) / bounds[2]], 1)
        peak = torch.maximum(peak, ratio.max(1).values)
        if peak_only:
            ratios.append(ratio)
            continue
        viol = viol + 100.0 * (torch.relu(ratio - (1.0 - margin)) ** 2).sum(1) + (2.0 / horizon) * e * e
    if peak_only:
        return torch.logsumexp(50.0 * torch.cat(ratios, 1), 1) / 50.0, peak
    tilt = 2.0 * (s[:, 4] ** 2 + s[:, 5] ** 2)  # 1 - cos(tilt)
    final = (1.0 * s[:, 7:10].pow(2).sum(1) + 0.01 * s[:, 10:13].pow(2).sum(1) + 2.0 * tilt
             + 2.0 * (s[:, :3] - target).pow(2).sum(1))
    return viol + final, peak


def optimise(model: TorchQuadrotor, starts: np.ndarray, target: np.ndarray, horizon: int, restarts: int,
             warm: np.ndarray | None,
             iters: int, bounds: tuple[float, float, float], margin: float = 0.1, lr: float = 0.1, seed: int = 0,
             dtype: torch.dtype = torch.float32, verbose: bool = False, compile_step: bool = False,
             peak_only: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Best open-loop action sequence per start: (K, horizon, 4) actions and (K,) peak termination ratio.

    All K x restarts problems run as one batch. Restart 0 starts from ``warm`` (K, horizon,
    4) (the policy's own commands: a local search around what it did) or hover, restart 1
    at hover, restart 2 at a full-throttle command, the others at random commands.
    """
    k = starts.shape[0]
    gen = torch.Generator().manual_seed(seed)
    a_h = model.hover_action()
    u0 = torch.full((restarts, k, horizon, 4), math.atanh(a_h), dtype=dtype)
    if warm is not None:
        u0[0] = torch.atanh(torch.as_tensor(warm, dtype=dtype).clamp(-0.995, 0.995))
    if restarts > 2:
        u0[2] = math.atanh(0.9)
    if restarts > 3:
        u0[3:] = torch.randn((restarts - 3, k, horizon, 4), generator=gen, dtype=dtype) * 1.0
    u = u0.reshape(restarts * k, horizon, 4).clone().requires_grad_(True)
    s0 = torch.as_tensor(starts, dtype=dtype).repeat(restarts, 1)
    tgt = torch.as_tensor(target, dtype=dtype).repeat(restarts, 1)
    opt = torch.optim.Adam([u], lr=lr)
    step: Any = model.step
    if compile_step:
        # inductor fuses one control step into one forward and one backward kernel: ~10x
        # faster than eager autograd over ~400 tiny ops per step (compiles once, minutes)
        step = torch.compile(model.step, dynamic=False)
    best_loss = torch.full((restarts * k,), math.inf, dtype=dtype)
    best_peak = torch.full((restarts * k,), math.inf, dtype=dtype)
    best_u = u.detach().clone()
    for it in range(iters):
        loss, peak = objective_terms(step, s0, u, tgt, bounds, margin, peak_only)
        if verbose and it % 25 == 0:
            inside = (best_peak.reshape(restarts, k).min(0).values <= 1.0).float().mean().item()
            print(f"  iter {it}: median loss {loss.nanmedian().item():.3f}, starts kept inside so far {inside:.1%}",
                  file=sys.stderr, flush=True)
        with torch.no_grad():
            better = loss < best_loss
            best_loss = torch.where(better, loss, best_loss)
            best_peak = torch.where(better, peak, best_peak)
            best_u[better] = u[better]
        opt.zero_grad()
        # a diverging random restart (spinning far past the rate bound) gives NaN; its
        # rows are independent of the others, so zero its gradient and let it be
        torch.nan_to_num(loss, nan=0.0, posinf=0.0).sum().backward()
        assert u.grad is not None
        u.grad.nan_to_num_(nan=0.0, posinf=0.0, neginf=0.0)
        opt.step()
    # the best restart per start: one that stays inside if any, then the smallest loss
    key = best_loss + 1e9 * (best_peak > 1.0)
    idx = key.reshape(restarts, k).argmin(0)
    ar = torch.arange(k)
    acts = torch.tanh(best_u.reshape(restarts, k, horizon, 4)[idx, ar]).numpy()
    return acts, best_peak.reshape(restarts, k)[idx, ar].numpy()


# ---------------------------------------------------------------------------- driver
def _load_run(run_dir: str | Path) -> tuple[Any, Any, QuadrotorConfig, TorchQuadrotor, tuple[float, float, float]]:
    """A run's config, policy, nominal simulator config, its torch replica and the termination bounds."""
    from robolearn.policy import load_run
    from robolearn.tasks.quadrotor.env import sim_config

    cfg, policy = load_run(run_dir)
    sim_cfg = sim_config(cfg, ranges={})
    bounds = (sim_cfg.termination_m, sim_cfg.termination_velocity_mps, sim_cfg.termination_angvel_rps)
    return cfg, policy, sim_cfg, TorchQuadrotor.from_config(sim_cfg), bounds


def _eval_block(cfg: Any, policy: torch.nn.Module, record: int) -> tuple[np.ndarray, ...]:
    """The nominal eval block's starts and targets, and the policy flown from them once:
    (starts, targets, survived, length, the first ``record`` actions)."""
    env = eval_env(cfg, cfg.eval.episodes, cfg.eval.seed)
    obs, _ = env.reset(seed=cfg.eval.seed)
    starts, targets = env.state.copy(), env.targets.copy()
    survived, length, acts = rollout(env, policy, obs, cfg.eval.episode_steps, record=record)
    return starts, targets, survived, length, acts


def analyse(run_dir: str | Path, controls: int = 100, horizon_s: float = 1.0, restarts: int = 8,
            iters: int = 300, seed: int = 0, chunk: int = 4096, compile_step: bool = True) -> dict:
    cfg, policy, sim_cfg, model, bounds = _load_run(run_dir)
    episodes, eseed, steps = cfg.eval.episodes, cfg.eval.seed, cfg.eval.episode_steps

    horizon = max(1, round(horizon_s / sim_cfg.dt))
    starts, targets, survived, length, pol_acts = _eval_block(cfg, policy, horizon)

    rng = np.random.default_rng(seed)
    fail_ids = np.flatnonzero(~survived)
    ok_ids = np.flatnonzero(survived)
    ctrl_ids = np.sort(rng.choice(ok_ids, size=min(controls, len(ok_ids)), replace=False))
    ids = np.concatenate([fail_ids, ctrl_ids])

    t0 = time.perf_counter()
    acts = np.zeros((len(ids), horizon, 4), np.float32)
    peak = np.zeros(len(ids))
    for c in range(0, len(ids), chunk):
        sl = slice(c, c + chunk)
        acts[sl], peak[sl] = optimise(model, starts[ids[sl]], targets[ids[sl]], horizon, restarts,
                                      pol_acts[ids[sl]], iters, bounds, seed=seed + c, verbose=True,
                                      compile_step=compile_step)
    opt_s = time.perf_counter() - t0

    # replay in the real simulator: same starts, open-loop prefix, then the policy
    from robolearn.envs import make_env

    renv = make_env(cfg, num_envs=len(ids), seed=eseed + 1, ranges={}, backend="cpu", episode_steps=steps)
    robs, _ = renv.reset(seed=eseed + 1, options={"state": starts[ids]})
    # the drawn target is the home setpoint in the nominal block: positions carry over
    assert np.allclose(renv.targets, targets[ids])
    saved, slen, _ = rollout(renv, policy, robs, steps, prefix=acts)
    # open loop alone over the horizon (no policy hand-over): did it stay inside?
    renv2 = make_env(cfg, num_envs=len(ids), seed=eseed + 2, ranges={}, backend="cpu", episode_steps=horizon)
    robs2, _ = renv2.reset(seed=eseed + 2, options={"state": starts[ids]})
    ol_alive, _, _ = rollout(renv2, policy, robs2, horizon, prefix=acts)

    nf = len(fail_ids)
    is_fail = np.arange(len(ids)) < nf
    tilt = np.degrees(2.0 * np.arccos(np.clip(np.abs(starts[ids, 3]), 0, 1)))
    per = [{"eval_index": int(i), "policy_failed": bool(f), "policy_length": int(length[i]),
            "start_tilt_deg": float(tl), "start_vz": float(starts[i, 9]), "start_z_err": float(starts[i, 2] - targets[i, 2]),
            "opt_peak_termination_ratio": float(pk), "open_loop_alive": bool(ol), "saved": bool(sv), "saved_length": int(sl)}
           for i, f, tl, pk, ol, sv, sl in zip(ids, is_fail, tilt, peak, ol_alive, saved, slen)]
    unsaved_fail = int((~saved[is_fail]).sum())
    saveable = episodes - unsaved_fail  # starts the policy survives, or the optimiser saves
    return {
        "run_dir": str(run_dir), "episodes": episodes, "eval_seed": eseed, "policy_survival": float(survived.mean()),
        "policy_failures": nf, "controls": len(ctrl_ids), "horizon_s": horizon * sim_cfg.dt, "restarts": restarts,
        "iters": iters, "optimiser_wall_s": opt_s,
        "failures_saved": int(saved[is_fail].sum()), "failures_unsaved": unsaved_fail,
        "controls_saved": int(saved[~is_fail].sum()),
        "unsaved_fraction_of_all_starts": unsaved_fail / episodes,
        "policy_survival_on_saveable_starts": float(survived.sum() / saveable),
        "per_start": per,
    }


def min_peak(run_dir: str | Path, ids: list[int], horizon_s: float, restarts: int, iters: int,
             seed: int = 0, compile_step: bool = True) -> dict:
    """The smallest peak termination ratio any command sequence found reaches from eval starts ``ids``."""
    cfg, policy, sim_cfg, model, bounds = _load_run(run_dir)
    horizon = max(1, round(horizon_s / sim_cfg.dt))
    starts, targets, _, length, pol_acts = _eval_block(cfg, policy, horizon)
    sel = np.asarray(ids)
    acts, peak = optimise(model, starts[sel], targets[sel], horizon, restarts, pol_acts[sel], iters, bounds,
                          seed=seed, verbose=True, compile_step=compile_step, peak_only=True)
    return {"horizon_s": horizon * sim_cfg.dt, "restarts": restarts, "iters": iters,
            "per_start": [{"eval_index": int(i), "policy_length": int(length[i]), "min_peak_termination_ratio": float(p)}
                          for i, p in zip(sel, peak)]}


def grow(run_dir: str | Path, ids: list[int], horizons_s: list[float], restarts: int, iters: int,
         seed: int = 0, compile_step: bool = True) -> dict:
    """Continuation search on eval starts ``ids``: stay inside over growing horizons, then hand over.

    A long horizon from scratch is a hard problem for a local optimiser (from the failed
    starts of the default policy, 1.5 s with ``--peak-only`` kept none inside). Here each
    horizon is warm-started with the best sequence of the previous one padded with the hover
    command: a peak-only search at every horizon but the last, and at the last the full
    objective (inside the margin, and ending slow, upright and near the target). The last
    sequence is then replayed in the simulator (sensor noise on) and the policy flies the
    rest of the 5 s episode: ``saved`` is a proof by example that the start is survivable.
    """
    from robolearn.envs import make_env

    cfg, policy, sim_cfg, model, bounds = _load_run(run_dir)
    steps = [max(1, round(h / sim_cfg.dt)) for h in horizons_s]
    starts, targets, _, length, pol_acts = _eval_block(cfg, policy, max(steps))
    sel = np.asarray(ids)
    a_h = model.hover_action()
    warm = pol_acts[sel][:, :steps[0]]
    stages: list[dict[str, Any]] = []
    peak = np.zeros(len(sel))
    for j, h in enumerate(steps):
        if warm.shape[1] < h:
            warm = np.concatenate([warm, np.full((len(sel), h - warm.shape[1], 4), a_h, np.float32)], 1)
        last = j == len(steps) - 1
        warm, peak = optimise(model, starts[sel], targets[sel], h, restarts, warm[:, :h], iters, bounds,
                              seed=seed + h, verbose=True, compile_step=compile_step, peak_only=not last)
        stages.append({"horizon_s": h * sim_cfg.dt, "objective": "full" if last else "peak",
                       "peak_termination_ratio": [float(x) for x in peak]})
    renv = make_env(cfg, num_envs=len(sel), seed=cfg.eval.seed + 1, ranges={}, backend="cpu",
                    episode_steps=cfg.eval.episode_steps)
    robs, _ = renv.reset(seed=cfg.eval.seed + 1, options={"state": starts[sel]})
    saved, slen, _ = rollout(renv, policy, robs, cfg.eval.episode_steps, prefix=warm)
    return {"restarts": restarts, "iters": iters, "stages": stages,
            "per_start": [{"eval_index": int(i), "policy_length": int(length[i]),
                           "peak_termination_ratio": float(peak[k]),
                           "saved": bool(saved[k]), "saved_length": int(slen[k])} for k, i in enumerate(sel)],
            "saved": int(saved.sum())}


def run_recoverability(run_dir: str | Path, controls: int = 50, horizon_s: float = 1.0, restarts: int = 4,
                       iters: int = 400, seed: int = 0, compile_step: bool = True,
                       peak_only: Sequence[int] | None = None, grow_horizons_s: Sequence[float] | None = None,
                       json_out: str | Path | None = None) -> dict:
    """One of the three searches, on one torch thread; the full result also goes to ``json_out``.

    * neither ``peak_only`` nor ``grow_horizons_s``: :func:`analyse` (every failed start and
      ``controls`` survived ones, ``horizon_s`` s, then the policy's hand-over);
    * ``peak_only`` (eval start indices): :func:`min_peak` over ``horizon_s``;
    * both: :func:`grow`, the continuation over ``grow_horizons_s`` (s) on those starts.

    Raises ValueError for ``grow_horizons_s`` without ``peak_only``.
    """
    if grow_horizons_s and not peak_only:
        raise ValueError(GROW_NEEDS_PEAK_ONLY)
    torch.set_num_threads(1)
    if grow_horizons_s:
        assert peak_only is not None
        r = grow(run_dir, list(peak_only), list(grow_horizons_s), restarts, iters, seed, compile_step=compile_step)
    elif peak_only:
        r = min_peak(run_dir, list(peak_only), horizon_s, restarts, iters, seed, compile_step=compile_step)
    else:
        r = analyse(run_dir, controls, horizon_s, restarts, iters, seed, compile_step=compile_step)
    if json_out:
        Path(json_out).write_text(json.dumps(r, indent=1) + "\n")
    return r


GROW_NEEDS_PEAK_ONLY = "--grow needs --peak-only I,J,... (the eval starts to search)"


def print_recoverability(r: dict) -> None:
    """Print :func:`run_recoverability`'s result as JSON, without its bulky parts: the stages of a
    continuation search, the per-start list of the full analysis (both are in ``json_out``)."""
    if "stages" in r:  # grow
        print(json.dumps({k: v for k, v in r.items() if k != "stages"}, indent=1))
    elif "policy_survival" in r:  # analyse
        print(json.dumps({k: v for k, v in r.items() if k != "per_start"}, indent=1))
    else:  # min_peak: all of it
        print(json.dumps(r, indent=1))


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run_dir")
    ap.add_argument("--controls", type=int, default=50, help="survived starts also optimised, as a control")
    ap.add_argument("--horizon", type=float, default=1.0, help="open-loop horizon, s")
    ap.add_argument("--restarts", type=int, default=4)
    ap.add_argument("--iters", type=int, default=400)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-compile", action="store_true", help="eager autograd (no C++ compiler needed; ~10x slower)")
    ap.add_argument("--peak-only", default=None, metavar="I,J,...",
                    help="only these eval starts: minimise the peak termination ratio (no hand-over)")
    ap.add_argument("--grow", default=None, metavar="H1,H2,...",
                    help="with --peak-only: continuation over these horizons (s), then hand over to the policy")
    ap.add_argument("--json", default=None, help="write the full result here")
    a = ap.parse_args(argv)
    if a.grow and not a.peak_only:
        ap.error(GROW_NEEDS_PEAK_ONLY)
    ids = [int(x) for x in a.peak_only.split(",")] if a.peak_only else None
    horizons = [float(x) for x in a.grow.split(",")] if a.grow else None
    r = run_recoverability(a.run_dir, a.controls, a.horizon, a.restarts, a.iters, a.seed,
                           compile_step=not a.no_compile, peak_only=ids, grow_horizons_s=horizons, json_out=a.json)
    print_recoverability(r)
    return r


if __name__ == "__main__":
    main()

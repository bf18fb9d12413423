"""Where do a hover run's evaluation failures come from? (issue 23)

    python -m benchmarks.hover_attribution RUN_DIR [--blocks nominal,real_range,corners] [--json OUT]
    robolearn bench attribution RUN_DIR [...]

Replays the evaluation blocks of ``RUN_DIR`` exactly as ``eval.json`` flew them (the same
fixed-seed starts and parameter draws; the replayed survival rate is checked against
``eval.json``) and, for every failed episode, records:

* the start: tilt (deg), speed (m/s), body rate (rad/s), distance to the target (m);
* the vehicle: thrust/weight (``crazyflie_2_1``'s 2.12 x thrust scale / mass scale), the
  inertia, motor and drag scales, the latency (steps) and the disturbance force (its magnitude
  over the weight, and its downward part);
* the time of the crash (s; "early" below 0.3 s: the start was hard; "late": an instability or
  an offset that grew) and the bound it left (position 0.6 m, speed 10 m/s, body rate 35 rad/s).

Two counterfactuals per failed episode, with every random draw (noise, disturbance direction,
start) the same, because the simulator's draws are counter-based:

* ``easy_start``: the same vehicle started at the target, level, at rest, rotors at its hover
  speed. A failure there is the policy's inability to hold that vehicle at all: a ceiling of
  the policy on that vehicle, not of the start;
* ``nominal_vehicle``: the same start on the nominal vehicle. A failure there means the start
  is hard for this policy whatever the vehicle.

Failure rates per bin of every factor are reported over all episodes of the block (failed /
flown in that bin), so a factor whose high bins fail more is the one to look at.

From Python: ``run_attribution(run_dir, blocks) -> dict`` and ``print_attribution(result)``.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sims.quadrotor import params as P

EARLY_S = 0.3
RAND = [p.name for p in P.PARAMS[:P.NUM_RANDOMIZATION]]
# factor: (label, bin edges); bins are [e_k, e_k+1), the last one closed
BINS: dict[str, tuple[float, ...]] = {
    "tilt_deg": (0, 30, 60, 90, 120, 181),
    "speed_mps": (0, 0.5, 1.0, 1.5, 2.5),
    "rate_rps": (0, 2, 4, 6, 10),
    "distance_m": (0, 0.1, 0.2, 0.3, 0.6),
    "thrust_to_weight": (1.0, 1.5, 1.75, 2.0, 2.5, 3.5),
    "inertia_scale": (0.69, 0.9, 1.1, 1.31),
    "motor_tau_scale": (0.59, 0.9, 1.2, 1.61),
    "latency_steps": (0, 0.5, 1.5),
    "disturbance_over_weight": (0, 0.025, 0.05, 0.075, 0.11),
    "crash_time_s": (0, EARLY_S, 1.0, 2.5, 5.01),
}


def _pin(env: Any, values: np.ndarray) -> None:
    """Pin every env's randomized parameters to ``values`` (N, NUM_RANDOMIZATION)."""
    for j, name in enumerate(RAND):
        env.set_range(name, values[:, j].astype(np.float32), values[:, j].astype(np.float32))


@torch.inference_mode()
def replay(policy: torch.nn.Module, cfg: Any, block: Any, episodes: int, seed: int,
           pin: np.ndarray | None = None, starts: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Fly one evaluation block like ``evaluate.run_block``; per env: survived, crash step, the
    episode's parameters (N, NUM_PARAMS), disturbance force (N, 3) N world, start (N, 17) relative,
    and the state (N, 17) one step before the end. ``pin`` fixes the randomized parameters per env,
    ``starts`` the start states (both keep every other draw)."""
    from robolearn.tasks.quadrotor.evaluate import block_env

    steps = cfg.eval.episode_steps
    env = block_env(cfg, block, episodes, seed)
    if pin is not None:
        _pin(env, pin)
    if starts is not None:
        env.set_start_states(starts)
    obs, _ = env.reset(seed=seed)
    reset_state = getattr(policy, "reset_state", None)
    if reset_state is not None:
        reset_state()
    params = env.episode_params.copy()
    dist = env.disturbance_forces.copy()
    rel0 = env.relative_state
    target = env.targets.copy()
    n = episodes
    done = np.zeros(n, bool)
    survived = np.zeros(n, bool)
    t_end = np.full(n, steps)
    last = env.state.copy()
    last[:, :3] -= target
    for t in range(steps + 1):
        act = policy(torch.from_numpy(obs["policy"])).numpy()
        obs, _, term, trunc, info = env.step(act)
        ended = term | trunc
        new = ended & ~done
        if new.any():
            survived[new] = info["episode"]["survived"][new]
            t_end[new] = t + 1
            done |= new
        live = ~done
        s = env.state
        last[live] = s[live]
        last[live, :3] -= target[live]
        if reset_state is not None and ended.any():
            reset_state(torch.from_numpy(ended))
        if done.all():
            break
    return {"survived": survived, "t_end": t_end, "params": params, "dist_force": dist, "start": rel0,
            "last": last}


def factors(r: dict[str, np.ndarray], vehicle: str, dt: float, gravity: float) -> dict[str, np.ndarray]:
    """Per-episode start, vehicle and crash factors of :func:`replay`'s result (see the module doc)."""
    from robolearn.tasks.quadrotor.hard_starts import start_conditions
    from sims.quadrotor.vehicles import get

    v = get(vehicle)
    p = r["params"]
    c = start_conditions(r["start"])
    weight = v.mass * p[:, P.P_MASS] * gravity
    return {
        "tilt_deg": c["tilt_deg"], "speed_mps": c["speed_mps"],
        "rate_rps": np.linalg.norm(r["start"][:, 10:13], axis=1),
        "distance_m": np.linalg.norm(r["start"][:, 0:3], axis=1),
        "thrust_to_weight": v.thrust_to_weight(gravity) * p[:, P.P_KF] / p[:, P.P_MASS],
        "inertia_scale": p[:, P.P_IXX:P.P_IZZ + 1].mean(1),
        "motor_tau_scale": 0.5 * (p[:, P.P_TAU_UP] + p[:, P.P_TAU_DOWN]),
        "latency_steps": p[:, P.P_LATENCY],
        "disturbance_over_weight": np.linalg.norm(r["dist_force"], axis=1) / weight,
        "disturbance_down_over_weight": np.maximum(-r["dist_force"][:, 2], 0.0) / weight,
        "crash_time_s": r["t_end"] * dt,
    }


def crash_bound(last: np.ndarray, pos_m: float, vel_mps: float, rate_rps: float) -> np.ndarray:
    """Which termination bound (0 position, 1 speed, 2 body rate) each state is nearest to leaving."""
    ratio = np.stack([np.linalg.norm(last[:, 0:3], axis=1) / pos_m, np.linalg.norm(last[:, 7:10], axis=1) / vel_mps,
                      np.linalg.norm(last[:, 10:13], axis=1) / rate_rps], 1)
    out: np.ndarray = ratio.argmax(1)
    return out


def _binned(x: np.ndarray, failed: np.ndarray, edges: Sequence[float]) -> list[dict]:
    out = []
    for k in range(len(edges) - 1):
        hi_ok = x <= edges[k + 1] if k == len(edges) - 2 else x < edges[k + 1]
        m = (x >= edges[k]) & hi_ok
        out.append({"bin": [edges[k], edges[k + 1]], "episodes": int(m.sum()), "failed": int((m & failed).sum())})
    return out


def attribute_block(policy: torch.nn.Module, cfg: Any, block: Any, episodes: int, seed: int) -> dict:
    """Replay one block, bin its failures by every factor, and run both counterfactuals on them."""
    from sims.quadrotor.vehicles import get

    s = cfg.env.sim
    vehicle = block.sim_changes.get("vehicle", s.vehicle)
    r = replay(policy, cfg, block, episodes, seed)
    f = factors(r, vehicle, s.dt, s.gravity)
    failed = ~r["survived"]
    out: dict[str, Any] = {"episodes": episodes, "survival_rate": float(r["survived"].mean()),
                           "failed": int(failed.sum())}
    if not failed.any():
        return out
    out["bins"] = {k: _binned(f[k], failed, BINS[k]) for k in BINS}
    ct = f["crash_time_s"][failed]
    out["early_share"] = float((ct < EARLY_S).mean())
    pos_m = 0.6 if s.termination_position_m is None else s.termination_position_m
    bound = crash_bound(r["last"][failed], pos_m, s.termination_velocity_mps, s.termination_angvel_rps)
    out["bound_share"] = {name: float((bound == i).mean()) for i, name in enumerate(("position", "speed", "rate"))}
    out["failed_mean"] = {k: float(v[failed].mean()) for k, v in f.items()}
    out["all_mean"] = {k: float(v.mean()) for k, v in f.items()}
    # counterfactual 1: the same vehicles (all envs pinned to their draws), easy starts for the failed ones
    pin = r["params"][:, :P.NUM_RANDOMIZATION]
    v = get(vehicle)
    starts = r["start"].copy()
    easy = np.zeros((failed.sum(), P.STATE_DIM), np.float32)
    easy[:, 3] = 1.0
    pf = r["params"][failed]
    easy[:, 13:17] = np.array([v.hover_rpm(m, k, s.gravity) for m, k in zip(pf[:, P.P_MASS], pf[:, P.P_KF])])[:, None]
    starts[failed] = easy
    e = replay(policy, cfg, block, episodes, seed, pin=pin, starts=starts)
    out["easy_start_survived"] = float(e["survived"][failed].mean())
    # counterfactual 2: the same starts on the nominal vehicle
    nominal = np.tile(np.array([p.default[0] for p in P.PARAMS[:P.NUM_RANDOMIZATION]], np.float32), (episodes, 1))
    nominal[~failed] = pin[~failed]
    c = replay(policy, cfg, block, episodes, seed, pin=nominal, starts=r["start"])
    out["nominal_vehicle_survived"] = float(c["survived"][failed].mean())
    return out


def run_attribution(run_dir: str | Path, blocks: Sequence[str] = ("nominal", "real_range", "corners")) -> dict:
    """Attribute the failures of each named evaluation block of ``run_dir`` (see the module doc).

    Raises :class:`robolearn.errors.UserError` for a block the run's evaluation does not have."""
    from robolearn.errors import UserError
    from robolearn.policy import load_run
    from robolearn.tasks.quadrotor.env import eval_blocks

    cfg, policy = load_run(run_dir)
    have = eval_blocks(cfg)
    bad = [b for b in blocks if b not in have]
    if bad:
        raise UserError(f"block(s) {', '.join(bad)} not in this run's evaluation; it has {', '.join(have)}")
    ev_path = Path(run_dir) / "eval.json"
    ev = json.loads(ev_path.read_text()) if ev_path.exists() else {}
    out: dict[str, Any] = {"run_dir": str(run_dir), "blocks": {}}
    for name in blocks:
        res = attribute_block(policy, cfg, have[name], cfg.eval.episodes, cfg.eval.seed)
        res["eval_json_survival_rate"] = ev.get(name, {}).get("survival_rate")
        out["blocks"][name] = res
    return out


def print_attribution(result: dict) -> None:
    """Print :func:`run_attribution`'s result as one table per block."""
    print(f"failure attribution: {result['run_dir']}")
    for name, b in result["blocks"].items():
        print(f"\n== {name}: survival {b['survival_rate']:.1%} (eval.json {b.get('eval_json_survival_rate')}), "
              f"{b['failed']} failed of {b['episodes']}")
        if not b["failed"]:
            continue
        print(f"crashes before {EARLY_S} s: {b['early_share']:.0%}; bound left: "
              + ", ".join(f"{k} {v:.0%}" for k, v in b["bound_share"].items()))
        print(f"failed episodes saved by an easy start (same vehicle): {b['easy_start_survived']:.0%}; "
              f"by the nominal vehicle (same start): {b['nominal_vehicle_survived']:.0%}")
        for k, rows in b["bins"].items():
            cells = "  ".join(f"[{r['bin'][0]:g},{r['bin'][1]:g}) {r['failed']}/{r['episodes']}" for r in rows)
            print(f"  {k:24s} failed/flown: {cells}")
        print("  mean over failed vs all: " + ", ".join(
            f"{k} {b['failed_mean'][k]:.3g}/{b['all_mean'][k]:.3g}" for k in b["failed_mean"]))


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_dir")
    ap.add_argument("--blocks", default="nominal,real_range,corners", help="comma-separated eval blocks")
    ap.add_argument("--json", default=None, help="also write the result to this JSON file")
    a = ap.parse_args(argv)
    from robolearn.errors import UserError

    try:
        res = run_attribution(a.run_dir, [b for b in a.blocks.split(",") if b])
    except UserError as e:
        raise SystemExit(f"error: {e}") from None
    print_attribution(res)
    if a.json:
        Path(a.json).write_text(json.dumps(res, indent=1))
    return res


if __name__ == "__main__":
    main()

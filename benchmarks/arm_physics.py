"""Is a cheaper integration of the arm scenes the same physics? Stability and task figures
per (timestep, substeps, integrator), against arm.xml's 2 ms reference.

    python -m benchmarks.arm_physics [--envs 32] [--control-hz 25] [--variants 0.002x20,0.01x4]

For each variant, at one control rate (the same decisions, only the integration differs):

* ``rest``: the push-lift bar and the push cube left alone on the table for 2 s (bar
  against the wall): mean and max penetration into the table (m), and the box's kinetic
  energy in the last 0.5 s (J): a stable contact holds it at ~0;
* ``held``: the bar grasped and held in the air by the scripted controller (phase 6 reached
  and the goal held for 1 s): its kinetic energy (J) and slip of the bar in the pads (m);
* ``scripted``: ``ScriptedPushLift`` (exact state, no privilege): success over ``--envs``
  episodes, deepest bar penetration (m), and the bar's path against the reference variant's
  (median and p90 of the per-step distance, m), same seeds and actions-by-state;
* ``cost``: env steps per CPU second of the scripted episodes (1 MuJoCo thread).

Variants are ``<timestep>x<substeps>[:euler|:implicitfast]``; the first is the reference.
"""

from __future__ import annotations

import argparse
import json
import time

import mujoco
import numpy as np

INTEGRATORS = {"euler": mujoco.mjtIntegrator.mjINT_EULER, "implicitfast": mujoco.mjtIntegrator.mjINT_IMPLICITFAST}


def parse_variant(s: str) -> tuple[float, int, str]:
    head, _, integ = s.partition(":")
    ts, _, sub = head.partition("x")
    try:
        out = float(ts), int(sub), integ or "implicitfast"
    except ValueError:
        raise SystemExit(f"error: variant {s!r}: write <timestep>x<substeps>[:euler|:implicitfast], e.g. 0.01x4") from None
    if out[2] not in INTEGRATORS:
        raise SystemExit(f"error: variant {s!r}: integrator must be one of {', '.join(INTEGRATORS)}")
    return out


def _env(task: str, n: int, ts: float, sub: int, integ: str, episode_steps: int, seed: int):  # type: ignore[no-untyped-def]
    from sims.manipulation import ArmVecEnv

    return ArmVecEnv(n, task=task, seed=seed, num_threads=1, timestep=ts, substeps=sub, integrator=integ,
                     episode_steps=episode_steps, terminate_on_success=False)


def rest(task: str, n: int, ts: float, sub: int, integ: str, control_hz: float) -> dict:
    steps = int(round(2.0 * control_hz))
    env = _env(task, n, ts, sub, integ, 10**6, 0)
    env.reset(seed=0)
    a = np.zeros((n, 8))
    a[:, 4] = 1.0  # fingers open, arm still
    half = env._half[2]
    pen, ke = [], []
    m = env.model
    mass = m.body_mass[env._obj_body]
    inertia = m.body_inertia[env._obj_body]
    for k in range(steps):
        env.step(a)
        pen.append(half - env.object_pose[:, 2])
        if k >= steps - int(0.5 * control_hz):
            v = env.batch.qvel[:, env._obj_v]
            ke.append(0.5 * mass * (v[:, :3] ** 2).sum(1) + 0.5 * (inertia * v[:, 3:] ** 2).sum(1))
    p = np.array(pen[len(pen) // 2:])
    return {"penetration_mean_m": float(p.mean()), "penetration_max_m": float(p.max()),
            "kinetic_energy_max_J": float(np.max(ke))}


def scripted(n: int, ts: float, sub: int, integ: str, control_hz: float) -> dict:
    from sims.manipulation.scripted import ScriptedPushLift

    steps = int(round(6.0 * control_hz))
    env = _env("push_lift", n, ts, sub, integ, steps, 3)
    env.reset(seed=3)
    ctl = ScriptedPushLift(n)
    path, pen, ke_held, slip = [], [], [], []
    success = np.zeros(n, bool)
    m = env.model
    mass = m.body_mass[env._obj_body]
    held_steps = np.zeros(n, np.int64)
    rel0 = np.full((n, 3), np.nan)
    c0 = time.process_time()
    for k in range(steps - 1):
        env.step(ctl(env))
        obj = env.object_pose[:, :3]
        path.append(obj.copy())
        pen.append(env._half[2] - obj[:, 2])
        d = np.linalg.norm(obj - env.goals, axis=1)
        touch = (env.batch.sensordata[:, :2] > 0.1).all(axis=1)
        at_goal = (ctl.phase == 6) & (d < 0.03) & touch
        success |= at_goal
        held_steps = np.where(at_goal, held_steps + 1, 0)
        rel = obj - env.ee_pos
        first = at_goal & (held_steps == 1)
        rel0[first] = rel[first]
        h = held_steps > int(0.2 * control_hz)  # settled in the grasp
        if h.any():
            v = env.batch.qvel[h][:, env._obj_v]
            ke_held.append(0.5 * mass * (v[:, :3] ** 2).sum(1))
            slip.append(np.linalg.norm(rel[h] - rel0[h], axis=1))
    cpu = time.process_time() - c0
    cat = (lambda xs: np.concatenate(xs) if xs else np.array([np.nan]))  # noqa: E731
    return {"success": float(success.mean()), "penetration_max_m": float(np.max(pen)),
            "held_kinetic_energy_max_J": float(np.nanmax(cat(ke_held))),
            "held_slip_max_m": float(np.nanmax(cat(slip))),
            "env_steps_per_cpu_s": n * (steps - 1) / cpu, "_path": np.array(path)}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--envs", type=int, default=32)
    ap.add_argument("--control-hz", type=float, default=25.0)
    ap.add_argument("--variants", default="0.002x20,0.004x10,0.008x5,0.01x4,0.01x4:euler")
    ap.add_argument("--json", help="also write the rows to this file")
    args = ap.parse_args(argv)
    variants = [parse_variant(v) for v in args.variants.split(",")]
    rows, ref_path = [], None
    for ts, sub, integ in variants:
        if abs(ts * sub - 1.0 / args.control_hz) > 1e-9:
            raise SystemExit(f"error: {ts}x{sub} is not one control step at {args.control_hz} Hz: "
                             f"timestep x substeps must be {1.0 / args.control_hz} s")
        row: dict = {"variant": f"{ts}x{sub}:{integ}"}
        for task in ("push", "push_lift"):
            row[f"rest_{task}"] = rest(task, args.envs, ts, sub, integ, args.control_hz)
        s = scripted(args.envs, ts, sub, integ, args.control_hz)
        path = s.pop("_path")
        if ref_path is None:
            ref_path = path
        dev = np.linalg.norm(path - ref_path, axis=2)
        s["path_vs_reference_median_m"] = float(np.median(dev))
        s["path_vs_reference_p90_m"] = float(np.percentile(dev, 90))
        row["scripted_push_lift"] = s
        rows.append(row)
        print(json.dumps(row), flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()

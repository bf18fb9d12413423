"""Does a privilege make push-lift easier? The scripted drag-grasp-lift (exact state, it
uses no privileged action) at each privilege coefficient set, on the config's physics.

    python -m benchmarks.arm_privilege_check [--config configs/arm_push_lift.yaml] [--envs 32]

A curriculum that lowers a coefficient only once the policy succeeds with it deadlocks if
the privilege makes the task harder than at 0: this prints the scripted success and the
final bar-goal distance per setting (a privilege that helps a learner should not break the
real solution; the virtual force is not used by the script, so it is not varied here).
"""

from __future__ import annotations

import argparse
import dataclasses
import json

import numpy as np

SETTINGS = {
    "none": {},
    "gravity_scale=1": {"privileged.gravity_scale": 1.0},
    "gravity_scale=0.5": {"privileged.gravity_scale": 0.5},
    "table_penetration=1": {"privileged.table_penetration": 1.0},
}


def main(argv: list[str] | None = None) -> dict:
    from robolearn.config import load_config
    from robolearn.tasks.arm.env import arm_config
    from sims.manipulation import ArmVecEnv
    from sims.manipulation.scripted import ScriptedPushLift

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default="configs/arm_push_lift.yaml")
    ap.add_argument("--envs", type=int, default=32)
    args = ap.parse_args(argv)
    base = arm_config(load_config(args.config))
    n, out = args.envs, {}
    for name, priv in SETTINGS.items():
        ranges = dict(base.ranges) | {k: (v, v) for k, v in priv.items()}
        cfg = dataclasses.replace(base, ranges=ranges, episode_steps=150)
        env = ArmVecEnv(n, config=cfg, seed=3, num_threads=1)
        env.reset(seed=3)
        ctl = ScriptedPushLift(n)
        done, succ, dist = np.zeros(n, bool), np.zeros(n, bool), np.zeros(n)
        for _ in range(cfg.episode_steps + 1):
            _, _, _, _, info = env.step(ctl(env))
            if "episode" in info:
                f = info["_episode"] & ~done
                succ[f] = info["episode"]["success"][f]
                dist[f] = info["episode"]["object_goal_distance_m"][f]
                done |= info["_episode"]
            if done.all():
                break
        out[name] = {"scripted_success": float(succ.mean()), "final_distance_median_m": float(np.median(dist))}
        print(json.dumps({name: out[name]}), flush=True)
    return out


if __name__ == "__main__":
    main()

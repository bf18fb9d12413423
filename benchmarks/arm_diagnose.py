"""Which stage of push-lift does a trained policy reach? Per-stage figures of a run's policy.

    python -m benchmarks.arm_diagnose RUN [--episodes 64] [--privilege 0,1]

For each privilege level (every coefficient of the run's curriculum set to it; the
others 0), ``--episodes`` episodes on the run's config (its domain randomization on):
fraction of episodes where the bar was dragged >= 2 cm off the wall (the non-prehensile
stage), where both pads held it (touch > 0.1 N) at some step, where it was lifted >= 1 cm,
the success rate (at the episode's end), and the median closest pad-bar distance (m).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch


def main(argv: list[str] | None = None) -> dict:
    from robolearn.tasks.arm.curriculum import privileged_names
    from robolearn.config import load_config
    from robolearn.envs import make_env
    from robolearn.policy import load_policy
    from sims.manipulation.env import WALL_HALF, WALL_Y

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run")
    ap.add_argument("--episodes", type=int, default=64)
    ap.add_argument("--privilege", default="0,1")
    args = ap.parse_args(argv)
    run = Path(args.run)
    cfg = load_config(run / "config.yaml")
    actor = load_policy(run / "policy.pt")
    import fnmatch

    globs = [g.strip() for g in cfg.curriculum.privileged.param.split(",")]
    trained = [n for n in privileged_names() if cfg.curriculum.teacher == "privileged"
               and any(fnmatch.fnmatchcase(n, g) for g in globs)]
    out = {}
    for level in (float(x) for x in args.privilege.split(",")):
        ranges = dict(cfg.env.ranges) | {n: (0.0, 0.0) for n in privileged_names()} | {n: (level, level) for n in trained}
        n = args.episodes
        env = make_env(cfg, num_envs=n, seed=7, ranges=ranges)
        obs, _ = env.reset(seed=7)
        half = env._half
        gap = np.zeros(n)
        held = np.zeros(n, bool)
        lift = np.zeros(n)
        d_min = np.full(n, np.inf)
        succ = np.zeros(n, bool)
        for _ in range(env.config.episode_steps):
            with torch.inference_mode():
                act = actor(torch.from_numpy(obs["policy"])).numpy()
            obs, _, term, trunc, info = env.step(act)
            live = ~(term | trunc)
            pose = env.object_pose
            gap = np.where(live, np.maximum(gap, (WALL_Y - WALL_HALF[1]) - (pose[:, 1] + half[1])), gap)
            held |= live & (env.batch.sensordata[:, :2] > 0.1).all(axis=1)
            lift = np.where(live, np.maximum(lift, pose[:, 2] - half[2]), lift)
            d_min = np.where(live, np.minimum(d_min, np.linalg.norm(pose[:, :3] - env.ee_pos, axis=1)), d_min)
            if "episode" in info:
                succ |= info["_episode"] & info["episode"]["success"]
        out[f"privilege={level}"] = {"coefficients": {k: ranges[k][0] for k in privileged_names()},
                                     "dragged_2cm": float((gap >= 0.02).mean()), "held": float(held.mean()),
                                     "lifted_1cm": float((lift >= 0.01).mean()), "success": float(succ.mean()),
                                     "pad_bar_distance_min_median_m": float(np.median(d_min))}
        print(json.dumps(out[f"privilege={level}"]), flush=True)
    return out


if __name__ == "__main__":
    main()

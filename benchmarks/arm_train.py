"""CPU cost of PPO training on the arm push task: old settings vs configs/arm_push.yaml.

    NUMBA_NUM_THREADS=1 OMP_NUM_THREADS=1 python -m benchmarks.arm_train [--iterations 4]

Counts CPU seconds of this process (``time.process_time``: valid on a shared machine, as
long as the process is single-threaded: 1 torch thread, 1 MuJoCo thread) for ``iterations``
PPO iterations (rollout + update) after one warm-up iteration, and reports env steps and
simulated seconds per CPU second, plus the wall-time shares of ``PPO.timers``.
"""

from __future__ import annotations

import argparse
import time

import torch

VARIANTS = {
    # the config before the control/physics changes (still reachable with these overrides)
    "old: 50 Hz, 10 x 2 ms, 8-dim actions, critic 256-256": [
        "curriculum.teacher=none", "env.arm.timestep=0.002", "env.arm.substeps=10",
        "env.arm.episode_steps=150", "env.arm.block_gripper=false", "env.arm.push_features=false",
        "network.critic_hidden=[256,256]"],
    "configs/arm_push.yaml: 25 Hz, 10 x 4 ms, 6-dim actions, critic 128-128": ["curriculum.teacher=none"],
}


def main() -> None:
    from robolearn.config import load_config
    from robolearn.envs import make_env
    from robolearn.ppo import PPO

    ap = argparse.ArgumentParser()
    ap.add_argument("--iterations", type=int, default=4)
    args = ap.parse_args()
    torch.set_num_threads(1)
    for name, overrides in VARIANTS.items():
        cfg = load_config("configs/arm_push.yaml", overrides)
        env = make_env(cfg, num_envs=cfg.env.num_envs, seed=0)
        algo = PPO(env, cfg.ppo, cfg.network, seed=0)
        algo.iterate()  # warm-up
        for k in algo.timers:
            algo.timers[k] = 0.0
        c0, w0 = time.process_time(), time.perf_counter()
        for _ in range(args.iterations):
            algo.iterate()
        cpu, wall = time.process_time() - c0, time.perf_counter() - w0
        steps = args.iterations * cfg.ppo.rollout_steps * cfg.env.num_envs
        control_hz = 1.0 / (env.model.opt.timestep * env.config.substeps)
        shares = ", ".join(f"{k} {v / wall:.0%}" for k, v in algo.timers.items())
        print(f"{name}: {steps / cpu:,.0f} env steps per CPU-s, {steps / control_hz / cpu:.0f} simulated s "
              f"per CPU-s ({shares})")


if __name__ == "__main__":
    main()

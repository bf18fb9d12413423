"""Evaluation of an arm policy (``eval.json``) and its box-path plot.

``eval.episodes`` fixed-seed episodes, one per env of one batch, with **every privilege
coefficient forced to 0**; the coefficients each episode actually ran with are reported
(``privileged_max``) so that a reader can check.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from .curriculum import privileged_names
from .env import make_env

if TYPE_CHECKING:
    from ...config import RunConfig


def eval_ranges_arm(cfg: RunConfig, block: str) -> dict:
    """``nominal``: parameter defaults; ``train_ranges``: the run's env.ranges. Privileges at 0 in both."""
    ranges = dict(cfg.env.ranges) if block == "train_ranges" else {}
    ranges.update({n: (0.0, 0.0) for n in privileged_names()})
    return ranges


@torch.inference_mode()
def run_arm_block(policy: torch.nn.Module, cfg: RunConfig, block: str, episodes: int, seed: int,
                  record: int = 0) -> tuple[dict, list[dict]]:
    """One evaluation block; returns (metrics, trajectories of the first ``record`` envs).

    A trajectory is ``{"qpos": (T, nq), "goal": (3,), "success": bool}`` (states after each
    step of the first episode, for rendering).
    """
    from sims.manipulation.params import PRIVILEGED

    steps = cfg.eval.episode_steps
    ranges = eval_ranges_arm(cfg, block)
    env = make_env(cfg, num_envs=episodes, seed=seed, ranges=ranges, episode_steps=steps)
    obs, _ = env.reset(seed=seed)
    n = episodes
    done = np.zeros(n, bool)
    success = np.zeros(n, bool)
    dist = np.zeros(n)
    ret = np.zeros(n)
    length = np.zeros(n)
    priv = np.zeros((n, PRIVILEGED.stop - PRIVILEGED.start))
    rec = list(range(min(record, n)))
    trajs = [{"qpos": [env.batch.qpos[i].copy()], "goal": env.goals[i].copy(), "success": False} for i in rec]
    for _ in range(steps + 1):
        act = policy(torch.from_numpy(obs["policy"])).numpy()
        obs, _, term, trunc, info = env.step(act)
        end = term | trunc
        for i in rec:  # a handful of envs, for the video only
            if not done[i] and not end[i]:  # after its end, env i holds its next episode
                trajs[i]["qpos"].append(env.batch.qpos[i].copy())
        new = end & ~done
        if new.any():
            ep = info["episode"]
            success[new] = ep["success"][new]
            dist[new] = ep["object_goal_distance_m"][new]
            ret[new] = ep["return"][new]
            length[new] = ep["length"][new]
            priv[new] = ep["params"][new][:, PRIVILEGED]
            done |= new
        if done.all():
            break
    for i in rec:
        trajs[i]["qpos"] = np.asarray(trajs[i]["qpos"])
        trajs[i]["success"] = bool(success[i])
    out = {
        "episodes": int(n),
        "success_rate": float(success.mean()),
        "object_goal_distance_m": float(dist.mean()),
        "object_goal_distance_m_median": float(np.median(dist)),
        "object_goal_distance_m_p90": float(np.percentile(dist, 90)),
        "episode_length_mean": float(length.mean()),
        "return_mean": float(ret.mean()),
        # the coefficients the env ran with: 0 for every episode, or the evaluation is wrong
        "privileged_max": {name: float(priv[:, j].max()) for j, name in enumerate(privileged_names())},
        "ranges": {k: list(v) for k, v in ranges.items()},
    }
    return out, trajs


def evaluate_arm(policy: torch.nn.Module, cfg: RunConfig, episodes: int | None = None, seed: int | None = None,
                 train_info: dict | None = None, record: int = 0) -> tuple[dict, list[dict]]:
    """``nominal`` block (and ``train_ranges`` when env.ranges randomizes anything and
    ``eval.randomized``); returns (eval dict, trajectories of the nominal block)."""
    episodes = episodes or cfg.eval.episodes
    seed = cfg.eval.seed if seed is None else seed
    t0 = time.perf_counter()
    train_info = train_info or {}
    common = {"train_wall_time_s": train_info.get("train_wall_time_s"), "env_steps": train_info.get("env_steps")}
    nominal, trajs = run_arm_block(policy, cfg, "nominal", episodes, seed, record=record)
    out = {
        "env": "arm",
        "task": cfg.task,
        "episodes": episodes,
        "seed": seed,
        "episode_steps": cfg.eval.episode_steps,
        **common,
        "success_rate": nominal["success_rate"],
        "object_goal_distance_m": nominal["object_goal_distance_m"],
        "privileged_max": nominal["privileged_max"],
        "nominal": nominal,
    }
    privileged = set(privileged_names())
    if cfg.eval.randomized and any(k not in privileged for k in cfg.env.ranges):
        out["train_ranges"], _ = run_arm_block(policy, cfg, "train_ranges", episodes, seed)
    for k, v in train_info.items():
        out.setdefault(k, v)
    out["eval_wall_time_s"] = time.perf_counter() - t0
    return out, trajs


def trajectory_plot(trajs: list[dict], path: str | Path) -> None:
    """Top view of the box paths of a few evaluation episodes (start, path, goal)."""
    from sims.manipulation import load_model

    from ...logging.plots import pyplot

    m = load_model()
    a = m.jnt_qposadr[m.joint("object").id]
    object_qpos = slice(a, a + 3)
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    for k, t in enumerate(trajs):
        xy = t["qpos"][:, object_qpos][:, :2]
        color = f"C{k % 10}"
        ax.plot(xy[:, 0], xy[:, 1], color=color, lw=1.2)
        ax.plot(*xy[0], "o", color=color, ms=4)
        ax.plot(*t["goal"][:2], "x" if t["success"] else "+", color=color, ms=8)
    ax.set_aspect("equal")
    ax.set_xlabel("x (m)")
    ax.set_ylabel("y (m)")
    ax.set_title("box paths, privilege 0 (o start, x goal reached, + missed)", fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)

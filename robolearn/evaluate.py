"""Fixed-seed evaluation of the deterministic policy (``eval.json``).

All ``episodes`` run as one batch of that many envs, one episode each (episodes that
start after an env's auto-reset are ignored). Two blocks: ``nominal`` (every parameter
at its default: the full default initial-state distribution, no randomization) and
``randomized`` (``eval.randomized_ranges``, by default the simulator's real-world range). Metrics per block:
survival rate, and over survivors the mean over the last second of position error,
tilt and |yaw|.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .config import RunConfig
from .envs import eval_ranges, make_env
from .networks import prime_cpu_kernels


@dataclass
class FlightRecord:
    """One eval episode (env 0 of the nominal block), for the flight plot."""

    dt: float
    position: np.ndarray  # (T, 3) m, world
    target: np.ndarray  # (3,)
    euler_deg: np.ndarray  # (T, 3) roll, pitch, yaw
    actions: np.ndarray  # (T, 4) normalized rotor commands
    rpm: np.ndarray  # (T, 4)
    survived: bool


def quat_to_euler_deg(q: np.ndarray) -> np.ndarray:
    """(…, 4) wxyz -> (…, 3) roll, pitch, yaw in degrees (ZYX)."""
    w, x, y, z = q[..., 0], q[..., 1], q[..., 2], q[..., 3]
    roll = np.arctan2(2 * (w * x + y * z), 1 - 2 * (x * x + y * y))
    pitch = np.arcsin(np.clip(2 * (w * y - z * x), -1, 1))
    yaw = np.arctan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z))
    deg: np.ndarray = np.degrees(np.stack([roll, pitch, yaw], -1))
    return deg


@torch.inference_mode()
def run_block(policy: torch.nn.Module, cfg: RunConfig, randomized: bool, episodes: int, seed: int,
              record: bool = False) -> tuple[dict, FlightRecord | None]:
    steps = cfg.eval.episode_steps
    env = make_env(cfg, num_envs=episodes, seed=seed, ranges=eval_ranges(cfg, randomized),
                   backend="cpu", episode_steps=steps)
    obs, _ = env.reset(seed=seed)
    n = episodes
    done = np.zeros(n, bool)
    res = {k: np.zeros(n) for k in ("return", "length", "position_error_m", "tilt_deg", "yaw_deg")}
    survived = np.zeros(n, bool)
    target = env.targets[0].copy() if record else None
    rec_state = [env.state[0].copy()] if record else []
    rec_act = []
    for _ in range(steps + 1):
        act = policy(torch.from_numpy(obs["policy"])).numpy()
        if record and not done[0]:
            rec_act.append(act[0].copy())
        obs, _, term, trunc, info = env.step(act)
        if record and not done[0] and not (term[0] or trunc[0]):
            rec_state.append(env.state[0].copy())  # after a done, env 0 holds its next episode
        new = (term | trunc) & ~done
        if new.any():
            ep = info["episode"]
            for k in res:
                res[k][new] = ep[k][new]
            survived[new] = ep["survived"][new]
            done |= new
        if done.all():
            break
    s = survived
    out = {
        "episodes": int(n),
        "survival_rate": float(s.mean()),
        "position_error_m": float(res["position_error_m"][s].mean()) if s.any() else None,
        "tilt_deg": float(res["tilt_deg"][s].mean()) if s.any() else None,
        "yaw_deg": float(res["yaw_deg"][s].mean()) if s.any() else None,
        "position_error_m_p95": float(np.percentile(res["position_error_m"][s], 95)) if s.any() else None,
        "episode_length_mean": float(res["length"].mean()),
        "return_mean": float(res["return"].mean()),
        "ranges": {k: list(v) for k, v in eval_ranges(cfg, randomized).items()},
    }
    flight = None
    if record and rec_state:
        st = np.asarray(rec_state)
        acts = np.asarray(rec_act)
        T = min(len(st), len(acts))
        st, acts = st[:T], acts[:T]
        assert target is not None  # recorded with the states
        flight = FlightRecord(dt=cfg.env.sim.dt, position=st[:, 0:3], target=target,
                              euler_deg=quat_to_euler_deg(st[:, 3:7]), actions=acts,
                              rpm=st[:, 13:17], survived=bool(survived[0]))
    return out, flight


def evaluate(policy: torch.nn.Module, cfg: RunConfig, episodes: int | None = None, seed: int | None = None,
             train_info: dict | None = None) -> tuple[dict, FlightRecord | None]:
    """Both blocks; returns (eval dict, flight record of nominal env 0)."""
    episodes = episodes or cfg.eval.episodes
    seed = cfg.eval.seed if seed is None else seed
    prime_cpu_kernels()  # an evaluation's first actor call may be multi-threaded (networks.py)
    t0 = time.perf_counter()
    train_info = train_info or {}
    common = {"train_wall_time_s": train_info.get("train_wall_time_s"), "env_steps": train_info.get("env_steps")}
    nominal, flight = run_block(policy, cfg, False, episodes, seed, record=True)
    nominal.update(common)
    out = {
        "episodes": episodes,
        "seed": seed,
        "episode_steps": cfg.eval.episode_steps,
        "task": cfg.env.sim.task,
        **common,
        "survival_rate": nominal["survival_rate"],
        "position_error_m": nominal["position_error_m"],
        "tilt_deg": nominal["tilt_deg"],
        "yaw_deg": nominal["yaw_deg"],
        "nominal": nominal,
    }
    if cfg.eval.randomized:
        randomized, _ = run_block(policy, cfg, True, episodes, seed)
        randomized.update(common)
        out["randomized"] = randomized
    for k, v in train_info.items():
        out.setdefault(k, v)
    out["eval_wall_time_s"] = time.perf_counter() - t0
    return out, flight


def write_eval(result: dict, path: str | Path) -> None:
    from .checkpoint import atomic_write_text

    atomic_write_text(json.dumps(result, indent=2) + "\n", path)

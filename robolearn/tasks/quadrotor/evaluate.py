"""Fixed-seed evaluation of the deterministic policy (``eval.json``).

All ``episodes`` of a block run as one batch of that many envs, one episode each (episodes
that start after an env's auto-reset are ignored; a stateful actor's state is reset with
every env's episode). Blocks (``robolearn.tasks.quadrotor.env.eval_blocks``):

* ``nominal``: every parameter at its default (the full default initial-state
  distribution, no randomization);
* ``real_range``: uniform over ``eval.randomized_ranges``, by default the simulator's
  real-world range for the configured vehicle, independent of training;
* ``corners``: every extreme combination of mass, thrust, inertia and motor time
  constants of that range (episodes split evenly), the rest of the range uniform;
* one block per other vehicle preset named in ``eval.vehicles`` (nominal parameters).

Metrics per block: survival rate, and over survivors the mean over the last second of
position error, tilt and |yaw|; settling time to 5 cm; command smoothness (mean
``|a_t - a_(t-1)|`` over the last second, and the share of the commands' power above
10 Hz in that second; :mod:`robolearn.flight_metrics`, shared with ``robolearn bench peers``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ...flight_metrics import command_rate, finite_mean, high_frequency_share, settling_time, window_steps
from ...networks import prime_cpu_kernels
from .env import EvalBlock, eval_blocks, make_env

if TYPE_CHECKING:
    from ...config import RunConfig


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


def block_env(cfg: RunConfig, block: EvalBlock, episodes: int, seed: int) -> Any:
    """The CPU vector env of one evaluation block (``episodes`` envs, ``eval.episode_steps`` long,
    corner envs pinned), not yet reset: ``env.reset(seed=seed)`` gives the block's starts."""
    env = make_env(cfg, num_envs=episodes, seed=seed, ranges=block.ranges, backend="cpu",
                   episode_steps=cfg.eval.episode_steps, **block.sim_changes)
    for name, (lo, hi) in block.per_env_ranges(episodes).items():
        env.set_range(name, lo, hi)
    return env


@torch.inference_mode()
def run_block(policy: torch.nn.Module, cfg: RunConfig, block: EvalBlock, episodes: int, seed: int,
              record: bool = False) -> tuple[dict, FlightRecord | None]:
    """Fly ``episodes`` episodes of one block; returns its metrics (and env 0's flight if ``record``)."""
    steps = cfg.eval.episode_steps
    env = block_env(cfg, block, episodes, seed)
    obs, _ = env.reset(seed=seed)
    reset_state = getattr(policy, "reset_state", None)
    if reset_state is not None:
        reset_state()
    n = episodes
    done = np.zeros(n, bool)
    res = {k: np.zeros(n) for k in ("return", "length", "position_error_m", "tilt_deg", "yaw_deg")}
    survived = np.zeros(n, bool)
    target = env.targets.copy()
    rec_state = [env.state[0].copy()] if record else []
    pos_err = np.full((steps + 1, n), np.nan, np.float32)  # after each step, while the first episode runs
    acts = np.zeros((steps + 1, n, 4), np.float32)
    t_end = np.full(n, steps + 1)
    for t in range(steps + 1):
        act = policy(torch.from_numpy(obs["policy"])).numpy()
        acts[t] = act
        obs, _, term, trunc, info = env.step(act)
        ended = term | trunc
        live = ~done & ~ended
        pos_err[t, live] = np.linalg.norm(env.state[live, 0:3] - target[live], axis=1)
        if record and live[0]:
            rec_state.append(env.state[0].copy())  # after a done, env 0 holds its next episode
        new = ended & ~done
        if new.any():
            ep = info["episode"]
            for k in res:
                res[k][new] = ep[k][new]
            survived[new] = ep["survived"][new]
            t_end[new] = t + 1
            done |= new
        if reset_state is not None and ended.any():
            reset_state(torch.from_numpy(ended))
        if done.all():
            break
    s = survived
    # Survivors flew all ``steps`` steps: their commands are acts[:steps] (robolearn.flight_metrics
    # takes the last second of them, and the command before it for the first difference).
    last = min(window_steps(cfg.env.sim.dt), steps - 1)
    window = acts[:steps, s]
    out = {
        "episodes": int(n),
        "survival_rate": float(s.mean()),
        "position_error_m": float(res["position_error_m"][s].mean()) if s.any() else None,
        "tilt_deg": float(res["tilt_deg"][s].mean()) if s.any() else None,
        "yaw_deg": float(res["yaw_deg"][s].mean()) if s.any() else None,
        "position_error_m_p95": float(np.percentile(res["position_error_m"][s], 95)) if s.any() else None,
        "settling_time_s": finite_mean(settling_time(pos_err[:steps - 1, s], cfg.env.sim.dt)) if s.any() else None,
        "command_rate": float(command_rate(window, last).mean()) if s.any() else None,
        "high_frequency_share": float(high_frequency_share(window, cfg.env.sim.dt, last).mean()) if s.any() else None,
        "episode_length_mean": float(res["length"].mean()),
        "return_mean": float(res["return"].mean()),
        "ranges": {k: list(v) for k, v in block.ranges.items()},
        **block.describe(),
    }
    flight = None
    if record and rec_state:
        st = np.asarray(rec_state)
        a0 = acts[:t_end[0], 0]
        T = min(len(st), len(a0))
        st, a0 = st[:T], a0[:T]
        flight = FlightRecord(dt=cfg.env.sim.dt, position=st[:, 0:3], target=target[0].copy(),
                              euler_deg=quat_to_euler_deg(st[:, 3:7]), actions=a0,
                              rpm=st[:, 13:17], survived=bool(survived[0]))
    return out, flight


def evaluate(policy: torch.nn.Module, cfg: RunConfig, episodes: int | None = None, seed: int | None = None,
             train_info: dict | None = None) -> tuple[dict, FlightRecord | None]:
    """Every block of :func:`robolearn.tasks.quadrotor.env.eval_blocks`; returns (eval dict, flight record of nominal env 0)."""
    episodes = episodes or cfg.eval.episodes
    seed = cfg.eval.seed if seed is None else seed
    prime_cpu_kernels()  # an evaluation's first actor call may be multi-threaded (networks.py)
    t0 = time.perf_counter()
    train_info = train_info or {}
    common = {"train_wall_time_s": train_info.get("train_wall_time_s"), "env_steps": train_info.get("env_steps")}
    out: dict = {"episodes": episodes, "seed": seed, "episode_steps": cfg.eval.episode_steps,
                 "task": cfg.env.sim.task, "vehicle": cfg.env.sim.vehicle, **common}
    flight = None
    for name, block in eval_blocks(cfg).items():
        res, rec = run_block(policy, cfg, block, episodes, seed, record=name == "nominal")
        res.update(common)
        out[name] = res
        if name == "nominal":
            flight = rec
            out.update({k: res[k] for k in ("survival_rate", "position_error_m", "tilt_deg", "yaw_deg")})
    for k, v in train_info.items():
        out.setdefault(k, v)
    out["eval_wall_time_s"] = time.perf_counter() - t0
    return out, flight

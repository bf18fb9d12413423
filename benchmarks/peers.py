"""Peers in our benchmark: the RAPTOR foundation policy and our policies on the same starts (issue 23).

    robolearn bench peers [RUN_DIR ...] [--episodes 1000] [--seed S] [--sim ours|l2f] [--no-raptor] [--json OUT]
    python -m benchmarks.peers [RUN_DIR ...] [...]

Every controller flies the same episodes of each block: one vector env per block, reset with
the same seed before each controller, so starts, vehicle parameters and (our simulator's)
sensor-noise draws are identical until a controller's flight departs from another's. Blocks
(:func:`default_blocks`, data: swap the ranges in one place):

* ``nominal``: every parameter at its default (the evaluation's nominal block);
* ``real_range``: uniform over ``sims.quadrotor.params.REAL_WORLD_RANGES``;
* ``corners``: the real range, with mass, thrust coefficient, inertia (all axes together) and
  motor time constants (rise and fall together) each at an end of its range: 16 corners,
  the episodes split evenly (env i flies corner ``i * 16 // episodes``).

``--sim l2f`` flies the same controllers and blocks in RLtools' l2f simulator with its own
Crazyflie (``robolearn.peers.l2f_env``): each block's starts, and its vehicle draws as scales on
l2f's constants (mass, thrust curve, inertia, yaw torque, motor time constants; drag, noise,
disturbances and latency have no counterpart there and are listed per block as not applied).

Metrics per block and controller (``robolearn.flight_metrics.hover_summary``): survival over
all episodes; over surviving episodes, steady position error and |yaw| (mean over the last
second), settling time to 5 cm (and the share that settles), command smoothness: mean
|a_t - a_(t-1)| over the last second ([-1, 1] command) and the share of command power above
10 Hz.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sims.quadrotor.params import CORNER_GROUPS, corner_values

SIMS = ("ours", "l2f")


@dataclass(frozen=True)
class Block:
    """An evaluation block: uniform ``ranges`` per parameter; ``corners`` groups pinned to range ends."""

    name: str
    ranges: dict[str, tuple[float, float]] = field(default_factory=dict)
    corners: tuple[tuple[str, ...], ...] = ()

    def corner_values(self, episodes: int) -> dict[str, np.ndarray]:
        """Per-parameter (episodes,) values for the corner groups (``sims.quadrotor.params.corner_values``)."""
        if not self.corners:
            return {}
        try:
            return corner_values(self.ranges, episodes, self.corners)
        except ValueError as e:
            raise ValueError(f"block {self.name}: {e}") from None


def default_blocks(real_range: dict[str, tuple[float, float]] | None = None) -> list[Block]:
    """``nominal``, ``real_range`` and ``corners`` over ``real_range`` (default: the simulator's REAL_WORLD_RANGES)."""
    if real_range is None:
        from sims.quadrotor.params import REAL_WORLD_RANGES

        real_range = REAL_WORLD_RANGES
    rr = {k: (float(v[0]), float(v[1])) for k, v in real_range.items()}
    return [Block("nominal"), Block("real_range", rr), Block("corners", rr, CORNER_GROUPS)]


def block_env(cfg: Any, block: Block, episodes: int, steps: int, seed: int, **sim_changes: Any) -> Any:
    """The block's vector env (our simulator), corner values applied per env; not yet reset."""
    from robolearn.envs import make_env

    env = make_env(cfg, num_envs=episodes, seed=seed, ranges=dict(block.ranges), backend="cpu", episode_steps=steps,
                   **sim_changes)
    for name, val in block.corner_values(episodes).items():
        env.set_range(name, val, val)
    return env


def _controllers(cfg: Any, run_dirs: list[str], n: int, raptor: bool, raptor_start: float) -> list[Any]:
    from robolearn.controllers import TorchActorController
    from robolearn.errors import UserError
    from robolearn.policy import load_run
    from sims.quadrotor.physics import policy_obs_dim

    out: list[Any] = []
    if raptor:
        from robolearn.peers.raptor import RaptorController

        out.append(RaptorController(n, initial_action=raptor_start))
    dim = policy_obs_dim(cfg.env.sim.action_history)
    for rd in run_dirs:
        _, actor = load_run(rd)
        if actor.obs_dim != dim:
            raise UserError(f"{rd}: its actor takes {actor.obs_dim} observation values, the benchmark's env gives {dim}; "
                            f"pass the run's config with --config {Path(rd) / 'config.yaml'}")
        out.append(TorchActorController(actor, name=Path(rd).name or str(rd)))
    if not out:
        raise UserError("nothing to fly: give run directories, or drop --no-raptor")
    return out


def _unique_names(ctrls: list[Any]) -> list[str]:
    names: list[str] = []
    for c in ctrls:
        base = str(getattr(c, "name", type(c).__name__))
        name, k = base, 2
        while name in names:
            name, k = f"{base}#{k}", k + 1
        names.append(name)
    return names


def _summary(flight: Any, dt: float) -> dict:
    from robolearn.flight_metrics import hover_summary, yaw_from_rotation

    return hover_summary(flight.position_error, yaw_from_rotation(flight.rotation), flight.actions,
                         flight.survived, dt)


def run_peers(run_dirs: list[str] | tuple[str, ...] = (), episodes: int | None = None, seed: int | None = None,
              steps: int | None = None, config: str | Path | None = None, sim: str = "ours", raptor: bool = True,
              blocks: list[Block] | None = None, termination_m: float | None = None) -> dict:
    """Fly RAPTOR (unless ``raptor=False``) and the policies of ``run_dirs`` on every block; metrics per block.

    Defaults come from the config (default ``configs/quadrotor_hover.yaml``): ``eval.episodes``,
    ``eval.episode_steps``, ``eval.seed`` and its env. Returns ``{"blocks": {block: {controller:
    metrics}}, ...}``. ``termination_m`` replaces the task's position-error termination (hover:
    0.6 m), a diagnostic: RAPTOR was trained on another task and its recoveries swing wider.
    """
    import torch

    from robolearn.config import load_config
    from robolearn.defaults import default_config_path
    from robolearn.controllers import fly
    from robolearn.tasks.quadrotor.env import hover_action
    from robolearn.errors import UserError

    if sim not in SIMS:
        raise UserError(f"--sim must be one of {', '.join(SIMS)}, got {sim!r}")
    cfg = load_config(config if config is not None else default_config_path())
    if cfg.env.name != "quadrotor":
        raise UserError(f"bench peers flies quadrotors; the config's env.name is {cfg.env.name!r}")
    episodes = int(episodes or cfg.eval.episodes)
    steps = int(steps or cfg.eval.episode_steps)
    seed = int(cfg.eval.seed if seed is None else seed)
    if termination_m is not None and not termination_m > 0:
        raise UserError(f"--termination-m must be a positive distance in m, got {termination_m}")
    if episodes < 1 or steps < 2:
        raise UserError(f"need episodes >= 1 and steps >= 2, got {episodes} and {steps}")
    from robolearn.networks import prime_cpu_kernels
    from robolearn.tasks.quadrotor.env import sim_config

    torch.set_num_threads(1)
    prime_cpu_kernels()  # as the evaluation does before its first actor call (networks.py)
    blocks = default_blocks() if blocks is None else blocks
    dt = float(cfg.env.sim.dt)
    changes = {} if termination_m is None else {"termination_position_m": float(termination_m)}
    out: dict = {"sim": sim, "episodes": episodes, "episode_steps": steps, "seed": seed,
                 "termination_m": sim_config(cfg, ranges={}, **changes).termination_m,
                 "action_history": cfg.env.sim.action_history, "blocks": {}, "wall_time_s": {}, "cpu_time_s": {}}
    if sim == "ours":
        ctrls = _controllers(cfg, list(run_dirs), episodes, raptor, hover_action(cfg))
        names = _unique_names(ctrls)
        for block in blocks:
            env = block_env(cfg, block, episodes, steps, seed, **changes)
            res: dict = {}
            for name, c in zip(names, ctrls):
                t0, c0 = time.perf_counter(), time.process_time()
                obs, _ = env.reset(seed=seed)
                flight = fly(env, c, obs, steps)
                res[name] = _summary(flight, dt)
                out["wall_time_s"][f"{block.name}/{name}"] = time.perf_counter() - t0
                out["cpu_time_s"][f"{block.name}/{name}"] = time.process_time() - c0
            res["_ranges"] = {k: list(v) for k, v in block.ranges.items()}
            if block.corners:
                res["_corners"] = [list(g) for g in block.corners]
            out["blocks"][block.name] = res
        return out

    from robolearn.peers.l2f_env import SCALED_DYNAMICS, L2FConfig, L2FHoverVecEnv
    from robolearn.tasks.quadrotor.env import sim_config
    from sims.quadrotor.params import PARAM_INDEX

    sc = sim_config(cfg, ranges={}, episode_steps=steps, **changes)
    lenv = L2FHoverVecEnv(episodes, L2FConfig(dt=dt, episode_steps=steps, action_history=sc.action_history,
                                              termination_m=sc.termination_m, max_speed=sc.termination_velocity_mps,
                                              max_rate=sc.termination_angvel_rps, ground_z=float(sc.home_target[2])),
                          seed=seed)
    ctrls = _controllers(cfg, list(run_dirs), episodes, raptor, lenv.start_command)
    names = _unique_names(ctrls)
    for block in blocks:
        # the block's starts and vehicle draws in our simulator (same seed), flown in l2f: the starts as
        # they are, the parameter draws as scales on l2f's own Crazyflie constants
        ours = block_env(cfg, block, episodes, steps, seed, **changes)
        ours.reset(seed=seed)
        starts = ours.relative_state
        ep = ours.episode_params
        lenv.set_parameter_scales({k: ep[:, PARAM_INDEX[k]] for k in SCALED_DYNAMICS})
        res = {}
        for name, c in zip(names, ctrls):
            t0, c0 = time.perf_counter(), time.process_time()
            obs, _ = lenv.reset(starts=starts, seed=seed)
            flight = fly(lenv, c, obs, steps)
            res[name] = _summary(flight, dt)
            out["wall_time_s"][f"{block.name}/{name}"] = time.perf_counter() - t0
            out["cpu_time_s"][f"{block.name}/{name}"] = time.process_time() - c0
        res["_ranges"] = {k: list(v) for k, v in block.ranges.items()}
        res["_not_applied_in_l2f"] = sorted(k for k in block.ranges if k not in SCALED_DYNAMICS)
        if block.corners:
            res["_corners"] = [list(g) for g in block.corners]
        out["blocks"][block.name] = res
    out["l2f_dynamics"] = lenv.parameters["dynamics"]
    return out


def time_raptor_step(envs: int = 1000, reps: int = 50) -> dict:
    """Wall ms per RAPTOR step for ``envs`` envs: the package's numpy code with BLAS's default threads, and on one."""
    from threadpoolctl import ThreadpoolController

    from robolearn.peers.raptor import load_raptor

    net = load_raptor()
    x = np.random.default_rng(0).normal(size=(envs, 22)).astype(np.float32)
    ctl = ThreadpoolController()
    out: dict = {"envs": envs, "blas_threads_default": [i.get("num_threads") for i in ctl.info()]}
    for label, limit in (("default_threads_ms", None), ("one_thread_ms", 1)):
        net.reset()
        net.evaluate_step(x)
        t0 = time.perf_counter()
        for _ in range(reps):
            if limit is None:
                net.evaluate_step(x)
            else:
                with ctl.limit(limits=limit, user_api="blas"):
                    net.evaluate_step(x)
        out[label] = (time.perf_counter() - t0) / reps * 1e3
    return out


def _f(x: Any, fmt: str) -> str:
    return "-" if x is None else format(x, fmt)


def format_tables(result: dict) -> str:
    """One plain-text table per block."""
    lines = [f"sim {result['sim']}, {result['episodes']} episodes x {result['episode_steps']} steps, "
             f"seed {result['seed']}, termination at {result['termination_m']} m position error"]
    head = ("controller", "survival", "pos err (m)", "p95 (m)", "yaw (deg)", "settle 5cm (s)", "settled",
            "|da| last s", "power >10Hz")
    for bname, block in result["blocks"].items():
        rows = [head]
        for name, m in block.items():
            if name.startswith("_"):
                continue
            rows.append((name, f"{m['survival_rate']:.1%}", _f(m["position_error_m"], ".4f"),
                         _f(m["position_error_m_p95"], ".4f"), _f(m["yaw_deg"], ".2f"),
                         _f(m["settling_time_s"], ".2f"), _f(m["settled_share"], ".1%"),
                         _f(m["command_rate"], ".4f"), _f(m["high_frequency_share"], ".1%")))
        widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
        lines.append("")
        lines.append(f"[{bname}]")
        for r in rows:
            lines.append("  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))))
    wall, cpu = sum(result["wall_time_s"].values()), sum(result.get("cpu_time_s", {}).values())
    lines += ["", f"flights: {wall:.1f} s wall, {cpu:.1f} s process CPU time"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    """Command line (``python -m benchmarks.peers``); a UserError becomes ``error: ...`` and exit 2."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run_dirs", nargs="*", help="run directories (policy.pt) to fly next to RAPTOR")
    ap.add_argument("--episodes", type=int, default=None, help="episodes per block (default: eval.episodes)")
    ap.add_argument("--steps", type=int, default=None, help="steps per episode (default: eval.episode_steps)")
    ap.add_argument("--seed", type=int, default=None, help="env seed (default: eval.seed)")
    ap.add_argument("--config", default=None, help="config whose env is flown (default: configs/quadrotor_hover.yaml)")
    ap.add_argument("--sim", default="ours", help="ours or l2f")
    ap.add_argument("--no-raptor", action="store_true")
    ap.add_argument("--termination-m", type=float, default=None,
                    help="position-error termination, m (default: the task's, hover 0.6); a diagnostic")
    ap.add_argument("--json", default=None, help="write the result here")
    ap.add_argument("--time-raptor", action="store_true", help="only time one RAPTOR step (BLAS threads vs one)")
    a = ap.parse_args(argv)
    from robolearn.errors import UserError

    if a.time_raptor:
        t = time_raptor_step(a.episodes or 1000)
        print(json.dumps(t))
        return t

    try:
        r = run_peers(a.run_dirs, a.episodes, a.seed, a.steps, a.config, a.sim, not a.no_raptor,
                      termination_m=a.termination_m)
    except UserError as e:
        raise SystemExit(f"error: {' '.join(str(e).split())}") from None
    if a.json:
        Path(a.json).write_text(json.dumps(r, indent=1) + "\n")
    print(format_tables(r))
    return r


if __name__ == "__main__":
    main()

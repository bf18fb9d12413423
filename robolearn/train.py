"""The training driver shared by all algorithms: run directory, curriculum, logging,
progress bar, checkpoints, export and final evaluation.

The algorithm modules (``ppo.py``, ``td3.py``) only know how to ``iterate()`` on a
vector env; everything a run leaves on disk is written here.
"""

from __future__ import annotations

import math
import random
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, cast

import numpy as np
import torch

from .checkpoint import latest_checkpoint, latest_good_checkpoint, save_checkpoint, set_rng_state
from .config import RunConfig, actor_param_count, config_to_dict, dump_config
from .arm import arm_outcomes, build_arm_teacher
from .curriculum import (apply_proposals, attach_abs_advantage, build_start_states, build_teacher,
                         outcomes_from_arrays)
from .envs import check_device, init_action, make_env
from .errors import CheckpointError, ConfigError, Stopped, TrainingDiverged, UserError, WriteError, check_finite
from .hard_starts import build_hard_starts
from .networks import prime_cpu_kernels
from .logging.run_dir import EpisodeStats, MetricsLogger, RunDir, read_metrics

if TYPE_CHECKING:
    from rich.console import Console

    from firmware_export.policy_file import PolicySpec

    from .ppo import PPO
    from .td3 import TD3


@dataclass
class TrainResult:
    run_dir: Path
    env_steps: int
    train_wall_time_s: float
    timers: dict = field(default_factory=dict)
    eval: dict | None = None
    interrupted: bool = False
    stop_signal: int | None = None  # the signal that interrupted the run (SIGINT, SIGTERM)
    startup_s: float = 0.0  # train() called to the loop: kernels compiled (cold numba cache) or loaded, env and
    # curricula built (the hard-start pool is drawn here)


def default_run_dir(cfg: RunConfig) -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    base = Path(cfg.out_root) / f"{cfg.task}-{cfg.algo}-s{cfg.seed}-{stamp}"
    path, k = base, 1
    while path.exists():
        k += 1
        path = base.with_name(f"{base.name}-{k}")
    return path


def seed_everything(seed: int) -> None:
    """Python, numpy's legacy and torch's global RNGs (``seed`` in 0 .. 2**32 - 1, config.SEED_MAX)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def make_algorithm(cfg: RunConfig, env: Any, on_episodes: Callable[[dict, Any], None]) -> PPO | TD3:
    device = torch.device(cfg.device)
    a0 = init_action(cfg)
    if cfg.algo == "ppo":
        from .ppo import PPO

        sym = None
        if cfg.ppo.symmetry_coef > 0:
            if not hasattr(env, "policy_symmetries"):
                raise UserError(f"config: 'ppo.symmetry_coef' > 0 needs an env with symmetries (the quadrotor); "
                                f"env.name {cfg.env.name!r} has none: set it to 0")
            sym = env.policy_symmetries()
        return PPO(env, cfg.ppo, cfg.network, device=device, seed=cfg.seed, init_action=a0,
                   on_episodes=on_episodes, total_env_steps=cfg.train.total_env_steps, symmetries=sym)
    from .td3 import TD3

    return TD3(env, cfg.td3, cfg.network, device=device, seed=cfg.seed, init_action=a0,
               on_episodes=on_episodes)


def check_actor_size(cfg: RunConfig, env: Any) -> int:
    n = actor_param_count(env.single_observation_space["policy"].shape[0], cfg.network.actor_hidden,
                          env.single_action_space.shape[0])
    if n > cfg.network.max_actor_params:
        raise ConfigError(f"config: 'network.actor_hidden' = {cfg.network.actor_hidden}: the actor would have {n} "
                          f"parameters, more than network.max_actor_params = {cfg.network.max_actor_params}")
    return n


class _Progress:
    """rich progress bar plus a line of live metrics below it (no-op when disabled)."""

    def __init__(self, total: int, enabled: bool, console: Console | None = None) -> None:
        self.enabled = enabled
        self._last = 0.0
        if not enabled:
            return
        from rich.console import Group
        from rich.live import Live
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
        from rich.text import Text

        self.p = Progress(TextColumn("[bold]train"), BarColumn(bar_width=30),
                          TextColumn("{task.completed:,}/{task.total:,} env steps"),
                          TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(), console=console)
        self.task = self.p.add_task("train", total=total)
        self.text = Text("waiting for the first episodes ...")
        self.live = Live(Group(self.p, self.text), console=console, auto_refresh=False, transient=False)
        self.live.start()

    def update(self, completed: int, info: str, force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.perf_counter()
        if force or now - self._last > 0.25:
            self.p.update(self.task, completed=min(completed, cast(float, self.p.tasks[0].total)))  # set above
            self.text.plain = info
            self.live.refresh()
            self._last = now

    def close(self) -> None:
        if self.enabled:
            self.live.refresh()
            self.live.stop()
            if not self.live.console.is_terminal:  # rich leaves the last line open there
                self.live.console.line()


def _fmt_info(ep: dict, curriculum: dict, sps: float) -> str:
    def g(k: str, f: str) -> str:
        v = ep.get(k)
        return f.format(v) if v is not None and math.isfinite(v) else "-"

    s = f"return {g('episode/return', '{:.0f}')} | length {g('episode/length', '{:.0f}')} | "
    if "episode/success" in ep:  # arm
        s += (f"success {g('episode/success', '{:.0%}')} | "
              f"box-goal {g('episode/object_goal_distance_m', '{:.3f}')} m")
    else:
        s += f"survival {g('episode/survival', '{:.0%}')} | pos err {g('episode/position_error_m', '{:.3f}')} m"
    if curriculum:
        s += " | curriculum " + " ".join(f"{k}={v:.3g}" for k, v in curriculum.items())
    if sps > 0:
        s += f" | {sps / 1e3:.0f}k samples/s"
    return s


# Config keys a resumed run cannot change: they fix the networks' shapes or the meaning of
# the saved state (checked before anything is written, so a refused --resume leaves the run as it was).
RESUME_FIXED = ("algo", "env.name", "env.num_envs", "network", "env.sim.task", "env.sim.action_history",
                "env.arm.task", "env.arm.block_gripper", "env.arm.push_features")
EXIT_SIGNAL = {signal.SIGINT: 130, signal.SIGTERM: 143}  # 128 + signal number, the shells' convention


class _StopSignals:
    """SIGINT and SIGTERM (what Ray, systemd and docker send) stop the run cleanly.

    While ``deferred`` (the training loop) the first signal is only recorded: the loop ends
    after the current iteration, so the final checkpoint holds whole iterations (env steps
    and iteration counted together). A second one stops at once (``KeyboardInterrupt``;
    the last periodic checkpoint stays the newest). Outside the loop (polish, trim,
    evaluation) a signal raises :class:`Stopped` (a ``KeyboardInterrupt``) at once. Installed only in the main
    thread (signal handlers cannot be set elsewhere).
    """

    def __init__(self) -> None:
        self.signum: int | None = None
        self.deferred = False
        self._old: dict[int, Any] = {}

    def __enter__(self) -> "_StopSignals":
        if threading.current_thread() is threading.main_thread():
            for sig in EXIT_SIGNAL:
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: Any) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)

    def _handle(self, signum: int, frame: Any) -> None:
        first = self.signum is None
        self.signum = self.signum or signum
        if not (self.deferred and first):
            raise Stopped(signum)


@dataclass
class _Session:
    """What a training run holds in memory: env, algorithm, curricula."""

    env: Any
    algo: Any  # PPO | TD3
    teacher: Any
    starts: Any
    hard: Any
    stats: EpisodeStats
    outcomes: Callable[..., Any]
    env_seed: int
    n_actor: int
    raw_env: Any = None  # the simulator itself, when ``env`` wraps it (the integrator state)
    integrator: Any = None  # IntegratorSpec | None


def _check_resume_config(old: dict, cfg: RunConfig) -> None:
    """Refuse a resumed config that changes a key of ``RESUME_FIXED`` (one line naming it)."""
    new = config_to_dict(cfg)

    def get(d: Any, key: str) -> Any:
        for k in key.split("."):
            d = d.get(k) if isinstance(d, dict) else None
        return d

    for key in RESUME_FIXED:
        a, b = get(old, key), get(new, key)
        if a is None:  # a key the checkpoint's version did not have
            continue
        if isinstance(a, dict) and isinstance(b, dict):
            diff = [k for k in a if k in b and a[k] != b[k]]
            if diff:
                key, a, b = f"{key}.{diff[0]}", a[diff[0]], b[diff[0]]
            else:
                continue
        if a != b:
            raise ConfigError(f"--resume: {key} is {b!r} now but the checkpoint was trained with {a!r}; it "
                              f"cannot change on resume (the saved state would not fit): keep it, or start a "
                              f"new run with --out")


def _open_run(cfg: RunConfig, out: str | Path | None, resume: str | Path | None, force: bool,
              notice: Callable[[str], None]) -> tuple[RunDir, dict | None]:
    """The run directory and, on resume, the newest checkpoint that loads. Writes nothing
    (but moves a checkpoint that does not load aside)."""
    if resume is None:
        return RunDir(out if out is not None else default_run_dir(cfg)).check_new(force), None
    run = RunDir(resume).require()
    skipped: list[str] = []
    found = latest_good_checkpoint(run.checkpoints, skipped.append)
    if found is None and skipped:  # there were checkpoints, none loads: do not start over silently
        raise CheckpointError(f"--resume: no checkpoint in {run.checkpoints} loads ({len(skipped)} corrupt ones, "
                              f"kept as ckpt_*.pt.bad; the newest: {skipped[0].removeprefix('notice: ')}); start a "
                              f"new run with --out, or put a good ckpt_*.pt back")
    for msg in skipped:
        notice(msg)
    if found is None:
        return run, None
    ckpt = found[1]
    if ckpt["algo"] != cfg.algo:
        raise ConfigError(f"--resume: the checkpoint was trained with algo {ckpt['algo']!r}, config says {cfg.algo!r}")
    _check_resume_config(ckpt["config"], cfg)
    return run, ckpt


def _build(cfg: RunConfig, ckpt: dict | None) -> _Session:
    """Env, curricula and algorithm of ``cfg`` (the config's remaining checks happen here)."""
    iteration0 = int(ckpt["iteration"]) if ckpt else 0
    exact = ckpt is not None and bool(ckpt.get("env_state")) and bool(ckpt["algo_state"].get("obs"))
    # A run resumed from a checkpoint without the env's state (an env that cannot save it:
    # the arm; TD3, whose replay buffer is not saved) continues with fresh env streams,
    # derived from the seed and the iteration so that resuming is repeatable.
    env_seed = cfg.seed if ckpt is None or exact else (cfg.seed + 1_000_003 * iteration0) % 2**32
    raw_env = make_env(cfg, seed=env_seed)
    integrator = cfg.network.integrator.spec()
    env = raw_env
    if integrator is not None:
        from .integrator import IntegratedObsEnv

        try:
            env = IntegratedObsEnv(raw_env, integrator)
        except ValueError as e:
            raise ConfigError(f"config: 'network.integrator': {e}") from None
        for key, on in (("polish.iterations", cfg.polish.iterations > 0), ("trim.episodes", cfg.trim.episodes > 0)):
            if on:
                raise ConfigError(f"config: '{key}': the polish and the trim fly stateless actors; set it to 0 "
                                  "with network.integrator")
    if cfg.distill.teacher_env_steps > 0 and cfg.algo != "ppo":
        raise ConfigError("config: 'distill.teacher_env_steps' > 0 needs algo 'ppo'")
    n_actor = check_actor_size(cfg, env)
    for key, on in (("polish.iterations", cfg.polish.iterations > 0), ("trim.episodes", cfg.trim.episodes > 0)):
        if on and cfg.env.name != "quadrotor":
            raise ConfigError(f"config: '{key}': needs env.name 'quadrotor', got {cfg.env.name!r}: set it to 0")
    teacher = build_arm_teacher(cfg) if cfg.env.name == "arm" else build_teacher(cfg)
    outcomes = arm_outcomes if cfg.env.name == "arm" else outcomes_from_arrays
    starts = build_start_states(cfg, env)  # None unless curriculum.start_states.enabled
    hard = build_hard_starts(cfg, env)  # None unless curriculum.hard_starts.fraction > 0
    stats = EpisodeStats(env.param_names)
    algo = make_algorithm(cfg, env, stats.add)
    return _Session(env, algo, teacher, starts, hard, stats, outcomes, env_seed, n_actor, raw_env, integrator)


def _restore(s: _Session, ckpt: dict, where: Path) -> None:
    """Load a checkpoint into the session; a state that does not fit is one CheckpointError line."""
    try:
        s.algo.load_state_dict(ckpt["algo_state"])
        s.teacher.load_state_dict(ckpt.get("teacher", {}))
        if s.starts is not None:
            s.starts.load_state_dict(ckpt.get("start_states", {}))
        if s.hard is not None:
            s.hard.load_state_dict(ckpt.get("hard_starts", {}))
        if ckpt.get("env_state") and ckpt["algo_state"].get("obs"):
            s.env.load_state_dict(ckpt["env_state"])
        set_rng_state(ckpt["rng"])
    except (KeyError, RuntimeError, ValueError, TypeError) as e:
        why = "; ".join(ln.strip() for ln in str(e).splitlines() if ln.strip())
        raise CheckpointError(f"checkpoint in {where} does not fit this config: cannot restore it: "
                              f"{type(e).__name__}: {why}") from None


def _checkpoint_state(cfg: RunConfig, s: _Session, wall: float) -> dict:
    env_state = s.env.state_dict() if hasattr(s.env, "state_dict") else {}
    return {
        "algo": cfg.algo,
        "algo_state": s.algo.state_dict(),
        "teacher": s.teacher.state_dict(),
        "start_states": s.starts.state_dict() if s.starts is not None else {},
        "hard_starts": s.hard.state_dict() if s.hard is not None else {},
        "env_state": _to_tensors(env_state),
        "config": config_to_dict(cfg),
        "env_steps": s.algo.env_steps,
        "iteration": s.algo.iteration,
        "train_wall_time_s": wall,
        "env_seed": s.env_seed,
    }


def _to_tensors(obj: Any) -> Any:
    """numpy arrays -> torch tensors (same dtype), recursively: checkpoints load weights-only."""
    if isinstance(obj, np.ndarray):
        return torch.from_numpy(obj.copy())
    if isinstance(obj, dict):
        return {k: _to_tensors(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_tensors(v) for v in obj)
    return obj


def _tensors(obj: Any) -> list[torch.Tensor]:
    if isinstance(obj, torch.Tensor):
        return [obj]
    if isinstance(obj, dict):
        return [t for v in obj.values() for t in _tensors(v)]
    if isinstance(obj, (list, tuple)):
        return [t for v in obj for t in _tensors(v)]
    return []


def _divergence_hint(cfg: RunConfig) -> str:
    if cfg.algo == "td3":
        return (f"likely cause: learning rates too high (td3.actor_lr = {cfg.td3.actor_lr:g}, td3.critic_lr = "
                f"{cfg.td3.critic_lr:g}) or rewards too large")
    p = cfg.ppo
    lr = (f"ppo.lr = {p.lr:g} (fixed)" if p.lr_schedule == "fixed" else
          f"ppo.lr = {p.lr:g}, adaptive up to ppo.lr_max = {p.lr_max:g}")
    return f"likely cause: a learning rate too high ({lr}) or rewards too large (reward weights and their caps)"


def train(cfg: RunConfig, out: str | Path | None = None, resume: str | Path | None = None,
          console: Console | None = None, evaluate_at_end: bool = True, force: bool = False) -> TrainResult:
    """Train ``cfg`` into a new run directory (``out``) or continue the run in ``resume``.

    ``force``: ``out`` may be an existing non-empty folder that is not a run. Nothing is
    written before the config, the env and (on resume) the checkpoint have been checked.
    """
    t_process = time.perf_counter()
    check_device(cfg.device)

    def notice(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    run, ckpt = _open_run(cfg, out, resume, force, notice)
    torch.set_num_threads(cfg.train.torch_threads)
    prime_cpu_kernels()  # before any multi-threaded call: a oneMKL first-call race (networks.py)
    seed_everything(cfg.seed)
    sess = _build(cfg, ckpt)
    algo, env, teacher, starts, hard = sess.algo, sess.env, sess.teacher, sess.starts, sess.hard
    wall_offset = 0.0
    if ckpt is not None:
        _restore(sess, ckpt, run.checkpoints)
        wall_offset = float(ckpt.get("train_wall_time_s", 0.0))
    if ckpt is None or not (ckpt.get("env_state") and ckpt["algo_state"].get("obs")):
        algo.reset(seed=sess.env_seed)  # a fresh run, or a resume without the env's state
    # Everything checked: from here on the run directory is written.
    try:
        if resume is None:
            run.create(force, config_text=dump_config(cfg))
        else:
            run.write_config(dump_config(cfg))
            for d in (run.checkpoints, run.plots):
                _mkdir(d)
    except WriteError as e:
        raise _write_failed(e, run) from None
    distill_info: dict = {}
    distill_s = 0.0
    if ckpt is None and cfg.distill.teacher_env_steps > 0:  # the teacher and DAgger, before the student's PPO
        t_d = time.perf_counter()
        distill_info = _teacher_and_dagger(cfg, run, sess.raw_env, env, algo, console)
        algo.reset(seed=sess.env_seed)
        distill_s = time.perf_counter() - t_d
        wall_offset = distill_s
    logger = MetricsLogger(run, resume_iteration=int(ckpt["iteration"]) if ckpt else (0 if resume else None),
                           resume_step=int(ckpt["env_steps"]) if ckpt else None)
    progress = _Progress(cfg.train.total_env_steps, cfg.train.progress, console)

    def checkpoint(wall: float) -> Path:
        state = _checkpoint_state(cfg, sess, wall)
        # the algorithms check every update; this keeps a checkpoint from ever holding NaN weights
        check_finite(_tensors(state["algo_state"]), "weights", algo.iteration)
        return save_checkpoint(run.checkpoints, algo.iteration, state, keep=cfg.train.keep_checkpoints)

    startup_s = time.perf_counter() - t_process
    t0 = time.perf_counter()
    steps0 = algo.env_steps
    ep_smooth: dict[str, float] = {}
    interrupted = consistent = False
    with _StopSignals() as stop:
        try:
            try:
                stop.deferred = True
                interrupted = _loop(cfg, sess, logger, progress, checkpoint, stop, wall_offset, t0, ep_smooth)
                consistent = True
            except KeyboardInterrupt:  # a second signal: stopped mid-iteration
                interrupted = True
            finally:
                stop.deferred = False
            train_wall = wall_offset + time.perf_counter() - t0
            avg_sps = (algo.env_steps - steps0) / max(time.perf_counter() - t0, 1e-9)
            progress.update(algo.env_steps, _fmt_info(ep_smooth, teacher.metrics(), avg_sps), force=True)
            if consistent:
                checkpoint(train_wall)
            logger.close()
        except TrainingDiverged as e:
            progress.close()
            logger.close(quiet=True)
            last = latest_checkpoint(run.checkpoints)
            kept = f"the last good checkpoint {last.name} is kept" if last else "no checkpoint was written"
            raise TrainingDiverged(f"{e.what}; {_divergence_hint(cfg)}; {kept}, policy.pt was not written",
                                   e.iteration) from None
        except WriteError as e:
            progress.close()
            logger.close(quiet=True)
            raise _write_failed(e, run) from None
        if interrupted and not consistent:
            progress.close()
            return TrainResult(run.path, algo.env_steps, train_wall, dict(algo.timers), interrupted=True,
                               startup_s=startup_s, stop_signal=stop.signum)
        from .networks import with_integrator
        from .policy import save_policy

        policy = with_integrator(algo.export_policy(), sess.integrator)
        timers = dict(algo.timers)
        if distill_s:
            timers["distill"] = distill_s
        finish_info: dict = {}
        # After the final checkpoint: a run killed in the polish or the trim resumes from it and
        # does both again (deterministic), so a checkpoint never holds a half-finished actor.
        if not interrupted:
            try:
                policy, finish_info, finish_times = _finish_actor(
                    cfg, run, policy, hard.pool if hard is not None else None,
                    lambda r: progress.update(algo.env_steps, _fmt_polish(r, cfg), force=True))
                timers |= finish_times
                train_wall += sum(finish_times.values())
            except KeyboardInterrupt:  # keep the trainer's actor; --resume finishes it
                interrupted = True
        progress.close()
        if not policy.is_finite():
            raise TrainingDiverged(f"non-finite weights in the final actor; {_divergence_hint(cfg)}; policy.pt "
                                   f"was not written", algo.iteration)
        save_policy(policy, run.policy)
        result = TrainResult(run.path, algo.env_steps, train_wall, timers, interrupted=interrupted,
                             startup_s=startup_s, stop_signal=stop.signum)
        if interrupted:
            return result
        train_info = {"train_wall_time_s": train_wall, "env_steps": algo.env_steps, "iterations": algo.iteration,
                      "startup_s": startup_s, "time_breakdown_s": timers, "actor_parameters": sess.n_actor,
                      "algo": cfg.algo, "seed": cfg.seed} | finish_info
        if distill_info:
            train_info["distill"] = distill_info
        elif (run.path / "distill.json").exists():  # a resumed run: the stage ran before the kill
            import json

            train_info["distill"] = json.loads((run.path / "distill.json").read_text())
        if evaluate_at_end:
            result.eval = finish_run(run, cfg, policy, train_info)
        return result


def _write_failed(e: WriteError, run: RunDir) -> UserError:
    """The one line for a run directory that cannot be written (full disk, read-only, no permission)."""
    last = latest_checkpoint(run.checkpoints)
    kept = f"the last good checkpoint {last.name} is intact" if last else "no checkpoint was written yet"
    return UserError(f"{e}: free space or fix the permissions of {run.path}, then continue with "
                     f"robolearn train --resume {run.path} ({kept})")


def _mkdir(d: Path) -> None:
    try:
        d.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise WriteError(d, e) from None


def _loop(cfg: RunConfig, s: _Session, logger: MetricsLogger, progress: _Progress,
          checkpoint: Callable[[float], Path], stop: _StopSignals, wall_offset: float, t0: float,
          ep_smooth: dict[str, float]) -> bool:
    """The training iterations, until the budget, the wall-time limit or a stop signal
    (returns True for the last: interrupted)."""
    algo, env, teacher, starts, hard, stats = s.algo, s.env, s.teacher, s.starts, s.hard, s.stats
    last_ckpt = t0
    prev_steps, prev_t = algo.env_steps, t0
    episode_columns = ("episode/return", "episode/length") + (
        ("episode/success", "episode/object_goal_distance_m") if cfg.env.name == "arm" else
        ("episode/survival", "episode/position_error_m", "episode/tilt_deg", "episode/yaw_deg")) + ("episode/count",)
    while algo.env_steps < cfg.train.total_env_steps:
        if stop.signum is not None:
            return True
        wall = wall_offset + time.perf_counter() - t0
        if cfg.train.max_wall_time_s is not None and wall >= cfg.train.max_wall_time_s:
            break
        apply_proposals(env, teacher, algo.env_steps)
        if starts is not None:
            starts.apply(env, algo.env_steps)
        if hard is not None:
            hard.apply(env)
        if cfg.distill.teacher_env_steps > 0:
            _student_schedule(cfg, logger.run, algo)
        it_stats = algo.iterate()
        arrays = stats.arrays()
        ep = stats.summary()
        finished = s.outcomes(arrays, env.param_names, algo.env_steps) if arrays else None
        if finished is not None:
            attach_abs_advantage(finished, getattr(algo, "last_episode_abs_advantage", None))  # PPO only
            teacher.update(finished)
        if starts is not None:
            starts.update(env, finished)
        stats.clear()
        now = time.perf_counter()
        sps = (algo.env_steps - prev_steps) / max(now - prev_t, 1e-9)
        prev_steps, prev_t = algo.env_steps, now
        for k, v in ep.items():  # smoothed for the progress bar only
            if math.isfinite(v):
                ep_smooth[k] = v if k not in ep_smooth else 0.8 * ep_smooth[k] + 0.2 * v
        cur = (teacher.metrics() | (starts.metrics() if starts is not None else {})
               | (hard.metrics() if hard is not None else {}))
        row = {"iteration": algo.iteration, "env_steps": algo.env_steps,
               "wall_time_s": wall_offset + now - t0, "samples_per_s": sps}
        row.update({k: ep.get(k) for k in episode_columns})  # None (an empty cell): no episode ended
        row.update(it_stats)
        row.update({f"curriculum/{k}": v for k, v in cur.items()})
        row.update({f"time/{k}": v for k, v in algo.timers.items()})
        logger.log(row, step=algo.env_steps)
        progress.update(algo.env_steps, _fmt_info(ep_smooth, cur, sps))
        if now - last_ckpt >= cfg.train.checkpoint_every_s:
            checkpoint(wall_offset + now - t0)
            last_ckpt = time.perf_counter()
    return stop.signum is not None


def _teacher_and_dagger(cfg: RunConfig, run: RunDir, raw_env: Any, env: Any, algo: Any,
                        console: Console | None) -> dict:
    """The ``distill`` stage before the student's PPO: teacher (reused from ``teacher.pt``
    if a killed run left it), then DAgger into ``algo``'s actor; writes ``distill.json``."""
    import json

    from .checkpoint import atomic_write_text
    from .distill import distill_into, load_or_train_teacher, teacher_parameters
    from .ppo import PPO

    assert isinstance(algo, PPO)  # _build refuses the stage for other algorithms
    say = (console.print if console is not None and cfg.train.progress else (lambda *a, **k: None))
    t0 = time.perf_counter()
    teacher, trained = load_or_train_teacher(cfg, raw_env, run.path / "teacher.pt", cfg.seed)
    t_teacher = time.perf_counter() - t0
    say(f"teacher: {'trained' if trained else 'loaded'} in {t_teacher:.1f} s")
    rows = distill_into(cfg, env, algo, teacher, cfg.seed,
                        lambda r: say(f"distill round {r['round']}: {r['samples']} samples, mse {r['mse']:.4f}"))
    info = {"teacher_env_steps": cfg.distill.teacher_env_steps, "teacher_parameters": teacher_parameters(teacher),
            "teacher_wall_s": t_teacher, "teacher_trained_here": trained, "rounds": rows,
            "dagger_wall_s": sum(r["wall_s"] for r in rows)}
    atomic_write_text(json.dumps(info, indent=2) + "\n", run.path / "distill.json")
    return info


def _student_schedule(cfg: RunConfig, run: RunDir, algo: Any) -> None:
    """The student's PPO after distillation: critic warm-up, then a kickstart weight falling to 0."""
    d = cfg.distill
    if algo.teacher is None and d.kickstart_coef > 0:
        from .networks import actor_from_spec
        from .policy import read_policy

        algo.teacher = actor_from_spec(read_policy(run.path / "teacher.pt"))
    algo.update_policy_norm = False  # the distilled weights were fitted to these statistics
    algo.freeze_actor = algo.iteration < d.critic_warmup_iterations
    p = algo.env_steps / max(d.kickstart_fraction * cfg.train.total_env_steps, 1.0)
    algo.kick_coef = d.kickstart_coef * max(0.0, 1.0 - p)


def _fmt_polish(row: dict, cfg: RunConfig) -> str:
    return (f"polish {row['iteration'] + 1}/{cfg.polish.iterations} | hard-start survival over "
            f"{cfg.polish.horizon_steps} steps {row['horizon_survival_mean']:.1%}")


def _finish_actor(cfg: RunConfig, run: RunDir, policy: PolicySpec, pool: np.ndarray | None,
                  on_polish_iteration: Callable[[dict], None]) -> tuple[PolicySpec, dict, dict[str, float]]:
    """The polish and the trim of the trainer's actor (each when configured), in that order.

    Returns the finished policy, a summary per stage (for eval.json) and each
    stage's wall time, which counts as training time.
    """
    info: dict = {}
    times: dict[str, float] = {}
    if cfg.polish.iterations > 0:
        t0 = time.perf_counter()
        policy, info["polish"] = _polish(cfg, run, policy, pool, on_polish_iteration)
        times["polish"] = time.perf_counter() - t0
    if cfg.trim.episodes > 0:
        from .trim import trim_from_config

        t0 = time.perf_counter()
        policy, info["trim"] = trim_from_config(cfg, policy)
        times["trim"] = time.perf_counter() - t0
    return policy, info, times


def _polish(cfg: RunConfig, run: RunDir, policy: PolicySpec, pool: np.ndarray | None,
            on_iteration: Callable[[dict], None]) -> tuple[PolicySpec, dict]:
    """The ES polish stage (robolearn/polish.py); writes polish.csv, returns the new policy and a summary."""
    import csv
    import io

    from .checkpoint import atomic_write_text
    from .polish import polish_from_config

    policy, rows = polish_from_config(cfg, policy, pool, on_iteration)
    buf = io.StringIO(newline="")
    w = csv.DictWriter(buf, fieldnames=list(rows[0]))
    w.writeheader()
    w.writerows(rows)
    atomic_write_text(buf.getvalue(), run.path / "polish.csv")
    return policy, {"iterations": len(rows), "horizon_steps": cfg.polish.horizon_steps,
                    "horizon_survival_first": rows[0]["horizon_survival_mean"],
                    "horizon_survival_last": rows[-1]["horizon_survival_mean"]}


def finish_run(run: RunDir, cfg: RunConfig, policy: PolicySpec, train_info: dict, episodes: int | None = None) -> dict:
    """Evaluate ``policy`` and write eval.json and the plots."""
    from .evaluate import write_eval
    from .networks import actor_from_spec

    actor = actor_from_spec(policy)
    if cfg.env.name == "arm":
        from .arm import evaluate_arm

        result, trajs = evaluate_arm(actor, cfg, episodes=episodes, train_info=train_info, record=8)
        flight = None
    else:
        from .evaluate import evaluate

        result, flight = evaluate(actor, cfg, episodes=episodes, train_info=train_info)
        trajs = []
    write_eval(result, run.eval)
    if cfg.eval.plots:
        from .logging.plots import flight_plot, learning_curves

        if run.metrics.exists():
            learning_curves(read_metrics(run.metrics), run.plots / "learning_curves.png")
        if flight is not None:
            flight_plot(flight, run.plots / "flight.png")
        if trajs:
            from .arm import trajectory_plot

            trajectory_plot(trajs, run.plots / "box_paths.png")
    return result

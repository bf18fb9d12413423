"""The training runner shared by all algorithms and robot families.

``train()`` reads top to bottom: open the run directory (and, on resume, its newest good
checkpoint), build the session (env, curricula, algorithm), restore or reset it, write the
run directory, iterate until the budget or a stop signal, checkpoint, run the family's
finishing stages, save policy.pt and evaluate. The algorithm modules (``ppo.py``,
``td3.py``) only know how to ``iterate()`` on a vector env; the family's
:class:`~robolearn.tasks.base.Task` (``robolearn/tasks/``) knows its env, curricula,
episode columns, finishing stages and evaluation; everything a run leaves on disk is
written here.
"""

from __future__ import annotations

import math
import random
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np
import torch

from .checkpoint import latest_checkpoint, latest_good_checkpoint, save_checkpoint, set_rng_state
from .config import RunConfig, actor_param_count, config_to_dict, dump_config
from .curriculum import apply_proposals, attach_abs_advantage
from .envs import check_device, init_action
from .errors import CheckpointError, ConfigError, TrainingDiverged, UserError, WriteError, check_finite
from .logging.progress import Progress
from .logging.run_dir import EpisodeStats, MetricsLogger, RunDir, read_metrics, write_eval
from .networks import prime_cpu_kernels
from .signals import EXIT_SIGNAL, StopSignals
from .tasks import StageContext, Task, check_switches, resume_fixed_keys, task_for

if TYPE_CHECKING:
    from rich.console import Console

    from firmware_export.policy_file import PolicySpec

    from .ppo import PPO
    from .td3 import TD3

__all__ = ["train", "TrainResult", "finish_run", "make_algorithm", "EXIT_SIGNAL"]


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


# --------------------------------------------------------------------------- the runner
def train(cfg: RunConfig, out: str | Path | None = None, resume: str | Path | None = None,
          console: Console | None = None, evaluate_at_end: bool = True, force: bool = False) -> TrainResult:
    """Train ``cfg`` into a new run directory (``out``) or continue the run in ``resume``.

    ``force``: ``out`` may be an existing non-empty folder that is not a run. Nothing is
    written before the config, the env and (on resume) the checkpoint have been checked.
    """
    t_process = time.perf_counter()
    check_device(cfg.device)
    run, ckpt = _open_run(cfg, out, resume, force, _notice)
    torch.set_num_threads(cfg.train.torch_threads)
    prime_cpu_kernels()  # before any multi-threaded call: a oneMKL first-call race (networks.py)
    seed_everything(cfg.seed)
    sess = _build(cfg, ckpt)
    sess.wall_offset = _restore_or_reset(sess, ckpt, run)
    # Everything checked: from here on the run directory is written.
    _write_run_dir(run, cfg, resume is not None, force)
    distill_info, distill_s = _distill_stage(cfg, run, sess, console) if ckpt is None else ({}, 0.0)
    if distill_s:
        sess.wall_offset = distill_s
    logger = MetricsLogger(run, resume_iteration=int(ckpt["iteration"]) if ckpt else (0 if resume else None),
                           resume_step=int(ckpt["env_steps"]) if ckpt else None)
    progress = Progress(cfg.train.total_env_steps, cfg.train.progress, console)
    startup_s = time.perf_counter() - t_process
    with StopSignals() as stop:
        train_wall, interrupted, consistent = _iterate(cfg, sess, run, logger, progress, stop)
        result = TrainResult(run.path, sess.algo.env_steps, train_wall, dict(sess.algo.timers),
                             interrupted=interrupted, startup_s=startup_s, stop_signal=stop.signum)
        if interrupted and not consistent:  # a second signal: the last periodic checkpoint is the newest
            progress.close()
            return result
        from .networks import with_integrator

        policy = with_integrator(sess.algo.export_policy(), sess.integrator)
        if distill_s:
            result.timers["distill"] = distill_s
        finish_info: dict = {}
        # After the final checkpoint: a run killed in a finishing stage resumes from it and runs
        # them all again (deterministic), so a checkpoint never holds a half-finished actor.
        if not interrupted:
            try:
                policy, finish_info, finish_times = _finish_stages(cfg, run, sess, policy, progress)
                result.timers |= finish_times
                result.train_wall_time_s += sum(finish_times.values())
            except KeyboardInterrupt:  # keep the trainer's actor; --resume finishes it
                interrupted = True
        progress.close()
        _save_policy(cfg, run, policy, sess.algo.iteration)
        result.interrupted = interrupted
        if interrupted or not evaluate_at_end:
            return result
        train_info = _train_info(cfg, run, sess, result, startup_s, distill_info) | finish_info
        result.eval = finish_run(run, cfg, policy, train_info)
        return result


def _notice(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- opening and building
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


# Config keys a resumed run cannot change: they fix the networks' shapes or the meaning of
# the saved state (checked before anything is written, so a refused --resume leaves the run as it was);
# then each family's own (robolearn.tasks: Task.resume_fixed).
RESUME_FIXED = ("algo", "env.name", "env.num_envs", "network") + resume_fixed_keys()


@dataclass
class _Session:
    """What a training run holds in memory: env, algorithm, curricula."""

    task: Task
    env: Any
    algo: Any  # PPO | TD3
    teacher: Any
    resets: tuple  # the task's ResetCurriculum objects, applied in this order
    stats: EpisodeStats
    env_seed: int
    n_actor: int
    raw_env: Any = None  # the simulator itself, when ``env`` wraps it (the integrator state)
    integrator: Any = None  # IntegratorSpec | None
    wall_offset: float = 0.0  # training time before this process (a resumed run, the distill stage)


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
    task = task_for(cfg)
    iteration0 = int(ckpt["iteration"]) if ckpt else 0
    exact = _resumes_exactly(ckpt)
    # A run resumed from a checkpoint without the env's state (an env that cannot save it:
    # the arm; TD3, whose replay buffer is not saved) continues with fresh env streams,
    # derived from the seed and the iteration so that resuming is repeatable.
    env_seed = cfg.seed if ckpt is None or exact else (cfg.seed + 1_000_003 * iteration0) % 2**32
    raw_env = task.make_env(cfg, seed=env_seed)
    integrator = cfg.network.integrator.spec()
    env = raw_env
    if integrator is not None:
        from .integrator import IntegratedObsEnv

        try:
            env = IntegratedObsEnv(raw_env, integrator)
        except ValueError as e:
            raise ConfigError(f"config: 'network.integrator': {e}") from None
        for stage in task.finish:
            if stage.stateless_only and stage.enabled(cfg):
                raise ConfigError(f"config: '{stage.key}': the {stage.name} flies stateless actors; set it to 0 "
                                  "with network.integrator")
    if cfg.distill.teacher_env_steps > 0 and cfg.algo != "ppo":
        raise ConfigError("config: 'distill.teacher_env_steps' > 0 needs algo 'ppo'")
    n_actor = check_actor_size(cfg, env)
    check_switches(cfg)  # another family's switch that is on (polish.iterations with the arm)
    teacher = task.build_teacher(cfg)
    resets = task.build_resets(cfg, env)
    stats = EpisodeStats(env.param_names)
    algo = make_algorithm(cfg, env, stats.add)
    return _Session(task, env, algo, teacher, resets, stats, env_seed, n_actor, raw_env, integrator)


def _resumes_exactly(ckpt: dict | None) -> bool:
    """The checkpoint holds the env's state and the algorithm's last observation."""
    return ckpt is not None and bool(ckpt.get("env_state")) and bool(ckpt["algo_state"].get("obs"))


def _restore_or_reset(s: _Session, ckpt: dict | None, run: RunDir) -> float:
    """Load the checkpoint (if any) into the session; reset the envs unless it resumes them
    exactly. Returns the training time the checkpoint had already spent (s)."""
    wall_offset = 0.0
    if ckpt is not None:
        _restore(s, ckpt, run.checkpoints)
        wall_offset = float(ckpt.get("train_wall_time_s", 0.0))
    if not _resumes_exactly(ckpt):
        s.algo.reset(seed=s.env_seed)  # a fresh run, or a resume without the env's state
    return wall_offset


def _restore(s: _Session, ckpt: dict, where: Path) -> None:
    """Load a checkpoint into the session; a state that does not fit is one CheckpointError line."""
    try:
        s.algo.load_state_dict(ckpt["algo_state"])
        s.teacher.load_state_dict(ckpt.get("teacher", {}))
        for r in s.resets:
            r.load_state_dict(ckpt.get(r.key, {}))
        if ckpt.get("env_state") and ckpt["algo_state"].get("obs"):
            s.env.load_state_dict(ckpt["env_state"])
        set_rng_state(ckpt["rng"])
    except (KeyError, RuntimeError, ValueError, TypeError) as e:
        why = "; ".join(ln.strip() for ln in str(e).splitlines() if ln.strip())
        raise CheckpointError(f"checkpoint in {where} does not fit this config: cannot restore it: "
                              f"{type(e).__name__}: {why}") from None


def _write_run_dir(run: RunDir, cfg: RunConfig, resumed: bool, force: bool) -> None:
    """Create the run directory (or, on resume, rewrite its config and recreate its folders)."""
    try:
        if not resumed:
            run.create(force, config_text=dump_config(cfg))
        else:
            run.write_config(dump_config(cfg))
            for d in (run.checkpoints, run.plots):
                _mkdir(d)
    except WriteError as e:
        raise _write_failed(e, run) from None


# --------------------------------------------------------------------------- iterating
def _iterate(cfg: RunConfig, s: _Session, run: RunDir, logger: MetricsLogger, progress: Progress,
             stop: StopSignals) -> tuple[float, bool, bool]:
    """The training loop and its final checkpoint. Returns (training time, interrupted,
    consistent): not consistent when a second signal stopped it mid-iteration (then no final
    checkpoint is written). A divergence or a failed write is one line (the last good
    checkpoint is kept)."""
    t0 = time.perf_counter()
    steps0 = s.algo.env_steps
    ep_smooth: dict[str, float] = {}
    interrupted = consistent = False
    try:
        try:
            stop.deferred = True
            interrupted = _loop(cfg, s, run, logger, progress, stop, t0, ep_smooth)
            consistent = True
        except KeyboardInterrupt:  # a second signal: stopped mid-iteration
            interrupted = True
        finally:
            stop.deferred = False
        train_wall = s.wall_offset + time.perf_counter() - t0
        avg_sps = (s.algo.env_steps - steps0) / max(time.perf_counter() - t0, 1e-9)
        progress.update(s.algo.env_steps, _fmt_info(s.task, ep_smooth, s.teacher.metrics(), avg_sps), force=True)
        if consistent:
            _checkpoint(cfg, s, run, train_wall)
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
    return train_wall, interrupted, consistent


def _loop(cfg: RunConfig, s: _Session, run: RunDir, logger: MetricsLogger, progress: Progress,
          stop: StopSignals, t0: float, ep_smooth: dict[str, float]) -> bool:
    """The training iterations, until the budget, the wall-time limit or a stop signal
    (returns True for the last: interrupted)."""
    algo, env, teacher, stats, wall_offset = s.algo, s.env, s.teacher, s.stats, s.wall_offset
    last_ckpt = t0
    prev_steps, prev_t = algo.env_steps, t0
    episode_columns = ("episode/return", "episode/length") + s.task.episode_columns + ("episode/count",)
    while algo.env_steps < cfg.train.total_env_steps:
        if stop.signum is not None:
            return True
        wall = wall_offset + time.perf_counter() - t0
        if cfg.train.max_wall_time_s is not None and wall >= cfg.train.max_wall_time_s:
            break
        apply_proposals(env, teacher, algo.env_steps)
        for r in s.resets:
            r.apply(env, algo.env_steps)
        if cfg.distill.teacher_env_steps > 0:
            _student_schedule(cfg, run, algo)
        it_stats = algo.iterate()
        arrays = stats.arrays()
        ep = stats.summary()
        finished = s.task.outcomes(arrays, env.param_names, algo.env_steps) if arrays else None
        if finished is not None:
            attach_abs_advantage(finished, getattr(algo, "last_episode_abs_advantage", None))  # PPO only
            teacher.update(finished)
        for r in s.resets:
            r.update(env, finished)
        stats.clear()
        now = time.perf_counter()
        sps = (algo.env_steps - prev_steps) / max(now - prev_t, 1e-9)
        prev_steps, prev_t = algo.env_steps, now
        for k, v in ep.items():  # smoothed for the progress bar only
            if math.isfinite(v):
                ep_smooth[k] = v if k not in ep_smooth else 0.8 * ep_smooth[k] + 0.2 * v
        cur = teacher.metrics()
        for r in s.resets:
            cur |= r.metrics()
        row = {"iteration": algo.iteration, "env_steps": algo.env_steps,
               "wall_time_s": wall_offset + now - t0, "samples_per_s": sps}
        row.update({k: ep.get(k) for k in episode_columns})  # None (an empty cell): no episode ended
        row.update(it_stats)
        row.update({f"curriculum/{k}": v for k, v in cur.items()})
        row.update({f"time/{k}": v for k, v in algo.timers.items()})
        logger.log(row, step=algo.env_steps)
        progress.update(algo.env_steps, _fmt_info(s.task, ep_smooth, cur, sps))
        if now - last_ckpt >= cfg.train.checkpoint_every_s:
            _checkpoint(cfg, s, run, wall_offset + now - t0)
            last_ckpt = time.perf_counter()
    return stop.signum is not None


def _fmt_info(task: Task, ep: dict, curriculum: dict, sps: float) -> str:
    """The progress bar's line: return, length, the family's episode metrics, curriculum, speed."""
    def g(k: str, f: str) -> str:
        v = ep.get(k)
        return f.format(v) if v is not None and math.isfinite(v) else "-"

    s = f"return {g('episode/return', '{:.0f}')} | length {g('episode/length', '{:.0f}')} | "
    s += task.progress_line(g)
    if curriculum:
        s += " | curriculum " + " ".join(f"{k}={v:.3g}" for k, v in curriculum.items())
    if sps > 0:
        s += f" | {sps / 1e3:.0f}k samples/s"
    return s


# --------------------------------------------------------------------------- checkpoints
def _checkpoint(cfg: RunConfig, s: _Session, run: RunDir, wall: float) -> Path:
    """Write ``ckpt_<iteration>.pt`` (atomic; the oldest beyond train.keep_checkpoints go)."""
    state = _checkpoint_state(cfg, s, wall)
    # the algorithms check every update; this keeps a checkpoint from ever holding NaN weights
    check_finite(_tensors(state["algo_state"]), "weights", s.algo.iteration)
    return save_checkpoint(run.checkpoints, s.algo.iteration, state, keep=cfg.train.keep_checkpoints)


def _checkpoint_state(cfg: RunConfig, s: _Session, wall: float) -> dict:
    env_state = s.env.state_dict() if hasattr(s.env, "state_dict") else {}
    return {
        "algo": cfg.algo,
        "algo_state": s.algo.state_dict(),
        "teacher": s.teacher.state_dict(),
        **{r.key: r.state_dict() for r in s.resets},  # start_states, hard_starts (quadrotor)
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


# --------------------------------------------------------------------------- before and after the loop
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


def _distill_stage(cfg: RunConfig, run: RunDir, s: _Session, console: Console | None) -> tuple[dict, float]:
    """The ``distill`` stage of a fresh run, before the student's PPO (when configured):
    returns its summary and wall time (s), which counts as training time."""
    if cfg.distill.teacher_env_steps <= 0:
        return {}, 0.0
    t0 = time.perf_counter()
    info = _teacher_and_dagger(cfg, run, s.raw_env, s.env, s.algo, console)
    s.algo.reset(seed=s.env_seed)
    return info, time.perf_counter() - t0


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


def _finish_stages(cfg: RunConfig, run: RunDir, s: _Session, policy: PolicySpec,
                   progress: Progress) -> tuple[PolicySpec, dict, dict[str, float]]:
    """The family's finishing stages that are switched on, in its order (polish, trim).

    Returns the finished policy, a summary per stage (for eval.json) and each
    stage's wall time, which counts as training time.
    """
    ctx = StageContext(cfg, run, s.resets, lambda text: progress.update(s.algo.env_steps, text, force=True))
    info: dict = {}
    times: dict[str, float] = {}
    for stage in s.task.finish:
        if stage.enabled(cfg):
            t0 = time.perf_counter()
            policy, info[stage.name] = stage.run(ctx, policy)
            times[stage.name] = time.perf_counter() - t0
    return policy, info, times


def _save_policy(cfg: RunConfig, run: RunDir, policy: PolicySpec, iteration: int) -> None:
    """Write policy.pt (atomic), refusing an actor with non-finite weights."""
    from .policy import save_policy

    if not policy.is_finite():
        raise TrainingDiverged(f"non-finite weights in the final actor; {_divergence_hint(cfg)}; policy.pt "
                               f"was not written", iteration)
    save_policy(policy, run.policy)


def _train_info(cfg: RunConfig, run: RunDir, s: _Session, result: TrainResult, startup_s: float,
                distill_info: dict) -> dict:
    """What eval.json says about the training: time, steps, size, and the distill stage's summary."""
    info = {"train_wall_time_s": result.train_wall_time_s, "env_steps": s.algo.env_steps,
            "iterations": s.algo.iteration, "startup_s": startup_s, "time_breakdown_s": result.timers,
            "actor_parameters": s.n_actor, "algo": cfg.algo, "seed": cfg.seed}
    if distill_info:
        info["distill"] = distill_info
    elif (run.path / "distill.json").exists():  # a resumed run: the stage ran before the kill
        import json

        info["distill"] = json.loads((run.path / "distill.json").read_text())
    return info


# --------------------------------------------------------------------------- evaluation
def finish_run(run: RunDir, cfg: RunConfig, policy: PolicySpec, train_info: dict, episodes: int | None = None) -> dict:
    """Evaluate ``policy`` and write eval.json and the plots."""
    from .networks import actor_from_spec

    task = task_for(cfg)
    result, record = task.evaluate(actor_from_spec(policy), cfg, episodes=episodes, train_info=train_info)
    write_eval(result, run.eval)
    if cfg.eval.plots:
        from .logging.plots import learning_curves

        if run.metrics.exists():
            learning_curves(read_metrics(run.metrics), run.plots / "learning_curves.png")
        task.write_plots(run, cfg, record)
    return result

"""``robolearn`` command line: train, eval, bench.

Mistakes in configs, arguments and input files print one line (``error: ...``) to
stderr and exit with code 2; bugs still show a traceback.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, List, NoReturn, Optional

import typer

from hardware.cli_entry import register as register_hil

from .cli_export import export_cmd
from .cli_sb3 import sb3_export_cmd
from .cli_sweep import sweep_cmd
from .errors import UserError

if TYPE_CHECKING:
    from .config import RunConfig

EXIT_USAGE = 2


def _click_exception() -> Any:
    """The ClickException class of the click typer runs on: typer >= 0.2x vendors click
    (``typer._click``, private), older ones use the click package. Found through the public
    ``typer.BadParameter``, which derives from it in both."""
    for c in typer.BadParameter.__mro__:
        if c.__name__ == "ClickException":
            return c
    raise ImportError("typer.BadParameter does not derive from a ClickException")  # pragma: no cover


_CLICK_EXCEPTION = _click_exception()
EXIT_SIGINT = 130  # 128 + the signal's number: 130 after Ctrl-C (SIGINT), 143 after SIGTERM


class _App(typer.Typer):
    """Typer app whose usage errors and :class:`UserError` are one line + exit code 2."""

    def __call__(self, *args: Any, **kwargs: Any) -> NoReturn:
        cmd = typer.main.get_command(self)
        try:
            # mypy cannot rule out standalone_mode in **kwargs; callers never pass it
            rv = cmd.main(*args, standalone_mode=False, **kwargs)  # type: ignore[misc]
        except _CLICK_EXCEPTION as e:
            if type(e).__name__ == "NoArgsIsHelpError":  # click >= 8.2: `robolearn` alone prints the help
                print(e.format_message())
                sys.exit(0)
            msg = " ".join(e.format_message().split())
            ctx = getattr(e, "ctx", None)
            where = f"{ctx.command_path}: " if ctx is not None else ""
            print(f"error: {where}{msg}", file=sys.stderr)
            sys.exit(EXIT_USAGE)
        except UserError as e:
            print(f"error: {' '.join(str(e).split())}", file=sys.stderr)
            sys.exit(EXIT_USAGE)
        except (typer.Abort, KeyboardInterrupt) as e:
            print("aborted", file=sys.stderr)
            signum = getattr(e, "signum", None)  # robolearn.errors.Stopped: SIGINT or SIGTERM
            sys.exit(128 + signum if signum else EXIT_SIGINT)
        sys.exit(rv if isinstance(rv, int) else 0)


app = _App(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
           help="robolearn: train, evaluate and benchmark small-robot policies.")
bench_app = typer.Typer(no_args_is_help=True, help="Benchmarks (training speed / quality, simulator throughput).")
app.add_typer(bench_app, name="bench")
app.command("export")(export_cmd)
app.command("sb3-export")(sb3_export_cmd)  # robolearn/cli_sb3.py
app.command("sweep")(sweep_cmd)  # robolearn/cli_sweep.py (Ray)
register_hil(app)  # robolearn hil (hardware/cli_entry.py)


def _device(value: Optional[str]) -> Optional[str]:
    if value is not None and value not in ("cpu", "cuda"):
        raise UserError(f"--device must be 'cpu' or 'cuda', got {value!r}")
    return value


@app.command()
def train(
    config: Optional[Path] = typer.Argument(None, metavar="[CONFIG]", help="YAML config (default: configs/quadrotor_hover.yaml)"),
    out: Optional[Path] = typer.Option(None, "--out", help="run directory to create"),
    seed: Optional[int] = typer.Option(None, "--seed", min=0, max=2**32 - 1, help="overrides the config's seed (0 .. 2**32-1)"),
    set_: List[str] = typer.Option([], "--set", help="override a config key: --set ppo.lr=3e-4 (repeatable)"),
    resume: Optional[Path] = typer.Option(None, "--resume", help="continue the run in this directory"),
    force: bool = typer.Option(False, "--force", help="let --out be an existing non-empty folder that is not a run"),
    help_config: bool = typer.Option(False, "--help-config", help="list every config key with its description; exit"),
    device: Optional[str] = typer.Option(None, "--device", help="cpu or cuda"),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="show the progress bar"),
    evaluate: bool = typer.Option(True, "--eval/--no-eval", help="evaluate at the end"),
) -> int:
    """Train a policy; leaves a run directory (config, metrics, checkpoints, policy.pt, eval.json, plots).

    Ctrl-C or SIGTERM: the current iteration ends, a final checkpoint is written, and the
    command exits with 130 (SIGINT) or 143 (SIGTERM); continue with --resume.
    """
    from .config import DEFAULT_CONFIG, describe_config, load_config, read_config_file
    from .logging.run_dir import RunDir

    if help_config:
        print("\n".join(describe_config()))
        return 0

    device = _device(device)
    overrides = list(set_)
    if seed is not None:
        overrides.append(f"seed={seed}")
    if device is not None:
        overrides.append(f"device={device}")
    if not progress:
        overrides.append("train.progress=false")
    if resume is not None:
        if config is not None:
            raise UserError("give either CONFIG or --resume RUN_DIR (a resumed run uses its own config.yaml)")
        if out is not None:
            raise UserError("--out cannot be used with --resume (the run continues in RUN_DIR)")
        run = RunDir(resume).require()
        cfg = load_config(None, overrides, base=read_config_file(run.config))
    else:
        cfg = load_config(config if config is not None else _default_config(DEFAULT_CONFIG), overrides)

    from rich.console import Console

    from .train import train as run_train

    console = Console(stderr=True)
    res = run_train(cfg, out=out, resume=resume, console=console, evaluate_at_end=evaluate, force=force)
    if res.interrupted:
        import signal

        name = signal.Signals(res.stop_signal).name if res.stop_signal else "interrupt"
        print(f"stopped by {name} after {res.env_steps} env steps; continue with: "
              f"robolearn train --resume {res.run_dir}")
        return 128 + res.stop_signal if res.stop_signal else EXIT_SIGINT
    line = (f"run: {res.run_dir}  env steps: {res.env_steps}  train time: {res.train_wall_time_s:.1f} s"
            f"  (start-up {res.startup_s:.1f} s: simulator kernels compiled or loaded from the cache, env and "
            f"curriculum built)")
    if res.eval:
        from .tasks import task_for

        line += "".join("\n" + ln for ln in task_for(cfg).summary(res.eval))
    print(line)
    return 0


def _default_config(rel: str) -> Path:
    """The default config: relative to the working directory, else to the repository
    (:func:`robolearn.defaults.default_config_path`, which the benchmarks use too)."""
    from .defaults import default_config_path

    return default_config_path(rel)


@app.command("eval")
def eval_cmd(
    run_dir: Path = typer.Argument(..., metavar="RUN_DIR", help="a run directory made by robolearn train"),
    episodes: Optional[int] = typer.Option(None, "--episodes", min=1, help="episodes per block (default: config)"),
    as_json: bool = typer.Option(False, "--json", help="print the result as JSON"),
    seed: Optional[int] = typer.Option(None, "--seed", min=0, max=2**32 - 1,
                                       help="evaluation seed, 0 .. 2**32-1 (default: config)"),
    save: bool = typer.Option(False, "--save", help="also rewrite RUN_DIR/eval.json and the plots"),
    video: bool = typer.Option(False, "--video", help="arm: also write RUN_DIR/videos/eval.gif (MuJoCo offscreen)"),
    video_episodes: int = typer.Option(4, "--video-episodes", min=1, max=16, help="episodes in the video"),
) -> int:
    """Re-run the fixed-seed evaluation of RUN_DIR/policy.pt."""
    from .checkpoint import latest_good_checkpoint
    from .config import load_config, read_config_file
    from .logging.run_dir import RunDir, write_eval
    from .policy import load_policy
    from .tasks import task_for

    run = RunDir(run_dir).require()
    cfg = load_config(None, [], base=read_config_file(run.config))
    actor = load_policy(run.policy)
    train_info = {}
    # the checkpoints only add the training's time and steps: a bad one is skipped (and left in place)
    found = latest_good_checkpoint(run.checkpoints, lambda m: print(m, file=sys.stderr), move_bad=False)
    if found is not None:
        ck = found[1]
        train_info = {"train_wall_time_s": ck.get("train_wall_time_s"), "env_steps": ck.get("env_steps")}
    import torch

    torch.set_num_threads(cfg.train.torch_threads)
    task = task_for(cfg)
    result, record = task.evaluate(actor, cfg, episodes=episodes, seed=seed, train_info=train_info,
                                   record=video_episodes if video else 0)
    if save:
        write_eval(result, run.eval)
        if cfg.eval.plots:
            task.write_plots(run, cfg, record)
    if as_json:
        print(json.dumps(result, indent=2))
    else:
        from rich.console import Console

        Console().print(task.eval_table(result))
    if video:
        _video(cfg, record, run.path / "videos" / "eval.gif")
    return 0


def _video(cfg: RunConfig, record: Any, path: Path) -> None:
    """Write the evaluation GIF, or print one line saying why not (no GL, a family with no scene)."""
    from .tasks import TASKS, task_for

    task = task_for(cfg)
    if task.video is None:
        scenes = ", ".join(repr(t.name) for t in TASKS.values() if t.video is not None)
        print(f"video skipped: only env.name {scenes} has a MuJoCo scene to render (env.name is {cfg.env.name!r})",
              file=sys.stderr)
        return
    out, reason = task.video(cfg, record, path)
    if out is None:
        print(f"video skipped: {reason}", file=sys.stderr)
    else:
        print(f"video: {out}")


# The bench commands call the benchmarks' plain functions (benchmarks/*.py: run_... -> dict,
# print_...), imported inside each command so that importing the CLI loads no benchmark; this
# is the one edge from robolearn/ into benchmarks/ (tests/test_import_graph.py).
@bench_app.command("train")
def bench_train(
    config: Optional[Path] = typer.Argument(None, metavar="[CONFIG]", help="YAML config (default: configs/quadrotor_hover.yaml)"),
    seeds: int = typer.Option(5, "--seeds", min=1, help="number of seeds (0..N-1)"),
    set_: List[str] = typer.Option([], "--set", help="config override (repeatable)"),
    out: Optional[Path] = typer.Option(None, "--out", help="directory for the runs (default: a temp dir)"),
    as_json: bool = typer.Option(False, "--json", help="print the result as JSON"),
) -> int:
    """Train the config for several seeds; print a table of time and quality per seed."""
    from benchmarks.train import print_train_bench, run_train_bench

    print_train_bench(run_train_bench(config, seeds, set_, out), as_json)
    return 0


@bench_app.command("sim")
def bench_sim(
    envs: str = typer.Option("1,1024,16384", "--envs", help="comma-separated env counts"),
    seconds: float = typer.Option(3.0, "--seconds"),
    backend: str = typer.Option("cpu", "--backend"),
    repeats: int = typer.Option(5, "--repeats", help="timed windows per figure (best is reported)"),
    reference: bool = typer.Option(False, "--reference",
                                   help="also time the scalar reference CPU kernel in the same run; print ratios"),
    cpu_time: bool = typer.Option(False, "--cpu-time",
                                  help="rates per second of process CPU time (for loaded machines)"),
    as_json: bool = typer.Option(False, "--json"),
) -> int:
    """Simulator throughput (benchmarks.sim)."""
    from benchmarks.sim import REFERENCE_NEEDS_CPU, parse_envs, print_sim_bench, run_sim_bench

    try:
        counts = parse_envs(envs)
    except ValueError as e:
        raise UserError(str(e)) from None
    if backend not in ("cpu", "cuda"):
        raise UserError(f"--backend must be 'cpu' or 'cuda', got {backend!r}")
    if reference and backend != "cpu":
        raise UserError(REFERENCE_NEEDS_CPU)
    print_sim_bench(run_sim_bench(counts, seconds, repeats, backend, reference, cpu_time), as_json)
    return 0


@bench_app.command("arm-throughput")
def bench_arm_throughput(
    rounds: int = typer.Option(5, "--rounds", min=1, help="interleaved rounds (medians are reported)"),
    iterations: int = typer.Option(2, "--iterations", min=1, help="PPO iterations per variant and round"),
    env_calls: int = typer.Option(40, "--env-calls", min=1, help="env (and raw) steps per window"),
    variant: List[str] = typer.Option([], "--variant", help="NAME=CONFIG[;override;...] (repeatable; default: "
                                      "before = configs/arm_push.yaml as it was, after = configs/arm_push_lift.yaml)"),
    set_: List[str] = typer.Option([], "--set", help="override applied to every variant, e.g. env.num_envs=64"),
    json_out: Optional[Path] = typer.Option(None, "--json", help="also write the result to this file"),
) -> int:
    """Arm training throughput (raw mujoco.batch, env, PPO iterations), variants side by side in one run."""
    from benchmarks.arm_throughput import run_arm_throughput

    try:
        out = run_arm_throughput(rounds, iterations, env_calls, variant, set_, json_out)
    except ValueError as e:
        raise UserError(str(e)) from None
    print(json.dumps(out, indent=1))
    return 0


@bench_app.command("arm-ablation")
def bench_arm_ablation(
    out: Path = typer.Option(..., "--out", help="directory for the runs, ablation.json and plots/"),
    config: Path = typer.Option(Path("configs/arm_push_lift.yaml"), "--config", help="YAML config of every run"),
    seeds: int = typer.Option(3, "--seeds", min=1, help="seeds per arm (0..N-1)"),
    arms: str = typer.Option("curriculum,none,drop", "--arms",
                             help="comma-separated: curriculum (annealed by success), none (no privileges), "
                                  "drop (full strength, 0 at half the budget)"),
    env_steps: Optional[int] = typer.Option(None, "--env-steps", min=1, help="budget per run in env steps"),
    wall_s: Optional[float] = typer.Option(None, "--wall-s", min=1.0, help="budget per run in training wall seconds"),
    half_env_steps: Optional[int] = typer.Option(None, "--half-env-steps", min=1,
                                                 help="with --wall-s: the env step where 'drop' drops"),
    set_: List[str] = typer.Option([], "--set", help="override for every run (repeatable)"),
) -> int:
    """Push-lift ablation at privilege 0: the curriculum / no privileges / full then dropped at half."""
    from benchmarks.arm_ablation import parse_arms, print_arm_ablation, run_arm_ablation

    try:
        summary = run_arm_ablation(out, str(config), seeds, parse_arms(arms), env_steps, wall_s, half_env_steps, set_)
    except ValueError as e:
        raise UserError(str(e)) from None
    print_arm_ablation(summary)
    return 0


@bench_app.command("recoverability")
def bench_recoverability(
    run: Path = typer.Argument(..., help="run directory (config.yaml, policy.pt)"),
    controls: int = typer.Option(50, "--controls", help="survived starts also optimised, as a control"),
    horizon: float = typer.Option(1.0, "--horizon", help="open-loop horizon, s"),
    restarts: int = typer.Option(4, "--restarts"),
    iters: int = typer.Option(400, "--iters"),
    no_compile: bool = typer.Option(False, "--no-compile", help="eager autograd (no C++ compiler needed; slower)"),
    json_out: Optional[Path] = typer.Option(None, "--json", help="write the full result (every start) here"),
) -> int:
    """Can the eval starts the policy fails be survived at all? (benchmarks.recoverability)"""
    from benchmarks.recoverability import print_recoverability, run_recoverability

    print_recoverability(run_recoverability(run, controls, horizon, restarts, iters,
                                            compile_step=not no_compile, json_out=json_out))
    return 0


@bench_app.command("failures")
def bench_failures(
    runs: List[Path] = typer.Argument(..., help="run directories (config.yaml, policy.pt)"),
    hard: int = typer.Option(2000, "--hard", min=0, help="hard-corner starts per policy (0: none)"),
    fresh: str = typer.Option("", "--fresh", help="comma-separated seeds of more nominal start sets, e.g. 777,2024"),
    json_out: Optional[Path] = typer.Option(None, "--json", help="write the full result (every failed start) here"),
) -> int:
    """Which hover eval starts do these policies fail, their hard-corner survival, and survival on fresh start sets."""
    from benchmarks.failures import parse_fresh, print_failures, run_failures

    from .logging.run_dir import RunDir

    for r in runs:
        RunDir(r).require()
    try:
        seeds = parse_fresh(fresh)
    except ValueError as e:
        raise UserError(str(e)) from None
    print_failures(run_failures([str(r) for r in runs], hard, seeds, json_out))
    return 0


@bench_app.command("attribution")
def bench_attribution(
    run: Path = typer.Argument(..., help="run directory (config.yaml, policy.pt, eval.json)"),
    blocks: str = typer.Option("nominal,real_range,corners", "--blocks", help="comma-separated eval blocks"),
    json_out: Optional[Path] = typer.Option(None, "--json", help="also write the full result here"),
) -> int:
    """Where a hover run's eval failures come from: start, vehicle, crash time, two counterfactuals (issue 23)."""
    from benchmarks.hover_attribution import print_attribution, run_attribution

    from .logging.run_dir import RunDir

    RunDir(run).require()
    res = run_attribution(run, [b for b in blocks.split(",") if b])
    print_attribution(res)
    if json_out is not None:
        json_out.write_text(json.dumps(res, indent=1))
    return 0


def _print_json_result(r: dict, json_out: Optional[Path]) -> NoReturn:
    """Print a benchmark's JSON result (and write it to ``json_out``); exit 0 if ``r["ok"]``."""
    import json as _json

    text = _json.dumps(r, indent=2)
    if json_out is not None:
        json_out.write_text(text + "\n")
    print(text)
    raise typer.Exit(0 if r["ok"] else 1)


@bench_app.command("protocol-fuzz")
def bench_protocol_fuzz(
    frames: int = typer.Option(1_000_000, "--frames", min=1, help="random and mutated frames"),
    seed: int = typer.Option(0, "--seed", min=0, help="seed of the frame generator"),
    no_c: bool = typer.Option(False, "--no-c", help="Python decoder only (no ASan/UBSan C build)"),
    json_out: Optional[Path] = typer.Option(None, "--json", help="also write the figures here"),
) -> int:
    """Protocol decoders (Python and C with ASan/UBSan) under random and mutated frames (benchmarks.protocol_fuzz)."""
    from benchmarks.protocol_fuzz import run as fuzz_run

    r = fuzz_run(frames, seed, c=not no_c)
    _print_json_result(r, json_out)


@bench_app.command("link-faults")
def bench_link_faults(
    rates: str = typer.Option("0.01,0.1,0.3", "--rates", help="comma-separated byte fault probabilities in [0, 1]"),
    episodes: int = typer.Option(2, "--episodes", min=1),
    steps: int = typer.Option(100, "--steps", min=1),
    seed: int = typer.Option(0, "--seed", min=0),
    retries: int = typer.Option(20, "--retries", min=0, help="retransmissions per request"),
    json_out: Optional[Path] = typer.Option(None, "--json", help="also write the figures here"),
) -> int:
    """The serial HIL runner behind a proxy that drops/corrupts/duplicates/delays bytes (benchmarks.link_faults)."""
    from benchmarks.link_faults import run as link_run

    try:
        rs = tuple(float(x) for x in rates.split(",") if x.strip())
    except ValueError:
        raise UserError(f"--rates must be comma-separated numbers in [0, 1], got {rates!r}") from None
    if not rs or any(not 0.0 <= x <= 1.0 for x in rs):
        raise UserError(f"--rates must be comma-separated numbers in [0, 1], got {rates!r}")
    r = link_run(rs, episodes, steps, seed, retries=retries)
    _print_json_result(r, json_out)


@bench_app.command("mcu")
def bench_mcu(
    policy: Optional[Path] = typer.Option(None, "--policy", help="policy.pt to measure (default: random default-shape actor)"),
    before: Optional[str] = typer.Option(None, "--before", help="git revision whose C generator to measure too"),
    json_out: Optional[Path] = typer.Option(None, "--json", help="write the figures here"),
) -> int:
    """Cortex-M4 cost of the exported actor: instructions counted under QEMU, cycles estimated (benchmarks.mcu)."""
    from benchmarks.mcu import run_mcu

    run_mcu(policy, before, json_out)
    return 0


@bench_app.command("distill")
def bench_distill(
    teacher: Path = typer.Option(..., "--teacher", help="run directory of the policy to imitate"),
    student: Path = typer.Option(..., "--student", help="run directory of the policy to fine-tune"),
    out: Path = typer.Option(..., "--out", help="run directory to write"),
    rounds: int = typer.Option(8, "--rounds", min=1),
    envs: int = typer.Option(2048, "--envs", min=1),
    steps: int = typer.Option(300, "--steps", min=1, help="control steps per round and env"),
    hard_fraction: float = typer.Option(0.5, "--hard-fraction", min=0.0, max=1.0,
                                        help="share of each round's starts from the hard corner"),
) -> int:
    """DAgger from one hover policy into another actor (benchmarks.distill)."""
    from benchmarks.distill import distill, print_distill

    from .logging.run_dir import RunDir

    for r in (teacher, student):
        RunDir(r).require()
    print_distill(distill(teacher, student, out, rounds, envs, steps, hard_fraction), out)
    return 0


@bench_app.command("peers")
def bench_peers(
    runs: List[Path] = typer.Argument(None, help="run directories (policy.pt) to fly next to RAPTOR"),
    episodes: Optional[int] = typer.Option(None, "--episodes", min=1, help="episodes per block (default: eval.episodes)"),
    seed: Optional[int] = typer.Option(None, "--seed", help="env seed (default: eval.seed)"),
    config: Optional[Path] = typer.Option(None, "--config", help="config whose env is flown (default: the hover config)"),
    sim: str = typer.Option("ours", "--sim", help="ours, or l2f (RLtools' simulator: the package's l2f extra)"),
    raptor: bool = typer.Option(True, "--raptor/--no-raptor", help="fly the RAPTOR foundation policy"),
    termination_m: Optional[float] = typer.Option(None, "--termination-m",
                                                  help="position-error termination, m (default: the task's; a diagnostic)"),
    json_out: Optional[Path] = typer.Option(None, "--json", help="write the result here"),
) -> int:
    """RAPTOR and our policies on the same starts: nominal, real range, corners (benchmarks.peers)."""
    from benchmarks.peers import format_tables, run_peers

    from .logging.run_dir import RunDir

    for r in runs or []:
        RunDir(r).require()
    result = run_peers([str(r) for r in runs or []], episodes, seed, None, str(config) if config else None, sim, raptor,
                       termination_m=termination_m)
    if json_out is not None:
        json_out.write_text(json.dumps(result, indent=1) + "\n")
    print(format_tables(result))
    return 0


def main() -> None:  # pragma: no cover - console entry point alias
    app()


if __name__ == "__main__":  # pragma: no cover
    app()

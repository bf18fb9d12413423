"""Seeds x grid sweeps of ordinary robolearn runs on Ray (``robolearn sweep``).

Every trial is ``robolearn train CONFIG --set ... --set GRID_KEY=VALUE --seed K`` run as
a Ray task on 1 CPU (1 torch thread, 1 numba thread, 1 MuJoCo thread), writing its own
run directory ``OUT/p<point>-<grid values>-s<seed>/``. Ray schedules the tasks on the
local machine or on an existing cluster (``address``). A failed trial is submitted again
up to ``retries`` times; one that still fails is reported in the summary with every
attempt's error. A retry resumes from the trial's newest checkpoint when it has one.

The summary (``summary.json``, ``summary.csv``, ``summary.png``) gives, per grid point,
the mean and the 95 % confidence interval (Student t) over seeds of metrics from each
trial's ``eval.json``.
"""

from __future__ import annotations

import itertools
import json
import math
import re
import shutil
import socket
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from .errors import UserError

# Metrics summarized when present in eval.json (dotted paths); quadrotor, then arm.
DEFAULT_METRICS = ("nominal.survival_rate", "nominal.position_error_m", "real_range.survival_rate",
                   "real_range.position_error_m", "corners.survival_rate", "nominal.success_rate", "nominal.object_goal_distance_m",
                   "train_wall_time_s")
TRIAL_OVERRIDES = ["train.torch_threads=1", "env.arm.num_threads=1", "train.progress=false"]


@dataclass
class Trial:
    point: int  # grid point index
    seed: int
    overrides: list[str]  # the grid point's KEY=VALUE overrides
    run_dir: str
    status: str = "pending"  # ok | failed | cancelled
    attempts: int = 0
    errors: list[str] = field(default_factory=list)  # one line per failed attempt
    host: str | None = None
    eval: dict[str, Any] | None = None

    @property
    def name(self) -> str:
        return Path(self.run_dir).name

    @property
    def retries(self) -> int:
        return max(self.attempts - 1, 0)


# ------------------------------------------------------------------------- planning
def split_values(raw: str) -> list[str]:
    """``1e-3,3e-4`` -> two values; commas inside brackets stay (``[0.9,1.1],[0.8,1.2]``)."""
    out, depth, cur = [], 0, ""
    for ch in raw:
        depth += ch in "[{("
        depth -= ch in "]})"
        if ch == "," and depth == 0:
            out.append(cur)
            cur = ""
        else:
            cur += ch
    out.append(cur)
    return [v.strip() for v in out]


def parse_grid(items: list[str]) -> list[tuple[str, list[str]]]:
    """``["ppo.lr=1e-3,3e-4", ...]`` -> ``[("ppo.lr", ["1e-3", "3e-4"]), ...]`` (one-line errors)."""
    grid: list[tuple[str, list[str]]] = []
    for item in items:
        key, eq, raw = item.partition("=")
        key = key.strip()
        if not eq or not key or any(not p for p in key.split(".")):
            raise UserError(f"--grid {item!r}: expected KEY=V1,V2,..., e.g. --grid ppo.lr=1e-3,3e-4")
        values = split_values(raw)
        if any(v == "" for v in values):
            raise UserError(f"--grid {item!r}: empty value; separate values with single commas")
        if key in (k for k, _ in grid):
            raise UserError(f"--grid {key}: given twice; list all its values in one --grid")
        if key in ("seed",):
            raise UserError("--grid seed: use --seeds N (the sweep runs seeds 0..N-1 at every grid point)")
        grid.append((key, values))
    return grid


def plan(grid: list[tuple[str, list[str]]], seeds: int, out: Path) -> list[Trial]:
    """All (grid point, seed) trials, grid points in the order given (cartesian product)."""
    keys = [k for k, _ in grid]
    trials = []
    for p, values in enumerate(itertools.product(*[v for _, v in grid])):
        overrides = [f"{k}={v}" for k, v in zip(keys, values)]
        label = _safe(",".join(overrides))
        for s in range(seeds):
            name = f"p{p}-{label}-s{s}" if label else f"p{p}-s{s}"
            trials.append(Trial(p, s, overrides, str(out / name)))
    return trials


def _safe(text: str, limit: int = 60) -> str:
    return re.sub(r"[^A-Za-z0-9._=,+-]", "_", text)[:limit]


# ------------------------------------------------------------------------- one trial
def run_trial(config: dict[str, Any], overrides: list[str], seed: int, run_dir: str) -> dict[str, Any]:
    """Train one run into ``run_dir`` (on a Ray worker); returns its eval.json and the host."""
    import numba

    from .checkpoint import latest_checkpoint
    from .config import load_config, read_config_file
    from .train import train

    # One CPU per trial: the simulator's parallel kernels must not fan out over the node
    # (torch gets 1 thread from TRIAL_OVERRIDES, OpenMP from Ray's OMP_NUM_THREADS=num_cpus).
    numba.set_num_threads(1)
    run = Path(run_dir)
    resume = latest_checkpoint(run / "checkpoints") is not None  # a retry continues the failed attempt
    if not resume and run.exists():
        shutil.rmtree(run)  # a failed attempt without a checkpoint: start clean (no stale metrics rows)
    if resume:
        cfg = load_config(None, [], base=read_config_file(run / "config.yaml"))
    else:
        cfg = load_config(None, [*overrides, f"seed={seed}", *TRIAL_OVERRIDES], base=config)
    res = train(cfg, out=None if resume else run, resume=run if resume else None)
    if res.eval is None:
        raise RuntimeError(f"training stopped after {res.env_steps} env steps without an evaluation")
    return {"eval": res.eval, "host": socket.gethostname(), "run_dir": str(res.run_dir)}


# ------------------------------------------------------------------------- the sweep
@dataclass
class SweepResult:
    out: Path
    trials: list[Trial]
    metrics: list[str]
    points: list[dict[str, Any]]

    @property
    def failed(self) -> list[Trial]:
        return [t for t in self.trials if t.status != "ok"]


def run_sweep(config: Path, seeds: int, grid: Sequence[str] = (), sets: Sequence[str] = (), out: Path | None = None,
              address: str | None = None, retries: int = 2, metrics: Sequence[str] | None = None,
              num_cpus: int | None = None, log: Callable[[str], None] = print) -> SweepResult:
    """Run the sweep and write its summary; uses the caller's Ray session if one is open."""
    from .config import apply_override, read_config_file, validate_config

    if seeds < 1:
        raise UserError(f"--seeds must be >= 1, got {seeds}")
    if retries < 0:
        raise UserError(f"--retries must be >= 0, got {retries}")
    parsed = parse_grid(list(grid))
    base = read_config_file(config)
    for s in sets:
        apply_override(base, s)
    validate_config(base)  # a bad config or --set now; grid values are checked by each trial
    out = Path(out) if out is not None else _default_out(base)
    if (out / "summary.json").exists():
        raise UserError(f"{out} already holds a sweep (summary.json); choose another --out")
    trials = plan(parsed, seeds, out.resolve())

    import ray

    owned = _connect(address, num_cpus)
    try:
        out.mkdir(parents=True, exist_ok=True)
        _execute(ray, trials, base, retries, log)
    finally:
        if owned:
            ray.shutdown()
    chosen = list(metrics) if metrics else _present(DEFAULT_METRICS, trials)
    points = summarize(trials, chosen)
    result = SweepResult(out, trials, chosen, points)
    write_summary(result, config=str(config), grid=parsed, sets=list(sets), seeds=seeds, retries=retries)
    return result


def _default_out(base: dict[str, Any]) -> Path:
    from datetime import datetime

    return Path(base.get("out_root", "runs")) / f"sweep-{datetime.now().strftime('%Y%m%d-%H%M%S')}"


def _connect(address: str | None, num_cpus: int | None) -> bool:
    """Start or join Ray; False when the caller already has a session (tests, notebooks)."""
    import ray

    if ray.is_initialized():
        return False
    if address and address != "auto":
        _check_reachable(address)
    try:
        if address:
            ray.init(address=address, logging_level="warning")
        else:
            # "local": a new instance even where `ray start` left a cluster (or its stale record)
            ray.init(address="local", num_cpus=num_cpus, include_dashboard=False, logging_level="warning")
    except (ConnectionError, ValueError, RuntimeError) as e:
        where = f"the Ray cluster at {address}" if address else "a local Ray instance"
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise UserError(f"cannot start or join {where}: {first[:200]}") from None
    return True


def _check_reachable(address: str) -> None:
    """Fail in seconds on a wrong HOST:PORT; ray.init would retry for minutes."""
    hostport = address.removeprefix("ray://")
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise UserError(f"--address {address!r}: expected auto, HOST:PORT or ray://HOST:PORT")
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except OSError as e:
        raise UserError(f"--address {address}: no Ray cluster answers there ({e.strerror or e}); "
                        "start one with 'ray start --head' or omit --address for a local instance") from None


def _execute(ray: Any, trials: list[Trial], base: dict[str, Any], retries: int, log: Callable[[str], None]) -> None:
    # Retries are resubmissions from here rather than Ray's ``max_retries``: Ray does not
    # tell the caller how many attempts ran or why the earlier ones failed.
    task = ray.remote(run_trial)
    config_ref = ray.put(base)
    pending: dict[Any, Trial] = {}

    def submit(t: Trial) -> None:
        t.attempts += 1
        opts = task.options(num_cpus=1, max_retries=0, name=f"robolearn-trial:{t.name}")
        ref = opts.remote(config_ref, t.overrides, t.seed, t.run_dir)
        pending[ref] = t

    for t in trials:
        submit(t)
    done = 0
    try:
        while pending:
            (ref,), _ = ray.wait(list(pending), num_returns=1)
            t = pending.pop(ref)
            try:
                res = ray.get(ref)
            except ray.exceptions.RayError as e:
                t.errors.append(_error_line(e))
                if t.attempts <= retries:
                    log(f"{t.name}: attempt {t.attempts} failed: {t.errors[-1]}; retrying")
                    submit(t)
                    continue
                t.status = "failed"
            else:
                t.status, t.eval, t.host = "ok", res["eval"], res["host"]
            done += 1
            log(f"[{done}/{len(trials)}] {t.name}: {t.status}"
                + (f" after {t.attempts} attempts: {t.errors[-1]}" if t.status == "failed" else ""))
    except KeyboardInterrupt:
        for ref, t in pending.items():
            ray.cancel(ref, force=True)
            t.status = "cancelled"
        log(f"interrupted: {len(pending)} trial(s) cancelled")


def _error_line(e: Exception) -> str:
    cause = getattr(e, "cause", None)  # RayTaskError: the exception raised in the trial
    err = cause if isinstance(cause, BaseException) else e
    first = (str(err).strip().splitlines() or [""])[0]
    return f"{type(err).__name__}: {first[:300]}"


# ------------------------------------------------------------------------- summary
def metric_value(result: dict[str, Any] | None, key: str) -> float | None:
    """``eval.json`` value at a dotted path, or None (missing, null, not finite)."""
    v = result
    for part in key.split("."):
        if not isinstance(v, dict) or part not in v:
            return None
        v = v[part]
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        return None
    return float(v)


def mean_ci95(values: list[float]) -> tuple[float | None, float | None]:
    """Mean and half-width of the 95 % Student-t interval (None where undefined)."""
    from scipy import stats

    n = len(values)
    if n == 0:
        return None, None
    mean = float(np.mean(values))
    if n == 1:
        return mean, None
    half = float(stats.t.ppf(0.975, n - 1) * np.std(values, ddof=1) / math.sqrt(n))
    return mean, half


def _present(keys: Sequence[str], trials: list[Trial]) -> list[str]:
    return [k for k in keys if any(metric_value(t.eval, k) is not None for t in trials)]


def summarize(trials: list[Trial], metrics: list[str]) -> list[dict[str, Any]]:
    """One row per grid point: its values, trial counts and mean / CI / n / values per metric."""
    rows = []
    for p in sorted({t.point for t in trials}):
        ts = [t for t in trials if t.point == p]
        ok = [t for t in ts if t.status == "ok"]
        row: dict[str, Any] = {"point": p, "label": ",".join(ts[0].overrides) or "(config)",
               "values": dict(o.split("=", 1) for o in ts[0].overrides),
               "seeds_ok": len(ok), "seeds_failed": len(ts) - len(ok), "metrics": {}}
        for m in metrics:
            vals = [v for v in (metric_value(t.eval, m) for t in ok) if v is not None]
            mean, half = mean_ci95(vals)
            row["metrics"][m] = {"mean": mean, "ci95": half, "n": len(vals), "values": vals}
        rows.append(row)
    return rows


def write_summary(r: SweepResult, **meta: Any) -> None:
    """summary.json (everything), summary.csv (one row per grid point), summary.png."""
    import csv

    trials = [{**{k: v for k, v in asdict(t).items() if k != "eval"}, "name": t.name, "retries": t.retries,
               "metrics": {m: metric_value(t.eval, m) for m in r.metrics}} for t in r.trials]
    doc = {**meta, "metrics": r.metrics, "points": r.points, "trials": trials,
           "failed": [x for x in trials if x["status"] != "ok"]}
    (r.out / "summary.json").write_text(json.dumps(doc, indent=2) + "\n")
    with open(r.out / "summary.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["point", "label", "seeds_ok", "seeds_failed"]
                   + [f"{m}_{s}" for m in r.metrics for s in ("mean", "ci95", "n")])
        for row in r.points:
            cells: list[Any] = [row["point"], row["label"], row["seeds_ok"], row["seeds_failed"]]
            for m in r.metrics:
                s = row["metrics"][m]
                cells += ["" if s["mean"] is None else f"{s['mean']:.6g}",
                          "" if s["ci95"] is None else f"{s['ci95']:.6g}", s["n"]]
            w.writerow(cells)
    if r.metrics:
        plot_summary(r, r.out / "summary.png")


def plot_summary(r: SweepResult, path: Path) -> None:
    """One panel per metric: each seed's value, and mean +- 95 % CI per grid point."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(r.metrics)
    fig, axes = plt.subplots(1, n, figsize=(max(3.2 * n, 4), 3.6), squeeze=False)
    x = np.arange(len(r.points))
    labels = [f"{row['label']}\n{row['seeds_ok']} ok" + (f", {row['seeds_failed']} failed" if row["seeds_failed"]
                                                         else "") for row in r.points]
    for ax, m in zip(axes[0], r.metrics):
        for i, row in enumerate(r.points):
            s = row["metrics"][m]
            ax.plot(np.full(len(s["values"]), i) + np.linspace(-0.12, 0.12, len(s["values"])), s["values"], "o",
                    color="0.65", ms=4)
            if s["mean"] is not None:
                ax.errorbar(i, s["mean"], yerr=s["ci95"] if s["ci95"] is not None else None, fmt="s",
                            color="C0", capsize=4)
        ax.set_title(m, fontsize=9)
        ax.set_xticks(x, labels, fontsize=7, rotation=30 if len(r.points) > 3 else 0)
        ax.set_xlim(-0.5, len(r.points) - 0.5)
        ax.grid(alpha=0.3)
    fig.suptitle("mean ± 95 % CI over seeds (grey: single seeds)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)

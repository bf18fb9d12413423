"""The ablation of the privileged-action curriculum on push-lift (issue 24), three arms x seeds.

    robolearn bench arm-ablation [--config configs/arm_push_lift.yaml] [--seeds 3]
        [--env-steps N | --wall-s S] [--arms curriculum,none,drop] [--set key=value ...] --out DIR
    python -m benchmarks.arm_ablation ...

Arms (the same config, budget and seeds; only ``curriculum`` differs):

* ``curriculum``: the config's privileged-action annealing (each coefficient lowered by
  success, never reintroduced);
* ``none``: no privileges at all (``curriculum.teacher=none``: every coefficient 0);
* ``drop``: every privilege at full strength, dropped to 0 at once at half the budget
  (``curriculum.teacher=linear`` with a one-step ramp at ``env_steps / 2``; with
  ``--wall-s`` the half is estimated from ``--half-env-steps``, which must then be given).

Each run is a normal run directory (``DIR/<arm>/seed<k>``: eval.json at privilege 0 with
the nominal and domain-randomized blocks, metrics.csv with the coefficients over time).
The summary (``DIR/ablation.json``) gives per arm the success at privilege 0 of every seed,
the mean with a 95 % confidence interval over seeds (Student t) and each seed's 95 %
Wilson interval over its evaluation episodes; ``DIR/plots/privileges.png`` shows the
coefficients over env steps, one line per run.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
from pathlib import Path
from typing import Any

import numpy as np

ARMS = ("curriculum", "none", "drop")
PRIVILEGES = ("privileged.force_scale", "privileged.gravity_scale", "privileged.table_penetration")
T95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262}  # Student t, 0.975


def arm_overrides(arm: str, half_env_steps: int) -> list[str]:
    """The config overrides of one arm (``half_env_steps``: where ``drop`` drops)."""
    if arm == "curriculum":
        return []
    if arm == "none":
        return ["curriculum.teacher=none"]
    if arm == "drop":
        # a one-step ramp ending at the half: the iteration that starts there runs at 0
        begin, end = max(half_env_steps - 1, 0), max(half_env_steps, 1)
        items = ", ".join(f"{{param: {p}, start: [1.0, 1.0], end: [0.0, 0.0], begin_env_steps: {begin}, "
                          f"end_env_steps: {end}}}" for p in PRIVILEGES)
        return ["curriculum.teacher=linear", f"curriculum.linear=[{items}]"]
    raise ValueError(f"unknown arm {arm!r}; use some of {', '.join(ARMS)}")


def wilson(k: float, n: int, z: float = 1.96) -> tuple[float, float]:
    """95 % Wilson score interval of a success rate k / n."""
    if n == 0:
        return (float("nan"), float("nan"))
    p = k / n
    d = 1 + z * z / n
    c = (p + z * z / (2 * n)) / d
    h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return (c - h, c + h)


def mean_ci(x: list[float]) -> tuple[float, float, float]:
    """Mean and 95 % t interval over seeds (the interval is nan for one seed)."""
    a = np.asarray(x, float)
    m = float(a.mean())
    if len(a) < 2:
        return m, float("nan"), float("nan")
    h = T95.get(len(a) - 1, 1.96) * float(a.std(ddof=1)) / math.sqrt(len(a))
    return m, m - h, m + h


def privileges_plot(runs: dict[str, list[Path]], path: Path) -> None:
    import csv

    from robolearn.logging.plots import pyplot

    plt = pyplot()
    fig, axes = plt.subplots(1, len(PRIVILEGES), figsize=(4 * len(PRIVILEGES), 3.2), sharey=True)
    for j, name in enumerate(PRIVILEGES):
        ax = axes[j]
        for i, (arm, dirs) in enumerate(runs.items()):
            for d in dirs:
                with open(d / "metrics.csv", newline="") as f:
                    rows = list(csv.DictReader(f))
                key = f"curriculum/{name}" if f"curriculum/{name}" in rows[0] else f"curriculum/{name}.high"
                xs = [float(r["env_steps"]) for r in rows]
                ys = [float(r[key]) if r.get(key) not in (None, "", "nan") else 0.0 for r in rows]
                ax.plot(xs, ys, color=f"C{i}", lw=1, label=arm if d == dirs[0] else None)
        ax.set_title(name, fontsize=8)
        ax.set_xlabel("env steps")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("coefficient")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def run_arm_ablation(out: str | Path, config: str = "configs/arm_push_lift.yaml", seeds: int = 3,
                     arms: list[str] | tuple[str, ...] = ARMS, env_steps: int | None = None,
                     wall_s: float | None = None, half_env_steps: int | None = None,
                     overrides: list[str] | None = None) -> dict:
    """Train every arm for ``seeds`` seeds under one budget (exactly one of ``env_steps`` or
    ``wall_s``), evaluate each at privilege 0, write ``out``/ablation.json and
    ``out``/plots/privileges.png; returns the summary. Raises ValueError on a bad argument."""
    overrides = list(overrides or [])
    if seeds < 1:
        raise ValueError("--seeds must be >= 1")
    if (env_steps is None) == (wall_s is None):
        raise ValueError("give exactly one budget: --env-steps N or --wall-s S")
    if wall_s is not None and "drop" in arms and half_env_steps is None:
        raise ValueError("arm 'drop' with --wall-s needs --half-env-steps (where it drops), or use --env-steps")
    half = half_env_steps if half_env_steps is not None else (env_steps or 0) // 2
    budget = ([f"train.total_env_steps={env_steps}"] if env_steps is not None else
              ["train.total_env_steps=1000000000000", f"train.max_wall_time_s={wall_s}"])
    for a in arms:
        arm_overrides(a, half)  # validate every arm before the first run
    from robolearn.config import load_config
    from robolearn.train import train

    out = Path(out)
    summary: dict = {"config": config, "seeds": seeds, "budget": budget, "drop_at_env_steps": half,
                     "overrides": overrides,
                     "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs", "arms": {}}
    dirs: dict[str, list[Path]] = {}
    for a in arms:
        rows = []
        for seed in range(seeds):
            cfg = load_config(config, overrides + budget + arm_overrides(a, half)
                              + [f"seed={seed}", "train.progress=false"])
            res = train(cfg, out=out / a / f"seed{seed}")
            e = res.eval or {}
            row: dict[str, Any] = {"seed": seed, "env_steps": res.env_steps, "train_wall_time_s": res.train_wall_time_s,
                   "run_dir": str(res.run_dir)}
            for block in ("nominal", "train_ranges"):
                if block in e:
                    b = e[block]
                    k = round(b["success_rate"] * b["episodes"])
                    row[block] = {"success_rate": b["success_rate"], "wilson95": wilson(k, b["episodes"]),
                                  "privileged_max": b["privileged_max"]}
            rows.append(row)
            dirs.setdefault(a, []).append(res.run_dir)
            print(json.dumps({"arm": a} | row), flush=True)
        agg: dict[str, dict] = {}
        for block in ("nominal", "train_ranges"):
            xs = [r[block]["success_rate"] for r in rows if block in r]
            if xs:
                m, lo, hi = mean_ci(xs)
                agg[block] = {"success_mean": m, "ci95": [lo, hi], "per_seed": xs}
        summary["arms"][a] = {"runs": rows, **agg}
    (out / "plots").mkdir(parents=True, exist_ok=True)
    privileges_plot(dirs, out / "plots" / "privileges.png")
    (out / "ablation.json").write_text(json.dumps(summary, indent=1))
    return summary


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default="configs/arm_push_lift.yaml")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--arms", default=",".join(ARMS))
    ap.add_argument("--env-steps", type=int, help="budget per run in env steps (train.total_env_steps)")
    ap.add_argument("--wall-s", type=float, help="budget per run in training wall seconds (train.max_wall_time_s)")
    ap.add_argument("--half-env-steps", type=int, help="with --wall-s: the env step where 'drop' drops")
    ap.add_argument("--set", action="append", default=[], dest="overrides", help="override for every run")
    ap.add_argument("--out", required=True, help="directory for the runs and the summary")
    args = ap.parse_args(argv)
    try:
        summary = run_arm_ablation(args.out, args.config, args.seeds, parse_arms(args.arms), args.env_steps,
                                   args.wall_s, args.half_env_steps, args.overrides)
    except ValueError as e:
        raise SystemExit(f"error: {e}") from None
    print_arm_ablation(summary)
    return summary


def parse_arms(text: str) -> list[str]:
    """``curriculum,none,drop`` -> the list of arm names."""
    return [a.strip() for a in text.split(",") if a.strip()]


def print_arm_ablation(summary: dict) -> None:
    """The per-arm aggregate (success at privilege 0, 95 % CIs, per seed) as JSON."""
    print(json.dumps({a: {k: v for k, v in s.items() if k != "runs"} for a, s in summary["arms"].items()}, indent=1))


if __name__ == "__main__":
    main()

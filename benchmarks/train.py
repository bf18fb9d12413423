"""Training benchmark: train a config for several seeds, print time and quality per seed.

    python -m benchmarks.train [--config configs/quadrotor_hover.yaml] [--seeds 5]
                               [--set key=value ...] [--out DIR] [--json]
    robolearn bench train [CONFIG] [--seeds 5] [--set key=value ...]

From Python: ``run_train_bench(config, seeds, overrides, out) -> dict`` and
``print_train_bench(result, as_json)``; both commands above call these two.

Per seed: training wall time (the training loop; process start-up, numba cache load and
the final evaluation are reported separately), env steps, the fixed-seed evaluation
(nominal and randomized blocks: survival, position error, yaw) and where the training
time went (simulator / policy+value inference / gradient updates). The bar is the
project's target for the default config on a 2-core CPU.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

BAR = {"train_wall_time_s": 15.0, "survival_rate": 0.99, "position_error_m": 0.05, "yaw_deg": 5.0}


def _load_average() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "?"


def run_train_bench(config: str | Path | None = None, seeds: int = 5, overrides: Sequence[str] = (),
                    out: str | Path | None = None) -> dict:
    """Train ``config`` (None: the default config) for seeds 0..seeds-1 and collect, per seed, the
    training wall time (s), env steps, both evaluation blocks and the time breakdown (s).

    Runs go to ``out/seed{K}`` (None: a new temporary directory). Raises
    :class:`robolearn.errors.UserError` for ``seeds < 1`` and for a bad config or override.
    """
    from robolearn.defaults import default_config_path
    from robolearn.errors import UserError

    if seeds < 1:
        raise UserError(f"--seeds must be >= 1, got {seeds}")
    return run(str(config) if config else str(default_config_path()), seeds, list(overrides),
               str(out) if out is not None else None)


def run(config: str, seeds: int, overrides: list[str], out: str | None) -> dict:
    """:func:`run_train_bench` without its defaults and checks."""
    from robolearn.config import load_config
    from robolearn.train import train

    root = Path(out) if out else Path(tempfile.mkdtemp(prefix="robolearn-bench-"))
    rows = []
    for seed in range(seeds):
        cfg = load_config(config, list(overrides) + [f"seed={seed}", "train.progress=false"])
        t0 = time.perf_counter()
        res = train(cfg, out=root / f"seed{seed}")
        total = time.perf_counter() - t0
        e = res.eval
        assert e is not None  # train() evaluates at the end unless told not to
        rows.append({
            "seed": seed,
            "train_wall_time_s": res.train_wall_time_s,
            "total_wall_time_s": total,
            "env_steps": res.env_steps,
            "nominal": {k: e["nominal"][k] for k in ("survival_rate", "position_error_m", "tilt_deg", "yaw_deg")},
            "randomized": ({k: e["randomized"][k] for k in ("survival_rate", "position_error_m", "tilt_deg", "yaw_deg")}
                           if "randomized" in e else None),
            "time_breakdown_s": res.timers,
            "run_dir": str(res.run_dir),
        })
    return {
        "config": config, "overrides": list(overrides), "seeds": seeds,
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "load_average_after": _load_average(), "bar": BAR, "runs": rows,
    }


def passes(row: dict) -> bool:
    n = row["nominal"]
    return (row["train_wall_time_s"] <= BAR["train_wall_time_s"] and n["survival_rate"] >= BAR["survival_rate"]
            and n["position_error_m"] is not None and n["position_error_m"] <= BAR["position_error_m"]
            and n["yaw_deg"] is not None and n["yaw_deg"] <= BAR["yaw_deg"])


def print_table(result: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    def f(v, spec):
        return "-" if v is None else format(v, spec)

    t = Table(title=f"robolearn bench train: {result['config']} {' '.join(result['overrides'])}".strip())
    for col in ("seed", "train s", "env steps", "surv", "pos m", "yaw deg", "surv DR", "pos DR m",
                "sim s", "infer s", "update s", "polish s", "bar"):
        t.add_column(col, justify="right")
    for r in result["runs"]:
        n, d, tb = r["nominal"], r["randomized"] or {}, r["time_breakdown_s"]
        t.add_row(str(r["seed"]), f"{r['train_wall_time_s']:.1f}", f"{r['env_steps'] / 1e6:.2f}M",
                  f"{n['survival_rate']:.1%}", f(n["position_error_m"], ".3f"), f(n["yaw_deg"], ".2f"),
                  f(d.get("survival_rate"), ".1%"), f(d.get("position_error_m"), ".3f"),
                  f"{tb.get('sim', 0):.1f}", f"{tb.get('inference', 0):.1f}", f"{tb.get('update', 0):.1f}",
                  f"{tb.get('polish', 0):.1f}", "pass" if passes(r) else "FAIL")
    rs = result["runs"]
    if len(rs) > 1:
        import numpy as np

        def mean(get):
            vals = [get(r) for r in rs]
            vals = [v for v in vals if v is not None]
            return float(np.mean(vals)) if vals else None

        t.add_row("mean", f(mean(lambda r: r["train_wall_time_s"]), ".1f"),
                  f"{mean(lambda r: r['env_steps']) / 1e6:.2f}M",
                  f(mean(lambda r: r["nominal"]["survival_rate"]), ".1%"),
                  f(mean(lambda r: r["nominal"]["position_error_m"]), ".3f"),
                  f(mean(lambda r: r["nominal"]["yaw_deg"]), ".2f"),
                  f(mean(lambda r: (r["randomized"] or {}).get("survival_rate")), ".1%"),
                  f(mean(lambda r: (r["randomized"] or {}).get("position_error_m")), ".3f"),
                  f(mean(lambda r: r["time_breakdown_s"].get("sim")), ".1f"),
                  f(mean(lambda r: r["time_breakdown_s"].get("inference")), ".1f"),
                  f(mean(lambda r: r["time_breakdown_s"].get("update")), ".1f"),
                  f(mean(lambda r: r["time_breakdown_s"].get("polish", 0.0)), ".1f"),
                  f"{sum(passes(r) for r in rs)}/{len(rs)}")
    c = Console()
    c.print(t)
    c.print(f"bar: train <= {BAR['train_wall_time_s']} s, survival >= {BAR['survival_rate']:.0%}, position error "
            f"<= {BAR['position_error_m']} m, yaw <= {BAR['yaw_deg']} deg (nominal block).  "
            f"machine: {result['machine']}, load average after: {result['load_average_after']}")


def print_train_bench(result: dict, as_json: bool = False) -> None:
    """Print :func:`run_train_bench`'s result: as JSON, or as the table with the bar."""
    if as_json:
        print(json.dumps(result, indent=2))
    else:
        print_table(result)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default=None, help="YAML config (default: configs/quadrotor_hover.yaml)")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--set", action="append", default=[], dest="overrides", help="config override key=value")
    ap.add_argument("--out", default=None, help="directory for the run directories (default: a temp dir)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    if args.seeds < 1:
        ap.error("--seeds must be >= 1")
    from robolearn.errors import UserError

    try:
        result = run_train_bench(args.config, args.seeds, args.overrides, args.out)
    except UserError as e:
        raise SystemExit(f"error: {e}") from None
    print_train_bench(result, args.json)
    return result


if __name__ == "__main__":
    main()

"""Hover training with part of the episodes started in the hard corner (issue 3 experiment).

    python -m benchmarks.hard_starts --fraction 0.3 --seed 0 --out DIR [--set key=value ...]

Kept so that the commands in BENCHMARKS.md (issue 3) run as written: this is ``robolearn
train CONFIG --seed K --set curriculum.hard_starts.fraction=F`` (robolearn/hard_starts.py)
plus a one-line JSON summary. The results reproduce those of the earlier version of this
script, which hooked the trainer from outside with the same pool and random draws.
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path


def train_with_hard_starts(config: str, seed: int, fraction: float, out: str, overrides: list[str],
                           draws: int = 200_000) -> dict:
    import robolearn.train as T
    from robolearn.config import load_config

    if not 0.0 <= fraction <= 1.0:
        raise SystemExit(f"error: --fraction must be in [0, 1], got {fraction}")
    cfg = load_config(config, [f"seed={seed}", *overrides, f"curriculum.hard_starts.fraction={fraction}",
                               f"curriculum.hard_starts.pool_draws={draws}"])
    res = T.train(cfg, out=out)
    assert res.eval is not None
    given = 0
    with open(Path(res.run_dir) / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    if rows and rows[-1].get("curriculum/hard_starts/given"):
        given = int(float(rows[-1]["curriculum/hard_starts/given"]))
    return {"seed": seed, "fraction": fraction, "run_dir": str(res.run_dir), "hard_starts_given": given,
            "train_wall_time_s": res.train_wall_time_s, "nominal": res.eval["nominal"],
            "randomized": res.eval.get("real_range")}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default="configs/quadrotor_hover_l2f.yaml")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--fraction", type=float, default=0.3, help="share of resets from the hard corner")
    ap.add_argument("--out", required=True, help="run directory")
    ap.add_argument("--set", action="append", default=[], dest="overrides", help="config override key=value")
    a = ap.parse_args(argv)
    r = train_with_hard_starts(a.config, a.seed, a.fraction, a.out, a.overrides)
    n = r["nominal"]
    print(json.dumps({"seed": r["seed"], "fraction": r["fraction"], "survival": n["survival_rate"],
                      "position_error_m": n["position_error_m"], "yaw_deg": n["yaw_deg"],
                      "survival_randomized": (r["randomized"] or {}).get("survival_rate"),
                      "train_wall_time_s": r["train_wall_time_s"]}))
    return r


if __name__ == "__main__":
    main()

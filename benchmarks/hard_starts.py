"""Hover training with part of the episodes started in the hard corner (issue 3 experiment).

    python -m benchmarks.hard_starts --fraction 0.3 --seed 0 --out DIR [--set key=value ...]

Before every PPO iteration, each env without a pending start state is given, with
probability ``--fraction``, a start from a pool of hard-corner starts
(``benchmarks.failures.hard_corner_draw``: tilted > 40 deg, falling, not above the
target): the ~20,000 of 200,000 starts of the default start distribution drawn with seed
``99991 + seed`` that lie in the corner; neither the evaluation's nor the failure
benchmark's starts. The rest of the run is
``robolearn train`` unchanged (run directory, evaluation). BENCHMARKS.md (issue 3) has the
results: survival does not move beyond the seed spread. Kept so that table can be re-run;
the trainer itself has no such option.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

import numpy as np


def train_with_hard_starts(config: str, seed: int, fraction: float, out: str, overrides: list[str],
                           draws: int = 200_000) -> dict:
    import robolearn.train as T
    from robolearn.config import load_config

    from .failures import hard_corner_draw

    if not 0.0 <= fraction <= 1.0:
        raise SystemExit(f"error: --fraction must be in [0, 1], got {fraction}")
    cfg = load_config(config, [f"seed={seed}", *overrides])
    pool = hard_corner_draw(cfg, draws, seed=99991 + seed)  # ~10 % of the draws
    rng = np.random.default_rng(seed)
    make_algorithm = T.make_algorithm
    applied = [0]

    def with_hard_starts(cfg_: Any, env: Any, on_episodes: Any) -> Any:
        algo = make_algorithm(cfg_, env, on_episodes)
        iterate = algo.iterate

        def iterate_hard() -> dict:
            ids = np.flatnonzero(~env.pending_start_states)
            ids = ids[rng.random(len(ids)) < fraction]
            if len(ids):
                env.set_start_states(pool[rng.integers(0, len(pool), len(ids))], ids)
                applied[0] += len(ids)
            return iterate()

        algo.iterate = iterate_hard
        return algo

    T.make_algorithm = with_hard_starts
    try:
        res = T.train(cfg, out=out)
    finally:
        T.make_algorithm = make_algorithm
    assert res.eval is not None
    return {"seed": seed, "fraction": fraction, "run_dir": str(res.run_dir), "hard_starts_given": applied[0],
            "train_wall_time_s": res.train_wall_time_s, "nominal": res.eval["nominal"],
            "randomized": res.eval.get("randomized")}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default="configs/quadrotor_hover.yaml")
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

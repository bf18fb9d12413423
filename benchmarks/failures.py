"""Which hover evaluation starts do trained policies fail? (issue 3)

    python -m benchmarks.failures RUN_DIR [RUN_DIR ...] [--hard 2000] [--fresh 777,2024,...] [--json OUT]
    robolearn bench failures RUN_DIR [...] [--fresh SEEDS]

For each run this replays the nominal block of its evaluation (the same fixed-seed
starts as ``eval.json``) and lists the starts the deterministic policy does not survive,
with their initial conditions. Across runs it counts how often each start fails: a start
every policy fails is a property of the task (or of the whole family of policies), not
of one seed.

It also scores every policy on a held-out *hard corner* of the same start
distribution: starts tilted more than 40 deg, falling (vz < -0.2 m/s) and not above the
target (dz < 0.05 m), drawn with another seed: the region where most evaluation
failures of the default config lie (BENCHMARKS.md, issue 3). About 10 % of the
distribution is in it, so a 2,000-start pool measures a policy's recoveries with ~20
times the resolution the 1,000-episode evaluation has for them.

``--fresh`` scores every policy on more sets of nominal starts like the evaluation's,
drawn with other seeds: the evaluation's 1,000 starts are one draw, and a change that
raises survival on them alone has been fitted to that draw.

From Python: ``run_failures(run_dirs, hard, fresh, json_out) -> dict`` and
``print_failures(result)``; both commands above call these two.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from robolearn.tasks.quadrotor.hard_starts import hard_corner_draw, is_hard, start_conditions

HARD_SEED = 4242  # not the evaluation's seed (1_000_003): a held-out pool


def hard_corner(cfg: Any, n: int, seed: int = HARD_SEED, draw: int = 50_000) -> np.ndarray:
    """``n`` (17,) relative start states of the nominal start distribution that lie in the hard corner."""
    out: list[np.ndarray] = []
    got, k = 0, 0
    while got < n:
        sel = hard_corner_draw(cfg, draw, seed + k)
        out.append(sel)
        got += len(sel)
        k += 1
    return np.concatenate(out)[:n]


def survival(policy: torch.nn.Module, cfg: Any, episodes: int, seed: int,
             starts: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Survived (N,) and the relative start states (N, 17) of one episode per env, nominal physics.

    Without ``starts`` these are exactly the starts of the nominal block of ``eval.json``
    (robolearn.tasks.quadrotor.evaluate.run_block) when ``episodes`` and ``seed`` are the config's.
    """
    from .recoverability import eval_env, rollout

    env = eval_env(cfg, episodes if starts is None else len(starts), seed)
    if starts is not None:
        env.set_start_states(starts)
    obs, _ = env.reset(seed=seed)
    rel0 = env.relative_state
    survived, _, _ = rollout(env, policy, obs, cfg.eval.episode_steps)
    return survived, rel0


def analyse(run_dirs: list[str | Path], hard: int = 2000, fresh: tuple[int, ...] = ()) -> dict:
    from robolearn.policy import load_run

    runs: list[dict[str, Any]] = []
    pool: np.ndarray | None = None
    cond: dict[str, np.ndarray] | None = None
    for rd in run_dirs:
        cfg, policy = load_run(rd)
        surv, rel0 = survival(policy, cfg, cfg.eval.episodes, cfg.eval.seed)
        if cond is None:
            cond = start_conditions(rel0)
        if pool is None and hard > 0:
            pool = hard_corner(cfg, hard)
        hard_surv = survival(policy, cfg, 0, HARD_SEED + 1, starts=pool)[0] if pool is not None else None
        fresh_surv = {str(s): float(survival(policy, cfg, cfg.eval.episodes, s)[0].mean()) for s in fresh}
        runs.append({"run_dir": str(rd), "episodes": int(len(surv)), "survival_rate": float(surv.mean()),
                     "failed": np.flatnonzero(~surv).tolist(),
                     "failed_in_hard_corner": int((~surv & is_hard(rel0)).sum()),
                     "hard_corner_starts": int(len(pool)) if pool is not None else 0,
                     "hard_corner_survival": float(hard_surv.mean()) if hard_surv is not None else None,
                     "fresh_survival": fresh_surv})
    assert cond is not None
    counts = Counter(i for r in runs for i in r["failed"])
    starts = [{"eval_index": int(i), "failed_by": int(c), "tilt_deg": float(cond["tilt_deg"][i]),
               "dz_m": float(cond["dz_m"][i]), "vz_mps": float(cond["vz_mps"][i]),
               "speed_mps": float(cond["speed_mps"][i])}
              for i, c in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]
    return {"runs": runs, "starts": starts,
            "failed_by_all": [s["eval_index"] for s in starts if s["failed_by"] == len(runs)]}


def parse_fresh(text: str) -> tuple[int, ...]:
    """``"777,2024"`` -> ``(777, 2024)`` (empty: no fresh sets); ValueError naming ``--fresh`` otherwise."""
    try:
        fresh = tuple(int(s) for s in text.split(",") if s.strip())
    except ValueError:
        raise ValueError(f"--fresh: expected comma-separated integer seeds, got {text!r}") from None
    if any(s < 0 for s in fresh):
        raise ValueError(f"--fresh: seeds must be non-negative, got {text!r}")
    return fresh


def run_failures(run_dirs: Sequence[str | Path], hard: int = 2000, fresh: Sequence[int] = (),
                 json_out: str | Path | None = None) -> dict:
    """:func:`analyse`, on one torch thread as the recorded figures were; the full result is also
    written to ``json_out`` when given."""
    torch.set_num_threads(1)
    r = analyse(list(run_dirs), hard, tuple(fresh))
    if json_out:
        Path(json_out).write_text(json.dumps(r, indent=1) + "\n")
    return r


def print_failures(r: dict) -> None:
    """One line per run (survival, failures, hard corner, fresh sets), then the starts most often failed."""
    for run in r["runs"]:
        hc = run["hard_corner_survival"]
        print(f"{run['run_dir']}: survival {run['survival_rate']:.1%}, {len(run['failed'])} failed "
              f"({run['failed_in_hard_corner']} in the hard corner)"
              + (f", hard-corner survival {hc:.1%} of {run['hard_corner_starts']}" if hc is not None else "")
              + (f", fresh starts {np.mean(list(run['fresh_survival'].values())):.2%} mean ("
                 + " ".join(f"{v:.1%}" for v in run["fresh_survival"].values()) + ")" if run["fresh_survival"] else ""))
    print(f"starts failed by all {len(r['runs'])} runs: {r['failed_by_all']}")
    for s in r["starts"][:20]:
        print(f"  start {s['eval_index']:4d}: failed by {s['failed_by']}, tilt {s['tilt_deg']:.0f} deg, "
              f"dz {s['dz_m']:+.2f} m, vz {s['vz_mps']:+.2f} m/s, speed {s['speed_mps']:.2f} m/s")


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run_dirs", nargs="+")
    ap.add_argument("--hard", type=int, default=2000, help="hard-corner starts per policy (0: none)")
    ap.add_argument("--fresh", default="", help="comma-separated seeds of more nominal start sets (e.g. 777,2024)")
    ap.add_argument("--json", default=None, help="write the full result here")
    a = ap.parse_args(argv)
    try:
        fresh = parse_fresh(a.fresh)
    except ValueError as e:
        ap.error(str(e))
    r = run_failures(a.run_dirs, a.hard, fresh, a.json)
    print_failures(r)
    return r


if __name__ == "__main__":
    main()

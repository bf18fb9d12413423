"""Teacher benchmark on synthetic students (TeachMyAgent-style unit tests).

    python -m benchmarks.teachers [--seeds 8] [--budget N] [--teachers a,b] [--scenarios a,b] [--json]

For each scenario of ``teachers.synthetic`` and each teacher, train a fresh synthetic
student for ``budget`` episodes (50 parallel envs) and report the fraction of a fixed
held-out task set mastered: mean and 95 % confidence interval (Student t) over seeds,
and the difference to random sampling with its own paired 95 % CI.

Teachers use their papers' defaults; scenario-specific prior knowledge (an easy nominal
task) is given to ADR and SPDL, which need one, as in TeachMyAgent.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import time

import numpy as np

from teachers.adr import ADRTeacher
from teachers.alp_gmm import ALPGMM
from teachers.bandits import GroupBandit
from teachers.covar_gmm import CovarGMM
from teachers.riac import RIAC
from teachers.sampling import UniformTeacher
from teachers.spdl import SPDL
from teachers.synthetic import SCENARIOS, Scenario, run_teacher

TEACHERS = ("random", "alp_gmm", "riac", "covar_gmm", "spdl", "adr", "dump", "sec", "filter")
NUM_ENVS = 50
DEFAULT_BUDGET = 3_000


def bandit_groups(s: Scenario, n: int = 3) -> dict:
    """n x n boxes over (u, v); distractors span their full range."""
    groups = {}
    for a in range(n):
        for b in range(n):
            box = {s.names[0]: (a / n, (a + 1) / n - 1e-9 if a < n - 1 else 1.0),
                   s.names[1]: (b / n, (b + 1) / n - 1e-9 if b < n - 1 else 1.0)}
            box.update({k: (0.0, 1.0) for k in s.names[2:]})
            groups[f"g{a}{b}"] = box
    return groups


def make_teacher(name: str, s: Scenario, num_envs: int, seed: int):
    space = s.space
    rb = (0.0, 1.0)  # returns of the synthetic student lie in [0, 1] (plus noise)
    if name == "random":
        return UniformTeacher(space, num_envs, seed)
    if name == "alp_gmm":
        return ALPGMM(space, num_envs, seed, reward_bounds=rb)
    if name == "covar_gmm":
        return CovarGMM(space, num_envs, seed, reward_bounds=rb)
    if name == "riac":
        return RIAC(space, num_envs, seed, reward_bounds=rb)
    if name == "spdl":
        return SPDL(space, num_envs, seed, init_mean=s.nominal, init_std=0.05, reward_bounds=rb)
    if name == "adr":
        nominal = {n: (float(x), float(x)) for n, x in zip(s.names, s.nominal)}
        return ADRTeacher(nominal, space, num_envs, delta=0.05, seed=seed)
    if name in ("dump", "sec", "filter"):
        return GroupBandit(bandit_groups(s), num_envs, rule=name, seed=seed)
    raise ValueError(f"unknown teacher {name!r}; known: {', '.join(TEACHERS)}")


def score(name: str, scenario: str, seed: int, budget: int) -> float:
    s = SCENARIOS[scenario]()
    return run_teacher(make_teacher(name, s, NUM_ENVS, seed), s, budget, NUM_ENVS, seed)


def t_ci(x: np.ndarray) -> tuple[float, float]:
    """Mean and half-width of the 95 % Student-t confidence interval."""
    from scipy import stats

    x = np.asarray(x, float)
    if len(x) < 2:
        return float(x.mean()), float("nan")
    return float(x.mean()), float(stats.t.ppf(0.975, len(x) - 1) * x.std(ddof=1) / math.sqrt(len(x)))


def run(teachers, scenarios, seeds: int, budget: int) -> dict:
    res: dict = {}
    for sc in scenarios:
        res[sc] = {}
        raw = {t: np.array([score(t, sc, k, budget) for k in range(seeds)]) for t in teachers}
        for t in teachers:
            m, h = t_ci(raw[t])
            row = {"mean": m, "ci95": h, "scores": raw[t].tolist()}
            if "random" in raw and t != "random":
                dm, dh = t_ci(raw[t] - raw["random"])  # paired: same seed, same student noise stream
                row.update({"vs_random": dm, "vs_random_ci95": dh})
            res[sc][t] = row
    return res


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=8)
    ap.add_argument("--budget", type=int, default=DEFAULT_BUDGET, help="episodes per run")
    ap.add_argument("--teachers", default=",".join(TEACHERS))
    ap.add_argument("--scenarios", default=",".join(SCENARIOS))
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    teachers = [t for t in a.teachers.split(",") if t]
    if "random" not in teachers:
        teachers = ["random"] + teachers
    t0 = time.perf_counter()
    res = run(teachers, [s for s in a.scenarios.split(",") if s], a.seeds, a.budget)
    wall = time.perf_counter() - t0
    if a.json:
        print(json.dumps({"seeds": a.seeds, "budget": a.budget, "wall_s": wall, "results": res,
                          "machine": platform.platform()}, indent=1))
        return
    print(f"fraction of held-out tasks mastered after {a.budget} episodes; mean ± 95 % CI over {a.seeds} seeds "
          f"({wall:.0f} s)")
    for sc, rows in res.items():
        print(f"\n{sc}:")
        print(f"  {'teacher':<10} {'mastered':>16} {'vs random':>18}")
        for t, r in rows.items():
            vs = f"{100 * r['vs_random']:+6.1f} ± {100 * r['vs_random_ci95']:4.1f}" if "vs_random" in r else ""
            print(f"  {t:<10} {100 * r['mean']:7.1f} ± {100 * r['ci95']:4.1f} % {vs:>18}")


if __name__ == "__main__":
    main()

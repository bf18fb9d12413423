"""Privileged-action annealing: monotone to 0, never reintroduced, reported."""

import json

import numpy as np
import pytest

from teachers.base import EpisodeOutcomes
from teachers.privileged import PrivilegedAnnealing

NAME = "privileged.assist_gain"


def episodes(coef, success):
    success = np.asarray(success, bool)
    return EpisodeOutcomes(returns=success.astype(float), success=success, params=np.full((len(success), 1), coef),
                           param_names=[NAME], env_ids=np.arange(len(success)))


def test_anneals_monotonically_to_zero_and_never_back():
    t = PrivilegedAnnealing(initial=1.0, window=50, step=0.25, success_threshold=0.8)
    assert t.propose(0)[0].low == 1.0
    seen = [t.coef]
    rng = np.random.default_rng(0)
    for it in range(400):
        rate = 0.95 if it < 200 else 0.0  # later the student fails: help must not come back
        t.update(episodes(t.coef, rng.random(20) < rate))
        for p in t.propose(it):
            assert p.name == NAME and p.low == p.high == t.coef
        seen.append(t.coef)
    assert np.all(np.diff(seen) <= 0)
    assert seen[-1] == 0.0 and t.independent
    assert t.metrics()["privileged/independent"] == 1.0 and t.metrics()[NAME] == 0.0
    assert sorted(set(seen), reverse=True) == [1.0, 0.75, 0.5, 0.25, 0.0]


def test_no_reduction_without_success_and_only_current_coef_counts():
    t = PrivilegedAnnealing(initial=0.5, window=10, step=0.1)
    t.update(episodes(0.5, [False] * 100))
    assert t.coef == 0.5 and t.reductions == 0
    t.update(episodes(0.9, [True] * 100))  # ran with another value (before the last change): ignored
    assert t.coef == 0.5
    t.update(episodes(0.5, [True] * 10))
    assert t.coef == pytest.approx(0.4)


def test_multiplicative_factor_snaps_to_zero():
    t = PrivilegedAnnealing(initial=1.0, window=1, factor=0.5, min_value=0.1)
    for _ in range(10):
        t.update(episodes(t.coef, [True]))
    assert t.coef == 0.0 and t.reductions == 4  # 1 -> .5 -> .25 -> .125 -> 0 (below .1)


def test_resume_keeps_independence_and_reapplies():
    t = PrivilegedAnnealing(initial=0.2, window=5, step=0.2)
    t.propose(0)
    t.update(episodes(0.2, [True] * 5))
    assert t.independent
    state = json.loads(json.dumps(t.state_dict()))
    r = PrivilegedAnnealing(initial=0.2, window=5, step=0.2)
    r.load_state_dict(state)
    assert r.coef == 0.0 and r.independent
    assert [(p.low, p.high) for p in r.propose(0)] == [(0.0, 0.0)]  # re-applied once to the resumed env
    assert r.propose(1) == []
    r.update(episodes(0.0, [False] * 50))
    assert r.coef == 0.0

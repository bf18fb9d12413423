"""Bandit group selection: DUMP (UCB on mean |advantage|), SEC (TD(0)), difficulty filtering."""

import json

import numpy as np
import pytest

from teachers.bandits import GroupBandit
from teachers.base import EpisodeOutcomes

GROUPS = {"easy": {"x": (0.0, 1.0)}, "mid": {"x": (1.0 + 1e-6, 2.0)}, "hard": {"x": (2.0 + 1e-6, 3.0)}}


def batch(xs, adv=None, success=None, returns=None):
    xs = np.asarray(xs, float)
    n = len(xs)
    extra = {} if adv is None else {"abs_advantage": np.asarray(adv, float)}
    return EpisodeOutcomes(returns=np.zeros(n) if returns is None else np.asarray(returns, float),
                           success=np.zeros(n, bool) if success is None else np.asarray(success, bool),
                           params=xs[:, None], param_names=["x"], env_ids=np.arange(n), extra=extra)


def test_proposals_are_group_boxes_per_env():
    t = GroupBandit(GROUPS, num_envs=30, rule="dump", seed=0)
    (p,) = t.propose(0)
    assert p.name == "x" and list(p.env_ids) == list(range(30))
    boxes = {(lo, hi) for lo, hi in zip(p.low, p.high)}
    assert boxes <= {tuple(b["x"]) for b in GROUPS.values()}
    assert t.task_space == {"x": (0.0, 3.0)}


def test_dump_visits_unseen_groups_first_then_prefers_large_advantage():
    t = GroupBandit(GROUPS, num_envs=10, rule="dump", seed=0)
    t.update(batch([0.5] * 10, adv=[0.1] * 10))
    p = t.probabilities()
    assert p[0] == 0 and p[1] == p[2] == 0.5  # unvisited first
    for _ in range(20):
        t.update(batch([0.5] * 10 + [1.5] * 10 + [2.5] * 10, adv=[0.1] * 10 + [1.0] * 10 + [0.3] * 10))
    p = t.probabilities()
    assert p.argmax() == 1 and p[1] > 0.6
    # the UCB bonus grows for a neglected group
    assert t.ucb_c > 0 and np.all(p > 0)


def test_sec_td0_update():
    t = GroupBandit(GROUPS, num_envs=4, rule="sec", td_alpha=0.5, temperature=1.0)
    t.update(batch([0.5, 0.5], adv=[1.0, 3.0]))
    assert t.q[0] == pytest.approx(1.0)  # 0.5 * 2 + 0.5 * 0
    t.update(batch([0.5], adv=[4.0]))
    assert t.q[0] == pytest.approx(2.5)  # 0.5 * 4 + 0.5 * 1
    p = t.probabilities()
    assert p[0] > p[1] == p[2]


def test_advantage_proxy_without_trainer_advantages():
    t = GroupBandit(GROUPS, num_envs=4, rule="sec", td_alpha=1.0)
    t.update(batch([0.5, 0.5], returns=[1.0, 3.0]))  # first batch: baseline = its own mean 2
    assert t.q[0] == pytest.approx(1.0) and t.mean_return[0] == pytest.approx(2.0)


def test_balanced_difficulty_filter_keeps_intermediate_groups():
    t = GroupBandit(GROUPS, num_envs=4, rule="filter", band=(0.25, 0.75), min_count=5)
    xs = [0.5] * 20 + [1.5] * 20 + [2.5] * 20
    succ = [True] * 20 + [True, False] * 10 + [False] * 20
    t.update(batch(xs, success=succ))
    assert list(t.probabilities()) == [0.0, 1.0, 0.0]


def test_state_round_trip():
    t = GroupBandit(GROUPS, num_envs=8, rule="dump", seed=3)
    t.propose(0)
    t.update(batch([0.5, 1.5, 2.5] * 3, adv=np.arange(9) / 9))
    s = json.loads(json.dumps(t.state_dict()))
    a, b = GroupBandit(GROUPS, 8, rule="dump"), GroupBandit(GROUPS, 8, rule="dump")
    a.load_state_dict(s)
    b.load_state_dict(s)
    pa, pb = a.propose(1)[0], b.propose(1)[0]
    assert np.array_equal(pa.low, pb.low) and np.allclose(a.probabilities(), t.probabilities())

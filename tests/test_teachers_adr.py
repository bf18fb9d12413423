"""ADR: boundary workers, queues, thresholds, limits, entropy, resume."""

import json
import math

import numpy as np
import pytest

from teachers.adr import ADRTeacher
from teachers.base import EpisodeOutcomes


def outcome(env_ids, values, success, names=("p",)):
    values = np.asarray(values, float).reshape(len(env_ids), -1)
    return EpisodeOutcomes(returns=np.asarray(success, float), success=np.asarray(success, bool), params=values,
                           param_names=list(names), env_ids=np.asarray(env_ids))


def one_side_adr(**kw):
    # low side at its hard limit and initial value: only the high boundary can move
    args = dict(initial={"p": (1.0, 1.0)}, limits={"p": (1.0, 2.0)}, num_envs=1, delta=0.1, boundary_prob=1.0,
                queue_length=10, threshold_low=0.5, threshold_high=0.8)
    args.update(kw)
    return ADRTeacher(**args)


def start(t):
    t.propose(0)
    t.update(outcome([0], [t.boundary(0, 1)], [True]))  # started before the first proposal: not counted
    assert t.queues == {}
    return t


def drive(t, results):
    """One env, always a boundary worker; each result is one finished boundary episode."""
    for ok in results:
        props = t.propose(0)
        value = props[0].low[0] if props else t.boundary(0, 1)
        assert props == [] or props[0].low[0] == props[0].high[0] == t.boundary(0, 1)
        t.update(outcome([0], [value], [ok]))


def test_queue_fills_then_widens_by_delta():
    t = start(one_side_adr())
    drive(t, [True] * 9)
    assert t.hi[0] == 1.0 and len(t.queues[(0, 1)]) == 9
    drive(t, [True])
    assert t.hi[0] == pytest.approx(1.1) and t.queues[(0, 1)] == [] and t.expansions == 1


def test_thresholds_and_limits():
    t = start(one_side_adr())
    drive(t, [True] * 10 * 30)  # far more successes than needed to reach the limit
    assert t.hi[0] == 2.0  # never past the hard limit
    drive(t, [True] * 7 + [False] * 3)  # 0.7: between the thresholds, no change
    assert t.hi[0] == 2.0 and t.evaluations > 0
    drive(t, [True] * 5 + [False] * 5)  # 0.5 <= t_low: narrow by delta
    assert t.hi[0] == pytest.approx(1.9)
    drive(t, [False] * 10 * 40)
    assert t.hi[0] == 1.0 and t.lo[0] == 1.0  # never inside the initial range


def test_never_shrinks_below_initial_range():
    t = ADRTeacher({"p": (0.9, 1.1)}, {"p": (0.5, 2.0)}, num_envs=64, delta=0.05, boundary_prob=0.5, queue_length=5,
                   seed=1)
    rng = np.random.default_rng(0)
    lo, hi = np.full(64, 0.9), np.full(64, 1.1)
    for _ in range(200):
        for p in t.propose(0):
            lo, hi = p.low, p.high
        v = rng.uniform(lo, hi)
        t.update(outcome(np.arange(64), v, np.zeros(64)))
        assert t.lo[0] <= 0.9 and t.hi[0] >= 1.1
    assert (t.lo[0], t.hi[0]) == (0.9, 1.1) and t.evaluations > 10


def test_boundary_workers_fraction_and_pinning():
    names = ["a", "b", "c"]
    t = ADRTeacher({n: (1.0, 1.0) for n in names}, {n: (0.5, 2.0) for n in names}, num_envs=4000,
                   boundary_prob=0.4, seed=3)  # DeXtreme: 40 % boundary workers
    props = {p.name: p for p in t.propose(0)}
    pinned = np.zeros(4000, int)
    for p in props.values():
        assert p.env_ids is None and len(p.low) == 4000
        pinned += (p.low == p.high) & (p.low != 1.0)  # nothing is pinned away from 1 yet (lo == hi == 1)
    assert pinned.sum() == 0
    # widen every range, then check pinning: exactly one parameter at a boundary for a boundary worker
    t.lo[:], t.hi[:] = 0.8, 1.2
    t._needs[:] = True
    props = {p.name: p for p in t.propose(0)}
    at_bound = np.stack([(props[n].low == props[n].high) for n in names])
    assert set(np.unique(at_bound.sum(0))) <= {0, 1}
    frac = at_bound.any(0).mean()
    assert abs(frac - 0.4) < 0.04
    for n in names:
        p = props[n]
        pin = p.low == p.high
        assert set(np.round(p.low[pin], 9)) <= {0.8, 1.2}
        assert np.all(p.low[~pin] == 0.8) and np.all(p.high[~pin] == 1.2)


def test_stale_boundary_results_are_dropped():
    t = start(one_side_adr(queue_length=2))
    drive(t, [True, True])
    assert t.hi[0] == pytest.approx(1.1)
    # an episode still running at the old boundary value finishes after the boundary moved
    t.run_dim[0], t.run_side[0], t.run_val[0] = 0, 1, 1.0
    t.update(outcome([0], [1.0], [True]))
    assert t.queues[(0, 1)] == []


def test_entropy_in_nats_per_dimension():
    t = ADRTeacher({"a": (0.0, math.e), "b": (0.0, math.e ** 2)}, {"a": (0.0, 10.0), "b": (0.0, 10.0)}, num_envs=1)
    assert t.entropy() == pytest.approx(1.5)
    assert t.metrics()["adr/entropy_nats_per_dim"] == pytest.approx(1.5)
    z = ADRTeacher({"a": (1.0, 1.0)}, {"a": (0.0, 2.0)}, num_envs=1)
    assert math.isfinite(z.entropy()) and z.entropy() == pytest.approx(math.log(2e-6))


def test_multiplicative_step():
    t = start(one_side_adr(multiplicative=True, delta=0.5, queue_length=1))
    drive(t, [True])
    assert t.hi[0] == pytest.approx(1.5)


def test_bad_settings_raise():
    with pytest.raises(ValueError):
        ADRTeacher({"p": (0.4, 1.0)}, {"p": (0.5, 2.0)}, num_envs=1)  # initial outside limits
    with pytest.raises(ValueError):
        one_side_adr(threshold_low=0.9, threshold_high=0.8)


def test_state_dict_round_trip_reproduces_proposals():
    names = ["a", "b"]
    t = ADRTeacher({n: (1.0, 1.0) for n in names}, {n: (0.5, 2.0) for n in names}, num_envs=32, delta=0.1,
                   queue_length=3, seed=5)
    rng = np.random.default_rng(1)
    for _ in range(30):
        props = {p.name: p for p in t.propose(0)}
        v = np.stack([rng.uniform(props[n].low, props[n].high) for n in names], 1)
        t.update(outcome(np.arange(32), v, rng.random(32) < 0.95, names))
    assert t.expansions > 0
    state = json.loads(json.dumps(t.state_dict()))
    a = ADRTeacher({n: (1.0, 1.0) for n in names}, {n: (0.5, 2.0) for n in names}, num_envs=32, delta=0.1,
                   queue_length=3, seed=99)
    a.load_state_dict(state)
    t.load_state_dict(state)
    assert a.ranges() == t.ranges()
    for pa, pt in zip(a.propose(0), t.propose(0)):
        assert pa.name == pt.name and np.array_equal(pa.low, pt.low) and np.array_equal(pa.high, pt.high)


# ----------------------------------------------------------------- reference="rollout" (relative thresholds)
def relative_adr(**kw):
    args = dict(initial={"p": (1.0, 1.0)}, limits={"p": (1.0, 2.0)}, num_envs=2, delta=0.1, boundary_prob=0.5,
                queue_length=4, threshold_low=0.5, threshold_high=0.8, metric="length", reference="rollout",
                reference_window=50)
    args.update(kw)
    return ADRTeacher(**args)


def drive_pair(t, boundary_lengths, rollout_lengths):
    """Env 0 is a boundary worker on the high side, env 1 a rollout worker; one episode each per round.

    As in the trainer, the episode that finishes first after a boundary moved was started at the old
    value, so it is dropped: a call right after a move needs one extra round.
    """
    for lb, lr in zip(boundary_lengths, rollout_lengths):
        t.propose(0)
        t.prop_dim[0], t.prop_side[0], t.prop_val[0] = 0, 1, t.boundary(0, 1)
        t.prop_dim[1] = -1
        b = t.boundary(0, 1)
        t.update(EpisodeOutcomes(returns=np.zeros(2), success=np.zeros(2, bool), params=np.array([[b], [1.0]]),
                                 param_names=["p"], env_ids=np.array([0, 1]), extra={"length": np.array([lb, lr], float)}))


def test_relative_reference_widens_while_no_episode_succeeds():
    # survival is 0 everywhere (every episode crashes): absolute success thresholds could only narrow, the
    # relative length metric widens because the boundary episodes last as long as the rollout episodes
    t = relative_adr()
    drive_pair(t, [30.0] * 5, [30.0] * 5)  # first round is the pre-proposal episode (not counted)
    assert t.hi[0] == pytest.approx(1.1) and t.expansions == 1
    drive_pair(t, [27.0] * 5, [30.0] * 5)  # ratio 0.9 >= 0.8: widen again
    assert t.hi[0] == pytest.approx(1.2)
    drive_pair(t, [20.0] * 5, [30.0] * 5)  # ratio 0.67: no change
    assert t.hi[0] == pytest.approx(1.2) and t.evaluations == 3
    drive_pair(t, [5.0] * 4, [30.0] * 4)  # ratio ~0.17 <= 0.5: narrow
    assert t.hi[0] == pytest.approx(1.1) and t.contractions == 1
    assert t.metrics()["adr/rollout_perf"] == pytest.approx(30.0)
    absolute = one_side_adr(queue_length=4)
    start(absolute)
    drive(absolute, [False] * 8)
    assert absolute.hi[0] == 1.0 and absolute.expansions == 0


def test_relative_reference_scales_with_rollout_performance():
    # the same boundary queue (mean 50) widens against a reference of 55 and narrows against one of 200
    t = relative_adr()
    drive_pair(t, [50.0] * 5, [55.0] * 5)
    assert t.hi[0] == pytest.approx(1.1)
    u = relative_adr(initial={"p": (1.0, 1.5)})
    drive_pair(u, [50.0] * 5, [200.0] * 5)
    assert u.hi[0] == 1.5 and u.contractions == 0  # would narrow, but never inside the initial range
    u.hi[0] = 1.8
    drive_pair(u, [50.0] * 5, [200.0] * 5)
    assert u.hi[0] == pytest.approx(1.7) and u.contractions == 1


def test_relative_reference_waits_for_a_positive_reference():
    t = relative_adr(metric="success")
    for _ in range(6):  # boundary episodes succeed, rollout episodes never do: no reference, no decision
        t.propose(0)
        t.prop_dim[0], t.prop_side[0], t.prop_val[0] = 0, 1, t.boundary(0, 1)
        t.prop_dim[1] = -1
        t.update(EpisodeOutcomes(returns=np.zeros(2), success=np.array([True, False]),
                                 params=np.array([[t.boundary(0, 1)], [1.0]]), param_names=["p"],
                                 env_ids=np.array([0, 1])))
    assert t.evaluations == 0 and t.hi[0] == 1.0 and len(t.queues[(0, 1)]) == 3  # kept, capped below queue_length
    with pytest.raises(ValueError, match="length"):
        relative_adr(reference="absolute")
    with pytest.raises(ValueError, match="reference"):
        relative_adr(reference="median")


def test_relative_reference_survives_state_dict():
    t = relative_adr()
    drive_pair(t, [30.0] * 5, [40.0] * 5)
    state = json.loads(json.dumps(t.state_dict()))
    u = relative_adr()
    u.load_state_dict(state)
    assert list(u.rollout_perf) == list(t.rollout_perf) == [40.0] * 4

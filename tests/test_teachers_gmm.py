"""Point-sampling teachers: ALP-GMM, Covar-GMM, RIAC, SPDL (mechanics and resume)."""

import json

import numpy as np
import pytest

from teachers.alp_gmm import ALPGMM, NearestNeighbourALP
from teachers.base import EpisodeOutcomes
from teachers.covar_gmm import CovarGMM
from teachers.riac import RIAC
from teachers.sampling import UniformTeacher
from teachers.spdl import SPDL, kl_diag

SPACE = {"a": (0.0, 2.0), "b": (-1.0, 1.0)}


def outcomes(tasks, returns, env_ids=None, success=None):
    tasks = np.asarray(tasks, float)
    n = len(tasks)
    return EpisodeOutcomes(returns=np.asarray(returns, float),
                           success=np.asarray(returns, float) > 0.5 if success is None else success,
                           params=tasks, param_names=list(SPACE),
                           env_ids=np.arange(n) if env_ids is None else env_ids)


def tasks_of(props):
    by = {p.name: p for p in props}
    assert all(np.array_equal(p.low, p.high) for p in props)  # point sampling: low == high per env
    return np.stack([by[n].low for n in SPACE], 1), by["a"].env_ids


def progress_feed(t, rounds, rng, hot=lambda x: x[:, 0] < 0.6):
    """Returns in the 'hot' part of the space improve over time; elsewhere they are flat noise."""
    for k in range(rounds):
        t.propose(k)
        x = np.column_stack([rng.uniform(0, 2, 50), rng.uniform(-1, 1, 50)])
        r = np.where(hot(x), (k % 10) / 10 + 0.05 * rng.standard_normal(50), 0.02 * rng.standard_normal(50))
        t.update(outcomes(x, r))


def test_first_propose_covers_every_env_then_only_finished_ones():
    t = UniformTeacher(SPACE, num_envs=8, seed=0)
    x, ids = tasks_of(t.propose(0))
    assert list(ids) == list(range(8)) and np.all((x[:, 0] >= 0) & (x[:, 0] <= 2)) and np.all(np.abs(x[:, 1]) <= 1)
    assert t.propose(1) == []
    t.update(outcomes(x[[2, 5]], [0, 1], env_ids=np.array([2, 5])))
    _, ids = tasks_of(t.propose(2))
    assert list(ids) == [2, 5]


def test_nearest_neighbour_alp():
    c = NearestNeighbourALP(1)
    assert list(c.add(np.array([[0.0]]), np.array([0.3]))) == [0.0]
    alp = c.add(np.array([[0.9], [0.1], [0.85]]), np.array([0.5, 0.8, 0.1]))
    # 0.9 -> nearest earlier 0.0 (0.3); 0.1 -> 0.0 (0.3); 0.85 -> 0.9 (0.5), not itself
    assert alp == pytest.approx([0.2, 0.5, 0.4])


def test_alp_gmm_fits_every_250_episodes_by_aic_and_samples_high_alp():
    t = ALPGMM(SPACE, num_envs=50, seed=0, reward_bounds=(0.0, 1.0))
    rng = np.random.default_rng(0)
    progress_feed(t, 4, rng)
    assert t.gmm is None  # 200 < 250 episodes: still bootstrapping (uniform)
    progress_feed(t, 1, rng)
    assert t.fits == 1 and 2 <= t.gmm.n_components <= 10
    progress_feed(t, 15, rng)
    assert t.fits == 4
    x = t.sample(4000)
    # the hot region is 30 % of the space; 80 % of tasks come from the GMM (20 % uniform)
    assert np.mean(x[:, 0] < 0.6) > 0.6
    assert np.all(x >= [0, -1]) and np.all(x <= [2, 1])


def test_covar_gmm_samples_where_return_grows_with_time():
    t = CovarGMM(SPACE, num_envs=50, seed=0)
    rng = np.random.default_rng(1)
    for k in range(20):
        x = np.column_stack([rng.uniform(0, 2, 50), rng.uniform(-1, 1, 50)])
        r = np.where(x[:, 0] > 1.4, (k % 5) / 5 + 0.01 * rng.standard_normal(50), 0.3 + 0.01 * rng.standard_normal(50))
        t.update(outcomes(x, r))
    assert t.fits == 4
    assert np.mean(t.sample(4000)[:, 0] > 1.4) > 0.5  # 30 % of the space


def test_riac_splits_and_prefers_progress_regions():
    t = RIAC(SPACE, num_envs=50, seed=0)
    rng = np.random.default_rng(2)
    for k in range(40):
        x = np.column_stack([rng.uniform(0, 2, 50), rng.uniform(-1, 1, 50)])
        r = np.where(x[:, 0] < 0.6, k / 40, 0.0) + 0.01 * rng.standard_normal(50)
        t.update(outcomes(x, r))
    assert t.splits >= 1 and len(t.regions) == 1 + 2 * t.splits
    for reg in t.regions[1:]:
        assert np.all(reg.hi - reg.lo >= 1 / 6 - 1e-9)  # min_dims_range_ratio
        assert len(reg.rewards) <= 201
    assert np.mean(t.sample(4000)[:, 0] < 0.6) > 0.45  # 30 % of the space


def test_spdl_respects_the_kl_bound_and_moves_to_the_target_when_easy():
    t = SPDL(SPACE, num_envs=50, seed=0, init_mean=[0.2, -0.8], init_std=0.05, update_episodes=100, alpha_offset=2,
             zeta=1.0, max_kl=0.1)
    rng = np.random.default_rng(3)
    kls, prev = [], (t.mean.copy(), t.std.copy())
    for k in range(30):
        x = np.clip(t.sample(50), [0, -1], [2, 1])
        t.update(outcomes(x, np.ones(50) + 0.01 * rng.standard_normal(50)))  # everything is easy
        if t.updates and (t.mean != prev[0]).any():
            kls.append(kl_diag(prev[0], prev[1], t.mean, t.std))
            prev = (t.mean.copy(), t.std.copy())
        if t.updates < 2:  # alpha_offset=2: TeachMyAgent's PercentageAlphaFunction, ``iteration < offset``
            assert t.alpha == 0.0
    assert t.updates == 15 and t.alpha > 0
    assert max(kls) <= 0.1 * 1.05
    k0 = kl_diag(np.array([0.1, 0.1]), np.array([0.05, 0.05]), t.t_mean, t.t_std)
    assert t.target_kl() < 0.5 * k0


@pytest.mark.parametrize("make", [
    lambda: ALPGMM(SPACE, 20, seed=4, fit_rate=60),
    lambda: CovarGMM(SPACE, 20, seed=4, fit_rate=60),
    lambda: RIAC(SPACE, 20, seed=4, max_region_size=40),
    lambda: SPDL(SPACE, 20, seed=4, update_episodes=40),
    lambda: UniformTeacher(SPACE, 20, seed=4),
])
def test_state_dict_round_trip_reproduces_proposals(make):
    t = make()
    rng = np.random.default_rng(5)
    for k in range(12):
        x, ids = tasks_of(t.propose(k))
        t.update(outcomes(x, x[:, 0] * k / 12 + 0.01 * rng.standard_normal(len(x)), env_ids=ids))
    state = json.loads(json.dumps(t.state_dict()))  # plain Python types only
    a, b = make(), make()
    a.load_state_dict(state)
    b.load_state_dict(state)
    (xa, ia), (xb, ib) = tasks_of(a.propose(99)), tasks_of(b.propose(99))
    assert list(ia) == list(range(20)) and np.array_equal(xa, xb) and np.array_equal(ia, ib)
    a.update(outcomes(xa, xa[:, 1], env_ids=ia))
    b.update(outcomes(xb, xb[:, 1], env_ids=ib))
    assert np.array_equal(tasks_of(a.propose(100))[0], tasks_of(b.propose(100))[0])

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


# ------------------------------------------------------------------ credit by assignment
NESTED = {"narrow": {"x": (0.9, 1.1)}, "wide": {"x": (0.5, 1.5)}}


def test_episodes_are_credited_to_the_group_their_env_ran_even_when_groups_nest():
    t = GroupBandit(NESTED, num_envs=40, rule="sec", seed=1, td_alpha=1.0)
    ran = np.full(40, -1)  # group each env's running episode started with (-1: before any proposal)
    lo, hi = np.full(40, 1.0), np.full(40, 1.0)
    rng = np.random.default_rng(0)
    x = rng.uniform(lo, hi)
    for it in range(6):
        (p,) = t.propose(it)
        lo[p.env_ids], hi[p.env_ids] = p.low, p.high  # applies at the next reset
        group = np.where(p.high - p.low > 0.5, 1, 0)
        proposed = np.full(40, -1)
        proposed[p.env_ids] = group
        # every env finishes one episode (started under `ran`) and restarts under the proposal
        adv = np.where(ran == 0, 1.0, np.where(ran == 1, 5.0, 0.0))
        before = t.counts.copy()
        t.update(batch(x, adv=adv))
        known = ran >= 0
        assert t.counts[0] - before[0] >= np.sum(ran == 0)
        assert t.counts[1] - before[1] >= np.sum(ran == 1)
        if known.all():  # every episode credited by assignment, never by box (narrow lies inside wide)
            assert t.counts[0] - before[0] == np.sum(ran == 0) and t.counts[1] - before[1] == np.sum(ran == 1)
            assert t.q[0] == pytest.approx(1.0) and t.q[1] == pytest.approx(5.0)
        ran = np.where(proposed >= 0, proposed, ran)
        x = rng.uniform(lo, hi)
    assert t.counts.sum() == 6 * 40


# ------------------------------------------------------------------ the trainer's |advantage| per episode
def _brute_force_episode_abs_adv(advs, dones):
    """Per env, walk the concatenated rollouts; emit the mean |A| at each done, in (t, env) order."""
    adv, done = np.concatenate(advs), np.concatenate(dones)
    T, N = adv.shape
    s, n, out = np.zeros(N), np.zeros(N), []
    for t in range(T):
        for e in range(N):
            s[e] += abs(adv[t, e])
            n[e] += 1
            if done[t, e]:
                out.append((t, e, s[e] / n[e]))
                s[e] = n[e] = 0
    return out


def test_episode_abs_advantage_matches_a_per_episode_loop_across_rollouts():
    import torch

    from robolearn.ppo import episode_abs_advantage

    rng = np.random.default_rng(0)
    T, N = 8, 5
    carry_s, carry_n = torch.zeros(N), torch.zeros(N)
    advs, dones, got = [], [], []
    for r in range(6):
        adv = rng.normal(size=(T, N)).astype(np.float32)
        done = rng.random((T, N)) < 0.15
        done[:, 0] = False  # env 0: one episode spanning every rollout until the last step
        done[-1, 0] = r == 5
        done[2:4, 1] = True  # two episodes ending back to back
        t_idx, e_idx, v = episode_abs_advantage(torch.from_numpy(adv), torch.from_numpy(done.astype(np.float32)),
                                                carry_s, carry_n)
        got += [(int(t) + r * T, int(e), float(x)) for t, e, x in zip(t_idx, e_idx, v)]
        advs.append(adv)
        dones.append(done)
    want = _brute_force_episode_abs_adv(advs, dones)
    assert [(t, e) for t, e, _ in got] == [(t, e) for t, e, _ in want]
    assert np.allclose([x for *_, x in got], [x for *_, x in want], rtol=1e-5)
    assert (T * 6 - 1, 0) in [(t, e) for t, e, _ in got]  # the long episode, 48 steps over 6 rollouts


def test_ppo_reports_the_mean_abs_advantage_of_each_finished_episode():
    from fake_envs import PointMassVecEnv

    from robolearn.config import NetworkConfig, PPOConfig
    from robolearn.logging.run_dir import EpisodeStats
    from robolearn.ppo import PPO

    env = PointMassVecEnv(num_envs=6, horizon=12, seed=0, start=1.8)  # some terminate early, some truncate
    stats = EpisodeStats(env.param_names)
    ppo = PPO(env, PPOConfig(rollout_steps=5, epochs=1, minibatches=1), NetworkConfig(actor_hidden=[8],
              critic_hidden=[8]), seed=0, on_episodes=stats.add)
    advs, dones, ids, vals = [], [], [], []
    for _ in range(9):
        ppo.iterate()
        advs.append(ppo.buf.advantages.numpy().copy())
        dones.append(ppo.buf.dones.numpy().copy() > 0.5)
        e, v = ppo.last_episode_abs_advantage
        arrays = stats.arrays()
        assert np.array_equal(e, arrays.get("env_ids", np.zeros(0, np.int64)))  # same episodes, same order
        ids += list(e)
        vals += list(v)
        stats.clear()
    want = _brute_force_episode_abs_adv(advs, dones)
    assert len(want) > 6 and ids == [e for _, e, _ in want]
    assert np.allclose(vals, [x for *_, x in want], rtol=1e-5)

"""Start-state curriculum (Snapshot RL): the buffer, the simulator's set_start_states, the trainer glue."""

import json

import numpy as np
import pytest

from teachers.start_states import SnapshotStarts


# ------------------------------------------------------------------ the buffer (plain numpy)
def test_only_snapshots_of_successful_episodes_enter_the_buffer():
    b = SnapshotStarts(num_envs=3, state_dim=2, fraction=1.0, clusters=0, per_episode=8)
    # env e, snapshot k of its running episode: (100 * episode + e, k)
    for k in range(3):
        b.update([], [], np.array([[100 * 0 + e, k] for e in range(3)], float))
    b.update([0, 1, 2], [True, False, True], None)  # episode 0 of env 1 failed
    stored = {tuple(r) for r in b.states[: b.size]}
    assert stored == {(e, k) for e in (0, 2) for k in range(3)}
    # the next episodes: env 2 ends twice in one batch; only its first ending owns the snapshots
    b.update([], [], np.array([[100 + e, 9] for e in range(3)], float))
    b.update([2, 2, 0], [False, True, False], None)
    assert {tuple(r) for r in b.states[: b.size]} == stored
    ids, states = b.propose(0)
    assert len(ids) == 3 and {tuple(s) for s in states} <= stored  # fraction 1: every env that ended


def test_per_episode_reservoir_is_uniform_over_the_episode_and_the_ring_buffer_wraps():
    kept = []
    for seed in range(300):
        b = SnapshotStarts(num_envs=1, state_dim=1, per_episode=4, capacity=64, clusters=0, seed=seed)
        for k in range(12):
            b.update([], [], np.array([[k]], float))
        b.update([0], [True], None)
        assert b.size == 4 and len(set(b.states[:4, 0])) == 4
        kept += list(b.states[:4, 0])
    freq = np.bincount(np.array(kept, int), minlength=12) / 300
    assert np.all(np.abs(freq - 4 / 12) < 0.1)  # each of the 12 snapshots kept with probability 1/3
    b = SnapshotStarts(num_envs=1, state_dim=1, per_episode=4, capacity=5, clusters=0)
    for k in range(4):
        b.update([], [], np.array([[k]], float))
    b.update([0], [True], None)
    for k in range(3):
        b.update([], [], np.array([[50 + k]], float))
    b.update([0], [True], None)
    assert b.size == 5 and sorted(b.states[:, 0]) == [2.0, 3.0, 50.0, 51.0, 52.0]  # the oldest went


def test_fraction_stop_and_status_classification():
    rng = np.random.default_rng(0)
    b = SnapshotStarts(num_envs=200, state_dim=2, fraction=0.3, stop_env_steps=1000, clusters=2, seed=1)
    # 95 % of the successful states near (0, 0), 5 % near (10, 10)
    common = rng.normal(0, 0.1, (190, 2))
    rare = rng.normal(10, 0.1, (10, 2))
    b.update([], [], np.concatenate([common, rare]))
    b.update(np.arange(200), np.ones(200, bool), None)
    ids, states = b.propose(0)
    assert 0.2 * 200 < len(ids) < 0.4 * 200
    s = b.sample(4000)
    assert 0.4 < np.mean(s[:, 0] > 5) < 0.6  # clusters drawn uniformly: the rare state is not drowned
    b.update(np.arange(200), np.zeros(200, bool), None)
    assert len(b.propose(1000)[0]) == 0  # Snapshot RL: early training only


def test_state_round_trip():
    b = SnapshotStarts(num_envs=4, state_dim=3, fraction=0.5, clusters=2, seed=2)
    rng = np.random.default_rng(1)
    for _ in range(3):
        b.update([], [], rng.normal(size=(4, 3)))
    b.update([0, 1, 2, 3], [True, True, False, True], None)
    s = json.loads(json.dumps(b.state_dict()))
    a, c = SnapshotStarts(4, 3, fraction=0.5, clusters=2), SnapshotStarts(4, 3, fraction=0.5, clusters=2)
    a.load_state_dict(s)
    c.load_state_dict(s)
    (ia, sa), (ic, sc) = a.propose(5), c.propose(5)
    assert a.size == 9 and np.array_equal(ia, ic) and np.array_equal(sa, sc)


# ------------------------------------------------------------------ the simulator's API
@pytest.fixture(scope="module")
def env_cls():
    from sims.quadrotor import QuadrotorConfig, QuadrotorVecEnv

    return lambda n, steps=5: QuadrotorVecEnv(n, config=QuadrotorConfig(task="hover", episode_steps=steps), seed=0)


def _level(pos):
    s = np.zeros((len(pos), 17), np.float32)
    s[:, :3] = pos
    s[:, 3] = 1.0
    s[:, 13:] = 14_000.0
    return s


def test_set_start_states_applies_at_the_next_auto_reset_of_those_envs_only(env_cls):
    env = env_cls(6)
    env.reset()
    given = _level([[0.1, 0.2, -0.1], [0.0, -0.05, 0.3]])
    env.set_start_states(given, [1, 4])
    assert list(np.flatnonzero(env.pending_start_states)) == [1, 4]
    for _ in range(4):
        obs, *_ = env.step(np.zeros((6, 4), np.float32))
    assert list(np.flatnonzero(env.pending_start_states)) == [1, 4]  # not before the episode ends
    obs, rew, term, trunc, info = env.step(np.zeros((6, 4), np.float32))
    assert (term | trunc).all() and not env.pending_start_states.any()
    rel = env.relative_state
    assert np.allclose(rel[[1, 4]], given, atol=1e-6)
    assert not np.allclose(rel[[0, 2, 3, 5], :3], 0.0)  # the others drew their usual random starts
    # the returned observation is the new episode's, computed from the given state
    assert np.allclose(obs["critic"][[1, 4], :3], given[:, :3], atol=1e-6)
    assert np.allclose(obs["critic"][[1, 4], 3:12], np.eye(3).reshape(1, 9), atol=1e-6)
    assert np.allclose(obs["policy"][[1, 4], :3], given[:, :3], atol=0.02)  # plus sensor noise
    # and the finished episode's final observation is untouched by it
    assert not np.allclose(info["final_obs"]["critic"][[1, 4], :3], given[:, :3], atol=1e-3)
    # used once: the next episode starts randomly again
    for _ in range(5):
        env.step(np.zeros((6, 4), np.float32))
    assert not np.allclose(env.relative_state[[1, 4], :3], given[:, :3], atol=1e-3)


def test_set_start_states_applies_at_reset_and_validates(env_cls):
    env = env_cls(3)
    env.set_start_states(_level([[0.0, 0.0, 0.25]]), [2])
    env.reset()
    assert np.allclose(env.relative_state[2, :3], [0.0, 0.0, 0.25], atol=1e-6)
    with pytest.raises(ValueError, match="shape"):
        env.set_start_states(np.zeros((2, 17)), [0])
    with pytest.raises(ValueError, match="non-zero"):
        env.set_start_states(np.zeros((1, 17)), [0])
    with pytest.raises(ValueError, match="env_ids"):
        env.set_start_states(_level([[0, 0, 0]]), [3])


# ------------------------------------------------------------------ trainer glue on the real simulator
def test_trainer_glue_starts_from_stored_states_of_successful_episodes_only(env_cls):
    from robolearn.config import load_config
    from robolearn.tasks.quadrotor.curriculum import build_start_states, outcomes_from_arrays
    from robolearn.logging.run_dir import EpisodeStats

    cfg = load_config("configs/quadrotor_hover.yaml", ["env.num_envs=64", "curriculum.start_states.enabled=true",
                                                       "curriculum.start_states.fraction=1.0"])
    env = env_cls(64, steps=20)
    starts = build_start_states(cfg, env)
    buf = starts.buffer
    env.reset(seed=3)
    stats = EpisodeStats(env.param_names)
    pending = {e: [] for e in range(64)}  # snapshots of each env's running episode, as the test sees them
    good, bad = [], []
    rng = np.random.default_rng(0)
    proposed_at = {}
    n_used = 0
    for it in range(12):
        ids, states = buf.propose(it)
        if len(ids):
            env.set_start_states(states, ids)
            proposed_at.update({int(e): s for e, s in zip(ids, states)})
        for _ in range(8):  # one "iteration": noisy hover; tilted starts crash, the rest survive 20 steps
            before = env.pending_start_states
            obs, rew, term, trunc, info = env.step(rng.normal(0.2, 0.05, (64, 4)).astype(np.float32))
            done = term | trunc
            if "episode" in info:
                stats.add(info["episode"], done)
            used = np.flatnonzero(before & done)
            n_used += len(used)
            for e in used:  # the new episode starts exactly from the proposed snapshot
                assert np.allclose(env.relative_state[e], proposed_at.pop(int(e)), atol=1e-4)
        a = stats.arrays()
        out = outcomes_from_arrays(a, env.param_names, 0) if a else None
        if out is not None:
            seen = set()
            for e, ok in zip(out.env_ids, out.success):
                if e not in seen:
                    (good if ok else bad).extend(pending[e])
                    pending[e] = []
                    seen.add(e)
        stats.clear()
        starts.update(env, out)
        for e, s in enumerate(env.relative_state):
            pending[e].append(s.copy())
    stored = buf.states[: buf.size]
    good_a = np.array(good)
    # states seen only in failed episodes (a snapshot reused as a start can appear in both)
    bad_only = np.array([s for s in bad if np.min(np.abs(good_a - s).max(1)) > 1e-6])
    assert buf.size > 50 and len(bad_only) > 50  # both outcomes happened
    for s in stored:  # every stored state comes from a successful episode, so none from a failed one only
        assert np.min(np.abs(good_a - s).max(1)) < 1e-6
    assert buf.proposed > 20 and n_used > 20  # and episodes really started from them


def test_start_states_need_the_quadrotor():
    from robolearn.config import load_config
    from robolearn.tasks.quadrotor.curriculum import build_start_states
    from robolearn.errors import ConfigError

    class NoStarts:
        num_envs = 4

    cfg = load_config("configs/quadrotor_hover.yaml", ["curriculum.start_states.enabled=true"])
    with pytest.raises(ConfigError, match="curriculum.start_states.enabled"):
        build_start_states(cfg, NoStarts())
    with pytest.raises(ConfigError, match="curriculum.start_states.fraction"):
        load_config("configs/quadrotor_hover.yaml", ["curriculum.start_states.fraction=2"])

"""Training resets from the hard corner: robolearn/hard_starts.py, curriculum.hard_starts, benchmarks/hard_starts.py."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from benchmarks.hard_starts import train_with_hard_starts
from robolearn.config import load_config
from robolearn.tasks.quadrotor.hard_starts import HardStarts, is_hard

TINY = ["env.num_envs=16", "ppo.rollout_steps=8", "ppo.minibatches=2", "train.total_env_steps=1024",
        "train.progress=false", "eval.episodes=8", "eval.episode_steps=20", "eval.randomized=false",
        "eval.plots=false", "network.critic_hidden=[16]", "env.sim.episode_steps=20"]


class _Env:
    """What HardStarts needs of a vector env: pending start states and set_start_states."""

    def __init__(self, n: int) -> None:
        self.pending = np.zeros(n, bool)
        self.states = np.zeros((n, 17), np.float32)

    @property
    def pending_start_states(self) -> np.ndarray:
        return self.pending.copy()

    def set_start_states(self, states: np.ndarray, ids: np.ndarray) -> None:
        self.states[ids] = states
        self.pending[ids] = True


def test_a_share_of_the_free_envs_get_hard_starts_and_a_restored_state_draws_the_same() -> None:
    cfg = load_config("configs/quadrotor_hover_l2f.yaml",
                      ["curriculum.hard_starts.fraction=0.5", "curriculum.hard_starts.pool_draws=5000"])
    hs = HardStarts(cfg)
    assert len(hs.pool) > 100 and is_hard(hs.pool).all()  # ~10 % of 5000 draws
    env = _Env(4000)
    n = hs.apply(env)
    assert 1800 < n < 2200 and env.pending.sum() == n and is_hard(env.states[env.pending]).all()
    state = hs.state_dict()
    env.pending[:] = False
    again = HardStarts(cfg)
    again.load_state_dict(state)
    env2 = _Env(4000)
    hs.apply(env)
    again.apply(env2)
    assert np.array_equal(env.pending, env2.pending)
    assert np.array_equal(env.states[env.pending], env2.states[env2.pending])
    # envs that already wait for a start state keep it
    env.pending[:] = True
    before = env.states.copy()
    assert hs.apply(env) == 0 and np.array_equal(before, env.states)


def test_the_trainer_gives_hard_starts_and_logs_them(tmp_path: Path) -> None:
    r = train_with_hard_starts("configs/quadrotor_hover_l2f.yaml", 0, 1.0, str(tmp_path / "all"), TINY, draws=2000)
    # every env without a pending start gets one before each of the 8 iterations
    assert r["hard_starts_given"] >= 16
    assert (tmp_path / "all" / "eval.json").is_file() and r["nominal"]["episodes"] == 8
    none = train_with_hard_starts("configs/quadrotor_hover_l2f.yaml", 0, 0.0, str(tmp_path / "none"), TINY, draws=2000)
    assert none["hard_starts_given"] == 0


def test_hard_starts_on_the_arm_are_a_one_line_error(tmp_path: Path) -> None:
    from test_cli import assert_one_line_error, robolearn

    r = robolearn("train", "configs/arm_push.yaml", "--out", tmp_path / "run", "--set", "curriculum.hard_starts.fraction=0.3",
                  "--set", "train.total_env_steps=64")
    assert_one_line_error(r, "curriculum.hard_starts.fraction", "quadrotor")

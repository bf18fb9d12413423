"""benchmarks/hard_starts.py: hover training with part of the resets from the hard corner."""

from __future__ import annotations

from pathlib import Path

import robolearn.train as T
from benchmarks.hard_starts import train_with_hard_starts

TINY = ["env.num_envs=16", "ppo.rollout_steps=8", "ppo.minibatches=2", "train.total_env_steps=1024",
        "train.progress=false", "eval.episodes=8", "eval.episode_steps=20", "eval.randomized=false",
        "eval.plots=false", "network.critic_hidden=[16]", "env.sim.episode_steps=20"]


def test_hard_starts_are_given_and_the_trainer_is_left_as_it_was(tmp_path: Path) -> None:
    before = T.make_algorithm
    r = train_with_hard_starts("configs/quadrotor_hover.yaml", 0, 1.0, str(tmp_path / "all"), TINY, draws=2000)
    assert T.make_algorithm is before
    # every env without a pending start gets one before each of the 8 iterations
    assert r["hard_starts_given"] >= 16
    assert (tmp_path / "all" / "eval.json").is_file() and r["nominal"]["episodes"] == 8
    none = train_with_hard_starts("configs/quadrotor_hover.yaml", 0, 0.0, str(tmp_path / "none"), TINY, draws=2000)
    assert none["hard_starts_given"] == 0

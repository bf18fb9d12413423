"""The torch replica used by benchmarks/recoverability.py must be the simulator's dynamics."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from benchmarks.recoverability import TorchQuadrotor
from sims.quadrotor import QuadrotorConfig, QuadrotorVecEnv
from sims.quadrotor import params as P


def _random_states(n: int, rng: np.random.Generator) -> np.ndarray:
    s = np.zeros((n, P.STATE_DIM))
    s[:, 0:2] = rng.uniform(-1, 1, (n, 2))
    # heights from inside the ground-effect band (< 0.2 m) up to 2 m
    s[:, 2] = rng.uniform(0.05, 2.0, n)
    q = rng.normal(size=(n, 4))
    s[:, 3:7] = q / np.linalg.norm(q, axis=1, keepdims=True)
    s[:, 7:10] = rng.uniform(-3, 3, (n, 3))
    s[:, 10:13] = rng.uniform(-10, 10, (n, 3))
    s[:, 13:17] = rng.uniform(0, 21702.0, (n, 4))
    return s.astype(np.float32)


def test_torch_replica_matches_numba_kernel() -> None:
    rng = np.random.default_rng(0)
    n = 512
    # bounds wide enough that no env terminates (and auto-resets) during the check
    cfg = QuadrotorConfig(vehicle="l2f_paper", termination_position_m=1e3, termination_velocity_mps=1e3, termination_angvel_rps=1e3)
    env = QuadrotorVecEnv(n, config=cfg, seed=0)
    s = _random_states(n, rng)
    env.reset(options={"state": s})
    model = TorchQuadrotor.from_config(cfg)
    ts = torch.from_numpy(env.state.copy())
    worst = 0.0
    for _ in range(5):
        # beyond [-1, 1] too: both sides must clip the same way
        a = rng.uniform(-1.2, 1.2, (n, 4)).astype(np.float32)
        _, _, term, trunc, _ = env.step(a)
        live = ~(term | trunc)  # only hitting the ground (z < 0) ends an episode here
        assert live.mean() > 0.9
        ts = model.step(ts, torch.from_numpy(a))
        ref = env.state.astype(np.float64)[live]
        got = ts.numpy().astype(np.float64)[live]
        # float32 tolerance relative to each component's scale (RPM ~ 1e4, quaternion ~ 1)
        scale = np.array([1, 1, 1, 1, 1, 1, 1, 3, 3, 3, 10, 10, 10] + [21702.0] * 4)
        err = np.abs(got - ref) / scale
        worst = max(worst, float(err.max()))
        ts = torch.from_numpy(env.state.copy())  # re-sync: compare one step at a time
    assert worst < 1e-5, worst


def test_replica_is_sensitive_to_the_physics() -> None:
    """The comparison above can fail: a replica without motor lag or drag is far off."""
    rng = np.random.default_rng(1)
    n = 256
    cfg = QuadrotorConfig(vehicle="l2f_paper", termination_position_m=1e3, termination_velocity_mps=1e3, termination_angvel_rps=1e3)
    env = QuadrotorVecEnv(n, config=cfg, seed=0)
    env.reset(options={"state": _random_states(n, rng)})
    s0 = torch.from_numpy(env.state.copy())
    a = rng.uniform(-1, 1, (n, 4)).astype(np.float32)
    env.step(a)
    ref = env.state.astype(np.float64)
    for wrong in (TorchQuadrotor(motor_dynamics=False), TorchQuadrotor(rotor_drag=False)):
        got = wrong.step(s0, torch.from_numpy(a)).numpy()
        assert np.abs(got - ref).max() > 1e-3


def test_grow_searches_growing_horizons_and_replays_them(tmp_path) -> None:
    """The continuation search runs end to end (eager, tiny) and its result is self-consistent."""
    from benchmarks.recoverability import grow
    from robolearn.config import dump_config, load_config
    from robolearn.networks import DeterministicActor, export_actor

    cfg = load_config("configs/quadrotor_hover_l2f.yaml", ["eval.episodes=8", "eval.episode_steps=30"])
    (tmp_path / "config.yaml").write_text(dump_config(cfg))
    actor = DeterministicActor(50, 4, [8], "tanh")
    torch.save(export_actor(actor.norm, actor.net, "tanh"), tmp_path / "policy.pt")
    r = grow(tmp_path, [0, 3], [0.05, 0.1], restarts=2, iters=3, compile_step=False)
    assert [s["horizon_s"] for s in r["stages"]] == pytest.approx([0.05, 0.1])
    assert [s["objective"] for s in r["stages"]] == ["peak", "full"]
    assert [p["eval_index"] for p in r["per_start"]] == [0, 3]
    for p in r["per_start"]:
        assert p["peak_termination_ratio"] > 0
        # saved (survived to the time limit) needs the full length; a flight that ends on its
        # last step by termination also has it
        assert not p["saved"] or p["saved_length"] == cfg.eval.episode_steps
    assert r["saved"] == sum(p["saved"] for p in r["per_start"])

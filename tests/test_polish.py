"""The ES polish of the deployable actor (robolearn/polish.py, config section ``polish``)."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from robolearn.config import load_config
from robolearn.envs import make_env
from robolearn.tasks.quadrotor.env import hover_action
from robolearn.tasks.quadrotor.hard_starts import hard_corner_draw
from robolearn.networks import DeterministicActor, actor_from_spec, linear_layers
from robolearn.tasks.quadrotor.polish import batched_actions, es_step, flatten, fly, polish, stacked_layers, with_parameters
from sims.quadrotor.params import hover_rpm

ROOT = Path(__file__).resolve().parent.parent
OBS, ACT = 50, 4  # the default hover policy view (action history 8) and rotor commands


def _policy(cfg, seed: int = 0, out_gain: float = 0.01):
    """A fresh actor as PPO starts it: orthogonal init, small output layer, bias at hover."""
    torch.manual_seed(seed)
    actor = DeterministicActor(OBS, ACT, [28, 24], "tanh")
    last = linear_layers(actor.net)[-1]
    with torch.no_grad():
        last.weight.mul_(out_gain)
        last.bias.fill_(hover_action(cfg))
    return actor.spec()


@pytest.fixture(scope="module")
def cfg():
    return load_config("configs/quadrotor_hover_l2f.yaml", ["polish.pairs=4", "polish.starts=32"])


@pytest.fixture(scope="module")
def pool(cfg):
    return hard_corner_draw(cfg, 5000, seed=11)


def test_es_step_climbs_a_quadratic_and_ignores_the_fitness_scale() -> None:
    gen = torch.Generator().manual_seed(0)
    target = torch.randn(20, generator=gen)
    theta = torch.zeros(20)
    d0 = float((theta - target).norm())
    for _ in range(300):
        eps = torch.randn(8, 20, generator=gen)
        cand = torch.cat([theta + 0.1 * eps, theta - 0.1 * eps])
        f = -(cand - target).square().sum(1).numpy()
        step = es_step(theta, eps, f, lr=0.05)
        # ranks only: any increasing transform of the fitness gives the same step
        assert torch.equal(step, es_step(theta, eps, 3.0 * f + 7.0, lr=0.05))
        theta = step
    assert float((theta - target).norm()) < 0.2 * d0


def test_batched_actions_know_every_activation_the_actor_has() -> None:
    from robolearn.networks import ACTIVATIONS, FUNCTIONAL

    assert set(FUNCTIONAL) == set(ACTIVATIONS)
    x = torch.linspace(-3, 3, 13)
    for name, module in ACTIVATIONS.items():
        assert torch.equal(FUNCTIONAL[name](x), module()(x)), name


def test_batched_actions_are_the_deployed_actors_and_parameters_round_trip(cfg) -> None:
    policy = _policy(cfg, out_gain=1.0)
    theta = flatten(policy)
    assert theta.numel() == policy.num_parameters
    back = with_parameters(policy, theta)
    assert all(np.array_equal(a, b) for a, b in zip(policy.weights + policy.biases, back.weights + back.biases))
    cand = theta + 0.05 * torch.randn(3, theta.numel())
    obs = torch.randn(3, 7, OBS)
    got = batched_actions(policy, stacked_layers(policy, cand), obs)
    for k in range(3):
        ref = actor_from_spec(with_parameters(policy, cand[k]))(obs[k])
        assert torch.allclose(got[k], ref, atol=1e-5)


def test_fly_counts_survival_and_the_margin_to_the_bound(cfg) -> None:
    # From rest at the target: the hover trim stays far inside the 0.6 m bound for 0.4 s;
    # motors off falls out of it (free fall from rest covers 0.6 m in 0.35 s, longer with
    # the rotors spinning down).
    policy = _policy(cfg, out_gain=0.0)
    env = make_env(cfg, num_envs=2, seed=1, backend="cpu", episode_steps=101)
    rest = np.zeros((2, 17), np.float32)
    rest[:, 3] = 1.0
    rest[:, 13:] = hover_rpm("l2f_paper")  # rotors already at the hover speed
    off = with_parameters(policy, flatten(policy))
    off.biases[2] = np.full(ACT, -1.0, np.float32)
    alive, steps, margin = fly(policy, flatten(policy)[None], env, rest[:1].repeat(2, 0), 40, 0.6, seed=3)
    assert alive.all() and (steps == 40).all() and (margin > 0.9).all()
    alive, steps, margin = fly(off, flatten(off)[None], env, rest[:1].repeat(2, 0), 100, 0.6, seed=3)
    assert not alive.any() and (margin == 0).all() and (steps >= 35).all() and (steps < 100).all()


def test_polish_raises_the_hard_start_fitness_and_is_repeatable(cfg, pool) -> None:
    from robolearn.tasks.quadrotor.polish import fitness

    policy = _policy(cfg)
    held_out = hard_corner_draw(cfg, 3000, seed=12)[:64]
    c = cfg.polish.model_copy(update={"iterations": 25, "lr": 0.1, "sigma": 0.05, "anchor_coef": 0.0})
    env = make_env(cfg, num_envs=2 * c.pairs * c.starts, seed=5, backend="cpu", episode_steps=c.horizon_steps + 1)
    new, rows = polish(policy, env, pool, c, bound_m=0.6, seed=5)
    assert len(rows) == 25 and {"fitness_mean", "horizon_survival_mean", "frontier_starts"} <= set(rows[0])
    test = make_env(cfg, num_envs=64, seed=6, backend="cpu", episode_steps=c.horizon_steps + 1)
    before, _ = fitness(policy, flatten(policy)[None], test, held_out, c.horizon_steps, 0.6, seed=6)
    after, _ = fitness(new, flatten(new)[None], test, held_out, c.horizon_steps, 0.6, seed=6)
    assert after[0] > before[0] + 0.02, (before, after)
    again, _ = polish(policy, env, pool, c, bound_m=0.6, seed=5)
    assert torch.equal(flatten(again), flatten(new))
    # the observation normalizer is not touched
    assert np.array_equal(new.obs_mean, policy.obs_mean) and np.array_equal(new.obs_std, policy.obs_std)


def test_the_anchor_holds_the_steady_flight_commands(cfg, pool) -> None:
    from robolearn.tasks.quadrotor.polish import anchor_penalty, steady_observations

    policy = _policy(cfg, out_gain=1.0)
    obs = steady_observations(policy, make_env(cfg, num_envs=4, seed=2, backend="cpu"), 30, 10, seed=2)
    assert obs.shape == (40, OBS)
    ref = batched_actions(policy, stacked_layers(policy, flatten(policy)[None]), obs[None])[0]
    # the penalty is the mean squared change of the command vector
    moved = with_parameters(policy, flatten(policy))
    moved.biases[2] = policy.biases[2] + np.array([0.1, 0.0, -0.2, 0.0], np.float32)
    assert float(anchor_penalty(policy, flatten(policy)[None], obs, ref)[0]) == 0.0
    unclipped = (ref[:, 0].abs() < 0.9) & (ref[:, 2].abs() < 0.8)
    pen = anchor_penalty(moved, flatten(moved)[None], obs[unclipped], ref[unclipped])[0]
    assert pen == pytest.approx(0.1 ** 2 + 0.2 ** 2, rel=1e-4)
    c = cfg.polish.model_copy(update={"iterations": 15, "lr": 0.1, "sigma": 0.05})
    env = make_env(cfg, num_envs=2 * c.pairs * c.starts, seed=5, backend="cpu", episode_steps=c.horizon_steps + 1)
    free, _ = polish(policy, env, pool, c.model_copy(update={"anchor_coef": 0.0}), 0.6, 5)
    held, _ = polish(policy, env, pool, c.model_copy(update={"anchor_coef": 1e4}), 0.6, 5, anchor_obs=obs)
    drift = [float(anchor_penalty(policy, flatten(p)[None], obs, ref)[0]) for p in (free, held)]
    assert drift[1] < 0.2 * drift[0], drift


def _train(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "robolearn.cli", "train", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)


TINY = ["configs/quadrotor_hover_l2f.yaml", "--set", "env.num_envs=64", "--set", "ppo.rollout_steps=8",
        "--set", "train.total_env_steps=1024",
        "--set", "network.critic_hidden=[16]", "--set", "curriculum.hard_starts.pool_draws=5000",
        "--set", "polish.iterations=4", "--set", "polish.pairs=2", "--set", "polish.starts=16",
        "--set", "trim.episodes=16", "--set", "trim.steps=60", "--set", "trim.keep=20",
        "--set", "eval.episodes=16", "--set", "eval.episode_steps=50", "--set", "eval.randomized=false",
        "--set", "eval.plots=false", "--no-progress"]


def test_the_trainer_polishes_and_trims_counts_their_time_and_a_resumed_run_does_the_same(tmp_path: Path) -> None:
    run = tmp_path / "run"
    r = _train("--out", str(run), *TINY)
    assert r.returncode == 0, r.stderr[-3000:]
    with open(run / "polish.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [int(x["iteration"]) for x in rows] == [0, 1, 2, 3]
    ev = json.loads((run / "eval.json").read_text())
    polish_s = ev["time_breakdown_s"]["polish"]
    assert polish_s > 0 and ev["train_wall_time_s"] > polish_s and ev["polish"]["iterations"] == 4
    assert ev["time_breakdown_s"]["trim"] > 0 and ev["trim"]["episodes"] == 16 and len(ev["trim"]["offset_m"]) == 3
    first = torch.load(run / "policy.pt", weights_only=True)
    # the final checkpoint holds the unpolished trainer state: resuming polishes it again, identically
    # (so a run killed during the polish resumes to the same policy)
    r = _train("--resume", str(run), "--no-progress", "--no-eval")
    assert r.returncode == 0, r.stderr[-3000:]
    second = torch.load(run / "policy.pt", weights_only=True)
    assert all(torch.equal(first[k], second[k]) for k in first if isinstance(first[k], torch.Tensor))
    # and the polish moved the trainer's actor
    ck = sorted((run / "checkpoints").glob("ckpt_*.pt"))[-1]
    assert ck.is_file()
    unpolished = _train("--out", str(tmp_path / "off"), *TINY, "--set", "polish.iterations=0", "--set", "trim.episodes=0")
    assert unpolished.returncode == 0, unpolished.stderr[-3000:]
    off = torch.load(tmp_path / "off" / "policy.pt", weights_only=True)
    assert not torch.equal(off["layers.0.weight"], first["layers.0.weight"])
    assert not (tmp_path / "off" / "polish.csv").exists()
    assert "polish" not in json.loads((tmp_path / "off" / "eval.json").read_text())


@pytest.mark.parametrize("key", ["polish.iterations", "trim.episodes"])
def test_polish_or_trim_on_the_arm_is_a_one_line_error(tmp_path: Path, key: str) -> None:
    from test_cli import assert_one_line_error, robolearn

    r = robolearn("train", "configs/arm_push.yaml", "--out", tmp_path / "run", "--set", f"{key}=5",
                  "--set", "train.total_env_steps=64")
    assert_one_line_error(r, key, "quadrotor")

"""The trim of the deployable actor (robolearn/trim.py, config section ``trim``)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from robolearn.config import load_config
from robolearn.envs import make_env
from robolearn.tasks.quadrotor.env import eval_ranges, hover_action
from robolearn.networks import DeterministicActor, actor_from_spec, linear_layers
from robolearn.tasks.quadrotor.trim import steady_offset, trimmed
from sims.quadrotor.params import hover_rpm

OBS, ACT = 50, 4  # the default hover policy view (action history 8) and rotor commands
KP, KD = 0.5, 0.3  # collective command per m of height error and per m/s of climb rate
BIAS = 0.01  # command above hover: the loop settles where -KP dz = -BIAS, dz = +BIAS / KP
LIN = 1e-3  # the hidden tanh is fed LIN x its input, the output divides by LIN: linear to ~1e-7


@pytest.fixture(scope="module")
def cfg():
    return load_config("configs/quadrotor_hover_l2f.yaml")


def _height_loop(cfg):
    """A policy of a collective-thrust PD loop on height alone, biased BIAS above hover.

    From a level start at rest all four commands stay equal: no torque, the vehicle stays
    level and only its height moves. Thrust equals weight at the hover command, so the loop
    settles at height error dz = BIAS / KP above the target: an offset known in closed form.
    """
    actor = DeterministicActor(OBS, ACT, [2], "tanh")
    first, last = linear_layers(actor.net)
    with torch.no_grad():
        first.weight.zero_()
        first.bias.zero_()
        first.weight[0, 2] = -LIN * KP  # policy view 2: z error (position minus target)
        first.weight[0, 14] = -LIN * KD  # policy view 14: vz
        last.weight.zero_()
        last.weight[:, 0] = 1.0 / LIN
        last.bias.fill_(hover_action(cfg) + BIAS)
    return actor.spec()


def _level_env(cfg, n: int, seed: int):
    env = make_env(cfg, num_envs=n, seed=seed, ranges=eval_ranges(cfg, False), backend="cpu", episode_steps=601)
    rest = np.zeros((n, 17), np.float32)
    rest[:, 3] = 1.0
    rest[:, 13:] = hover_rpm("l2f_paper")  # the configs fly l2f_paper
    env.set_start_states(rest)
    return env


def test_the_offset_of_a_height_loop_is_its_closed_form_and_the_trim_removes_it(cfg) -> None:
    policy = _height_loop(cfg)
    offset, survivors = steady_offset(policy, _level_env(cfg, 32, 1), 600, 200, seed=1)
    assert survivors == 32
    assert offset[:2] == pytest.approx([0.0, 0.0], abs=1e-6)  # level: no lateral force at all
    assert offset[2] == pytest.approx(BIAS / KP, rel=0.05)  # 20 mm, to 1 mm (sensor noise, thrust ~ rpm^2)
    after, _ = steady_offset(trimmed(policy, offset), _level_env(cfg, 32, 2), 600, 200, seed=2)
    assert abs(after[2]) < 0.05 * offset[2], (offset, after)


def test_the_trimmed_actor_reads_its_position_error_plus_the_offset(cfg) -> None:
    torch.manual_seed(0)
    actor = DeterministicActor(OBS, ACT, [28, 24], "tanh")
    policy = actor.spec()
    offset = np.array([0.03, -0.02, 0.05])
    new = trimmed(policy, offset)
    assert np.array_equal(new.obs_mean[3:], policy.obs_mean[3:]) and np.array_equal(new.obs_std, policy.obs_std)
    assert all(np.array_equal(a, b) for a, b in zip(new.weights + new.biases, policy.weights + policy.biases))
    obs = torch.randn(64, OBS)
    shifted = obs.clone()
    shifted[:, :3] += torch.tensor(offset, dtype=torch.float32)
    assert torch.allclose(actor_from_spec(new)(obs), actor_from_spec(policy)(shifted), atol=1e-6)


def test_a_policy_that_survives_nothing_is_left_as_it_is(cfg) -> None:
    from robolearn.tasks.quadrotor.trim import trim_from_config

    policy = _height_loop(cfg)
    policy.biases[1] = np.full(ACT, -1.0, np.float32)  # motors off: every episode falls out
    c = load_config("configs/quadrotor_hover_l2f.yaml", ["trim.episodes=8"])
    new, info = trim_from_config(c, policy)
    assert info["survivors"] == 0 and info["offset_m"] == [0.0, 0.0, 0.0]
    assert np.array_equal(new.obs_mean, policy.obs_mean)


def test_trim_keep_longer_than_steps_is_a_one_line_error(tmp_path) -> None:
    from test_cli import assert_one_line_error, robolearn

    r = robolearn("train", "--out", tmp_path / "run", "--set", "trim.steps=50", "--set", "trim.keep=100")
    assert_one_line_error(r, "trim.keep", "trim.steps")

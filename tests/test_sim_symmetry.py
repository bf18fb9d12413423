"""The Crazyflie's symmetries (sims/quadrotor/symmetry.py) against the simulator itself."""

import numpy as np
import pytest

from sims.quadrotor import QuadrotorVecEnv
from sims.quadrotor.symmetry import (SYMMETRIES, Symmetry, action_map, check_layout, policy_view_map,
                                     transform_state)

N, HIST, STEPS = 256, 8, 30


def _env(seed):
    return QuadrotorVecEnv(N, seed=seed, action_history=HIST, sensor_noise=False)


def _fly(env, starts, actions):
    env.set_start_states(starts)
    obs, _ = env.reset(seed=5)
    seq, rew, term = [obs["policy"].copy()], [], []
    for a in actions:
        obs, r, te, _, _ = env.step(a)
        seq.append(obs["policy"].copy())
        rew.append(r.copy())
        term.append(te.copy())
    return np.array(seq), np.array(rew), np.array(term)


def _starts_and_actions(seed=0):
    src = _env(seed)
    src.reset(seed=seed)
    starts = src.relative_state
    rng = np.random.default_rng(seed)
    actions = rng.uniform(-1, 1, (STEPS, N, 4)).astype(np.float32)
    return starts, actions


@pytest.mark.parametrize("sym", SYMMETRIES, ids=lambda s: s.name)
def test_image_of_a_flight_is_a_flight(sym):
    """Fly random starts with random commands, and their images with the permuted commands:
    the image flight's policy view is the mapped view of the original at every step, with
    the same rewards and terminations."""
    check_layout(sym)
    starts, actions = _starts_and_actions()
    obs_a, rew_a, term_a = _fly(_env(1), starts, actions)
    ai = action_map(sym)
    obs_b, rew_b, term_b = _fly(_env(1), transform_state(starts, sym), actions[:, :, ai])
    idx, sign = policy_view_map(sym, HIST)
    alive = ~np.logical_or.accumulate(term_a, axis=0)  # compare until the first termination
    for t in range(STEPS):
        m = alive[t]
        np.testing.assert_allclose(obs_b[t + 1][m], (obs_a[t + 1][:, idx] * sign)[m], atol=2e-4, rtol=1e-3)
        np.testing.assert_allclose(rew_b[t][m], rew_a[t][m], atol=1e-4, rtol=1e-4)
    first = lambda te: np.where(te.any(0), te.argmax(0), STEPS)  # noqa: E731  first termination step
    np.testing.assert_array_equal(first(term_b), first(term_a))
    assert alive[-1].mean() > 0.3  # enough flights lasted to the end for the check to mean something


def test_a_wrong_map_is_caught():
    """Mirror y -> -y with the rotors of the 180 deg rotation (spins kept, not reversed): the
    layout check rejects it, and the simulator's flights disagree with the would-be images."""
    wrong = Symmetry("mirror_y_wrong_rotors", (1.0, -1.0, 1.0), (2, 3, 0, 1))
    with pytest.raises(ValueError, match="rotor positions"):
        check_layout(wrong)
    starts, actions = _starts_and_actions()
    obs_a, _, term_a = _fly(_env(1), starts, actions)
    obs_b, _, _ = _fly(_env(1), transform_state(starts, wrong), actions[:, :, action_map(wrong)])
    idx, sign = policy_view_map(wrong, HIST)
    alive = ~term_a[:5].any(0)
    assert np.abs(obs_b[5][alive] - (obs_a[5][:, idx] * sign)[alive]).max() > 1e-2


def test_policy_view_map_is_an_involution():
    for sym in SYMMETRIES:
        idx, sign = policy_view_map(sym, HIST)
        x = np.random.default_rng(0).normal(size=(4, 18 + 4 * HIST)).astype(np.float32)
        once = x[:, idx] * sign
        np.testing.assert_array_equal(once[:, idx] * sign, x)

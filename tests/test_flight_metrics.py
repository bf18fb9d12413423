"""Flight metrics on signals with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from robolearn.flight_metrics import command_smoothness, high_frequency_share, settling_time


def test_command_rate_of_a_square_wave():
    a = np.zeros((101, 2, 4), np.float32)
    a[1::2] = 0.5  # alternates 0, 0.5: every step moves by 0.5
    assert command_smoothness(a) == pytest.approx(0.5)
    assert command_smoothness(np.full((50, 3, 4), 0.2)) == 0.0


@pytest.mark.parametrize("f_hz, expected", [(5.0, 0.0), (25.0, 1.0)])
def test_high_frequency_share_of_pure_tones(f_hz, expected):
    t = np.arange(100) * 0.01
    a = np.broadcast_to(0.1 * np.sin(2 * np.pi * f_hz * t)[:, None, None], (100, 2, 4))
    assert high_frequency_share(a, 0.01, 10.0) == pytest.approx(expected, abs=1e-9)


def test_high_frequency_share_of_white_noise_is_the_band_share():
    a = np.random.default_rng(0).normal(size=(100, 200, 4))
    assert high_frequency_share(a, 0.01, 10.0) == pytest.approx(40 / 50, abs=0.03)  # 10-50 Hz of 0-50 Hz


def test_settling_time():
    e = np.array([[0.3, 0.01, 0.3], [0.06, 0.01, 0.2], [0.04, 0.01, 0.1], [0.03, 0.01, 0.06]])
    out = settling_time(e, 0.05, 0.01)
    assert out[0] == pytest.approx(0.02) and out[1] == 0.0 and np.isnan(out[2])

"""Flight-quality metrics over batched trajectories (plain functions over arrays).

Shapes: time first, then episodes. Commands are the normalized rotor commands in [-1, 1]
that the policy outputs, sampled at the control period ``dt``.
"""

from __future__ import annotations

import numpy as np


def command_smoothness(actions: np.ndarray) -> float:
    """Mean ``|a_t - a_(t-1)|`` over steps, episodes and rotors of (T, N, 4) commands (T >= 2)."""
    if actions.shape[0] < 2 or actions.shape[1] == 0:
        return float("nan")
    return float(np.abs(np.diff(actions.astype(np.float64), axis=0)).mean())


def high_frequency_share(actions: np.ndarray, dt: float, cutoff_hz: float = 10.0) -> float:
    """Share of the commands' power above ``cutoff_hz``, over (T, N, 4) commands sampled every ``dt`` s.

    Per episode and rotor, the mean is removed (the hover command is no vibration) and the
    one-sided power spectrum taken (``numpy.fft.rfft``); the result is the power at
    frequencies > ``cutoff_hz`` over all power except DC, pooled over episodes and rotors
    (0: all at or below the cutoff; white noise at 100 Hz sampling gives ~0.8).
    """
    if actions.shape[0] < 4 or actions.shape[1] == 0:
        return float("nan")
    x = actions.astype(np.float64)
    x = x - x.mean(axis=0, keepdims=True)
    power = np.abs(np.fft.rfft(x, axis=0)) ** 2
    freq = np.fft.rfftfreq(x.shape[0], dt)
    total = power[1:].sum()
    if total <= 0.0:
        return 0.0
    return float(power[freq > cutoff_hz].sum() / total)


def settling_time(position_error: np.ndarray, threshold_m: float, dt: float) -> np.ndarray:
    """Per episode: the time (s) after which the (T, N) position error stays below ``threshold_m``.

    Time ``(t + 1) * dt`` for the last step ``t`` at or above the threshold (0 if never
    above); NaN if the last step is at or above it (not settled). NaN entries are ignored.
    """
    e = np.asarray(position_error, dtype=np.float64)
    above = np.nan_to_num(e, nan=0.0) >= threshold_m
    T = e.shape[0]
    any_above = above.any(axis=0)
    last = T - 1 - np.argmax(above[::-1], axis=0)
    out = np.where(any_above, (last + 1) * dt, 0.0)
    return np.where(above[-1], np.nan, out) if T else out

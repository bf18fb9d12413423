"""Hover metrics over recorded flights: plain functions of arrays, shared by benchmarks and evaluation.

Array conventions (T control steps, N episodes, one episode per env):

* ``position_error`` (T, N, 3) m, position minus target after each step (or its norm, (T, N));
* ``yaw`` (T, N) rad, heading after each step (``atan2(R[1, 0], R[0, 0])``);
* ``actions`` (T, N, 4) the commands in [-1, 1] sent at each step (row t produced the state of row t);
* ``survived`` (N,) bool: the episode ran all T steps without terminating.

"The last second" is the last ``window`` rows (``round(1 / dt)``), the same steps over which
the simulator's own episode accumulators average (``sims.quadrotor.physics``: steps
``episode_steps - window + 1 .. episode_steps``). Per-episode functions return (N,) arrays;
:func:`hover_summary` aggregates them over surviving episodes.
"""

from __future__ import annotations

import numpy as np

SETTLE_TOLERANCE_M = 0.05
HIGH_FREQUENCY_HZ = 10.0


def window_steps(dt: float, seconds: float = 1.0) -> int:
    """Number of control steps in ``seconds`` (at least 1)."""
    if not dt > 0:
        raise ValueError(f"dt must be > 0, got {dt!r}")
    return max(1, int(round(seconds / dt)))


def _norm(position_error: np.ndarray) -> np.ndarray:
    e = np.asarray(position_error, np.float64)
    return np.linalg.norm(e, axis=-1) if e.ndim == 3 else e


def _check_window(t: int, window: int) -> None:
    if not 1 <= window <= t:
        raise ValueError(f"window must be in 1..{t} steps, got {window}")


def steady_position_error(position_error: np.ndarray, window: int) -> np.ndarray:
    """(N,) mean of |position error| (m) over the last ``window`` steps."""
    e = _norm(position_error)
    _check_window(e.shape[0], window)
    out: np.ndarray = e[-window:].mean(axis=0)
    return out


def steady_abs_yaw_deg(yaw: np.ndarray, window: int) -> np.ndarray:
    """(N,) mean |yaw| in degrees over the last ``window`` steps (yaw wrapped to (-180, 180])."""
    y = np.asarray(yaw, np.float64)
    _check_window(y.shape[0], window)
    wrapped = np.angle(np.exp(1j * y[-window:]))
    out: np.ndarray = np.degrees(np.abs(wrapped)).mean(axis=0)
    return out


def yaw_from_rotation(rotation_row_major: np.ndarray) -> np.ndarray:
    """(..., 9) row-major body->world rotation matrices -> (...) yaw in rad (ZYX convention)."""
    r = np.asarray(rotation_row_major, np.float64)
    out: np.ndarray = np.arctan2(r[..., 3], r[..., 0])
    return out


def settling_time(position_error: np.ndarray, dt: float, tolerance_m: float = SETTLE_TOLERANCE_M) -> np.ndarray:
    """(N,) seconds until |position error| enters ``tolerance_m`` and stays within it to the end.

    Row t is the state after step t + 1, at time (t + 1) * dt. NaN for an episode whose error
    is above the tolerance at its last step (it never settled).
    """
    e = _norm(position_error)
    outside = e > tolerance_m
    t = e.shape[0]
    # index of the last step outside the band (-1 if none)
    last_out = np.where(outside.any(axis=0), t - 1 - np.argmax(outside[::-1], axis=0), -1)
    out = (last_out + 2).astype(np.float64) * dt  # first step inside after it: index last_out + 1
    out[last_out == t - 1] = np.nan
    return out


def command_rate(actions: np.ndarray, window: int) -> np.ndarray:
    """(N,) mean |a_t - a_(t-1)| over the last ``window`` steps and the 4 motors (command units, [-1, 1] scale).

    Needs ``window + 1`` rows (the first difference reaches one step before the window).
    """
    a = np.asarray(actions, np.float64)
    _check_window(a.shape[0] - 1, window)
    d = np.abs(np.diff(a[-window - 1:], axis=0))
    out: np.ndarray = d.mean(axis=(0, 2))
    return out


def high_frequency_share(actions: np.ndarray, dt: float, window: int, cutoff_hz: float = HIGH_FREQUENCY_HZ) -> np.ndarray:
    """(N,) share of the command's fluctuation power above ``cutoff_hz`` over the last ``window`` steps.

    Per motor: the window's mean is removed (the hover command is not "power"), a Hann window
    applied (so a slow drift does not leak into high frequencies), and the periodogram summed
    over the 4 motors; the share is power at f > cutoff over power at f > 0. A constant
    command has no fluctuation: share 0. With dt 0.01 s and a 1 s window the bins are 1 Hz
    apart up to the 50 Hz Nyquist frequency.
    """
    a = np.asarray(actions, np.float64)
    _check_window(a.shape[0], window)
    x = a[-window:]
    x = x - x.mean(axis=0, keepdims=True)
    x = x * np.hanning(window)[:, None, None]
    p = np.abs(np.fft.rfft(x, axis=0)) ** 2  # (F, N, 4)
    f = np.fft.rfftfreq(window, dt)
    total = p[f > 0].sum(axis=(0, 2))
    high = p[f > cutoff_hz].sum(axis=(0, 2))
    out: np.ndarray = np.zeros(total.shape, np.float64)
    np.divide(high, total, out=out, where=total > 1e-20)
    return out


def finite_mean(x: np.ndarray) -> float | None:
    """Mean of the finite entries of ``x`` (None if there are none)."""
    x = x[np.isfinite(x)]
    return float(x.mean()) if x.size else None


def hover_summary(position_error: np.ndarray, yaw: np.ndarray, actions: np.ndarray, survived: np.ndarray,
                  dt: float, tolerance_m: float = SETTLE_TOLERANCE_M) -> dict:
    """Block metrics: survival over all episodes, the rest as means over surviving episodes.

    The window is the last second (shorter flights: all rows but the first). ``settling_time_s``
    is the mean over survivors that settle (``settled_share`` of them);
    ``command_rate`` is mean |a_t - a_(t-1)| over the last second, ``high_frequency_share``
    the share of command power above 10 Hz over the last second.
    """
    s = np.asarray(survived, bool)
    # the last second, or the whole flight but its first step if shorter (command_rate needs w + 1 rows)
    w = max(1, min(window_steps(dt), np.asarray(actions).shape[0] - 1))
    n = int(s.size)
    out: dict = {"episodes": n, "survival_rate": float(s.mean()) if n else 0.0}
    keys = ("position_error_m", "position_error_m_p95", "yaw_deg", "settling_time_s", "settled_share",
            "command_rate", "high_frequency_share")
    if not s.any():
        return {**out, **{k: None for k in keys}}
    e = _norm(position_error)[:, s]
    pe = steady_position_error(e, w)
    st = settling_time(e, dt, tolerance_m)
    out.update({
        "position_error_m": float(pe.mean()),
        "position_error_m_p95": float(np.percentile(pe, 95)),
        "yaw_deg": float(steady_abs_yaw_deg(np.asarray(yaw)[:, s], w).mean()),
        "settling_time_s": finite_mean(st),
        "settled_share": float(np.isfinite(st).mean()),
        "command_rate": float(command_rate(np.asarray(actions)[:, s], w).mean()),
        "high_frequency_share": float(high_frequency_share(np.asarray(actions)[:, s], dt, w).mean()),
    })
    return out


__all__ = ["window_steps", "steady_position_error", "steady_abs_yaw_deg", "yaw_from_rotation", "settling_time",
           "command_rate", "high_frequency_share", "hover_summary", "SETTLE_TOLERANCE_M", "HIGH_FREQUENCY_HZ"]

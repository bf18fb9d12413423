"""The per-environment parameter table both simulator families share (the contract behind
``env.ranges``, the curricula and ``set_range``).

A family lists its parameters as a tuple of :class:`Param`; the tuple's order is the column
order of its per-env ``lo`` / ``hi`` / ``episode`` arrays. :func:`check_range` is the one
check of a ``[low, high]`` request against a table's hard limits, for every family.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np


@dataclass(frozen=True)
class Param:
    """One per-environment parameter, drawn uniformly in [low, high] at each env's reset.

    ``default`` is the nominal range; ``limits`` are hard bounds no curriculum may pass;
    ``doc`` says what it scales and in which unit.
    """

    name: str
    default: tuple[float, float]
    limits: tuple[float, float]
    doc: str


def check_range(params: Sequence[Param], index: Mapping[str, int], name: str,
                lo: float | np.ndarray, hi: float | np.ndarray) -> None:
    """Raise ValueError naming the parameter if ``name`` is not in the table or [lo, hi]
    (scalars, or per-env arrays) is not finite, ordered and inside its hard limits."""
    if name not in index:
        raise ValueError(f"unknown parameter {name!r}; known: {', '.join(index)}")
    check_bounds(name, params[index[name]].limits, lo, hi)


def check_bounds(name: str, limits: tuple[float, float], lo: float | np.ndarray, hi: float | np.ndarray) -> None:
    """Raise ValueError naming ``name`` if [lo, hi] is not finite, ordered and inside ``limits``."""
    lim_lo, lim_hi = limits
    lo_a = np.asarray(lo, dtype=np.float64)
    hi_a = np.asarray(hi, dtype=np.float64)
    if not (np.all(np.isfinite(lo_a)) and np.all(np.isfinite(hi_a))):
        raise ValueError(f"{name}: range must be finite, got [{lo}, {hi}]")
    if np.any(lo_a > hi_a):
        raise ValueError(f"{name}: low must be <= high, got [{lo}, {hi}]")
    if np.any(lo_a < lim_lo) or np.any(hi_a > lim_hi):
        raise ValueError(f"{name}: range [{lo}, {hi}] leaves the hard limits [{lim_lo}, {lim_hi}]")

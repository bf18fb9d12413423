"""Exact symmetries of the x-configuration Crazyflie, as signed permutations.

A reflection or rotation ``S`` that maps the rotor layout of ``params.py`` onto itself
(positions ``ROTOR_XY`` and, for a reflection, with every spin reversed) and keeps
gravity (``S e_z = e_z``) maps one flight onto another: apply it to the world *and*
the body frame at once and every trajectory of the vehicle stays a trajectory, with the
rotor commands permuted. The group is {identity, rotation by 180 deg about z, mirror y -> -y,
mirror x -> -x}: every ``S`` is diagonal, so a diagonal inertia maps onto itself and the
maps stay exact under randomized inertia, mass, thrust, drag and motor constants (the same
for all rotors). A rotation by 90 deg is not in it: it maps each rotor onto one that spins
the other way. A per-episode disturbance is mapped too; it is drawn from a symmetric
distribution, so the image episode is as likely.

Under ``S`` (diagonal, entries +-1, ``d = det S``):

* positions, velocities: ``S x``;
* the rotation matrix (body -> world): ``S R S`` (so level stays level, and the
  rotation angle, hence the orientation cost, is unchanged); quaternion vector part
  ``d S q_v``;
* body rates (a pseudovector): ``d S w``;
* rotor quantities (commands, RPM): permuted, ``x'[j] = x[perm[j]]``.

Every reward term is a norm or a sum over rotors, so the reward is invariant too.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import params as P
from . import vehicles as V


@dataclass(frozen=True)
class Symmetry:
    """One group element: the diagonal of ``S``, and the rotor permutation (an involution)."""

    name: str
    axes: tuple[float, float, float]
    rotor_perm: tuple[int, int, int, int]

    @property
    def det(self) -> float:
        return float(np.prod(self.axes))


SYMMETRIES = (
    Symmetry("rotate_z_180", (-1.0, -1.0, 1.0), (2, 3, 0, 1)),
    Symmetry("mirror_y", (1.0, -1.0, 1.0), (3, 2, 1, 0)),
    Symmetry("mirror_x", (-1.0, 1.0, 1.0), (1, 0, 3, 2)),
)


def check_layout(sym: Symmetry, vehicle: str = V.DEFAULT_VEHICLE) -> None:
    """Raise if ``sym`` does not map the rotor layout of the vehicle preset onto itself."""
    veh = V.get(vehicle)
    xy = np.asarray(veh.rotor_xy)
    spin = np.asarray(veh.rotor_yaw_dir)
    perm = list(sym.rotor_perm)
    if not np.allclose(xy * np.asarray(sym.axes[:2]), xy[perm]):
        raise ValueError(f"{sym.name}: rotor positions are not permuted by {perm}")
    if not np.array_equal(spin * sym.det, spin[perm]):
        raise ValueError(f"{sym.name}: rotor spin directions do not match under {perm}")


def transform_state(states: np.ndarray, sym: Symmetry) -> np.ndarray:
    """The image of (N, 17) states (pos, quat wxyz, vel, body rates, RPM) under ``sym``."""
    s = np.asarray(states)
    a = np.asarray(sym.axes, s.dtype)
    out = s.copy()
    out[:, 0:3] = s[:, 0:3] * a
    out[:, 4:7] = s[:, 4:7] * a * sym.det
    out[:, 7:10] = s[:, 7:10] * a
    out[:, 10:13] = s[:, 10:13] * a * sym.det
    out[:, 13:17] = s[:, 13:17][:, list(sym.rotor_perm)]
    return out


def policy_view_map(sym: Symmetry, history: int) -> tuple[np.ndarray, np.ndarray]:
    """``(index, sign)`` with ``obs'[:, j] = sign[j] * obs[:, index[j]]`` for the policy view.

    The view is position error 3, rotation matrix 9 (row-major), velocity 3, body rates
    3, then ``history`` past commands of 4 rotors (``physics.policy_obs_dim``).
    """
    a = np.asarray(sym.axes)
    idx = list(range(18))
    sign = list(a) + [a[i] * a[j] for i in range(3) for j in range(3)] + list(a) + list(sym.det * a)
    for h in range(history):
        idx += [18 + 4 * h + p for p in sym.rotor_perm]
        sign += [1.0] * 4
    return np.asarray(idx, np.int64), np.asarray(sign, np.float32)


def action_map(sym: Symmetry) -> np.ndarray:
    """``index`` with ``action'[:, j] = action[:, index[j]]`` (rotor commands)."""
    return np.asarray(sym.rotor_perm, np.int64)

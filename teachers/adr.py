"""Automatic domain randomization (ADR).

OpenAI et al., *Solving Rubik's Cube with a Robot Hand* (2019), Algorithm 1, and the
open DeXtreme implementation (Handa et al. 2022, IsaacGymEnvs ``adr_vec_task.py``):

* Each parameter ``i`` has a current range ``[phi_i^L, phi_i^H]``, starting at its
  initial (nominal) range. Most episodes sample every parameter uniformly in the current
  ranges ("rollout workers").
* With probability ``boundary_prob`` an episode is a *boundary evaluation*: one
  parameter ``i`` (uniform) and one side (uniform) are chosen and the parameter is
  pinned at that boundary value, the others still uniform. OpenAI's Algorithm 1 draws
  the side with probability 0.5; TeachMyAgent's ADR uses ``boundary_sampling_p = 0.5``;
  DeXtreme makes 40 % of its workers boundary workers (``worker_adr_boundary_fraction
  = 0.4``).
* The performance of a boundary evaluation goes into that boundary's queue. When the
  queue holds ``queue_length`` results its mean ``p`` is compared with the thresholds:
  ``p >= t_high`` widens the boundary by ``delta``, ``p <= t_low`` narrows it by
  ``delta``; the queue is then cleared. Queue lengths: DeXtreme 256 (thousands of
  parallel envs), TeachMyAgent 10. Thresholds: DeXtreme 5 / 20 consecutive successes;
  here performance is the success rate (or a return) so they are fractions.
* A range never shrinks inside its initial range and never grows past its hard limits.
* The ADR entropy (OpenAI 2019, eq. 4) is the mean over dimensions of ``log(width)``,
  in nats per dimension; zero widths are floored at ``1e-6`` of the hard-limit span so
  it stays finite.

Relative thresholds (``reference="rollout"``, opt-in; a deviation from both papers):
OpenAI 2019 and DeXtreme compare a boundary's performance with *absolute* thresholds
(DeXtreme: 5 / 20 consecutive successes). On a task the policy cannot do at all early in
training (hover: ~0 % survival for the first third of the budget) an absolute threshold
is uninformative until the policy works, and ADR widens nothing before then. With
``reference="rollout"`` the queue mean is divided by the mean of the same metric over
the last ``reference_window`` *rollout-worker* episodes (DeXtreme also tracks the
rollout workers' performance, as an EMA it logs, ``adr_rollout_perf_alpha``), so
``t_high`` / ``t_low`` read "the boundary is at least / at most this fraction as good as
the current distribution". A boundary then widens as long as it is not markedly harder
than the interior of the current ranges, which is informative from the first iteration.
With this reference the metric may also be ``"length"`` (episode length, i.e. time
survived): it separates policies before any episode reaches the time limit. If the
reference is not positive (no rollout episode yet, or none succeeded) no decision is
made and the queue is kept.

Boundaries that can neither widen (at the hard limit) nor narrow (at the initial range)
are never evaluated (e.g. the lower side of a force that starts at 0 and is bounded at 0).

Episode attribution: ``set_range`` takes effect at an env's next reset, so the episode
that finishes first after a proposal ran the env's *previous* ranges. The teacher keeps,
per env, the assignment its running episode started with, and moves it to the latest
proposed one at each finished episode. A boundary result counts only if that boundary
has not moved since and the episode's parameter value equals the boundary value.
"""

from __future__ import annotations

from collections import deque
from typing import Mapping

import numpy as np

from .base import EpisodeOutcomes, RangeProposal, Teacher
from .sampling import rng_state, set_rng_state

_UNKNOWN = -2  # running episode started before the teacher's first proposal
_ROLLOUT = -1


class ADRTeacher(Teacher):
    def __init__(self, initial: Mapping[str, tuple[float, float]], limits: Mapping[str, tuple[float, float]],
                 num_envs: int, delta: Mapping[str, float] | float | None = None, delta_fraction: float = 0.1,
                 multiplicative: bool = False, boundary_prob: float = 0.5, queue_length: int = 10,
                 threshold_low: float = 0.5, threshold_high: float = 0.8, metric: str = "success",
                 reference: str = "absolute", reference_window: int = 200, seed: int = 0):
        if set(initial) != set(limits):
            raise ValueError(f"ADR: initial and limits name different parameters: {sorted(set(initial) ^ set(limits))}")
        if not 0.0 <= boundary_prob <= 1.0:
            raise ValueError(f"ADR: boundary_prob must be in [0, 1], got {boundary_prob}")
        if queue_length < 1:
            raise ValueError(f"ADR: queue_length must be >= 1, got {queue_length}")
        if not threshold_low < threshold_high:
            raise ValueError(f"ADR: threshold_low ({threshold_low}) must be < threshold_high ({threshold_high})")
        if metric not in ("success", "return", "length"):
            raise ValueError(f"ADR: metric must be 'success', 'return' or 'length', got {metric!r}")
        if reference not in ("absolute", "rollout"):
            raise ValueError(f"ADR: reference must be 'absolute' or 'rollout', got {reference!r}")
        if metric == "length" and reference != "rollout":
            raise ValueError("ADR: metric 'length' has no absolute scale; use it with reference='rollout'")
        if reference_window < 1:
            raise ValueError(f"ADR: reference_window must be >= 1, got {reference_window}")
        self.names = list(initial)
        self.init_lo = np.array([float(initial[n][0]) for n in self.names])
        self.init_hi = np.array([float(initial[n][1]) for n in self.names])
        self.lim_lo = np.array([float(limits[n][0]) for n in self.names])
        self.lim_hi = np.array([float(limits[n][1]) for n in self.names])
        bad = [n for n, a, b, c, d in zip(self.names, self.lim_lo, self.init_lo, self.init_hi, self.lim_hi)
               if not (a <= b <= c <= d)]
        if bad:
            raise ValueError(f"ADR: initial range must lie inside the hard limits for {bad}")
        span = self.lim_hi - self.lim_lo
        if delta is None:
            self.delta = delta_fraction * span
        elif isinstance(delta, Mapping):
            self.delta = np.array([float(delta.get(n, delta_fraction * s)) for n, s in zip(self.names, span)])
        else:
            self.delta = np.full(len(self.names), float(delta))
        if np.any(self.delta <= 0):
            raise ValueError("ADR: every step size delta must be > 0")
        self.multiplicative = bool(multiplicative)
        self.boundary_prob = float(boundary_prob)
        self.queue_length = int(queue_length)
        self.t_low, self.t_high = float(threshold_low), float(threshold_high)
        self.metric = metric
        self.reference = reference
        self.rollout_perf: deque[float] = deque(maxlen=int(reference_window))
        self.num_envs = int(num_envs)
        self.task_space = {n: (float(a), float(b)) for n, a, b in zip(self.names, self.lim_lo, self.lim_hi)}
        self._eps = 1e-6 * np.where(span > 0, span, 1.0)
        self.rng = np.random.default_rng(seed)
        self.lo = self.init_lo.copy()
        self.hi = self.init_hi.copy()
        self.queues: dict[tuple[int, int], list[float]] = {}
        # per env: (dim, side, value) of the proposed assignment and of the running episode
        self.prop_dim = np.full(self.num_envs, _ROLLOUT, np.int64)
        self.prop_side = np.zeros(self.num_envs, np.int64)
        self.prop_val = np.zeros(self.num_envs)
        self.run_dim = np.full(self.num_envs, _UNKNOWN, np.int64)
        self.run_side = np.zeros(self.num_envs, np.int64)
        self.run_val = np.zeros(self.num_envs)
        self._needs = np.ones(self.num_envs, bool)
        self._dirty = True
        self.evaluations = 0
        self.expansions = 0
        self.contractions = 0

    # ----------------------------------------------------------------- boundaries
    def boundary(self, i: int, side: int) -> float:
        return float(self.hi[i] if side else self.lo[i])

    def _movable(self, i: int, side: int) -> bool:
        if side:
            return bool(self.hi[i] < self.lim_hi[i] or self.hi[i] > self.init_hi[i])
        return bool(self.lo[i] > self.lim_lo[i] or self.lo[i] < self.init_lo[i])

    def _step(self, value: float, i: int, outward: bool, side: int) -> float:
        sign = 1.0 if (outward == bool(side)) else -1.0  # +: towards higher values
        if self.multiplicative and value != 0.0:
            f = 1.0 + float(self.delta[i])
            return value * f if sign * value > 0 else value / f
        return value + sign * float(self.delta[i])

    def _adjust(self, i: int, side: int, perf: float) -> None:
        self.evaluations += 1
        if perf >= self.t_high:
            outward = True
        elif perf <= self.t_low:
            outward = False
        else:
            return
        v = self._step(self.boundary(i, side), i, outward, side)
        if side:
            new = min(max(v, self.init_hi[i]), self.lim_hi[i])
            new = max(new, self.lo[i])
            changed = new != self.hi[i]
            self.hi[i] = new
        else:
            new = max(min(v, self.init_lo[i]), self.lim_lo[i])
            new = min(new, self.hi[i])
            changed = new != self.lo[i]
            self.lo[i] = new
        if changed:
            if outward:
                self.expansions += 1
            else:
                self.contractions += 1
            self._dirty = True
            # boundary workers pinned to the old value of this dimension need a new value
            self._needs |= self.prop_dim == i

    # ----------------------------------------------------------------- Teacher
    def update(self, outcomes: EpisodeOutcomes) -> None:
        if len(outcomes) == 0:
            return
        names = list(outcomes.param_names)
        cols = [names.index(n) if n in names else -1 for n in self.names]
        if self.metric == "success":
            perf_all = np.asarray(outcomes.success, float)
        elif self.metric == "return":
            perf_all = np.asarray(outcomes.returns, float)
        else:
            if "length" not in outcomes.extra:
                raise ValueError("ADR: metric 'length' needs outcomes.extra['length']")
            perf_all = np.asarray(outcomes.extra["length"], float)
        params = np.asarray(outcomes.params, float)
        for k, e in enumerate(np.asarray(outcomes.env_ids, np.int64)):
            if not 0 <= e < self.num_envs:
                continue
            i, side, val = int(self.run_dim[e]), int(self.run_side[e]), float(self.run_val[e])
            # the env has reset: its new episode runs the latest proposed assignment
            self.run_dim[e], self.run_side[e], self.run_val[e] = self.prop_dim[e], self.prop_side[e], self.prop_val[e]
            self._needs[e] = True
            if i == _ROLLOUT:
                self.rollout_perf.append(float(perf_all[k]))
            if i < 0:
                continue
            cur = self.boundary(i, side)
            tol = 1e-5 * max(abs(cur), 1.0) + 1e-6 * (self.lim_hi[i] - self.lim_lo[i])
            if val != cur or (cols[i] >= 0 and abs(params[k, cols[i]] - cur) > tol):
                continue  # the boundary moved since (or the env did not run it): stale
            q = self.queues.setdefault((i, side), [])
            q.append(float(perf_all[k]))
            if len(q) >= self.queue_length:
                perf = float(np.mean(q))
                if self.reference == "rollout":
                    ref = float(np.mean(self.rollout_perf)) if self.rollout_perf else 0.0
                    if not ref > 0.0:
                        del q[0]  # nothing to compare with yet: keep the newest queue_length results
                        continue
                    perf /= ref
                q.clear()
                self._adjust(i, side, perf)

    def propose(self, env_steps: int) -> list[RangeProposal]:
        ids = np.flatnonzero(self._needs)
        if len(ids) == 0 and not self._dirty:
            return []
        active = [(i, s) for i in range(len(self.names)) for s in (0, 1) if self._movable(i, s)]
        for e in ids:
            if active and self.rng.random() < self.boundary_prob:
                i, s = active[self.rng.integers(len(active))]
                self.prop_dim[e], self.prop_side[e], self.prop_val[e] = i, s, self.boundary(i, s)
            else:
                self.prop_dim[e] = _ROLLOUT
        self._needs[:] = False
        self._dirty = False
        out = []
        for i, n in enumerate(self.names):
            low = np.full(self.num_envs, self.lo[i])
            high = np.full(self.num_envs, self.hi[i])
            pin = self.prop_dim == i
            low[pin] = high[pin] = self.prop_val[pin]
            out.append(RangeProposal(n, low, high, None))
        return out

    # ----------------------------------------------------------------- reporting
    def entropy(self) -> float:
        """ADR entropy in nats per dimension (OpenAI 2019): mean log(range width)."""
        return float(np.mean(np.log(np.maximum(self.hi - self.lo, self._eps))))

    def ranges(self) -> dict[str, tuple[float, float]]:
        return {n: (float(a), float(b)) for n, a, b in zip(self.names, self.lo, self.hi)}

    def metrics(self) -> dict[str, float]:
        width = self.lim_hi - self.lim_lo
        frac = np.where(width > 0, (self.hi - self.lo) / np.where(width > 0, width, 1.0), 1.0)
        m = {"adr/entropy_nats_per_dim": self.entropy(), "adr/fraction_of_limits": float(np.mean(frac)),
             "adr/evaluations": float(self.evaluations), "adr/expansions": float(self.expansions),
             "adr/contractions": float(self.contractions)}
        if self.reference == "rollout":
            m["adr/rollout_perf"] = float(np.mean(self.rollout_perf)) if self.rollout_perf else float("nan")
        for n, a, b in zip(self.names, self.lo, self.hi):
            m[f"adr/{n}.low"] = float(a)
            m[f"adr/{n}.high"] = float(b)
        return m

    def state_dict(self) -> dict:
        return {"lo": self.lo.tolist(), "hi": self.hi.tolist(), "names": list(self.names),
                "queues": [[i, s, list(q)] for (i, s), q in self.queues.items()],
                "rng": rng_state(self.rng), "evaluations": self.evaluations,
                "expansions": self.expansions, "contractions": self.contractions,
                "rollout_perf": list(self.rollout_perf)}

    def load_state_dict(self, state: dict) -> None:
        if not state:
            return
        if list(state.get("names", self.names)) != self.names:
            raise ValueError(f"ADR state is for parameters {state.get('names')}, this teacher has {self.names}")
        self.lo = np.array(state["lo"], float)
        self.hi = np.array(state["hi"], float)
        self.queues = {(int(i), int(s)): list(q) for i, s, q in state.get("queues", [])}
        set_rng_state(self.rng, state.get("rng"))
        self.evaluations = int(state.get("evaluations", 0))
        self.expansions = int(state.get("expansions", 0))
        self.contractions = int(state.get("contractions", 0))
        self.rollout_perf.clear()
        self.rollout_perf.extend(float(x) for x in state.get("rollout_perf", []))
        # a resumed env starts from config ranges: reassign and re-propose everything
        self.prop_dim[:] = _ROLLOUT
        self.run_dim[:] = _UNKNOWN
        self._needs[:] = True
        self._dirty = True

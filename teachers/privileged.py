"""Privileged-action annealing.

*Learning Long-Horizon Robot Manipulation Skills via Privileged Action* (2025): actions
that exist only in simulation (virtual helping forces, relaxed constraints) make early
exploration easy, and a curriculum removes them so the final policy needs none.

Here one coefficient (default ``privileged.assist_gain``, the fraction of a PD assist
wrench added to the policy's) starts at ``initial`` and is lowered whenever the student
succeeds often enough *with the current coefficient*: once ``window`` episodes that ran
with the current value have been seen and their success rate is ``>= success_threshold``,
the coefficient steps down (``coef - step`` or ``coef * factor``); values at or below
``min_value`` snap to 0. The coefficient never goes up, and once it is 0 it is never
reintroduced (``independent`` becomes true and stays true, also across a resume).
"""

from __future__ import annotations

import numpy as np

from .base import EpisodeOutcomes, RangeProposal, Teacher


class PrivilegedAnnealing(Teacher):
    def __init__(self, name: str = "privileged.assist_gain", initial: float = 1.0,
                 limits: tuple[float, float] = (0.0, 1.0),
                 success_threshold: float = 0.8, window: int = 200, step: float = 0.1, factor: float | None = None,
                 min_value: float = 0.02):
        if not limits[0] <= 0.0 <= initial <= limits[1]:
            raise ValueError(f"{name}: need limits[0] <= 0 <= initial <= limits[1], got {initial} in {limits}")
        if window < 1:
            raise ValueError(f"{name}: window must be >= 1, got {window}")
        if factor is None and step <= 0:
            raise ValueError(f"{name}: step must be > 0, got {step}")
        if factor is not None and not 0.0 <= factor < 1.0:
            raise ValueError(f"{name}: factor must be in [0, 1), got {factor}")
        self.name = name
        self.task_space = {name: (float(limits[0]), float(limits[1]))}
        self.initial = float(initial)
        self.success_threshold = float(success_threshold)
        self.window = int(window)
        self.step = float(step)
        self.factor = factor
        self.min_value = float(min_value)
        self.coef = self.initial
        self.independent = self.coef == 0.0
        self._succ: list[float] = []  # outcomes of episodes that ran with the current coef
        self._last_rate = float("nan")
        self._applied: float | None = None
        self.reductions = 0

    def _lower(self) -> None:
        new = self.coef * self.factor if self.factor is not None else self.coef - self.step
        if new <= self.min_value:
            new = 0.0
        self.coef = max(min(new, self.coef), 0.0)
        self.reductions += 1
        if self.coef == 0.0:
            self.independent = True

    def update(self, outcomes: EpisodeOutcomes) -> None:
        if len(outcomes) == 0 or self.independent:
            return
        names = list(outcomes.param_names)
        succ = np.asarray(outcomes.success, float)
        if self.name in names:  # count only episodes that ran with the current coefficient
            v = outcomes.column(self.name)
            succ = succ[np.abs(v - self.coef) <= 1e-5 * max(1.0, abs(self.coef))]
        self._succ.extend(succ.tolist())
        while len(self._succ) >= self.window and not self.independent:
            rate = float(np.mean(self._succ[:self.window]))
            self._last_rate = rate
            self._succ = self._succ[self.window:]
            if rate >= self.success_threshold:
                self._lower()
                self._succ = []  # later episodes ran with the old value

    def propose(self, env_steps: int) -> list[RangeProposal]:
        if self._applied is not None and self._applied == self.coef:
            return []
        self._applied = self.coef
        return [RangeProposal(self.name, self.coef, self.coef)]

    def metrics(self) -> dict[str, float]:
        return {f"{self.name}": self.coef, "privileged/success_rate": self._last_rate,
                "privileged/independent": float(self.independent), "privileged/reductions": float(self.reductions)}

    def state_dict(self) -> dict:
        return {"coef": self.coef, "independent": self.independent, "succ": list(self._succ),
                "reductions": self.reductions, "last_rate": self._last_rate}

    def load_state_dict(self, state: dict) -> None:
        if not state:
            return
        self.coef = float(state["coef"])
        self.independent = bool(state.get("independent", False)) or self.coef == 0.0
        if self.independent:
            self.coef = 0.0
        self._succ = list(state.get("succ", []))
        self.reductions = int(state.get("reductions", 0))
        self._last_rate = float(state.get("last_rate", float("nan")))
        self._applied = None  # re-apply to the resumed env

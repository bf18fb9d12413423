"""The quadrotor's curricula: its teachers (``teachers/``) built from the config, its finished
episodes as a teacher sees them, and the start-state curriculum."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from teachers.base import EpisodeOutcomes, NoTeacher, Teacher
from teachers.adr import ADRTeacher
from teachers.alp_gmm import ALPGMM
from teachers.bandits import GroupBandit
from teachers.covar_gmm import CovarGMM
from teachers.privileged import PrivilegedAnnealing
from teachers.riac import RIAC
from teachers.schedule import CombinedTeacher, LinearItem, LinearSchedule, RewardWeightSchedule, WeightRule
from teachers.spdl import SPDL
from teachers.start_states import SnapshotStarts

from ...curriculum import linear_schedule
from ...errors import ConfigError
from .env import sim_config

if TYPE_CHECKING:
    from ...config import CurriculumConfig, RunConfig

Ranges = dict[str, tuple[float, float]]
Range = tuple[float, float]  # pydantic validates config ranges to 2-tuples; cast() only tells mypy


def build_teacher(cfg: RunConfig) -> Teacher:
    c = cfg.curriculum
    initial = sim_config(cfg).initial_ranges()
    if c.teacher == "none":
        return NoTeacher()
    if c.teacher == "reward_schedule":
        return _reward_schedule(c, initial)
    if c.teacher in ADAPTIVE_TEACHERS:
        teacher = _adaptive_teacher(cfg, initial)
        if not c.with_reward_schedule:
            return teacher
        try:
            return CombinedTeacher([_reward_schedule(c, initial), teacher])
        except ValueError as e:
            raise ConfigError(f"config: 'curriculum.with_reward_schedule': {e}; set it to false") from None
    if c.teacher == "widen":
        from sims.quadrotor.params import real_world_ranges

        end = max(1, int(c.widen.end_fraction * cfg.train.total_env_steps))
        return LinearSchedule([LinearItem(name, initial[name], (float(lo), float(hi)), 0, end)
                               for name, (lo, hi) in real_world_ranges(cfg.env.sim.vehicle).items()])
    if c.teacher == "linear":
        return linear_schedule(c.linear, initial)
    raise ConfigError(f"config: 'curriculum.teacher': unknown teacher {c.teacher!r}")


def _reward_schedule(c: CurriculumConfig, initial: Ranges) -> RewardWeightSchedule:
    rules = []
    for name, (factor, cap) in c.reward_schedule.weights.items():
        if name not in initial:
            raise ConfigError(f"config: 'curriculum.reward_schedule.weights': unknown parameter {name!r}")
        rules.append(WeightRule(name, float(initial[name][1]), float(factor), float(cap)))
    return RewardWeightSchedule(rules, c.reward_schedule.interval_env_steps)


ADAPTIVE_TEACHERS = ("adr", "privileged", "alp_gmm", "riac", "covar_gmm", "spdl", "dump", "sec", "filter")


def default_groups(vehicle: str | None = None) -> dict[str, dict[str, tuple[float, float]]]:
    """The bandit's default task families: start difficulty x randomization width.

    Starts: ``near`` (+-0.1 m, tilt <= 30 deg), ``mid`` (+-0.2 m, <= 60 deg), ``full``
    (+-0.2 m, <= 90 deg: the evaluation's distribution); each with the nominal model or
    under the vehicle's real range (``params.real_world_ranges``, the evaluation's
    randomized block; default vehicle if None). Parameters a group does not name keep the
    run's initial range.
    """
    from sims.quadrotor.params import REAL_WORLD_RANGES, real_world_ranges

    real = REAL_WORLD_RANGES if vehicle is None else real_world_ranges(vehicle)

    starts = {"near": (0.1, math.pi / 6), "mid": (0.2, math.pi / 3), "full": (0.2, math.pi / 2)}
    groups = {}
    for name, (r, tilt) in starts.items():
        box = {"task.start_radius_m": (r, r), "task.start_tilt_rad": (tilt, tilt)}
        groups[f"{name}_nominal"] = dict(box)
        groups[f"{name}_real"] = {**box, **real}
    return groups


def _bandit(cfg: RunConfig, initial: Ranges) -> GroupBandit:
    b = cfg.curriculum.bandit
    raw = {g: {k: tuple(v) for k, v in box.items()} for g, box in (b.groups or default_groups(cfg.env.sim.vehicle)).items()}
    names = sorted({n for box in raw.values() for n in box}, key=list(initial).index)
    groups = {g: {n: box.get(n, tuple(float(x) for x in initial[n])) for n in names} for g, box in raw.items()}
    return GroupBandit(cast(dict[str, Ranges], groups), cfg.env.num_envs, rule=cfg.curriculum.teacher, seed=cfg.seed, window=b.window,
                       ucb_c=b.ucb_c, temperature=b.temperature, td_alpha=b.td_alpha, band=cast(Range, tuple(b.band)),
                       min_count=b.min_count)


def _adaptive_teacher(cfg: RunConfig, initial: Ranges) -> Teacher:
    """The teachers of issue 6 (teachers/adr.py, privileged.py, alp_gmm.py, riac.py, covar_gmm.py, spdl.py,
    bandits.py)."""
    from sims.quadrotor.params import PARAMS, real_world_ranges

    real = real_world_ranges(cfg.env.sim.vehicle)
    c = cfg.curriculum
    n_envs, seed = cfg.env.num_envs, cfg.seed
    if c.teacher == "privileged":
        p = c.privileged
        if p.param not in initial:
            raise ConfigError(f"config: 'curriculum.privileged.param': unknown parameter {p.param!r}")
        limits = {q.name: q.limits for q in PARAMS}[p.param]
        if not limits[0] <= p.initial <= limits[1]:
            raise ConfigError(f"config: 'curriculum.privileged.initial': {p.initial} is outside {p.param}'s "
                              f"limits {limits}")
        return PrivilegedAnnealing(p.param, p.initial, limits, p.success_threshold, p.window, p.step, p.factor,
                                   p.min_value)
    if c.teacher in ("dump", "sec", "filter"):
        return _bandit(cfg, initial)
    if c.teacher == "adr":
        a = c.adr
        target = dict(a.target if a.target is not None else real)
        start = {}
        for name, (lo, hi) in target.items():
            ilo, ihi = initial[name]
            if not lo <= ilo <= ihi <= hi:
                raise ConfigError(f"config: 'curriculum.adr.target.{name}': {(lo, hi)} must contain the run's "
                                  f"initial range {(float(ilo), float(ihi))}")
            start[name] = (float(ilo), float(ihi))
        if a.threshold_low >= a.threshold_high:
            raise ConfigError("config: 'curriculum.adr': threshold_low must be < threshold_high")
        if a.metric == "length" and a.reference != "rollout":
            raise ConfigError("config: 'curriculum.adr.metric': 'length' needs curriculum.adr.reference: rollout")
        delta = {n: a.delta_fraction * (hi - lo) if hi > lo else 1e-9 for n, (lo, hi) in target.items()}
        return ADRTeacher(start, target, n_envs, delta=delta, multiplicative=a.multiplicative,
                          boundary_prob=a.boundary_prob, queue_length=a.queue_length, threshold_low=a.threshold_low,
                          threshold_high=a.threshold_high, metric=a.metric,
                          reference=a.reference, reference_window=a.reference_window, seed=seed)
    t = getattr(c, c.teacher)
    space = dict(t.space if t.space is not None else real)
    space = {n: (float(lo), float(hi)) for n, (lo, hi) in space.items() if hi > lo}
    if not space:
        raise ConfigError(f"config: 'curriculum.{c.teacher}.space' has no parameter with high > low")
    common = dict(seed=seed, reward_bounds=t.reward_bounds, signal=t.signal)
    if c.teacher == "alp_gmm":
        return ALPGMM(space, n_envs, fit_rate=t.fit_rate, potential_ks=t.potential_ks,
                      random_task_ratio=t.random_task_ratio, **common)
    if c.teacher == "covar_gmm":
        return CovarGMM(space, n_envs, fit_rate=t.fit_rate, potential_ks=t.potential_ks,
                        random_task_ratio=t.random_task_ratio, absolute_lp=t.absolute_lp, **common)
    if c.teacher == "riac":
        return RIAC(space, n_envs, max_region_size=t.max_region_size, nb_split_attempts=t.nb_split_attempts, **common)
    # spdl: start around the run's initial ranges, widen towards a uniform target over ``space``
    centre = [min(max(0.5 * (initial[n][0] + initial[n][1]), lo), hi) for n, (lo, hi) in space.items()]
    return SPDL(space, n_envs, init_mean=centre, init_std=t.init_std, update_episodes=t.update_episodes,
                offset_episodes=t.offset_episodes, alpha_offset=t.alpha_offset, zeta=t.zeta, max_kl=t.max_kl, **common)


def outcomes_from_arrays(a: dict[str, np.ndarray], param_names: list[str], env_steps: int) -> EpisodeOutcomes:
    return EpisodeOutcomes(
        returns=a["return"], success=a["survived"] > 0.5, params=a["params"], param_names=param_names,
        env_ids=a["env_ids"], env_steps=env_steps,
        extra={k: a[k] for k in ("length", "position_error_m", "tilt_deg", "yaw_deg") if k in a})


class StartStateCurriculum:
    """Glue between teachers.start_states.SnapshotStarts and ``env.set_start_states`` (quadrotor)."""

    key = "start_states"  # its state's key in the checkpoint
    learns = True  # it snapshots the running episodes of successful ones

    def __init__(self, cfg: RunConfig, env: Any) -> None:
        c = cfg.curriculum.start_states
        stop = None if c.stop_fraction >= 1.0 else int(c.stop_fraction * cfg.train.total_env_steps)
        self.buffer = SnapshotStarts(env.num_envs, int(env.relative_state.shape[1]), fraction=c.fraction,
                                     stop_env_steps=stop, capacity=c.capacity, per_episode=c.per_episode,
                                     clusters=c.clusters, seed=cfg.seed)

    def apply(self, env: Any, env_steps: int) -> int:
        """Before an iteration: give some envs a snapshot to start their next episode from."""
        ids, states = self.buffer.propose(env_steps)
        if len(ids):
            env.set_start_states(states, ids)
        return len(ids)

    def update(self, env: Any, outcomes: EpisodeOutcomes | None) -> None:
        """After an iteration: settle the finished episodes, snapshot the running ones."""
        ids = np.zeros(0, np.int64) if outcomes is None else outcomes.env_ids
        succ = np.zeros(0, bool) if outcomes is None else outcomes.success
        self.buffer.update(ids, succ, env.relative_state)

    def metrics(self) -> dict[str, float]:
        return self.buffer.metrics()

    def state_dict(self) -> dict:
        return self.buffer.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.buffer.load_state_dict(state)


def build_start_states(cfg: RunConfig, env: Any) -> StartStateCurriculum | None:
    if not cfg.curriculum.start_states.enabled:
        return None
    if cfg.env.name != "quadrotor" or not hasattr(env, "set_start_states"):
        raise ConfigError(f"config: 'curriculum.start_states.enabled': start states need env.name 'quadrotor' "
                          f"(an env with set_start_states), got {cfg.env.name!r}")
    return StartStateCurriculum(cfg, env)

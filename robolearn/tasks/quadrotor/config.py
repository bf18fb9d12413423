"""The quadrotor's config sections: ``env.sim`` (mirroring sims.quadrotor.QuadrotorConfig),
its teachers' settings, the start-state curricula and the finishing stages (polish, trim).

``robolearn.config`` composes them into the run config (same keys, same YAML schema).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal, Optional

from pydantic import BaseModel, Field, field_validator, model_validator

from ...config_base import KeyedError, Ranges, Strict, check_ranges_with, mirror_dataclass


def check_ranges(v: Ranges) -> Ranges:
    """Validate ``{param: (low, high)}`` against the quadrotor's parameter table (sims/quadrotor/params.py)."""
    from sims.quadrotor.config import check_range

    return check_ranges_with(check_range, v)


def _sim_model() -> type[BaseModel]:
    """A pydantic model mirroring ``sims.quadrotor.QuadrotorConfig`` (minus ``ranges``).

    Built from the dataclass so new simulator settings are accepted without edits here.
    """
    from sims.quadrotor.config import QuadrotorConfig

    return mirror_dataclass(QuadrotorConfig, "sims/quadrotor/config.py", "SimConfig", task=(
        Literal["hover", "reach"], Field(QuadrotorConfig.task, description="the task: hover at, or reach, a target")))


def _sim_field_error(e: ValueError) -> KeyedError | ValueError:
    """The simulator's ``QuadrotorConfig.<field>: why`` as an error on the sub-key ``<field>``
    (any other message as it is)."""
    import re

    m = re.match(r"QuadrotorConfig\.([\w/]+): (.*)", str(e))
    return KeyedError(m.group(1), m.group(2)) if m else ValueError(str(e))


def check_section(v: SimConfig) -> SimConfig:
    """``env.sim`` as the simulator checks it (``QuadrotorConfig.__post_init__``); its error
    names the sub-key (``env.sim.<field>``)."""
    from sims.quadrotor.config import QuadrotorConfig

    try:
        QuadrotorConfig(**v.model_dump())
    except ValueError as e:
        raise _sim_field_error(e) from None
    return v


def migrate_section(sim: dict) -> dict:
    """``env.sim`` of a run directory from before the vehicle presets (its model was
    l2f_paper) in today's keys; a one-line ConfigError naming the key if it cannot be."""
    from sims.quadrotor.config import migrate_sim_settings

    from ...errors import ConfigError

    try:
        return migrate_sim_settings(sim)
    except ValueError as e:
        k = _sim_field_error(e)
        raise ConfigError(f"config: 'env.sim.{k.key}': {k.msg}" if isinstance(k, KeyedError) else str(e)) from None


if TYPE_CHECKING:
    class SimConfig(Strict):
        """Built at run time from ``QuadrotorConfig``'s fields: to mypy they are Any."""

        task: str = "hover"

        def __getattr__(self, name: str) -> Any: ...
else:
    SimConfig = _sim_model()


# ---------------------------------------------------------------------- curriculum
class RewardScheduleConfig(Strict):
    """*Learning to Fly in Seconds*: scale reward weights every ``interval_env_steps``."""

    interval_env_steps: int = Field(100_000, ge=1, description="env steps between two multiplications of the weights")
    weights: dict[str, tuple[float, float]] = Field(
        default_factory=lambda: {"reward.action": (1.4, 0.5), "reward.position": (1.2, 40.0)},
        description="parameter -> [factor, cap]: the weight is multiplied by factor each interval, up to cap")


class ADRCurriculumConfig(Strict):
    """Automatic domain randomization (teachers/adr.py; OpenAI 2019, DeXtreme 2022).

    Ranges start at the run's initial ranges (the nominal model unless env.ranges says
    otherwise) and widen towards ``target``, the hard bounds (default: the simulator's
    params.real_world_ranges(env.sim.vehicle), the randomized block of the evaluation).
    """

    target: Optional[dict[str, tuple[float, float]]] = Field(
        None, description="parameter -> [low, high]: the widest ranges ADR may reach (null: the real-world ranges)")
    boundary_prob: float = Field(0.5, ge=0, le=1, description="OpenAI 2019 / TeachMyAgent 0.5; DeXtreme 0.4")
    queue_length: int = Field(10, ge=1, description="TeachMyAgent 10 (DeXtreme 256 with ~16k envs)")
    threshold_low: float = Field(0.5, ge=0, description="success rate of a boundary's queue")
    threshold_high: float = Field(
        0.8, ge=0, description="widen a boundary when its queue's score is at or above this")
    delta_fraction: float = Field(0.2, gt=0, le=1, description="step = this fraction of the target span")
    multiplicative: bool = Field(False, description="step boundaries by a factor instead of a fixed amount")
    metric: Literal["success", "return", "length"] = Field(
        "success", description="length: only with reference rollout")
    reference: Literal["absolute", "rollout"] = Field(
        "absolute", description="absolute: thresholds on the boundary queue's mean (OpenAI 2019); rollout: on its ratio "
                                "to the mean over the last reference_window rollout-worker episodes (teachers/adr.py, "
                                "opt-in)")
    reference_window: int = Field(
        200, ge=1, description="rollout episodes the reference mean is taken over (reference: rollout)")

    @field_validator("target")
    @classmethod
    def _check_target(cls, v: Ranges | None) -> Ranges | None:
        return v if v is None else check_ranges(v)


class PointTeacherConfig(Strict):
    """Shared by alp_gmm, riac, covar_gmm, spdl: which parameters they sample, and what they learn from."""

    space: Optional[dict[str, tuple[float, float]]] = Field(None, description="default: params.real_world_ranges(env.sim.vehicle)")
    signal: Literal["success", "return"] = Field("success", description="returns move with the reward schedule")
    reward_bounds: Optional[tuple[float, float]] = Field(None, description="scale returns to [0, 1] (None: as seen)")

    @field_validator("space")
    @classmethod
    def _check_space(cls, v: Ranges | None) -> Ranges | None:
        return v if v is None else check_ranges(v)


class ALPGMMConfig(PointTeacherConfig):
    fit_rate: int = Field(250, ge=2, description="Portelas et al. 2019")
    potential_ks: list[int] = Field(
        default_factory=lambda: list(range(2, 11)), description="numbers of Gaussian components tried at each fit (best by AIC)")
    random_task_ratio: float = Field(
        0.2, ge=0, le=1, description="share of tasks drawn uniformly instead of from the mixture")


class CovarGMMConfig(ALPGMMConfig):
    absolute_lp: bool = Field(False, description="use the absolute learning progress (Moulin-Frier et al. 2014)")


class RIACConfig(PointTeacherConfig):
    max_region_size: int = Field(200, ge=4, description="Baranes & Oudeyer 2009 / Portelas et al. 2019")
    nb_split_attempts: int = Field(50, ge=1, description="candidate splits tried when a region is full")


class SPDLConfig(PointTeacherConfig):
    update_episodes: int = Field(
        50, ge=2, description="TeachMyAgent's published SPDL settings (teachers/spdl.py): a small step every ~1-2 "
                              "iterations")
    offset_episodes: int = Field(100, ge=0, description="no update before (TeachMyAgent: two update periods)")
    max_kl: float = Field(0.8, gt=0, description="trust region of each update of the context distribution (KL)")
    zeta: float = Field(0.05, ge=0, description="weight of the KL to the target distribution")
    alpha_offset: int = Field(0, ge=0, description="updates before the KL penalty starts")
    init_std: float = Field(0.05, gt=0, description="of each parameter's span, around the initial ranges' centre")


class BanditCurriculumConfig(Strict):
    """dump | sec | filter (teachers/bandits.py): choose among named task groups.

    ``groups``: name -> {parameter: [low, high]}; a parameter a group omits keeps the run's
    initial range there. Default (null): robolearn/tasks/quadrotor/curriculum.py default_groups, starts of
    three difficulties (start radius and tilt) x nominal / real-world randomization.
    """

    groups: Optional[dict[str, dict[str, tuple[float, float]]]] = Field(
        None, description="name -> {parameter: [low, high]} task groups (null: the default groups)")
    window: int = Field(100, ge=1, description="recent episodes per group (DUMP's sliding window, the filter's rate)")
    ucb_c: float = Field(1.0, ge=0, description="DUMP's exploration bonus weight")
    temperature: float = Field(0.3, gt=0, description="softmax over scores scaled to [-1, 1]")
    td_alpha: float = Field(0.5, gt=0, le=1, description="SEC's TD(0) step")
    band: tuple[float, float] = Field(
        (0.25, 0.75), description="filter: keep groups with success rate in [low, high]")
    min_count: int = Field(10, ge=0, description="filter: groups with fewer episodes stay eligible")

    @field_validator("groups")
    @classmethod
    def _check_groups(cls, v: dict[str, Ranges] | None) -> dict[str, Ranges] | None:
        if v is None:
            return v
        if not v:
            raise ValueError("must name at least one group (or be null for the default groups)")
        for g, box in v.items():
            try:
                check_ranges(box)
            except KeyedError as e:
                raise KeyedError(f"{g}.{e.key}", e.msg) from None
            except ValueError as e:
                raise KeyedError(g, str(e)) from None
        return v

    @field_validator("band")
    @classmethod
    def _check_band(cls, v: tuple[float, float]) -> tuple[float, float]:
        if not 0.0 <= v[0] <= v[1] <= 1.0:
            raise ValueError(f"must satisfy 0 <= low <= high <= 1, got {list(v)}")
        return v


class StartStatesConfig(Strict):
    """Start-state curriculum (teachers/start_states.py, *Snapshot RL*): quadrotor only.

    Some resets start from states recorded in earlier *successful* episodes of this run
    (position relative to the target), combined with whichever ``teacher`` runs.
    """

    enabled: bool = Field(False, description="turn the start-state curriculum on")
    fraction: float = Field(0.5, ge=0, le=1, description="of resets that start from a snapshot")
    stop_fraction: float = Field(
        0.5, ge=0, le=1, description="Snapshot RL uses snapshots in the early phase only: none after this fraction of "
                                     "train.total_env_steps (1.0: the whole run)")
    capacity: int = Field(4096, ge=1, description="snapshots kept (ring buffer)")
    per_episode: int = Field(16, ge=1, description="snapshots kept per episode (one per iteration, thinned)")
    clusters: int = Field(
        8, ge=0, description="S3RL status classification: k-means clusters drawn uniformly (0/1: off)")


class HardStartsConfig(Strict):
    """Training resets from the hover start distribution's hard corner (robolearn/tasks/quadrotor/hard_starts.py)."""

    fraction: float = Field(0.0, ge=0, le=1, description="of the resets without a pending start state (0: off)")
    pool_draws: int = Field(200_000, ge=1, description="nominal starts drawn once; ~10 % lie in the corner")


class WidenConfig(Strict):
    """Teacher ``widen`` (quadrotor): every parameter of the vehicle's real range
    (sims.quadrotor.params.real_world_ranges) moves linearly from its nominal range to the
    real one, reaching it at ``end_fraction`` of train.total_env_steps, then stays there."""

    end_fraction: float = Field(0.6, gt=0, le=1, description="share of the budget at which the real range is reached")


class PolishConfig(Strict):
    """Evolution-strategies polish of the deterministic actor on hard-corner starts, after
    the last training iteration (robolearn/tasks/quadrotor/polish.py; quadrotor hover only)."""

    iterations: int = Field(0, ge=0, description="0: off")
    pairs: int = Field(8, ge=1, description="antithetic perturbation pairs per iteration")
    starts: int = Field(32, ge=1, description="hard-corner starts each perturbation flies per iteration")
    horizon_steps: int = Field(40, ge=1, description="control steps flown from each start")
    sigma: float = Field(0.01, gt=0, description="perturbation std, in weight units")
    lr: float = Field(0.03, gt=0, description="step along the rank-weighted perturbations")
    focus: float = Field(0.5, ge=0, le=1, description="share of each iteration's starts from the current frontier")
    anchor_coef: float = Field(0.3, ge=0, description="weight of the steady-flight command change in the fitness")


class TrimConfig(Strict):
    """Re-centre the deployable actor's position input on its steady hover offset, after the
    polish (robolearn/tasks/quadrotor/trim.py; quadrotor only)."""

    episodes: int = Field(0, ge=0, description="nominal episodes the offset is averaged over; 0: off")
    steps: int = Field(300, ge=1, description="control steps flown in each")
    keep: int = Field(100, ge=1, description="the last ``keep`` of them are averaged (settled flight)")

    @model_validator(mode="after")
    def _keep_within_steps(self) -> "TrimConfig":
        if self.keep > self.steps:
            raise ValueError(f"trim.keep ({self.keep}) must not exceed trim.steps ({self.steps})")
        return self

"""Run configuration: YAML files validated with pydantic (unknown keys are errors).

``load_config(path, overrides)`` reads a YAML file, applies ``--set a.b=value`` overrides
(values parsed as YAML), validates, and raises :class:`ConfigError` with one line naming
the offending key and what it accepts. ``dump_config`` writes the fully resolved config.
"""

from __future__ import annotations

import copy
import re
import typing
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Optional

import yaml
from pydantic import BaseModel, Field, ValidationError, ValidationInfo, field_validator

# The run-level model and the shared sections live here; each family's sections live beside
# its task (robolearn/tasks/<family>/config.py) and are composed below (same keys, same schema).
from .config_base import KeyedError, Ranges, Strict
from .tasks.arm.config import ArmSimConfig
from .tasks.arm.config import check_ranges as check_arm_ranges
from .tasks.arm.config import check_section as check_arm_section
from .tasks.quadrotor.config import (ADRCurriculumConfig, ALPGMMConfig, BanditCurriculumConfig, CovarGMMConfig,
                                     HardStartsConfig, PointTeacherConfig, PolishConfig, RewardScheduleConfig,
                                     RIACConfig, SimConfig, SPDLConfig, StartStatesConfig, TrimConfig, WidenConfig)
from .tasks.quadrotor.config import check_ranges as check_quadrotor_ranges
from .tasks.quadrotor.config import check_section as check_sim_section
from .tasks.quadrotor.config import migrate_section as migrate_sim_section
from .errors import ConfigError

_Strict = Strict  # the base of every section (robolearn/config_base.py)
DEFAULT_CONFIG = "configs/quadrotor_hover.yaml"
Activation = Literal["tanh", "relu", "elu", "silu"]


SEED_MAX = 2**32 - 1  # seeds feed numpy's legacy seeding, which takes 0 .. 2**32 - 1


# --------------------------------------------------------------------------- env
ENV_FAMILIES = ("quadrotor", "arm")
ENV_SECTIONS = {"quadrotor": "sim", "arm": "arm"}  # env.name -> the env section holding its settings
RANGE_CHECKS = {"quadrotor": check_quadrotor_ranges, "arm": check_arm_ranges}  # env.name -> its range check


def check_family_ranges(family: str, v: dict) -> dict:
    """Validate ``{param: (low, high)}`` against the parameter table of ``family``."""
    return RANGE_CHECKS.get(family, check_quadrotor_ranges)(v)


class EnvConfig(_Strict):
    name: Literal["quadrotor", "arm"] = Field(
        "quadrotor", description="The env family: \"quadrotor\" (sims.quadrotor, settings in ``sim``) or \"arm\" "
                                 "(sims.manipulation, settings in ``arm``); the other section is ignored.")
    num_envs: int = Field(4096, ge=1, description="parallel environments stepped together (one vector env)")
    sim: SimConfig = Field(
        default_factory=SimConfig, description="quadrotor simulator settings (sims.quadrotor.QuadrotorConfig)")
    arm: ArmSimConfig = Field(
        default_factory=ArmSimConfig, description="arm simulator settings (sims.manipulation.ArmConfig) plus its thread count")
    ranges: dict[str, tuple[float, float]] = Field(
        default_factory=dict, description="Per-env parameter ranges [low, high] used for training (names: the family's PARAMS, "
                                          "sims/quadrotor/params.py or sims/manipulation/params.py).")
    train_real_range: bool = Field(False, description="quadrotor: train under the vehicle's documented real "
                                   "range (sims.quadrotor.params.real_world_ranges); env.ranges override it "
                                   "per parameter")

    @classmethod
    def _check_ranges(cls, v: Ranges) -> Ranges:
        """Quadrotor parameter ranges (also used by the curriculum sections)."""
        return check_quadrotor_ranges(v)

    @field_validator("ranges")
    @classmethod
    def _check_env_ranges(cls, v: Ranges, info: ValidationInfo) -> Ranges:
        return check_family_ranges(info.data.get("name", "quadrotor"), v)

    # each family's section is checked by its own code (robolearn/tasks/<family>/config.py)
    @field_validator("sim")
    @classmethod
    def _check_sim(cls, v: SimConfig) -> SimConfig:
        return check_sim_section(v)

    @field_validator("arm")
    @classmethod
    def _check_arm(cls, v: ArmSimConfig) -> ArmSimConfig:
        return check_arm_section(v)


# ---------------------------------------------------------------------- networks
class IntegratorConfig(_Strict):
    """The actor's integrator state (robolearn/integrator.py): a clamped integral of some
    policy-observation entries, appended to the actor's and the critic's input."""

    index: list[int] = Field(default_factory=list, description="policy-observation entries integrated "
                             "(quadrotor: [0, 1, 2], the position error); empty: a stateless actor")
    gain: float = Field(0.01, gt=0, description="per-step gain (0.01 = the 10 ms control period: "
                        "an integral in m s)")
    limit: float = Field(0.5, gt=0, description="anti-windup clamp on each integral entry")

    def spec(self) -> Any:
        """The ``IntegratorSpec``, or None when ``index`` is empty."""
        if not self.index:
            return None
        from .integrator import IntegratorSpec

        return IntegratorSpec(tuple(self.index), self.gain, self.limit)


class NetworkConfig(_Strict):
    actor_hidden: list[int] = Field(
        default_factory=lambda: [32, 32], description="hidden layer sizes of the actor MLP (the deployed policy)")
    actor_activation: Activation = Field("tanh", description="activation of the actor's hidden layers")
    critic_hidden: list[int] = Field(
        default_factory=lambda: [128, 128], description="hidden layer sizes of the critic MLP (training only)")
    critic_activation: Activation = Field("elu", description="activation of the critic's hidden layers")
    obs_clip: float = Field(10.0, gt=0, description="normalized observations are clipped to [-obs_clip, obs_clip]")
    init_action: Literal["hover", "zero"] = Field(
        "hover", description="Initial mean action of the actor: \"hover\" = the throttle that carries the nominal "
                             "vehicle, \"zero\" = the middle of the action range.")
    max_actor_params: int = Field(
        4096, ge=1, description="refuse actors with more parameters than this (microcontroller budget)")
    integrator: IntegratorConfig = Field(default_factory=IntegratorConfig,
                                         description="the actor's integrator state (off by default)")

    @field_validator("actor_hidden", "critic_hidden")
    @classmethod
    def _positive(cls, v: list[int]) -> list[int]:
        if not v or any(h < 1 for h in v):
            raise ValueError("must be a non-empty list of positive layer sizes")
        return v


# ---------------------------------------------------------------------- algorithms
class PPOConfig(_Strict):
    rollout_steps: int = Field(
        16, ge=1, description="steps of every env per rollout (samples per update = rollout_steps x num_envs)")
    epochs: int = Field(4, ge=1, description="passes over each rollout per update")
    minibatches: int = Field(4, ge=1, description="minibatches each epoch is split into")
    lr: float = Field(
        1e-3, gt=0, le=1, description="Adam learning rate (the start value under the adaptive schedule)")
    lr_schedule: Literal["fixed", "adaptive"] = Field("adaptive", description="adaptive: keep KL near target_kl")
    target_kl: float = Field(
        0.01, gt=0, description="adaptive schedule: the KL divergence per minibatch the learning rate is steered to")
    lr_min: float = Field(1e-5, gt=0, le=1, description="adaptive schedule: lower bound of the learning rate")
    lr_max: float = Field(1e-2, gt=0, le=1, description="adaptive schedule: upper bound of the learning rate")
    gamma: float = Field(0.99, ge=0, le=1, description="discount factor per control step")
    gae_lambda: float = Field(0.95, ge=0, le=1, description="GAE lambda (bias-variance trade-off of the advantages)")
    clip_coef: float = Field(0.2, gt=0, description="PPO's probability-ratio clip (epsilon)")
    clip_value: bool = Field(False, description="also clip the value update around the rollout's values")
    value_clip_coef: float = Field(0.2, gt=0, description="clip range of the value update when clip_value is true")
    vf_coef: float = Field(1.0, ge=0, description="weight of the value loss")
    ent_coef: float = Field(0.0, ge=0, description="weight of the entropy bonus")
    max_grad_norm: float = Field(1.0, gt=0, description="gradients are clipped to this global L2 norm")
    init_std: float = Field(0.3, gt=0, description="initial standard deviation of the Gaussian policy (action units)")
    anneal_start: float = Field(
        1.0, ge=0, le=1, description="Step-size anneal: from this fraction of train.total_env_steps on, the step size falls "
                                     "linearly to anneal_factor x its value at the end (the target KL when lr_schedule is "
                                     "adaptive, the learning rate when fixed). 1.0: no anneal.")
    anneal_factor: float = Field(
        0.01, gt=0, le=1, description="the step size at the end of the run, as a fraction of its start value")
    symmetry_coef: float = Field(
        0.0, ge=0, description="Weight of a mirror-symmetry loss on the actor (Yu, Turk & Liu 2018, \"Learning Symmetric"
                               " and Low-Energy Locomotion\"): the squared difference between the action mean and the "
                               "mapped mean of the observation's image under one of the env's policy_symmetries. 0: off.")
    symmetry_fraction: float = Field(
        1.0, gt=0, le=1, description="Share of each minibatch's rows the symmetry loss is computed on; each row is paired with"
                                     " one symmetry (round-robin over the env's), so the cost is one actor call on that share.")
    smoothness_coef: float = Field(
        0.0, ge=0, description="Weight of CAPS' temporal smoothness loss (Mysore et al. 2021, \"Regularizing Action Policies "
                               "for Smooth Control with Reinforcement Learning\"): the mean L2 distance between the action "
                               "means of consecutive states of one episode. 0: off.")
    smoothness_spatial_coef: float = Field(
        0.0, ge=0, description="Weight of CAPS' spatial smoothness loss: the mean L2 distance between the action means of a "
                               "state and of the state plus Gaussian noise (smoothness_spatial_std, normalized units). 0: off.")
    smoothness_spatial_std: float = Field(
        0.05, gt=0, description="std of the spatial smoothness loss's perturbation, in units of the actor's normalized "
                                "observation (i.e. of each entry's running std)")
    smoothness_after_steps: int = Field(
        0, ge=0, description="The smoothness losses weigh only rows at least this many steps into their episode: 0 "
                             "everywhere; e.g. 100 (1 s at 100 Hz) leaves the recovery from a hard start free to command "
                             "hard and asks for a smooth command once the vehicle has settled")
    smoothness_fraction: float = Field(
        0.25, gt=0, le=1, description="Share of each minibatch's rows the smoothness losses are computed on (one extra actor "
                                      "call on that share per loss)")
    normalize_advantages: bool = Field(True, description="normalize advantages per minibatch (zero mean, unit std)")
    normalize_values: bool = Field(
        True, description="critic regresses returns normalized by their running statistics")


class TD3Config(_Strict):
    buffer_size: int = Field(1_000_000, ge=1, description="replay buffer capacity (transitions)")
    batch_size: int = Field(256, ge=1, description="transitions per gradient step")
    learning_starts: int = Field(
        10_000, ge=0, description="env steps of random actions before the first gradient step")
    gamma: float = Field(0.99, ge=0, le=1, description="discount factor per control step")
    tau: float = Field(0.005, gt=0, le=1, description="Polyak factor of the target networks")
    actor_lr: float = Field(1e-3, gt=0, le=1, description="Adam learning rate of the actor")
    critic_lr: float = Field(1e-3, gt=0, le=1, description="Adam learning rate of the critics")
    exploration_noise: float = Field(0.1, ge=0, description="std of the Gaussian exploration noise (action units)")
    policy_noise: float = Field(0.2, ge=0, description="std of the target policy smoothing noise (action units)")
    noise_clip: float = Field(0.5, ge=0, description="target policy smoothing noise is clipped to +-noise_clip")
    policy_delay: int = Field(2, ge=1, description="critic updates per actor update")
    updates_per_step: float = Field(1.0, gt=0, description="gradient steps per vector-env step")
    max_grad_norm: float = Field(10.0, gt=0, description="gradients are clipped to this global L2 norm")


# ---------------------------------------------------------------------- curriculum
class LinearScheduleItem(_Strict):
    param: str = Field(description="the parameter whose range moves (sims/quadrotor/params.py)")
    start: tuple[float, float] = Field(description="[low, high] at begin_env_steps")
    end: tuple[float, float] = Field(description="[low, high] at end_env_steps")
    begin_env_steps: int = Field(0, ge=0, description="env step at which the range starts moving from start")
    end_env_steps: int = Field(ge=1, description="env step at which the range reaches end")


class PrivilegedCurriculumConfig(_Strict):
    """Privileged-action annealing (teachers/privileged.py): a helping coefficient driven to 0."""

    param: str = Field("privileged.assist_gain", description="the privileged parameter annealed to 0")
    initial: float = Field(1.0, ge=0, description="its value at the start of the run")
    success_threshold: float = Field(
        0.8, ge=0, le=1, description="lower the coefficient when the window's success rate reaches this")
    window: int = Field(
        50, ge=1, description="episodes with the current coefficient per decision; with ~30 finished episodes per "
                              "iteration (512 envs, 5 s episodes) 50 x 5 steps of 0.2 fit in a fraction of the default "
                              "budget")
    step: float = Field(0.2, gt=0, description="amount the coefficient is lowered by per decision")
    factor: Optional[float] = Field(None, ge=0, lt=1, description="multiplicative instead of ``step``")
    min_value: float = Field(0.02, ge=0, description="at or below: snap to 0 (and never come back)")


class CurriculumConfig(_Strict):
    teacher: Literal["none", "reward_schedule", "linear", "widen", "adr", "privileged", "alp_gmm", "riac", "covar_gmm",
                     "spdl", "dump", "sec", "filter"] = Field(
        "none", description="the curriculum teacher (none: fixed ranges and weights)")
    reward_schedule: RewardScheduleConfig = Field(
        default_factory=RewardScheduleConfig, description="settings of teacher reward_schedule")
    widen: WidenConfig = Field(default_factory=lambda: WidenConfig(),
                               description="settings of teacher widen: nominal to the vehicle's real range")
    linear: list[LinearScheduleItem] = Field(
        default_factory=list, description="settings of teacher linear: ranges moved linearly over env steps")
    with_reward_schedule: bool = Field(
        True, description="The teachers adr .. filter run alongside the reward-weight schedule above (they change "
                          "other parameters) unless this is false.")
    adr: ADRCurriculumConfig = Field(default_factory=ADRCurriculumConfig, description="settings of teacher adr")
    privileged: PrivilegedCurriculumConfig = Field(
        default_factory=PrivilegedCurriculumConfig, description="settings of teacher privileged")
    alp_gmm: ALPGMMConfig = Field(default_factory=ALPGMMConfig, description="settings of teacher alp_gmm")
    riac: RIACConfig = Field(default_factory=RIACConfig, description="settings of teacher riac")
    covar_gmm: CovarGMMConfig = Field(default_factory=CovarGMMConfig, description="settings of teacher covar_gmm")
    spdl: SPDLConfig = Field(default_factory=SPDLConfig, description="settings of teacher spdl")
    bandit: BanditCurriculumConfig = Field(default_factory=BanditCurriculumConfig, description="dump, sec, filter")
    start_states: StartStatesConfig = Field(
        default_factory=StartStatesConfig, description="start-state curriculum (runs alongside the teacher)")
    hard_starts: HardStartsConfig = Field(
        default_factory=HardStartsConfig, description="resets from the hard corner of the start distribution")


class DistillConfig(_Strict):
    """Privileged teacher distilled into the deployable student (robolearn/distill.py).

    With ``teacher_env_steps`` > 0 the run first trains a teacher with PPO whose actor sees the
    critic's privileged view (true vehicle parameters, disturbance, rotor speeds), then fits
    the student (the configured actor, on the policy view) to the teacher's commands with
    DAgger on the states the student itself visits, then trains the student with PPO for
    ``train.total_env_steps``, starting from the distilled actor."""

    teacher_env_steps: int = Field(0, ge=0, description="PPO env steps of the privileged teacher; 0: no teacher")
    teacher_hidden: list[int] = Field(default_factory=lambda: [64, 64], description="teacher actor's hidden layers")
    rounds: int = Field(4, ge=1, description="DAgger rounds")
    steps_per_round: int = Field(100, ge=1, description="control steps all envs fly per round")
    epochs: int = Field(8, ge=1, description="passes over the aggregated data after each round")
    minibatch: int = Field(4096, ge=16, description="regression minibatch size")
    lr: float = Field(1e-3, gt=0, description="Adam step size of the regression")
    beta0: float = Field(0.5, ge=0, le=1, description="round 0: share of envs that fly the teacher's command")
    student_init_std: float = Field(0.2, gt=0, description="exploration std the student's PPO starts from")
    kickstart_coef: float = Field(1.0, ge=0, description="weight of the student's squared distance to the "
                                  "teacher's command in its PPO loss at the start; falls linearly to 0")
    kickstart_fraction: float = Field(0.5, gt=0, le=1, description="share of train.total_env_steps over "
                                      "which the kickstart weight falls to 0")
    critic_warmup_iterations: int = Field(8, ge=0, description="first PPO iterations of the student that fit "
                                          "the fresh critic only, the distilled actor held fixed")


# ---------------------------------------------------------------------- run
class TrainConfig(_Strict):
    total_env_steps: int = Field(2_000_000, ge=1, description="training budget in env steps (all envs together)")
    max_wall_time_s: Optional[float] = Field(None, gt=0, description="stop early when exceeded (None: no limit)")
    torch_threads: int = Field(
        2, ge=1, description="torch CPU threads (1 makes runs bit-reproducible, including resumed ones)")
    checkpoint_every_s: float = Field(5.0, gt=0, description="also at the end; wall-clock cadence")
    keep_checkpoints: int = Field(3, ge=0, description="0 keeps all")
    progress: bool = Field(True, description="rich progress bar")


class EvalConfig(_Strict):
    episodes: int = Field(1000, ge=1, description="evaluation episodes per block (nominal, randomized)")
    episode_steps: int = Field(500, ge=1, description="control steps per evaluation episode")
    seed: int = Field(
        1_000_003, ge=0, le=SEED_MAX, description="seed of the evaluation's start states (0 .. 2**32-1)")
    randomized: bool = Field(True, description="also evaluate under domain randomization")
    randomized_ranges: Optional[dict[str, tuple[float, float]]] = Field(
        None, description="Ranges of the randomized block; default (null): the simulator's real-world range of the vehicle "
                          "(sims.quadrotor.params.REAL_WORLD_RANGES), whatever the training used.")

    @field_validator("randomized_ranges")
    @classmethod
    def _check_eval_ranges(cls, v: Ranges | None) -> Ranges | None:
        return v if v is None else check_quadrotor_ranges(v)
    plots: bool = Field(True, description="write the learning-curve and flight plots")
    vehicles: list[str] = Field(default_factory=list, description="other vehicle presets flown at their "
                                "nominal parameters, one eval block each (e.g. [l2f_paper])")


class RunConfig(_Strict):
    algo: Literal["ppo", "td3"] = Field("ppo", description="training algorithm")
    seed: int = Field(
        0, ge=0, le=SEED_MAX, description="seed of the run (0 .. 2**32-1): networks, env streams, curricula")
    device: Literal["cpu", "cuda"] = Field(
        "cpu", description="where the networks (and, with cuda, the quadrotor simulator) run")
    out_root: str = Field("runs", description="run directories go here unless --out is given")
    env: EnvConfig = Field(default_factory=EnvConfig, description="the environment")
    network: NetworkConfig = Field(default_factory=NetworkConfig, description="actor and critic networks")
    ppo: PPOConfig = Field(default_factory=PPOConfig, description="PPO settings (algo: ppo)")
    td3: TD3Config = Field(default_factory=TD3Config, description="TD3 settings (algo: td3)")
    curriculum: CurriculumConfig = Field(
        default_factory=CurriculumConfig, description="curriculum: teacher, schedules, start states")
    polish: PolishConfig = Field(
        default_factory=PolishConfig, description="evolution-strategies polish after training")
    trim: TrimConfig = Field(
        default_factory=TrimConfig, description="trim of the actor's position input after the polish")
    distill: DistillConfig = Field(default_factory=DistillConfig,
                                   description="privileged teacher distilled into the student before its PPO")
    train: TrainConfig = Field(default_factory=TrainConfig, description="budget, threads and checkpoints")
    eval: EvalConfig = Field(default_factory=EvalConfig, description="the final evaluation")

    @property
    def task(self) -> str:
        """The task name of the configured env family (hover, reach, push, lift, ...)."""
        return str(getattr(self.env, ENV_SECTIONS[self.env.name]).task)


# ---------------------------------------------------------------------- YAML I/O
class _Loader(yaml.SafeLoader):
    """SafeLoader that also reads ``3e-4`` (no dot) as a float, like YAML 1.2 does."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def parse_yaml(text: str, what: str) -> Any:
    try:
        return yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ConfigError(f"{what}: invalid YAML{where}: {problem}") from None


def read_config_file(path: str | Path, _chain: tuple[Path, ...] = ()) -> dict:
    """Parse a YAML config file; a top-level ``base: FILE`` (relative to this file) is read
    first and this file's keys are merged over it (mappings key by key, anything else replaced)."""
    p = Path(path)
    if not p.exists():
        raise ConfigError(f"config file not found: {p}" + (f" (the base of {_chain[-1]})" if _chain else ""))
    if not p.is_file():
        raise ConfigError(f"config path is not a file: {p}")
    try:
        text = p.read_text()
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"cannot read config file {p}: {e}") from None
    data = parse_yaml(text, str(p))
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: the top level must be a mapping of keys, got {type(data).__name__}")
    if "base" not in data:
        return data
    base = data.pop("base")
    if not isinstance(base, str) or not base.strip():
        raise ConfigError(f"{p}: 'base' must be the path of another config file (relative to this one), got {base!r}")
    base_path = (p.parent / base).resolve()
    chain = _chain + (p.resolve(),)
    if base_path in chain:
        raise ConfigError(f"{p}: 'base' files form a loop: " + " -> ".join(str(c) for c in chain + (base_path,)))
    return _merge(read_config_file(base_path, chain), data)


def _merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def apply_override(data: dict, item: str) -> None:
    """Apply one ``a.b.c=value`` override in place (value parsed as YAML)."""
    if "=" not in item:
        raise ConfigError(f"--set {item!r}: expected KEY=VALUE, e.g. --set ppo.lr=3e-4")
    key, _, raw = item.partition("=")
    key = key.strip()
    parts = key.split(".")
    if not key or any(not p for p in parts):
        raise ConfigError(f"--set {key!r}: bad key (empty part); use dotted names like ppo.lr")
    value = parse_yaml(raw, f"--set {key}") if raw.strip() else None
    node = data
    # env.ranges keys contain dots themselves: env.ranges.randomization.mass_scale=[0.9,1.1]
    for i, p in enumerate(parts[:-1]):
        if parts[:i + 1] == ["env", "ranges"]:
            node = node.setdefault("ranges", {}) if isinstance(node.get("ranges", {}), dict) else node
            node[".".join(parts[i + 1:])] = value
            return
        nxt = node.get(p)
        if nxt is None:
            nxt = node[p] = {}
        if not isinstance(nxt, dict):
            raise ConfigError(f"--set {key}: {'.'.join(parts[:i + 1])!r} is not a section")
        node = nxt
    node[parts[-1]] = value


def _describe_type(ann: Any) -> str:
    origin = typing.get_origin(ann)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(ann))
    if isinstance(ann, type) and issubclass(ann, BaseModel):
        return "a mapping with keys " + ", ".join(ann.model_fields)
    if isinstance(ann, type):
        return ann.__name__
    return str(ann).replace("typing.", "")


def _walk(model: type[BaseModel], loc: tuple) -> tuple[type[BaseModel] | None, Any]:
    """(model owning the last key, annotation of the field) following ``loc``."""
    cur: Any = model
    owner = None
    ann = None
    for k in loc:
        if isinstance(cur, type) and issubclass(cur, BaseModel):
            owner = cur
            f = cur.model_fields.get(str(k))
            if f is None:
                return owner, None
            ann = cur = f.annotation
        else:
            args = [a for a in typing.get_args(cur) if a is not type(None)]
            origin = typing.get_origin(cur)
            if origin in (list, tuple) and args:
                ann = cur = args[0]
            elif origin is dict and len(args) == 2:
                ann = cur = args[1]
            elif len(args) == 1:
                ann = cur = args[0]
            else:
                return owner, ann
    return owner, ann


def format_validation_error(e: ValidationError, model: type[BaseModel] | None = None) -> str:
    """One line for the first error: the dotted key, what went wrong and what is allowed."""
    model = model or RunConfig
    err = e.errors()[0]
    loc = tuple(x for x in err["loc"] if not (isinstance(x, str) and x.startswith("function-")))
    key = ".".join(str(x) for x in loc) or "<top level>"
    if err["type"] == "extra_forbidden":
        owner, _ = _walk(model, loc[:-1]) if len(loc) > 1 else (model, None)
        if len(loc) > 1:
            owner_ann = _walk(model, loc[:-1])[1]
            owner = owner_ann if isinstance(owner_ann, type) and issubclass(owner_ann, BaseModel) else owner
        allowed = ", ".join(owner.model_fields) if owner else "?"
        where = "'" + ".".join(str(x) for x in loc[:-1]) + "'" if len(loc) > 1 else "the top level"
        return f"config: unknown key {key!r}; allowed keys in {where}: {allowed}"
    msg = err["msg"]
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, "):]
    if err["type"] == "missing":
        return f"config: {key!r} is required"
    _, ann = _walk(model, loc)
    got = err.get("input")
    got_s = repr(got)
    if len(got_s) > 60:
        got_s = got_s[:57] + "..."
    expected = f" (expected {_describe_type(ann)})" if ann is not None and "one of" not in msg else ""
    if err["type"].startswith("literal_error") or err["type"] == "value_error":
        expected = ""
    if err["type"] == "value_error":
        exc = err.get("ctx", {}).get("error")
        if isinstance(exc, KeyedError):  # a validator named the sub-key: env.ranges.<param>, env.sim.<field>
            key, msg = f"{key}.{exc.key}", exc.msg
        return f"config: {key!r}: {msg}".replace("\n", " ")
    return f"config: {key!r} = {got_s}: {msg}{expected}".replace("\n", " ")


def validate_config(data: dict) -> RunConfig:
    """A RunConfig from a dict (a YAML file's content), or a one-line ConfigError."""
    env = data.get("env")
    if isinstance(env, dict) and isinstance(env.get("sim"), dict):
        data = {**data, "env": {**env, "sim": migrate_sim_section(env["sim"])}}
    try:
        return RunConfig.model_validate(data)
    except ValidationError as e:
        raise ConfigError(format_validation_error(e)) from None


def load_config(path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = (),
                base: dict | None = None) -> RunConfig:
    """Read ``path`` (or start from ``base``), apply overrides, validate."""
    # a deep copy: overrides write into nested sections, never into the caller's ``base``
    data = copy.deepcopy(base) if base is not None else (read_config_file(path) if path is not None else {})
    for item in overrides:
        apply_override(data, item)
    return validate_config(data)


def describe_config(model: type[BaseModel] | None = None, prefix: str = "") -> list[str]:
    """One line per config key, ``key (type, default): description``, sections recursively
    (``robolearn train --help-config``)."""
    model = model or RunConfig
    lines = []
    for name, f in model.model_fields.items():
        key = f"{prefix}{name}"
        ann = f.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            lines.append(f"{key}: {f.description}")
            lines += describe_config(ann, key + ".")
            continue
        default = "required" if f.is_required() else f"default {_default_repr(f)}"
        lines.append(f"{key} ({_describe_type(ann)}, {default}): {f.description}")
        args = [a for a in typing.get_args(ann) if isinstance(a, type) and issubclass(a, BaseModel)]
        for sub in args:  # list[LinearScheduleItem]: the keys of each item
            lines += describe_config(sub, key + "[].")
    return lines


def _default_repr(f: Any) -> str:
    v = f.get_default(call_default_factory=True)
    if isinstance(v, BaseModel):
        return "{...}"
    s = yaml.safe_dump(v, default_flow_style=True, width=10_000).strip()
    s = s.removesuffix("...").strip()
    return s if len(s) <= 80 else s[:77] + "..."


def config_to_dict(cfg: RunConfig) -> dict:
    d = cfg.model_dump(mode="json")
    return d


def dump_config(cfg: RunConfig) -> str:
    return yaml.safe_dump(config_to_dict(cfg), sort_keys=False, default_flow_style=None, width=100)


def actor_param_count(obs_dim: int, hidden: list[int], act_dim: int) -> int:
    n, d = 0, obs_dim
    for h in list(hidden) + [act_dim]:
        n += d * h + h
        d = h
    return n


__all__ = [
    "RunConfig", "EnvConfig", "NetworkConfig", "PPOConfig", "TD3Config", "CurriculumConfig",
    "TrainConfig", "EvalConfig", "load_config", "validate_config", "dump_config", "read_config_file",
    "apply_override", "format_validation_error", "DEFAULT_CONFIG", "describe_config", "SEED_MAX",
    # the families' sections, defined beside their tasks
    "SimConfig", "ArmSimConfig", "ADRCurriculumConfig", "ALPGMMConfig", "BanditCurriculumConfig", "CovarGMMConfig",
    "HardStartsConfig", "PointTeacherConfig", "PolishConfig", "RewardScheduleConfig", "RIACConfig", "SPDLConfig",
    "StartStatesConfig", "TrimConfig", "WidenConfig", "KeyedError", "Strict",
]

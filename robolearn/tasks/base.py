"""The contract between the trainer's core and a robot family (``env.name``).

The core (``robolearn.train``, the CLI, the SB3 callback, ``robolearn.envs``) never asks
which family a run is; it calls the :class:`Task` that ``robolearn.tasks.task_for(cfg)``
picks once. A task is a frozen record of plain functions and constants, so a family is
read top to bottom in its own folder (``robolearn/tasks/<family>/__init__.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Protocol

if TYPE_CHECKING:
    import numpy as np

    from firmware_export.policy_file import PolicySpec
    from teachers.base import EpisodeOutcomes, Teacher

    from ..config import RunConfig
    from ..logging.run_dir import RunDir


class ResetCurriculum(Protocol):
    """A curriculum that chooses where some training episodes start (beside the teacher).

    The runner calls ``apply`` before every iteration and ``update`` after it (with the
    episodes that finished, or None), in the order the task lists them; ``key`` names its
    state in the checkpoint (and its config switch's section).
    """

    key: str
    learns: bool  # True: it needs ``update`` with the finished episodes to do anything

    def apply(self, env: Any, env_steps: int) -> int: ...

    def update(self, env: Any, outcomes: EpisodeOutcomes | None) -> None: ...

    def metrics(self) -> dict[str, float]: ...

    def state_dict(self) -> dict: ...

    def load_state_dict(self, state: dict) -> None: ...


@dataclass(frozen=True)
class StageContext:
    """What a finishing stage may use: the run, its directory and a progress callback
    (``progress(text)`` refreshes the progress bar's line)."""

    cfg: RunConfig
    run: RunDir
    resets: tuple[Any, ...]  # the run's ResetCurriculum objects (a stage may reuse one's pool)
    progress: Callable[[str], None]


@dataclass(frozen=True)
class FinishStage:
    """A step after the last training iteration that turns the actor into a better one.

    ``key`` is the config switch that turns it on (``polish.iterations``); ``name`` its entry
    in eval.json and in ``time_breakdown_s``. ``run(ctx, policy)`` returns the new policy
    (a :class:`~firmware_export.policy_file.PolicySpec`) and a summary. A stage's wall time counts as training time.
    """

    name: str
    key: str
    enabled: Callable[[RunConfig], bool]
    run: Callable[[StageContext, PolicySpec], tuple[PolicySpec, dict]]
    stateless_only: bool = True  # it flies the actor without an integrator state


@dataclass(frozen=True)
class Switch:
    """A config switch only some families have; another family refuses it with ``why``."""

    key: str
    on: Callable[[RunConfig], bool]
    why: str  # the ConfigError line; ``{name}`` becomes the run's env.name


@dataclass(frozen=True)
class Task:
    """One robot family: everything the core needs to train, log and evaluate it."""

    name: str  # env.name
    make_env: Callable[..., Any]  # (cfg, num_envs=None, seed=None, ranges=None, backend=None, **sim_changes)
    hover_action: Callable[[RunConfig], float]  # network.init_action "hover"; may raise a UserError
    build_teacher: Callable[[RunConfig], Teacher]  # curriculum.teacher
    build_resets: Callable[[RunConfig, Any], tuple[ResetCurriculum, ...]]  # (cfg, env) -> start curricula
    outcomes: Callable[[dict[str, np.ndarray], list[str], int], EpisodeOutcomes]  # EpisodeStats arrays -> teacher
    success_key: str  # the EpisodeStats array an episode's success is read from
    episode_columns: tuple[str, ...]  # metrics.csv columns of the episode summary (after return, length)
    progress_line: Callable[[Callable[[str, str], str]], str]  # the progress bar's episode part, from g(key, fmt)
    evaluate: Callable[..., tuple[dict, Any]]  # (actor, cfg, episodes, seed, train_info, record) -> (eval, record)
    write_plots: Callable[[RunDir, RunConfig, Any], None]  # the evaluation's plots from its record
    summary: Callable[[dict], list[str]]  # lines `robolearn train` prints after the evaluation
    eval_table: Callable[[dict], Any]  # the rich Table `robolearn eval` prints
    resume_fixed: tuple[str, ...] = ()  # config keys a resumed run of this family cannot change
    finish: tuple[FinishStage, ...] = ()  # after training, in this order
    switches: tuple[Switch, ...] = ()  # config switches of this family that others refuse
    video: Callable[[RunConfig, Any, Any], tuple[Any, str | None]] | None = None  # (cfg, record, path)


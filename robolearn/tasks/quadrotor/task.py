"""The quadrotor family's :class:`~robolearn.tasks.base.Task` (see the package docstring)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..base import Switch, Task
from . import report
from .curriculum import build_start_states, build_teacher, outcomes_from_arrays
from .env import hover_action, make_env
from .hard_starts import build_hard_starts
from .stages import POLISH, TRIM

if TYPE_CHECKING:
    import torch

    from ...config import RunConfig
    from ...logging.run_dir import RunDir


def build_resets(cfg: RunConfig, env: Any) -> tuple:
    """Start states (``curriculum.start_states``), then hard starts (``curriculum.hard_starts``),
    each when switched on; the hard starts go to envs the start states left without one."""
    return tuple(r for r in (build_start_states(cfg, env), build_hard_starts(cfg, env)) if r is not None)


def evaluate(actor: torch.nn.Module, cfg: RunConfig, episodes: int | None = None, seed: int | None = None,
             train_info: dict | None = None, record: int | None = None) -> tuple[dict, Any]:
    """``evaluate.evaluate``; the record is the flight of nominal env 0 (``record`` is ignored)."""
    from .evaluate import evaluate as run

    return run(actor, cfg, episodes=episodes, seed=seed, train_info=train_info)


def write_plots(run: RunDir, cfg: RunConfig, flight: Any) -> None:
    if flight is not None:
        from .plots import flight_plot

        flight_plot(flight, run.plots / "flight.png")


TASK = Task(
    name="quadrotor",
    make_env=make_env,
    hover_action=hover_action,
    build_teacher=build_teacher,
    build_resets=build_resets,
    outcomes=outcomes_from_arrays,
    success_key="survived",
    episode_columns=("episode/survival", "episode/position_error_m", "episode/tilt_deg", "episode/yaw_deg"),
    progress_line=report.progress_line,
    evaluate=evaluate,
    write_plots=write_plots,
    summary=report.summary,
    eval_table=report.eval_table,
    resume_fixed=("env.sim.task", "env.sim.action_history"),
    finish=(POLISH, TRIM),
    switches=(
        Switch("polish.iterations", POLISH.enabled, "config: 'polish.iterations': needs env.name 'quadrotor', "
               "got {name}: set it to 0"),
        Switch("trim.episodes", TRIM.enabled, "config: 'trim.episodes': needs env.name 'quadrotor', got {name}: "
               "set it to 0"),
        Switch("curriculum.start_states.enabled", lambda cfg: cfg.curriculum.start_states.enabled,
               "config: 'curriculum.start_states.enabled': start states need env.name 'quadrotor' (an env with "
               "set_start_states), got {name}"),
        Switch("curriculum.hard_starts.fraction", lambda cfg: cfg.curriculum.hard_starts.fraction > 0.0,
               "config: 'curriculum.hard_starts.fraction': hard starts need env.name 'quadrotor', got {name}"),
    ),
)

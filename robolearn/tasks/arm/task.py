"""The arm family's :class:`~robolearn.tasks.base.Task` (see the package docstring)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..base import Task
from . import report
from .curriculum import arm_outcomes, build_arm_teacher, build_resets
from .env import hover_action, make_env

if TYPE_CHECKING:
    import torch

    from ...config import RunConfig
    from ...logging.run_dir import RunDir

PLOT_EPISODES = 8  # box paths drawn in plots/box_paths.png


def evaluate(actor: torch.nn.Module, cfg: RunConfig, episodes: int | None = None, seed: int | None = None,
             train_info: dict | None = None, record: int | None = None) -> tuple[dict, Any]:
    """``evaluate.evaluate_arm``; the record is the trajectories of the first ``record``
    nominal envs (default: the ``PLOT_EPISODES`` the box-path plot draws)."""
    from .evaluate import evaluate_arm

    return evaluate_arm(actor, cfg, episodes=episodes, seed=seed, train_info=train_info,
                        record=PLOT_EPISODES if record is None else record)


def write_plots(run: RunDir, cfg: RunConfig, trajs: Any) -> None:
    if trajs:
        from .evaluate import trajectory_plot

        trajectory_plot(trajs, run.plots / "box_paths.png")


def video(cfg: RunConfig, trajs: Any, path: Any) -> tuple[Any, str | None]:
    """The evaluation GIF of ``trajs``: (path, None), or (None, why not)."""
    from .video import write_video

    return write_video(trajs, path, task=cfg.task)


TASK = Task(
    name="arm",
    make_env=make_env,
    hover_action=hover_action,
    build_teacher=build_arm_teacher,
    build_resets=build_resets,
    outcomes=arm_outcomes,
    success_key="success",
    episode_columns=("episode/success", "episode/object_goal_distance_m"),
    progress_line=report.progress_line,
    evaluate=evaluate,
    write_plots=write_plots,
    summary=report.summary,
    eval_table=report.eval_table,
    resume_fixed=("env.arm.task", "env.arm.block_gripper", "env.arm.push_features"),
    video=video,
)

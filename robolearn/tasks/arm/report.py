"""What the arm's runs print: the progress bar's episode part, `robolearn train`'s
evaluation line and `robolearn eval`'s table."""

from __future__ import annotations

from typing import Any, Callable


def progress_line(g: Callable[[str, str], str]) -> str:
    return (f"success {g('episode/success', '{:.0%}')} | "
            f"box-goal {g('episode/object_goal_distance_m', '{:.3f}')} m")


def summary(e: dict) -> list[str]:
    return [f"eval (privileges 0): success {e['success_rate']:.1%}  final box-goal distance "
            f"{e['object_goal_distance_m']:.3f} m"]


def eval_table(result: dict) -> Any:
    from rich.table import Table

    t = Table(title=f"evaluation: {result['episodes']} episodes per block, seed {result['seed']}")
    for c in ("block", "success", "box-goal distance (m)", "median (m)", "privileges (max)"):
        t.add_column(c, justify="right")
    for name in ("nominal", "train_ranges"):
        if name in result:
            b = result[name]
            t.add_row(name, f"{b['success_rate']:.1%}", f"{b['object_goal_distance_m']:.4f}",
                      f"{b['object_goal_distance_m_median']:.4f}", f"{max(b['privileged_max'].values()):g}")
    return t

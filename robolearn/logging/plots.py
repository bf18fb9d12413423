"""PNG plots of a run that every family has (matplotlib, Agg backend: no display needed).

A family's own plots live beside its evaluation (``robolearn/tasks/<family>/``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def pyplot() -> Any:
    """matplotlib.pyplot with the Agg backend, imported on first use."""
    return _plt()


def _plt() -> Any:  # matplotlib.pyplot, imported on first use
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def learning_curves(metrics: dict[str, np.ndarray], path: str | Path) -> Path | None:
    """Return, survival, episode length, position error, curriculum and losses vs env steps."""
    if not metrics or "env_steps" not in metrics or len(metrics["env_steps"]) == 0:
        return None
    plt = _plt()
    x = metrics["env_steps"] / 1e6
    panels = [
        ("episode/return", "return"),
        ("episode/survival", "survival rate"),
        ("episode/length", "episode length (steps)"),
        ("episode/position_error_m", "position error, last 1 s (m)"),
        ("episode/success", "success rate (with the current privileges)"),
        ("episode/object_goal_distance_m", "final box-goal distance (m)"),
        ("loss/value", "value loss"),
        ("samples_per_s", "samples / s"),
    ]
    panels = [p for p in panels if p[0] in metrics or p[0].startswith("loss") or p[0] == "samples_per_s"]
    curriculum = [k for k in metrics if k.startswith("curriculum/")]
    n = len(panels) + (1 if curriculum else 0)
    cols = 3
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.0 * rows), squeeze=False)
    axes = axes.ravel()
    for ax, (key, label) in zip(axes, panels):
        if key in metrics:
            y = metrics[key]
            ok = np.isfinite(y)
            ax.plot(x[ok], y[ok], lw=1.2)
        ax.set_title(label, fontsize=9)
        ax.set_xlabel("env steps (M)", fontsize=8)
        ax.grid(alpha=0.3)
    if curriculum:
        ax = axes[len(panels)]
        for k in curriculum:
            y = metrics[k]
            ok = np.isfinite(y)
            ax.plot(x[ok], y[ok], lw=1.2, label=k.removeprefix("curriculum/"))
        ax.set_yscale("log")
        ax.set_title("curriculum", fontsize=9)
        ax.set_xlabel("env steps (M)", fontsize=8)
        ax.legend(fontsize=6)
        ax.grid(alpha=0.3)
    for ax in axes[n:]:
        ax.axis("off")
    fig.tight_layout()
    return save_figure(fig, path)


def save_figure(fig: Any, path: str | Path, dpi: int = 110) -> Path:
    """Write ``fig`` as a PNG at ``path`` (folders made as needed) and close it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    pyplot().close(fig)
    return path

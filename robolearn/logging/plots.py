"""PNG plots of a run (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from ..tasks.quadrotor.evaluate import FlightRecord


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
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def flight_plot(flight: FlightRecord, path: str | Path, title: str = "") -> Path:
    """Position, attitude and motor commands over one evaluation episode."""
    plt = _plt()
    t = np.arange(len(flight.position)) * flight.dt
    fig, axes = plt.subplots(3, 1, figsize=(8, 8), sharex=True)
    for i, name in enumerate("xyz"):
        axes[0].plot(t, flight.position[:, i], label=name)
        axes[0].axhline(flight.target[i], ls=":", lw=0.8, color=f"C{i}")
    axes[0].set_ylabel("position (m)")
    axes[0].legend(fontsize=8, ncol=3)
    for i, name in enumerate(("roll", "pitch", "yaw")):
        axes[1].plot(t, flight.euler_deg[:, i], label=name)
    axes[1].set_ylabel("attitude (deg)")
    axes[1].legend(fontsize=8, ncol=3)
    for i in range(4):
        axes[2].plot(t, flight.actions[:, i], lw=0.9, label=f"motor {i}")
    axes[2].set_ylabel("rotor command [-1, 1]")
    axes[2].set_xlabel("time (s)")
    axes[2].legend(fontsize=8, ncol=4)
    for ax in axes:
        ax.grid(alpha=0.3)
    status = "survived" if flight.survived else "terminated"
    fig.suptitle(title or f"evaluation episode (nominal, env 0): {status}", fontsize=10)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path

"""The quadrotor's evaluation plot: one nominal episode's position, attitude and rotor commands."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ...logging.plots import pyplot, save_figure

if TYPE_CHECKING:
    from .evaluate import FlightRecord


def flight_plot(flight: FlightRecord, path: str | Path, title: str = "") -> Path:
    """Position, attitude and motor commands over one evaluation episode."""
    plt = pyplot()
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
    return save_figure(fig, path)

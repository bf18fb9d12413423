"""Run directories, metrics (CSV + TensorBoard) and plots."""

from .run_dir import EpisodeStats, MetricsLogger, RunDir

__all__ = ["RunDir", "MetricsLogger", "EpisodeStats"]

"""Where the default config file is found: one answer for the CLI and the benchmarks.

``robolearn train`` and ``robolearn bench train`` (and ``python -m benchmarks.train``) with no
CONFIG argument use ``robolearn.config.DEFAULT_CONFIG``, a path relative to the repository.
"""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parent.parent  # robolearn/ sits at the repository root


def default_config_path(rel: str | None = None) -> Path:
    """The config file ``rel`` (default ``DEFAULT_CONFIG``): relative to the working directory if
    it exists there, else to the repository; if neither exists, ``rel`` itself (so that the
    config loader's "not found" error names the path the user would expect)."""
    if rel is None:
        from .config import DEFAULT_CONFIG  # lazily: the config module loads pydantic and the sims

        rel = DEFAULT_CONFIG
    p = Path(rel)
    if p.exists():
        return p
    repo = REPO / rel
    return repo if repo.exists() else p

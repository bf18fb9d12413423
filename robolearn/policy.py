"""Loading the deployable actor (``policy.pt``)."""

from __future__ import annotations

from pathlib import Path

from .checkpoint import safe_load
from .errors import CheckpointError
from .networks import DeterministicActor, actor_from_export


def load_policy(path: str | Path) -> DeterministicActor:
    """``policy.pt`` -> a torch module mapping policy observations (B, obs_dim) to actions (B, act_dim)."""
    d = safe_load(path, "policy file")
    try:
        return actor_from_export(d)
    except ValueError as e:
        raise CheckpointError(f"corrupt policy file {path}: {e}") from None

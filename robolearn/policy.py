"""Loading the deployable actor (``policy.pt``), alone or with its run's config."""

from __future__ import annotations

from pathlib import Path

from .checkpoint import safe_load
from .config import RunConfig, load_config, read_config_file
from .errors import CheckpointError, UserError
from .logging.run_dir import RunDir
from .networks import DeterministicActor, actor_from_export


def load_policy(path: str | Path) -> DeterministicActor:
    """``policy.pt`` -> a torch module mapping policy observations (B, obs_dim) to actions (B, act_dim)."""
    d = safe_load(path, "policy file")
    try:
        return actor_from_export(d)
    except ValueError as e:
        raise CheckpointError(f"corrupt policy file {path}: {e}") from None


def load_run(run_dir: str | Path) -> tuple[RunConfig, DeterministicActor]:
    """A finished run directory's resolved config (``config.yaml``) and actor (``policy.pt``)."""
    run = RunDir(run_dir).require()
    if not run.policy.is_file():
        raise UserError(f"not a run directory with a policy (no policy.pt): {run.path}; robolearn train writes it "
                        "when the run ends")
    return load_config(None, [], base=read_config_file(run.config)), load_policy(run.policy)

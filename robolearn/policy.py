"""Reading and writing the deployable actor (``policy.pt``), alone or with its run's config.

The file holds a :class:`~firmware_export.policy_file.PolicySpec` (``PolicySpec.to_dict``,
loadable with ``torch.load(weights_only=True)``). :func:`read_policy` / :func:`save_policy`
are robolearn's only reader and writer of it (run directories' ``policy.pt``, the
distillation teacher's ``teacher.pt``); :func:`load_policy` adds the torch module.
"""

from __future__ import annotations

from pathlib import Path

from firmware_export.errors import ExportError
from firmware_export.policy_file import PolicySpec
from firmware_export.policy_file import load_policy as _load_spec
from firmware_export.policy_file import policy_bytes

from .checkpoint import atomic_write_bytes
from .config import RunConfig, load_config, read_config_file
from .errors import CheckpointError, UserError
from .logging.run_dir import RunDir
from .networks import DeterministicActor, actor_from_spec


def read_policy(path: str | Path) -> PolicySpec:
    """``policy.pt`` (format ``robolearn.actor/1`` or ``/2``) -> its spec; a missing, unsafe,
    corrupt or malformed file is a one-line :class:`CheckpointError` naming the problem."""
    try:
        return _load_spec(path)
    except ExportError as e:
        raise CheckpointError(str(e)) from None


def save_policy(spec: PolicySpec, path: str | Path) -> None:
    """Write ``spec`` to ``path`` atomically (a killed writer leaves the old file or the new one)."""
    atomic_write_bytes(policy_bytes(spec), path)


def load_policy(path: str | Path) -> DeterministicActor:
    """``policy.pt`` -> a torch module mapping policy observations (B, obs_dim) to actions (B, act_dim)."""
    return actor_from_spec(read_policy(path))


def load_run(run_dir: str | Path) -> tuple[RunConfig, DeterministicActor]:
    """A finished run directory's resolved config (``config.yaml``) and actor (``policy.pt``)."""
    run = RunDir(run_dir).require()
    if not run.policy.is_file():
        raise UserError(f"not a run directory with a policy (no policy.pt): {run.path}; robolearn train writes it "
                        "when the run ends")
    return load_config(None, [], base=read_config_file(run.config)), load_policy(run.policy)

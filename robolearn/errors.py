"""User-facing errors: the CLI prints them as one line and exits with code 2."""

from typing import Any


class UserError(Exception):
    """A mistake in a config, a CLI argument or an input file: report, don't trace."""


class ConfigError(UserError):
    pass


class CheckpointError(UserError):
    pass


class WriteError(UserError):
    """A file of the run could not be written (full disk, no permission): the files already
    there are intact (every write is atomic)."""

    def __init__(self, path: Any, err: OSError):
        why = err.strerror or type(err).__name__
        super().__init__(f"cannot write {path}: {why}")
        self.path, self.errno = path, err.errno


class TrainingDiverged(UserError):
    """Training produced a non-finite loss, gradient or weight: nothing of it is saved."""

    def __init__(self, what: str, iteration: int):
        super().__init__(f"training diverged at iteration {iteration}: {what}")
        self.what, self.iteration = what, iteration


def check_finite(tensors: "list[Any]", what: str, iteration: int) -> None:
    """Raise :class:`TrainingDiverged` naming ``what`` unless every tensor is finite."""
    import torch

    ts = [t.detach() for t in tensors if t.is_floating_point()]
    if ts and not bool(torch.isfinite(torch.nn.utils.get_total_norm(ts, norm_type=float("inf")))):
        raise TrainingDiverged(f"non-finite {what}", iteration)


class Stopped(KeyboardInterrupt):
    """SIGINT or SIGTERM outside the training loop (polish, trim, evaluation): stop now."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum

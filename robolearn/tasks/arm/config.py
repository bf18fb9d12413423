"""The arm's config section ``env.arm`` (mirroring sims.manipulation.ArmConfig, read from a
module that does not import MuJoCo), and its parameter-range check."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field

from ...config_base import Ranges, Strict, check_ranges_with, mirror_dataclass


def check_ranges(v: Ranges) -> Ranges:
    """Validate ``{param: (low, high)}`` against the arm's parameter table (sims/manipulation/params.py)."""
    from sims.manipulation.params import check_range

    return check_ranges_with(check_range, v)


def _arm_model() -> type[BaseModel]:
    """A pydantic model mirroring ``sims.manipulation.ArmConfig`` (minus ``ranges``), plus
    ``num_threads`` of the ``mujoco.batch`` thread pool (0: all CPUs)."""
    from sims.manipulation.config import TASKS, ArmConfig

    return mirror_dataclass(
        ArmConfig, "sims/manipulation/config.py", "ArmSimConfig",
        task=(Literal[TASKS], Field(ArmConfig.task, description="the manipulation task")),
        num_threads=(int, Field(1, ge=0, description="threads of the mujoco.batch pool (0: all CPUs)")))


def check_section(v: ArmSimConfig) -> ArmSimConfig:
    """``env.arm`` as the simulator checks it (``ArmConfig.__post_init__``; ``num_threads``
    belongs to the batch, not to the model)."""
    from sims.manipulation.config import ArmConfig

    d = v.model_dump()
    d.pop("num_threads")
    try:
        ArmConfig(**d)
    except ValueError as e:
        raise ValueError(str(e)) from None
    return v


if TYPE_CHECKING:
    class ArmSimConfig(Strict):
        """Built at run time from ``ArmConfig``'s fields plus ``num_threads``: to mypy they are Any."""

        task: str = "push"
        num_threads: int = 1

        def __getattr__(self, name: str) -> Any: ...
else:
    ArmSimConfig = _arm_model()

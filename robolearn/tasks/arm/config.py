"""The arm's config section ``env.arm`` (mirroring sims.manipulation.ArmConfig, read from a
module that does not import MuJoCo), and its parameter-range check."""

from __future__ import annotations

import typing
from dataclasses import MISSING, fields
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field, create_model

from ...config_base import KeyedError, Ranges, Strict, field_comments


def check_ranges(v: Ranges) -> Ranges:
    """Validate ``{param: (low, high)}`` against the arm's parameter table (sims/manipulation/params.py)."""
    from sims.manipulation.params import check_range

    for name, (lo, hi) in v.items():
        try:
            check_range(name, lo, hi)  # names the parameter and its limits
        except (KeyError, ValueError) as e:
            msg = e.args[0] if e.args else str(e)
            raise KeyedError(name, msg) from None
    return v


def _arm_model() -> type[BaseModel]:
    """A pydantic model mirroring ``sims.manipulation.ArmConfig`` (minus ``ranges``), plus
    ``num_threads`` of the ``mujoco.batch`` thread pool (0: all CPUs)."""
    from sims.manipulation.config import TASKS, ArmConfig

    hints = typing.get_type_hints(ArmConfig)
    spec: dict[str, Any] = {}
    desc = field_comments(ArmConfig, "sims/manipulation/config.py")
    for f in fields(ArmConfig):
        if f.name == "ranges":
            continue
        default = f.default if f.default is not MISSING else f.default_factory()  # type: ignore[operator]
        spec[f.name] = (hints[f.name], Field(default, description=desc[f.name]))
    spec["task"] = (Literal[TASKS], Field(ArmConfig.task, description="the manipulation task"))
    spec["num_threads"] = (int, Field(1, ge=0, description="threads of the mujoco.batch pool (0: all CPUs)"))
    return create_model("ArmSimConfig", __base__=Strict, **spec)


if TYPE_CHECKING:
    class ArmSimConfig(Strict):
        """Built at run time from ``ArmConfig``'s fields plus ``num_threads``: to mypy they are Any."""

        task: str = "push"
        num_threads: int = 1

        def __getattr__(self, name: str) -> Any: ...
else:
    ArmSimConfig = _arm_model()

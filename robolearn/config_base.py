"""What every config section is built on: strict pydantic models (unknown keys, non-finite
floats and booleans or strings for numbers are errors), and the errors their validators
raise about one sub-key."""

from __future__ import annotations

import re
import types
import typing
from dataclasses import MISSING, fields
from typing import Any, Callable

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, create_model, field_validator

Ranges = dict[str, tuple[float, float]]


class KeyedError(ValueError):
    """A validator's error about one sub-key of its field (``env.ranges.<param>``, ``env.sim.<field>``).

    pydantic keeps the exception in the error's ``ctx``; :func:`format_validation_error`
    appends ``key`` to the field's location.
    """

    def __init__(self, key: str, msg: str):
        super().__init__(msg)
        self.key, self.msg = key, msg


def _numeric(ann: Any) -> bool:
    return ann is int or ann is float


def _reject_lax(ann: Any, v: Any, where: str = "") -> None:
    """Raise ValueError where a bool or a string stands for a number (pydantic's lax mode
    reads ``true`` as 1 and ``"5"`` as 5), walking lists, tuples, dicts and Optionals."""
    if _numeric(ann):
        if isinstance(v, (bool, str)):
            kind = "an integer" if ann is int else "a number"
            raise ValueError(f"{where}expected {kind}, got {v!r}")
        return
    origin, args = typing.get_origin(ann), typing.get_args(ann)
    if origin in (typing.Union, types.UnionType):
        alts = [a for a in args if a is not type(None)]
        if len(alts) == 1 and v is not None:
            _reject_lax(alts[0], v, where)
        return
    if origin in (list, tuple) and isinstance(v, (list, tuple)) and args:
        for i, x in enumerate(v):
            a = args[0] if origin is list or (len(args) == 2 and args[1] is Ellipsis) else (
                args[i] if i < len(args) else None)
            if a is not None:
                _reject_lax(a, x, f"{where}item {i}: ")
    elif origin is dict and isinstance(v, dict) and len(args) == 2:
        for k, x in v.items():
            _reject_lax(args[1], x, f"{where}{k}: ")


class Strict(BaseModel):
    """Base of every config section: unknown keys, non-finite floats (``.inf``, ``.nan``) and
    booleans or strings given for numbers are errors."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)

    @field_validator("*", mode="before")
    @classmethod
    def _strict_numbers(cls, v: Any, info: ValidationInfo) -> Any:
        f = cls.model_fields.get(info.field_name or "")
        if f is not None:
            _reject_lax(f.annotation, v)
        return v


def field_comments(cls: type, where: str) -> dict[str, str]:
    """One-line descriptions of a simulator dataclass's fields, from the comments in its
    source (a trailing ``# ...`` or the comment lines just above the field); a field without
    one is described by where it is defined."""
    import inspect

    out: dict[str, str] = {}
    above: list[str] = []
    try:
        src = inspect.getsource(cls).splitlines()
    except (OSError, TypeError):
        src = []
    for ln in src:
        t = ln.strip()
        if t.startswith("#"):
            above.append(t.lstrip("#").strip())
            continue
        m = re.match(r"(\w+)\s*:[^=#]+(?:=[^#]*)?(?:#\s*(.*))?$", t)
        if m and not t.startswith(("def ", "return")):
            text = " ".join(above + ([m.group(2)] if m.group(2) else []))
            if text:
                out[m.group(1)] = text
        above = []
    return {f.name: out.get(f.name) or f"{cls.__name__}.{f.name} ({where})" for f in fields(cls)}


def check_ranges_with(check_range: Callable[[str, float, float], Any], v: Ranges) -> Ranges:
    """Validate ``{param: (low, high)}`` with a simulator's ``check_range(name, low, high)``;
    its KeyError / ValueError (naming the parameter and its limits) becomes a KeyedError on
    that parameter."""
    for name, (lo, hi) in v.items():
        try:
            check_range(name, lo, hi)
        except (KeyError, ValueError) as e:
            msg = e.args[0] if e.args else str(e)
            raise KeyedError(name, msg) from None
    return v


def mirror_dataclass(cls: type, where: str, model_name: str, **extra: Any) -> type[BaseModel]:
    """A strict pydantic model with one field per field of the simulator dataclass ``cls``
    (minus ``ranges``, which the run config validates on its own), each described by its
    source comment (:func:`field_comments`, ``where`` names the file), plus ``extra``
    fields ``name=(annotation, Field(...))`` that add to or replace them. Built from the
    dataclass so new simulator settings are accepted without edits in robolearn."""
    hints = typing.get_type_hints(cls)
    desc = field_comments(cls, where)
    spec: dict[str, Any] = {}
    for f in fields(cls):
        if f.name == "ranges":
            continue
        default = f.default if f.default is not MISSING else f.default_factory()  # type: ignore[operator]
        spec[f.name] = (hints[f.name], Field(default, description=desc[f.name]))
    spec.update(extra)
    return create_model(model_name, __base__=Strict, **spec)

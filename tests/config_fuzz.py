"""Hypothesis strategies for configs and ``--set`` overrides (tests/test_config_fuzz.py,
``python -m benchmarks.faults configs``).

Each example is the default config with generated ``--set KEY=VALUE`` overrides (real keys,
misspelt keys, sub-keys of scalars; values of every YAML kind, broken YAML) and generated
replacements of whole sections. ``load_config`` must either accept it or raise one
ConfigError line that names the key it is about.
"""

from __future__ import annotations

import typing
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

ROOT = Path(__file__).resolve().parent.parent


def leaf_keys(model: Any, prefix: str = "") -> list[str]:
    """Every dotted key of the config schema (sections and their fields)."""
    out = []
    for name, f in model.model_fields.items():
        key = prefix + name
        out.append(key)
        if isinstance(f.annotation, type) and issubclass(f.annotation, BaseModel):
            out += leaf_keys(f.annotation, key + ".")
    return out


_scalars = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70), st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(), st.none(), st.text(max_size=8),
    st.sampled_from([".inf", "-.inf", ".nan", "1e30", "-1", "0", "1e23", "true", "[]", "{}", "~", "''"]),
)
_values = st.recursive(_scalars, lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=6), c, max_size=3),
                       max_leaves=6)


def _yaml_text(v: Any) -> str:
    import yaml

    if isinstance(v, str):
        return v  # raw text: often not the YAML of a string, sometimes broken YAML
    return yaml.safe_dump(v, default_flow_style=True, width=10_000).strip().removesuffix("...").strip()


def overrides(keys: list[str]) -> st.SearchStrategy[list[tuple[str, str]]]:
    key = st.one_of(
        st.sampled_from(keys),
        st.builds(lambda k, s: k + s, st.sampled_from(keys), st.sampled_from(["x", "_", ".y", ".0", ""])),
        st.text(alphabet="abcdefghijklmnopqrstuvwxyz._", min_size=1, max_size=12),
    )
    return st.lists(st.tuples(key, _values.map(_yaml_text)), min_size=1, max_size=3)


def names_key(msg: str, keys: list[str]) -> bool:
    """The message quotes a key related to one of ``keys`` (equal, a section of it, or a sub-key)."""
    import re

    quoted = re.findall(r"'([^']*)'", msg) + re.findall(r'"([^"]*)"', msg) + re.findall(r"--set ([^\s:]+)", msg)
    return any(q == k or k.startswith(q + ".") or q.startswith(k + ".") or q == k.split(".")[0]
               for q in quoted for k in keys)


def run_fuzz(examples: int, seed: int = 0) -> dict:
    """Counts of accepted configs, one-line errors naming the key, and everything else."""
    from robolearn.config import DEFAULT_CONFIG, RunConfig, load_config, read_config_file
    from robolearn.errors import ConfigError

    base = read_config_file(ROOT / DEFAULT_CONFIG)
    keys = leaf_keys(RunConfig)
    counts = {"examples": 0, "accepted": 0, "one_line_errors_naming_the_key": 0, "errors_not_naming_the_key": 0,
              "multi_line_errors": 0, "tracebacks": 0}
    bad: list[str] = []

    @settings(max_examples=examples, database=None, deadline=None, derandomize=True,
              suppress_health_check=list(HealthCheck), phases=[__import__("hypothesis").Phase.generate])
    @given(sets=overrides(keys))
    def one(sets: list[tuple[str, str]]) -> None:
        counts["examples"] += 1
        items = [f"{k}={v}" for k, v in sets]
        try:
            load_config(None, items, base=base)
            counts["accepted"] += 1
        except ConfigError as e:
            msg = str(e)
            if "\n" in msg:
                counts["multi_line_errors"] += 1
                bad.append(f"multi-line: {items} -> {msg!r}")
            elif names_key(msg, [k for k, _ in sets]):
                counts["one_line_errors_naming_the_key"] += 1
            else:
                counts["errors_not_naming_the_key"] += 1
                bad.append(f"no key: {items} -> {msg}")
        except Exception as e:  # noqa: BLE001 - what this counts
            counts["tracebacks"] += 1
            bad.append(f"traceback: {items} -> {type(e).__name__}: {e}")

    del seed  # derandomize: the examples are a fixed function of the strategies
    one()
    return counts | {"first_problems": bad[:10]}


__all__ = ["run_fuzz", "overrides", "leaf_keys", "names_key", "typing"]

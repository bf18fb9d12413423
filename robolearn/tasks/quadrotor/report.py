"""What the quadrotor's runs print: the progress bar's episode part, `robolearn train`'s
evaluation lines and `robolearn eval`'s table."""

from __future__ import annotations

from typing import Any, Callable


def _f(v: Any, spec: str) -> str:
    return "-" if v is None else format(v, spec)


def progress_line(g: Callable[[str, str], str]) -> str:
    return f"survival {g('episode/survival', '{:.0%}')} | pos err {g('episode/position_error_m', '{:.3f}')} m"


def summary(e: dict) -> list[str]:
    """One line per evaluation block: survival, position error, yaw (and the command rate)."""
    lines = [f"eval nominal: survival {e['survival_rate']:.1%}  position error "
             f"{_f(e['position_error_m'], '.3f')} m  yaw {_f(e['yaw_deg'], '.2f')} deg"]
    for name, r in e.items():
        if name == "nominal" or not (isinstance(r, dict) and "survival_rate" in r):
            continue
        lines.append(f"eval {name}: survival {r['survival_rate']:.1%}  position error "
                     f"{_f(r['position_error_m'], '.3f')} m  yaw {_f(r['yaw_deg'], '.2f')} deg  command rate "
                     f"{_f(r.get('command_rate'), '.3f')}")
    return lines


def eval_table(result: dict) -> Any:
    from rich.table import Table

    t = Table(title=f"evaluation: {result['episodes']} episodes per block, seed {result['seed']}")
    for c in ("block", "survival", "position error (m)", "tilt (deg)", "yaw (deg)", "settling (s)",
              "command rate", "power > 10 Hz"):
        t.add_column(c, justify="right")
    for name, b in result.items():
        if isinstance(b, dict) and "survival_rate" in b:
            t.add_row(name, f"{b['survival_rate']:.1%}", _f(b["position_error_m"], ".4f"),
                      _f(b["tilt_deg"], ".2f"), _f(b["yaw_deg"], ".2f"), _f(b.get("settling_time_s"), ".2f"),
                      _f(b.get("command_rate"), ".3f"), _f(b.get("high_frequency_share"), ".1%"))
    return t

"""The vehicle presets at a glance: constants, hover command, thrust/weight, real range, corners.

    python -m benchmarks.vehicles            # a Markdown table per preset
    python -m benchmarks.vehicles --json     # the same as JSON

Analytic values from ``sims/quadrotor/vehicles.py`` and ``params.real_world_ranges``: nothing
is simulated, so the figures are exact for the model (not measurements of a vehicle).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict

from sims.quadrotor import params as P
from sims.quadrotor import vehicles as V


def summary(name: str) -> dict:
    """Constants and derived figures of one preset."""
    v = V.get(name)
    real = P.real_world_ranges(name)
    m_lo, m_hi = real["randomization.mass_scale"]
    t_lo, t_hi = real["randomization.thrust_coeff_scale"]
    return {
        "vehicle": asdict(v),
        "hover_command_u": v.hover_command(),
        "hover_action": v.hover_action(),
        "hover_rpm": v.hover_rpm(),
        "thrust_to_weight": v.thrust_to_weight(),
        # the real range's extremes: heaviest vehicle with the weakest thrust, and the reverse
        "hover_command_heavy_weak": v.hover_command(m_hi, t_lo),
        "hover_command_light_strong": v.hover_command(m_lo, t_hi),
        "thrust_to_weight_heavy_weak": v.thrust_to_weight() * t_lo / m_hi,
        "thrust_to_weight_light_strong": v.thrust_to_weight() * t_hi / m_lo,
        "real_world_ranges": real,
        "corners": len(P.corner_ranges(name)),
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true", help="print JSON instead of Markdown")
    args = ap.parse_args(argv)
    rows = {name: summary(name) for name in V.VEHICLES}
    if args.json:
        print(json.dumps(rows, indent=1))
        return
    print("| preset | mass g | Ixx, Iyy, Izz 1e-5 kg m^2 | T(1) per rotor N | rise / fall s | hover u | "
          "T/W | T/W real-range extremes |")
    print("|---|---|---|---|---|---|---|---|")
    for name, r in rows.items():
        v = V.get(name)
        inertia = ", ".join(f"{x * 1e5:.3g}" for x in v.inertia)
        print(f"| {name} | {v.mass * 1e3:.1f} | {inertia} | {v.thrust(1.0):.4f} | {v.motor_tau_rise:.4g} / "
              f"{v.motor_tau_fall:.4g} | {r['hover_command_u']:.4f} | {r['thrust_to_weight']:.3f} | "
              f"{r['thrust_to_weight_heavy_weak']:.2f}-{r['thrust_to_weight_light_strong']:.2f} |")
    print()
    print("real range (default vehicle, params.REAL_WORLD_RANGES):")
    for k, (lo, hi) in P.REAL_WORLD_RANGES.items():
        print(f"  {k}: [{lo:.6g}, {hi:.6g}]")


if __name__ == "__main__":
    main()

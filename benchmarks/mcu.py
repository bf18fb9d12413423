"""Cortex-M4 cost of the exported actor: instructions counted under QEMU, cycles estimated.

    python -m benchmarks.mcu [--policy RUN_DIR/policy.pt] [--before REV] [--json OUT]
    robolearn bench mcu [--policy ...] [--before REV]

For each variant (float32 / int8 weights; the policy as given, and the same network with
a 3-entry integrator, robolearn.actor/2) this generates policy.c, builds it for the
STM32F405 with arm-none-eabi-gcc (firmware_export.qemu_count.ARM_FLAGS), counts the
instructions of one robolearn_policy call under QEMU (netduinoplus2) and prints them with
the cycle ESTIMATE of firmware_export/cost.py (per-class charges, method in its
docstring) and the analytic estimate from the network's shape. Without --policy it uses
a random-weight actor of the default shape (50-28-24-4 tanh, seed 0): instruction counts
do not depend on the weights' values. ``--before REV`` also measures the C generator of
git revision REV (e.g. the commit before this benchmark existed) on the same policy.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def default_policy(obs_dim: int = 50, hidden: tuple[int, ...] = (28, 24), act_dim: int = 4, seed: int = 0,
                   k: int = 0) -> Any:
    """A random PolicySpec of the default shape; ``k`` > 0 adds an integrator of obs[0:k]."""
    from firmware_export.policy_file import PolicySpec

    rng = np.random.default_rng(seed)
    sizes = [obs_dim + k, *hidden, act_dim]
    ws = [(rng.standard_normal((o, i)) / np.sqrt(i)).astype(np.float32) for i, o in zip(sizes[:-1], sizes[1:])]
    bs = [(0.1 * rng.standard_normal(o)).astype(np.float32) for o in sizes[1:]]
    return PolicySpec(obs_dim, act_dim, list(hidden), "tanh", "none",
                      (0.1 * rng.standard_normal(obs_dim + k)).astype(np.float32),
                      (0.2 + rng.random(obs_dim + k)).astype(np.float32), 5.0, ws, bs,
                      -np.ones(act_dim, np.float32), np.ones(act_dim, np.float32),
                      integrator_index=np.arange(k, dtype=np.int64), integrator_gain=0.01, integrator_limit=0.5)


def with_integrator(spec: Any, k: int) -> Any:
    """The same actor with a k-entry integrator of obs[0:k] (layer 0 gets k zero-weight inputs)."""
    import copy

    s = copy.deepcopy(spec)
    s.integrator_index = np.arange(k, dtype=np.int64)
    s.integrator_gain, s.integrator_limit = 0.01, 0.5
    s.obs_mean = np.concatenate([s.obs_mean, np.zeros(k, np.float32)])
    s.obs_std = np.concatenate([s.obs_std, np.ones(k, np.float32)])
    s.weights[0] = np.concatenate([s.weights[0], 0.1 * np.ones((s.weights[0].shape[0], k), np.float32)], axis=1)
    return s


def _old_codegen(rev: str) -> Any:
    src = subprocess.run(["git", "-C", str(ROOT), "show", f"{rev}:firmware_export/c_codegen.py"],
                         capture_output=True, text=True, check=True).stdout
    name = "firmware_export._codegen_" + rev.replace("~", "_").replace("^", "_")[:20]
    spec = importlib.util.spec_from_loader(name, loader=None)
    assert spec is not None
    mod = importlib.util.module_from_spec(spec)
    mod.__package__ = "firmware_export"
    exec(compile(src, f"{rev}:c_codegen.py", "exec"), mod.__dict__)
    return mod


def measure(spec: Any, quantize: str | None, codegen: Any = None) -> dict:
    from firmware_export import c_codegen, cost
    from firmware_export.qemu_count import count_instructions

    cg = codegen or c_codegen
    with tempfile.TemporaryDirectory(prefix="robolearn_mcu_") as tmp:
        d = Path(tmp)
        (d / "policy.h").write_text(cg.generate_header(spec, "00" * 32, 0.0, 21702.0, 100.0, quantize))
        (d / "policy.c").write_text(cg.generate_source(spec, "00" * 32, quantize))
        q = count_instructions(d)
    est = cost.estimate(spec, quantize) if codegen is None else {"instructions_estimate": 0, "cycles_estimate": 0}
    return {"instructions": q["instructions"], "cycles_estimate": q["cycles_estimate"],
            "cycles_estimate_no_load_pipelining": q["cycles_estimate_no_load_pipelining"],
            "us_estimate_at_168mhz": q["us_estimate_at_168mhz"], "by_class": q["by_class"],
            "analytic": {"instructions_estimate": est["instructions_estimate"],
                         "cycles_estimate": est["cycles_estimate"]},
            "weight_bytes": c_codegen.weight_bytes(spec, quantize)}


def analytic(r: dict) -> str:
    a = r["analytic"]
    return f"{a['instructions_estimate']}/{a['cycles_estimate']}" if a["instructions_estimate"] else "-"


def run_mcu(policy: Path | None = None, before: str | None = None, json_out: Path | None = None) -> dict:
    """Count and estimate every kernel variant of ``policy`` (default: a random default-shape
    actor), and of the C generator at git revision ``before`` too; prints the table as it
    goes, returns the figures (also written to ``json_out``)."""
    from firmware_export.policy_file import load_policy

    base = load_policy(policy) if policy else default_policy()
    rows: dict[str, dict] = {}
    variants: list[tuple[str, Any, str | None, Any]] = []
    if before:
        old = _old_codegen(before)
        variants += [(f"before ({before}) float32", base, None, old), (f"before ({before}) int8", base, "int8", old)]
    v2 = with_integrator(base, 3) if not base.state_dim else base
    variants += [("float32", base, None, None), ("int8", base, "int8", None),
                 ("float32, integrator k=3", v2, None, None), ("int8, integrator k=3", v2, "int8", None)]
    print(f"policy: {'-'.join(map(str, base.layer_sizes))} {base.activation}, {base.macs} MACs"
          f" ({policy or 'random weights, seed 0'}); STM32F405 at 168 MHz, weights in SRAM")
    print(f"{'variant':34s} {'instructions':>12s} {'cycles est.':>11s} {'(no ld pipe)':>12s} {'us est.':>8s}"
          f" {'analytic instr/cycles':>22s} {'weights B':>9s}")
    for name, spec, qz, cg in variants:
        r = measure(spec, qz, cg)
        rows[name] = r
        print(f"{name:34s} {r['instructions']:12d} {r['cycles_estimate']:11d} {r['cycles_estimate_no_load_pipelining']:12d}"
              f" {r['us_estimate_at_168mhz']:8.1f} {analytic(r):>22s}"
              f" {r['weight_bytes']:9d}")
    print("instructions: counted under QEMU; cycles: ESTIMATED from the counted mix with firmware_export/cost.py CHARGES")
    out = {"policy": str(policy or "default shape, random weights seed 0"), "variants": rows}
    if json_out:
        json_out.write_text(json.dumps(out, indent=2) + "\n")
    return out


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--policy", type=Path, help="policy.pt to measure (default: random default-shape actor)")
    ap.add_argument("--before", help="git revision whose C generator to measure too")
    ap.add_argument("--json", type=Path)
    a = ap.parse_args(argv)
    return run_mcu(a.policy, a.before, a.json)


if __name__ == "__main__":
    sys.exit(0 if main() else 1)

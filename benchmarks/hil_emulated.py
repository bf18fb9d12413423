"""What `robolearn hil --device emulated` reports for an actor of the default shape.

    python -m benchmarks.hil_emulated [--seed 0] [--steps 50] [--quantize int8] [--json OUT]

A seeded random ``policy.pt`` with the default actor's shape (26 -> 32 -> 32 -> 4, tanh;
random weights: the instruction count does not depend on the values, except for
the data-dependent clamps of tanh) next to a test ``config.yaml``, exported by
``firmware_export.export`` (onnx, c, firmware through ``hardware.firmware_image``), then
flown on the STM32F405 firmware under QEMU for one episode. Prints the report summary
and the inference section: the measured instruction count, the exporter's cycle
estimate and the cycles per instruction the estimate implies.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np


def run(seed: int = 0, steps: int = 50, quantize: str | None = None) -> dict:
    import shutil

    import firmware_export
    from hardware import firmware_image
    from hardware.hil import format_report, run_hil
    from hardware.testing import make_test_export, write_policy_pt

    rng = np.random.default_rng(seed)
    dims = [26, 32, 32, 4]
    weights = [(rng.standard_normal((dims[i + 1], dims[i])) / np.sqrt(dims[i]), 0.1 * rng.standard_normal(dims[i + 1]))
               for i in range(len(dims) - 1)]
    with tempfile.TemporaryDirectory(prefix="robolearn_hil_emulated_") as tmp:
        run_dir = Path(tmp) / "run"
        make_test_export(run_dir)  # config.yaml of the default policy view (action_history 2)
        shutil.rmtree(run_dir / "export")
        write_policy_pt(run_dir / "policy.pt", weights)
        rep = firmware_export.export(run_dir, formats=("onnx", "c", "firmware"), quantize=quantize, n_random=500,
                                     record_envs=4, record_steps=50, closed_loop_episodes=2,
                                     firmware_builder=firmware_image.build_firmware)
        r = run_hil(run_dir, "emulated", episodes=1, steps=steps, seed=seed)
        return {"seed": seed, "steps": steps, "quantize": quantize, "summary": format_report(r),
                "inference": r["inference"], "warnings": r["warnings"], "status": r["status"],
                "latency_ms": r["latency_ms"], "fits_control_period": r["fits_control_period"],
                "action_error_max_abs": r["action_error"]["max_abs"],
                "firmware": rep["firmware"]["size"] and {k: rep["firmware"]["size"][k] for k in ("flash_bytes", "ram_bytes")}}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.hil_emulated", description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--quantize", default=None, choices=[None, "int8"])
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args(argv)
    r = run(a.seed, a.steps, a.quantize)
    if a.json:
        a.json.write_text(json.dumps(r, indent=2) + "\n")
    print(r["summary"])
    print(json.dumps({k: v for k, v in r.items() if k != "summary"}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

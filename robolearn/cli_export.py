"""``robolearn export``: a run's policy.pt -> ONNX, C (and a firmware image), verified.

The work is done by :mod:`firmware_export` (which knows nothing of trainers); this
module only parses arguments and turns :class:`firmware_export.ExportError` into the
CLI's one-line ``error: ...`` with exit code 2.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, Optional

import typer

from .errors import UserError


def export_cmd(
    run_dir: Path = typer.Argument(..., metavar="RUN_DIR", help="a run directory holding policy.pt (or a policy.pt path)"),
    out: Optional[Path] = typer.Option(None, "--out", help="export directory (default: RUN_DIR/export)"),
    formats: str = typer.Option("onnx,c", "--format", help="comma-separated: onnx, c, firmware"),
    quantize: Optional[str] = typer.Option(None, "--quantize", help="int8: int8 weights in the C code"),
    as_json: bool = typer.Option(False, "--json", help="print the export report as JSON"),
) -> int:
    """Export RUN_DIR/policy.pt to policy.onnx, policy.c/.h and manifest.json, each verified."""
    from firmware_export.errors import ExportError
    from hardware.errors import HilError

    fmts = [f.strip() for f in formats.split(",") if f.strip()]
    try:
        from firmware_export import export

        builder: Callable[[Path], Path] | None = None
        if "firmware" in [f.lower() for f in fmts]:
            # the STM32F405 image lives in `hardware` (which uses firmware_export, not the reverse)
            from hardware.firmware_image import build_firmware

            builder = build_firmware
        report = export(run_dir, out, formats=fmts, quantize=quantize, firmware_builder=builder)
    except (ExportError, HilError) as e:
        raise UserError(str(e)) from None
    if as_json:
        print(json.dumps(report, indent=2))
        return 0
    v, s, c = report["verification"], report["sizes"], report["cost"]
    lines = [f"export: {report['out_dir']}  ({', '.join(report['files'])})",
             f"network {'-'.join(map(str, report['network']['layers']))} {report['network']['activation']}, "
             f"{report['network']['parameters']} parameters; weights {s['weight_bytes_float32']} B float32, "
             f"{s['weight_bytes_int8']} B int8",
             f"onnx vs torch: max abs error {v['onnx_vs_torch']['max_abs']:.2e} on "
             f"{v['observations']['random'] + v['observations']['recorded']} observations"]
    if "c_vs_onnx" in v:
        lines.append(f"C vs onnx: max abs error {v['c_vs_onnx']['max_abs']:.2e}")
    if "int8_vs_float32" in v:
        q, cl = v["int8_vs_float32"], v["int8_closed_loop"]
        lines.append(f"int8 vs float32: max abs {q['max_abs']:.3f}, mean {q['mean_abs']:.4f}; closed loop survival "
                     f"float {cl['float32']['survival_rate']:.0%} / int8 {cl['int8']['survival_rate']:.0%}")
    m = report.get("cost_measured")
    if m:
        lines.append(f"Cortex-M4: {m['instructions']} instructions counted under QEMU; estimated {m['cycles_estimate']} "
                     f"cycles = {m['us_estimate_at_168mhz']} us at 168 MHz (weights in SRAM as the firmware image has "
                     "them; cycles are an estimate from the instruction mix, not a measurement)")
    lines.append(f"analytic estimate: {c['cycles_estimate']} cycles = {c['us_estimate_at_168mhz']} us at 168 MHz, "
                 f"{report['cost_weights_in_flash']['us_estimate_at_168mhz']} us with the weights read from flash")
    if "int8_vs_float32" not in v and "episodes_c_vs_onnx" in v:
        ep = v["episodes_c_vs_onnx"]
        lines.append(f"whole episodes ({ep['steps']} steps, state {v['observations']['episodes']['state_dim']}): C vs onnx "
                     f"max abs action {ep['max_abs_action']:.2e}, state {ep['max_abs_state']:.2e}")
    fw = report.get("firmware")
    if fw:
        size = fw.get("size") or {}
        lines.append(f"firmware: {fw['elf']} (STM32F405), {size.get('flash_bytes', '?')} B flash, "
                     f"{size.get('ram_bytes', '?')} B RAM incl. {size.get('stack_reserved_bytes', '?')} B stack")
    for note in report.get("notes", []):
        lines.append(f"note: {note}")
    lines.append(f"manifest sha256 {report['manifest_sha256']}")
    print("\n".join(lines))
    return 0

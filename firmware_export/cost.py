"""Size and inference-cost estimates for the STM32F405 (Crazyflie 2.x, Cortex-M4F at 168 MHz).

Two figures, named for what they are:

* ``instructions``: executed instructions of one ``robolearn_policy`` call, COUNTED under
  QEMU (:mod:`firmware_export.qemu_count`) on the exact ARM build, with its mix per
  mnemonic. A measurement of instructions, not of time.
* ``cycles_estimate``: an ESTIMATE: each executed instruction charged by class as
  :data:`CHARGES` says (Cortex-M4 Technical Reference Manual, ARM DDI 0439B, table 3-1 for
  the integer core, table 7-1 for the FPU). Not a measurement: only a board's DWT cycle
  counter gives cycles.

The charges (cycles per instruction):

==========================  ======  ===================================================
class                       cycles  note
==========================  ======  ===================================================
ALU, MOV, compare, IT, SXT    1
MUL, MLA, SMLAD/SMLA*, SXTB16 1     single-cycle 32-bit MAC unit and DSP extension
LDR*/STR*, VLDR/VSTR          2     1 when it follows another load/store: TRM 3.3.2,
                                    neighbouring loads/stores pipeline (the
                                    ``..._no_load_pipelining`` figure charges 2 always)
LDM/STM/PUSH/POP, VLDM/VSTM,  1 + N N registers; POP into pc + 2 (pipeline refill)
VPUSH/VPOP
VADD/VSUB/VMUL/VNEG/VABS,     1
VMOV, VCVT, VCMP, VMRS
VFMA/VFMS/VMLA/VMLS           3     hence -ffp-contract=off: VMUL + VADD is 2
VDIV, VSQRT                  14
branch (B, BL, BX, CBZ...)    1     + 2 when taken (pipeline refill, 1..3 in the TRM)
SDIV/UDIV                    12     worst case (2..12)
==========================  ======  ===================================================

Memory: robolearn's firmware image copies the weights into SRAM (0 wait states). From flash
(``weights_in="flash"``, e.g. the Crazyflie template's default) the STM32F405 at 168 MHz
has 5 wait states (RM0090 rev 19, table 10); the ART accelerator's data side then costs 5
cycles per 16-byte line of weights read (one miss per line, no reuse between calls
assumed). Instruction fetch is assumed to hit the ART cache/prefetch (small loops).
Expect the truth within ~1.3x either way (FPU result stalls, VMRS after VCMP, bus
contention are not modelled).

Without the ARM toolchain, :func:`estimate` predicts both figures from the network's shape
with per-MAC, per-row and per-activation instruction counts read off the disassembly of
policy.c's kernels (arm-none-eabi-gcc 12.2 -O2, see :data:`KERNEL`); tests/test_export_c.py
checks it against the QEMU count.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Sequence

from .c_codegen import padded_inputs, padded_rows
from .policy_file import PolicySpec

CPU_HZ = 168_000_000  # STM32F405RG maximum SYSCLK (ST DS8626 datasheet); the Crazyflie 2.x runs at it
FLASH_WAIT_CYCLES_PER_LINE, FLASH_LINE_BYTES = 5, 16  # RM0090 rev 19 table 10; ART lines of 128 bits
REFILL = 2  # pipeline refill after a taken branch (TRM: 1..3 cycles)

# (pattern on the mnemonic without condition/width suffix, class, cycles)
CHARGES: tuple[tuple[str, str, int], ...] = (
    (r"^v(fm|fnm|ml|nml)[as]", "vfma", 3),
    (r"^v(div|sqrt)", "vdiv", 14),
    (r"^v(ldm|stm|push|pop)", "vldm", -1),  # 1 + N
    (r"^v(ldr|str)", "vldr", 2),
    (r"^v", "fpu", 1),
    (r"^(ldm|stm|push|pop)", "ldm", -1),  # 1 + N (+ refill when pc is loaded)
    (r"^(ldrd|strd)", "ldm", 3),  # 1 + N, N = 2
    (r"^(ldr|str)", "ldr", 2),
    (r"^(b|bl|blx|bx|cbz|cbnz)$", "branch", 1),
    (r"^(b(eq|ne|cs|hs|cc|lo|mi|pl|vs|vc|hi|ls|ge|lt|gt|le|al))$", "branch", 1),
    (r"^[su]div", "div", 12),
    (r"^(mul|mla|mls|[su]mull|[su]mlal|smla|smul|smlad|smuad|sxtb16|uxtb16|ssat|usat)", "mac", 1),
    (r".", "alu", 1),
)


def classify(mnemonic: str) -> tuple[str, int]:
    """(class, base cycles) of an instruction's mnemonic (``vadd.f32``, ``ldr.w``, ``bne.n``)."""
    m = mnemonic.lower().split(".")[0]
    for pat, cls, cyc in CHARGES:
        if re.search(pat, m):
            return cls, cyc
    return "alu", 1


def _nregs(operands: str) -> int:
    """Registers in a register list ``{r4, r5, lr}`` / ``{s8-s11}`` / ``{d8-d11}`` (d counts 2)."""
    body = operands[operands.find("{") + 1:operands.find("}")]
    n = 0
    for part in body.split(","):
        part = part.strip()
        mult = 2 if part.startswith("d") else 1
        if "-" in part:
            a, b = part.split("-")
            n += mult * (int(re.sub(r"\D", "", b)) - int(re.sub(r"\D", "", a)) + 1)
        elif part:
            n += mult
    return max(n, 1)


def cycles_from_trace(trace: Sequence[tuple[int, int, str, str]]) -> dict[str, Any]:
    """Cycle ESTIMATE for an executed instruction sequence [(address, size, mnemonic, operands)]
    with :data:`CHARGES`; also the count and cycles per class."""
    total = total_np = 0
    by: dict[str, dict[str, int]] = {}
    prev_mem = False
    for i, (addr, size, mn, ops) in enumerate(trace):
        cls, cyc = classify(mn)
        mem = cls in ("ldr", "vldr")
        extra_np = 0
        if cyc < 0:  # load/store multiple
            cyc = 1 + _nregs(ops)
            if cls == "ldm" and "pc" in ops and mn.lower().startswith(("pop", "ldm")):
                cyc += REFILL
        elif mem and prev_mem:
            cyc, extra_np = 1, 1  # pipelined with the previous load/store (TRM 3.3.2)
        if cls == "branch" or (cls == "ldm" and False):
            nxt = trace[i + 1][0] if i + 1 < len(trace) else addr + size
            if nxt != addr + size:
                cyc += REFILL
        prev_mem = mem
        total += cyc
        total_np += cyc + extra_np
        d = by.setdefault(cls, {"count": 0, "cycles": 0})
        d["count"] += 1
        d["cycles"] += cyc
    return {"cycles": total, "cycles_no_pipelining": total_np, "by_class": by}


# The analytic fallback: instructions and estimated cycles (CHARGES applied to the counted
# mix) as  a * MACs computed + b * hidden activations + c * network inputs + d * layers + e,
# least-squares fitted to the QEMU counts of 8 network shapes (18..53 inputs, 1..3 hidden
# layers of 8..64, with and without an integrator; tanh): int8 within 2 %, float32 within 7 %
# (its VLDM loop leaves a C tail for n_in % 4 inputs that this form does not resolve). MACs
# computed count padded rows (and, int8, padded inputs). The activation term is tanh's
# (policy.c's table tanh: ~25 instructions); ACT_DELTA_CYCLES adjusts it for the others.
KERNEL: dict[str, dict[str, tuple[float, float, float, float, float]]] = {
    "float32": {"instructions": (2.436, 32.23, 20.91, 72.87, -57.98), "cycles": (3.817, 33.56, 27.54, 193.2, -234.0)},
    "int8": {"instructions": (1.674, 42.21, 35.18, 264.9, -514.2), "cycles": (2.189, 47.91, 43.91, 320.2, -552.7)},
}
# relu: no tanh (~-25 cycles); elu/silu: newlib's expf, an ASSUMED 120 cycles (not measured), + VDIV for silu
ACT_DELTA_CYCLES = {"tanh": 0.0, "relu": -25.0, "elu": 120.0 - 25.0, "silu": 120.0 - 25.0 + 14.0}
ACT_DELTA_INSTRUCTIONS = {"tanh": 0.0, "relu": -20.0, "elu": 90.0 - 20.0, "silu": 90.0 - 20.0 + 2.0}


def computed_macs(spec: PolicySpec, quantize: str | None) -> int:
    """MACs the kernels execute: rows padded to blocks of 4 (int8: inputs to multiples of 4)."""
    if quantize == "int8":
        return int(sum(padded_rows(w.shape[0]) * padded_inputs(w.shape[1]) for w in spec.weights))
    return int(sum(padded_rows(w.shape[0]) * w.shape[1] for w in spec.weights))


def estimate(spec: PolicySpec, quantize: str | None, weights_in: str = "ram") -> dict:
    """MACs, FLOPs and the analytic instruction / cycle ESTIMATE per inference at 168 MHz.

    ``weights_in``: "ram" (robolearn's firmware image copies them to SRAM) or "flash".
    """
    from .c_codegen import weight_bytes

    if weights_in not in ("ram", "flash"):
        raise ValueError(f"weights_in must be 'ram' or 'flash', got {weights_in!r}")
    kind = "int8" if quantize == "int8" else "float32"
    macs = spec.macs
    acts = sum(padded_rows(h) for h in spec.hidden)
    feats = (computed_macs(spec, quantize), acts, spec.net_in_dim, len(spec.weights), 1)
    instr = sum(a * f for a, f in zip(KERNEL[kind]["instructions"], feats)) + acts * ACT_DELTA_INSTRUCTIONS[spec.activation]
    cycles = sum(a * f for a, f in zip(KERNEL[kind]["cycles"], feats)) + acts * ACT_DELTA_CYCLES[spec.activation]
    if spec.output_activation == "tanh":
        instr += spec.act_dim * 25
        cycles += spec.act_dim * 30
    flash_wait = 0.0
    if weights_in == "flash":
        flash_wait = FLASH_WAIT_CYCLES_PER_LINE * weight_bytes(spec, quantize) / FLASH_LINE_BYTES
        cycles += flash_wait
    n_act = sum(spec.hidden) + (spec.act_dim if spec.output_activation == "tanh" else 0)
    flops = 2 * macs + sum(w.shape[0] for w in spec.weights) + 4 * spec.net_in_dim + 2 * spec.act_dim + n_act
    return {
        "weights": kind,
        "weights_in": weights_in,
        "macs": macs,
        "macs_computed": feats[0],
        "flops": int(flops),
        "activations_evaluated": int(n_act),
        "instructions_estimate": int(round(instr)),
        "cycles_estimate": int(round(cycles)),
        "flash_wait_cycles": int(round(flash_wait)),
        "cpu_hz": CPU_HZ,
        "us_estimate_at_168mhz": round(cycles / CPU_HZ * 1e6, 1),
        "method": "analytic estimate (firmware_export/cost.py): instructions and cycles fitted to QEMU-counted "
                  "instruction mixes of policy.c's kernels, cycles from Cortex-M4 TRM per-class charges (CHARGES), "
                  f"weights in {'SRAM (0 wait states)' if weights_in == 'ram' else 'flash (5 wait states per 16-byte line)'}; "
                  "not a measurement",
    }


ARM_CFLAGS = ("-O2", "-std=c99", "-mcpu=cortex-m4", "-mthumb", "-mfpu=fpv4-sp-d16", "-mfloat-abi=hard")


def arm_object_sizes(c_dir: str | Path, build_dir: str | Path) -> dict[str, Any] | None:
    """Section sizes (bytes) of policy.o compiled for the Cortex-M4F with arm-none-eabi-gcc,
    or None when that toolchain is not installed (it is optional for onnx/c exports)."""
    import shutil
    import subprocess

    gcc, size = shutil.which("arm-none-eabi-gcc"), shutil.which("arm-none-eabi-size")
    if gcc is None or size is None:
        return None
    obj = Path(build_dir) / "policy_m4.o"
    r = subprocess.run([gcc, *ARM_CFLAGS, "-c", str(Path(c_dir) / "policy.c"), "-o", str(obj)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        return None
    out = subprocess.run([size, "-A", str(obj)], capture_output=True, text=True).stdout
    sec = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0].startswith(".") and parts[1].isdigit():
            sec[parts[0]] = int(parts[1])
    text, rodata, data, bss = (sec.get(k, 0) for k in (".text", ".rodata", ".data", ".bss"))
    return {"toolchain": "arm-none-eabi-gcc " + " ".join(ARM_CFLAGS), "text": text, "rodata": rodata,
            "data": data, "bss": bss, "flash_bytes": text + rodata + data, "ram_bytes": data + bss,
            "note": "policy.o alone (libm's expf, used by elu/silu, not included)"}

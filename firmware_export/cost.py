"""Size and inference-cost estimates for the STM32F405 (Crazyflie 2.x).

This is an instruction-count ESTIMATE, not a measurement. The model:

* The inner loop of ``dense()`` in policy.c (4 output rows per pass, weights stored
  [out / 4][in][4], input loop unrolled twice), as arm-none-eabi-gcc 12.2 -O2
  -mcpu=cortex-m4 -mfpu=fpv4-sp-d16 -mfloat-abi=hard -ffp-contract=off compiles it
  (inspected with objdump):
  float, per 8 MACs: 2 VLDR input + 8 VLDR weight, 8 VMUL.F32, 8 VADD.F32, 2 ADD, CMP, BNE
  int8, per 4 MACs:  1 VLDR input + 4 LDRSB weight, 4 VMOV, 4 VCVT.F32.S32, 4 VMUL, 4 VADD,
                     ADD, CMP, BNE
* Cycle costs from the Cortex-M4 Technical Reference Manual (ARM DDI 0439B), tables
  3-1 and 7-1: VLDR 2, LDRSB 2 (no credit taken for load pipelining), VMUL/VADD/VCVT/VMOV
  1, ADD/CMP 1, a taken branch 1 + pipeline refill (1..3; we take 2). (VFMA would be 3
  cycles: slower than VMUL + VADD, hence no contraction.)
  -> float (20 + 16 + 3 + 3) / 8 = 5.25 cycles per MAC; int8 (2 + 8 + 16 + 2 + 3) / 4 = 7.75.
* Memory: robolearn's firmware image copies the weights into SRAM at reset (zero wait
  states). Read from flash instead (``weights_in="flash"``, e.g. the Crazyflie template's
  default), the STM32F405 at 168 MHz needs 5 wait states (RM0090 rev 19, table 10); the
  ART accelerator's 128-bit lines then cost 5 cycles per 16 bytes of weights (one miss per
  line, no reuse between inferences assumed): float +1.25 cycles/MAC, int8 +0.31.
  Rows are padded to whole blocks of 4; padded rows are computed and counted.
* Activations: tanh is policy.c's rational approximation: clamp, 10 Horner steps
  (VMUL + VADD), one VDIV (14 cycles) and 11 constant loads (VLDR, 2): ~60 cycles.
  ``expf`` (elu/silu) from newlib's libm is charged an ASSUMED 120 cycles (not
  measured). ReLU 3.
* Per output row (block set-up, bias loads, stores) ~8 cycles, 20 per layer;
  normalization ~12 cycles per observation; output clip ~12 per action.

Expect the truth within a factor ~1.5 either way: load pipelining can make VLDR cost 1
cycle, FPU stalls can add some, and libm's cost depends on the argument.
``robolearn hil --device emulated`` measures the firmware's exact instruction count per
inference under QEMU (-icount): a lower bound on cycles (CPI >= 1), not a cycle count.
Only a real board's DWT counter gives the cycle count.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .c_codegen import padded_rows
from .policy_file import PolicySpec

CPU_HZ = 168_000_000  # STM32F405RG maximum SYSCLK (ST DS8626 datasheet); the Crazyflie 2.x runs at it
CYCLES_PER_MAC = {"float32": 42.0 / 8.0, "int8": 31.0 / 4.0}
FLASH_CYCLES_PER_MAC = {"float32": 5.0 / 4.0, "int8": 5.0 / 16.0}  # 5 wait states per 16-byte line
CYCLES_TRANSCENDENTAL = 120.0  # expf: assumption, see the module docstring
CYCLES_TANH = 60.0  # policy.c's rational tanh, counted from its instruction sequence
CYCLES_ACT = {"tanh": CYCLES_TANH, "elu": CYCLES_TRANSCENDENTAL + 4,
              "silu": CYCLES_TRANSCENDENTAL + 16,  # expf + add + VDIV.F32 (14 cycles, DDI 0439B table 7-1)
              "relu": 3.0}
CYCLES_PER_ROW, CYCLES_PER_LAYER, CYCLES_PER_OBS, CYCLES_PER_ACTION = 8.0, 20.0, 12.0, 12.0


def estimate(spec: PolicySpec, quantize: str | None, weights_in: str = "ram") -> dict:
    """MACs, FLOPs and an estimated cycle count / time per inference at 168 MHz.

    ``weights_in``: "ram" (robolearn's firmware image copies them to SRAM) or "flash".
    """
    if weights_in not in ("ram", "flash"):
        raise ValueError(f"weights_in must be 'ram' or 'flash', got {weights_in!r}")
    kind = "int8" if quantize == "int8" else "float32"
    macs = spec.macs
    rows = sum(padded_rows(w.shape[0]) for w in spec.weights)
    computed_macs = sum(padded_rows(w.shape[0]) * w.shape[1] for w in spec.weights)
    per_mac = CYCLES_PER_MAC[kind] + (FLASH_CYCLES_PER_MAC[kind] if weights_in == "flash" else 0.0)
    n_act = sum(spec.hidden) + (spec.act_dim if spec.output_activation == "tanh" else 0)
    cycles = (computed_macs * per_mac
              + sum(spec.hidden) * CYCLES_ACT[spec.activation]
              + (spec.act_dim * CYCLES_TANH if spec.output_activation == "tanh" else 0)
              + rows * CYCLES_PER_ROW + len(spec.weights) * CYCLES_PER_LAYER
              + spec.obs_dim * CYCLES_PER_OBS + spec.act_dim * CYCLES_PER_ACTION)
    # FLOPs: 2 per MAC, bias adds, normalization (sub, mul, 2 compares), clip, activations as 1.
    flops = 2 * macs + sum(w.shape[0] for w in spec.weights) + 4 * spec.obs_dim + 2 * spec.act_dim + n_act
    return {
        "weights": kind,
        "weights_in": weights_in,
        "macs": macs,
        "flops": int(flops),
        "activations_evaluated": int(n_act),
        "estimated_cycles": int(round(cycles)),
        "cpu_hz": CPU_HZ,
        "estimated_us_at_168mhz": round(cycles / CPU_HZ * 1e6, 1),
        "method": "instruction-count estimate (firmware_export/cost.py): Cortex-M4 TRM cycle counts for the "
                  f"compiled inner loop, weights in {'SRAM (0 wait states)' if weights_in == 'ram' else 'flash (5 wait states per 16-byte line)'}, "
                  "~60 cycles per tanh, 120 assumed per expf; not a measurement",
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

"""Size and inference-cost estimates for the STM32F405 (Crazyflie 2.x).

This is an instruction-count ESTIMATE, not a measurement. The model:

* The inner loop of ``dense()`` in policy.c (four partial sums), as arm-none-eabi-gcc
  12.2 -O2 -mcpu=cortex-m4 -mfpu=fpv4-sp-d16 -mfloat-abi=hard -ffp-contract=off
  compiles it (inspected with objdump), per 4 MACs:
  float:  8 VLDR, 4 VMUL.F32, 4 VADD.F32, 2 ADD, CMP, BNE                 (20 instructions)
  int8:   4 LDRSB, 4 VMOV, 4 VCVT.F32.S32, 4 VLDR, 4 VMUL, 4 VADD, 2 ADD, CMP, BNE
* Cycle costs from the Cortex-M4 Technical Reference Manual (ARM DDI 0439B), tables
  3-1 and 7-1: VLDR 2, LDRSB 2, VMUL/VADD/VCVT/VMOV 1, ADD/CMP 1, a taken branch 1 +
  pipeline refill (1..3; we take 2). (VFMA would be 3 cycles: slower than VMUL+VADD,
  hence no contraction.)
  -> float (16 + 8 + 6) / 4 = 7.5 cycles per MAC; int8 (8 + 16 + 8 + 6) / 4 = 9.5.
* Flash: at 168 MHz the STM32F405 needs 5 wait states (RM0090 rev 19, table 10,
  2.7-3.6 V). Weights are read sequentially from flash through the ART accelerator's
  128-bit lines; we charge 5 cycles per 16-byte line of weights (one miss per line, no
  reuse between inferences assumed): float +1.25 cycles/MAC, int8 +0.31.
* Activations: tanh is policy.c's rational approximation: clamp, 10 Horner steps
  (VMUL + VADD), one VDIV (14 cycles) and 11 constant loads (VLDR, 2): ~60 cycles.
  ``expf`` (elu/silu) from newlib's libm is charged an ASSUMED 120 cycles (not
  measured). ReLU 3.
* Per layer and per output row: loop set-up and bias add, ~8 cycles per row, 20 per
  layer; normalization ~12 cycles per observation; output clip ~12 per action.

Expect the truth within a factor ~1.5 either way: wait states depend on the ART
cache state, and libm's cost on the argument. ``robolearn hil --device emulated``
measures the firmware's exact instruction count per inference under QEMU (-icount):
a lower bound on cycles (CPI >= 1), not a cycle count. Only a real board's DWT
counter gives the cycle count.
"""

from __future__ import annotations

from .policy_file import PolicySpec

CPU_HZ = 168_000_000  # STM32F405RG maximum SYSCLK (ST DS8626 datasheet); the Crazyflie 2.x runs at it
CYCLES_PER_MAC = {"float32": 7.5 + 5.0 / 4.0, "int8": 9.5 + 5.0 / 16.0}
CYCLES_TRANSCENDENTAL = 120.0  # expf: assumption, see the module docstring
CYCLES_TANH = 60.0  # policy.c's rational tanh, counted from its instruction sequence
CYCLES_ACT = {"tanh": CYCLES_TANH, "elu": CYCLES_TRANSCENDENTAL + 4,
              "silu": CYCLES_TRANSCENDENTAL + 16,  # expf + add + VDIV.F32 (14 cycles, DDI 0439B table 7-1)
              "relu": 3.0}
CYCLES_PER_ROW, CYCLES_PER_LAYER, CYCLES_PER_OBS, CYCLES_PER_ACTION = 8.0, 20.0, 12.0, 12.0


def estimate(spec: PolicySpec, quantize: str | None) -> dict:
    """MACs, FLOPs and an estimated cycle count / time per inference at 168 MHz."""
    kind = "int8" if quantize == "int8" else "float32"
    macs = spec.macs
    n_act = sum(spec.hidden) + (spec.act_dim if spec.output_activation == "tanh" else 0)
    rows = sum(w.shape[0] for w in spec.weights)
    cycles = (macs * CYCLES_PER_MAC[kind]
              + sum(spec.hidden) * CYCLES_ACT[spec.activation]
              + (spec.act_dim * CYCLES_TANH if spec.output_activation == "tanh" else 0)
              + rows * CYCLES_PER_ROW + len(spec.weights) * CYCLES_PER_LAYER
              + spec.obs_dim * CYCLES_PER_OBS + spec.act_dim * CYCLES_PER_ACTION)
    # FLOPs: 2 per MAC, bias adds, normalization (sub, mul, 2 compares), clip, activations as 1.
    flops = 2 * macs + rows + 4 * spec.obs_dim + 2 * spec.act_dim + n_act
    return {
        "weights": kind,
        "macs": macs,
        "flops": int(flops),
        "activations_evaluated": int(n_act),
        "estimated_cycles": int(round(cycles)),
        "cpu_hz": CPU_HZ,
        "estimated_us_at_168mhz": round(cycles / CPU_HZ * 1e6, 1),
        "method": "instruction-count estimate (firmware_export/cost.py): Cortex-M4 TRM cycle counts for the "
                  "compiled inner loop, 5 flash wait states per 16-byte line, ~60 cycles per tanh, 120 assumed per expf; "
                  "not a measurement",
    }


ARM_CFLAGS = ("-O2", "-std=c99", "-mcpu=cortex-m4", "-mthumb", "-mfpu=fpv4-sp-d16", "-mfloat-abi=hard")


def arm_object_sizes(c_dir, build_dir) -> dict | None:
    """Section sizes (bytes) of policy.o compiled for the Cortex-M4F with arm-none-eabi-gcc,
    or None when that toolchain is not installed (it is optional for onnx/c exports)."""
    import shutil
    import subprocess
    from pathlib import Path

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

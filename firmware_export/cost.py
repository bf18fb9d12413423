"""Size and inference-cost estimates for the STM32F405 (Crazyflie 2.x).

This is an instruction-count ESTIMATE, not a measurement. The model:

* The inner loop of ``dense()`` in policy.c, as arm-none-eabi-gcc 12.2 -O2
  -mcpu=cortex-m4 -mfpu=fpv4-sp-d16 -mfloat-abi=hard compiles it, is
  float:  VLDM x, VLDM w, VMUL.F32, VADD.F32, CMP, BNE                    (6 instructions)
  int8:   LDRSB w, VLDM x, VMOV, VCVT.F32.S32, VMUL.F32, VADD.F32, CMP, BNE (8 instructions)
  (inspected with objdump; no FMA, since ``-std=c99`` turns contraction off).
* Cycle costs from the Cortex-M4 Technical Reference Manual (ARM DDI 0439B), tables
  3-1 and 7-1: VLDM/VLDR of one register 2, LDRSB 2, VMUL/VADD/VCVT/VMOV 1, CMP 1, a
  taken branch 1 + pipeline refill (1..3; we take 2).
  -> float 2+2+1+1+1+3 = 10 cycles per MAC; int8 2+2+1+1+1+1+1+3 = 12.
* Flash: at 168 MHz the STM32F405 needs 5 wait states (RM0090 rev 19, table 10,
  2.7-3.6 V). Weights are read sequentially from flash through the ART accelerator's
  128-bit lines; we charge 5 cycles per 16-byte line of weights (one miss per line, no
  reuse between inferences assumed): float +1.25 cycles/MAC, int8 +0.31.
* Activations: ``tanhf``/``expf`` from newlib's libm are charged an ASSUMED 120 cycles
  each (single-precision software routine on the FPU; not measured here). ReLU 3.
* Per layer and per output row: loop set-up and bias add, ~8 cycles per row, 20 per
  layer; normalization ~12 cycles per observation; output clip ~12 per action.

Expect the truth within a factor ~1.5 either way: wait states depend on the ART
cache state, and libm's cost on the argument. The firmware build (``firmware.py``)
measures cycles with the DWT cycle counter under emulation, which is the better number.
"""

from __future__ import annotations

from .policy_file import PolicySpec

CPU_HZ = 168_000_000  # STM32F405RG maximum SYSCLK (ST DS8626 datasheet); the Crazyflie 2.x runs at it
CYCLES_PER_MAC = {"float32": 10.0 + 5.0 / 4.0, "int8": 12.0 + 5.0 / 16.0}
CYCLES_TRANSCENDENTAL = 120.0  # assumption, see the module docstring
CYCLES_ACT = {"tanh": CYCLES_TRANSCENDENTAL, "elu": CYCLES_TRANSCENDENTAL + 4,
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
              + (spec.act_dim * CYCLES_TRANSCENDENTAL if spec.output_activation == "tanh" else 0)
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
                  "compiled inner loop, 5 flash wait states per 16-byte line, 120 cycles assumed per tanhf/expf; "
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
            "note": "policy.o alone (libm's tanhf/expf not included)"}

"""Executed instructions of one ``robolearn_policy`` call on the Cortex-M4, counted under QEMU.

:func:`count_instructions` compiles an export's ``policy.c`` with ``mcu_bench/bench.c``
(bare metal, ``arm-none-eabi-gcc`` with :data:`ARM_FLAGS`), runs it on QEMU's
``netduinoplus2`` (STM32F405) with ``-singlestep -d exec,nochain,in_asm`` (one translation
block per guest instruction, every execution logged), and reads from the log the
instructions executed between the markers ``bench_begin()`` and ``bench_end()`` around one
policy step (after warm-up steps, so the integrator state is not zero). The result is an
exact dynamic instruction count and mix (per mnemonic), a measurement; the cycle count
is then ESTIMATED from that mix with the per-class charges of :mod:`firmware_export.cost`.
QEMU is not cycle accurate: it counts instructions, not cycles.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ExportError

BENCH_DIR = Path(__file__).with_name("mcu_bench")
# -ffp-contract=off: VMUL + VADD (1 + 1 cycles) rather than VFMA (3 cycles; ARM DDI 0439B
# table 7-1), and the float results stay bit-identical to the host build the export verified.
ARM_FLAGS = ("-O2", "-std=c99", "-mcpu=cortex-m4", "-mthumb", "-mfpu=fpv4-sp-d16", "-mfloat-abi=hard",
             "-ffp-contract=off")
WEIGHTS_IN_RAM = "-DROBOLEARN_WEIGHTS_ATTR=__attribute__((section(\".data.robolearn_weights\")))"
QEMU_MACHINE = "netduinoplus2"
_IN = re.compile(r"^0x([0-9a-f]+):\s+((?:[0-9a-f]{4} ?){1,2})\s+(\S+)\s*(.*)$")
_TRACE = re.compile(r"^Trace \d+: 0x[0-9a-f]+ \[[0-9a-f]+/([0-9a-f]+)/")


def tools_available() -> bool:
    return all(shutil.which(t) for t in ("arm-none-eabi-gcc", "arm-none-eabi-nm", "qemu-system-arm"))


def _run(cmd: list[str], what: str, timeout: float = 60.0) -> subprocess.CompletedProcess:
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0:
        first = next((ln for ln in (r.stderr + r.stdout).splitlines() if ln.strip()), "")
        raise ExportError(f"{what} failed (exit {r.returncode}): {first.strip()[:200]}")
    return r


def build_bench(c_dir: Path, out: Path, weights_in: str = "ram", warmup: int = 3) -> Path:
    """The bench ELF for ``c_dir``'s policy.c (weights in SRAM like robolearn's firmware, or flash)."""
    defs = [WEIGHTS_IN_RAM] if weights_in == "ram" else []
    elf = out / "bench.elf"
    _run(["arm-none-eabi-gcc", *ARM_FLAGS, "-fno-tree-loop-distribute-patterns", *defs, f"-DBENCH_WARMUP={warmup}",
          "-I", str(c_dir), str(c_dir / "policy.c"), str(BENCH_DIR / "bench.c"), "-T", str(BENCH_DIR / "bench.ld"),
          "-nostartfiles", "-nostdlib", "-o", str(elf), "-lm", "-lgcc"], "arm-none-eabi-gcc (bench)")
    return elf


def bench_observations(obs_dim: int, warmup: int = 3) -> np.ndarray:
    """(warmup + 1, obs_dim) float32: the observation sequence bench.c feeds after its reset
    (``0.25 * ((i * 7 + t * 3) % 11 - 5)``, computed in float32 as the C does)."""
    i, t = np.meshgrid(np.arange(obs_dim), np.arange(warmup + 1))
    v = ((i * 7 + t * 3) % 11 - 5).astype(np.float32)
    out: np.ndarray = np.float32(0.0) + np.float32(0.25) * v
    return out


def bench_actions(stdout: str, act_dim: int) -> np.ndarray:
    """The actions bench.c printed (one 'A hex hex ...' line per step) as float32 (steps, act_dim)."""
    rows = [[int(h, 16) for h in line.split()[1:]] for line in stdout.splitlines() if line.startswith("A ")]
    out: np.ndarray = np.array(rows, dtype=np.uint32).view(np.float32).reshape(-1, act_dim)
    return out


def trace_between_markers(elf: Path, work: Path, stdout: list[str] | None = None) -> list[tuple[int, int, str, str]]:
    """(address, size in bytes, mnemonic, operands) of every instruction executed between
    ``bench_begin`` returning and ``bench_end`` being entered, in order; ``stdout``, when
    given, receives what the bench printed (its actions)."""
    syms = {}
    for line in _run(["arm-none-eabi-nm", str(elf)], "arm-none-eabi-nm").stdout.splitlines():
        parts = line.split()
        if len(parts) == 3:
            syms[parts[2]] = int(parts[0], 16) & ~1
    log = work / "qemu.log"
    r = _run(["qemu-system-arm", "-M", QEMU_MACHINE, "-nographic", "-monitor", "none", "-serial", "none",
          "-semihosting-config", "enable=on,target=native", "-kernel", str(elf), "-singlestep",
          "-d", "exec,nochain,in_asm", "-D", str(log)], "qemu-system-arm (bench)")
    if stdout is not None:
        stdout.append(r.stdout + r.stderr)  # QEMU writes the semihosting console to stderr
    insn: dict[int, tuple[int, str, str]] = {}
    seq: list[int] = []
    for line in log.read_text(errors="replace").splitlines():
        m = _TRACE.match(line)
        if m:
            seq.append(int(m.group(1), 16))
            continue
        m = _IN.match(line)
        if m:
            size = 2 * len(m.group(2).split())
            insn[int(m.group(1), 16)] = (size, m.group(3), m.group(4))
    begin, end = syms["bench_begin"], syms["bench_end"]
    try:
        i0 = seq.index(begin)
        i1 = seq.index(end, i0)
    except ValueError:
        raise ExportError("the QEMU trace has no bench markers; the bench did not run to the end") from None
    # bench_begin is one instruction (bx lr): skip it
    return [(a, *insn[a]) for a in seq[i0 + 1:i1]]


def count_instructions(c_dir: str | Path, weights_in: str = "ram") -> dict[str, Any]:
    """Measure one policy step of ``c_dir``'s policy.c under QEMU: instruction count and mix,
    plus the cycle estimate of :func:`firmware_export.cost.cycles_from_trace`."""
    from . import cost

    if not tools_available():
        raise ExportError("counting instructions needs arm-none-eabi-gcc and qemu-system-arm "
                          "(Debian: gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm; .ci/system-deps.sh)")
    with tempfile.TemporaryDirectory(prefix="robolearn_qemu_") as tmp:
        work = Path(tmp)
        elf = build_bench(Path(c_dir), work, weights_in)
        printed: list[str] = []
        trace = trace_between_markers(elf, work, printed)
    mix = Counter(t[2].split(".")[0] for t in trace)
    est = cost.cycles_from_trace(trace)
    return {"instructions": len(trace), "mix": dict(mix.most_common()), "by_class": est["by_class"],
            "cycles_estimate": est["cycles"], "cycles_estimate_no_load_pipelining": est["cycles_no_pipelining"],
            "us_estimate_at_168mhz": round(est["cycles"] / cost.CPU_HZ * 1e6, 2),
            "method": "instructions: counted under QEMU " + QEMU_MACHINE + " (-singlestep, exec trace) between markers "
                      "around one robolearn_policy call, compiled with arm-none-eabi-gcc " + " ".join(ARM_FLAGS)
                      + f", weights in {'SRAM' if weights_in == 'ram' else 'flash'}; cycles: ESTIMATE from that mix "
                      "with the per-class charges in firmware_export/cost.py (CHARGES), not a measurement",
            "weights_in": weights_in, "bench_stdout": printed[0] if printed else ""}

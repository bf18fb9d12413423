"""Firmware image for the STM32F405 (Cortex-M4F) and the same device loop for the host.

* :func:`build_firmware` compiles ``policy.c`` (from an export directory made by
  ``firmware_export``) with the protocol (``hardware/c/rl_proto.c``), the device loop
  (``hardware/c/rl_device.c``) and the board support in ``hardware/firmware/`` (vector table, linker script,
  FPU enable, clocks, USART1, cycle counter) into an ELF with ``arm-none-eabi-gcc``
  and writes the section sizes from ``arm-none-eabi-size`` (flash / RAM) into
  ``firmware_size.json`` next to it.
* :func:`qemu_command` is the ``qemu-system-arm`` command line that runs the ELF on
  QEMU's ``netduinoplus2`` board (STM32F405), USART1 on the given character device.
* :func:`build_host_device` compiles the same device loop for the host
  (``hardware/c/host_platform.c``: the protocol on the tty path given as ``argv[1]``).

Builds go to ``out_dir`` (default ``EXPORT_DIR/firmware``, ``EXPORT_DIR/firmware/host``),
never into the source tree; objects live in a temporary directory; the final files are
renamed into place only when complete. A missing compiler, QEMU or a failed build is an
:class:`~hardware.errors.ExportError` with a one-line message. :func:`host_cc` is the
host C compiler every host build here uses (``$CC``, default ``cc``).

This module belongs to ``hardware`` (which may use ``firmware_export``, never the
reverse): ``firmware_export.export(..., firmware_builder=build_firmware)`` is how the
exporter's ``firmware`` format reaches it (``robolearn export`` passes it).

Cycle counts under QEMU: QEMU is not cycle accurate and has no DWT cycle counter, so
the firmware counts SysTick ticks of the 168 MHz processor clock. QEMU's SysTick runs on
its virtual clock, which with ``-icount shift=0`` (used here) advances exactly 1 ns per
guest instruction: the reported "cycles" are ``0.168 x instructions executed`` and
``cycles / cpu_hz`` is the instruction count in ns: an INSTRUCTION COUNT, not a time.
:func:`instructions_from_cycles` converts back. Real Cortex-M4 cycles are instructions x CPI (about 1 to 1.5 for this
code: single-cycle FPU ops, 2-cycle loads, flash wait states hidden by the ART cache).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from .errors import ExportError

FIRMWARE_DIR = Path(__file__).with_name("firmware")
PROTO_DIR = Path(__file__).with_name("c")
ELF_NAME = "robolearn_fw.elf"
SIZE_NAME = "firmware_size.json"
HOST_EXE_NAME = "robolearn_device"

ARM_ARCH = ("-mcpu=cortex-m4", "-mthumb", "-mfpu=fpv4-sp-d16", "-mfloat-abi=hard")
# -ffp-contract=off: no fused multiply-add. On the Cortex-M4 VFMA.F32 takes 3 cycles and
# VMUL + VADD 1 + 1 (ARM DDI 0439B, table 7-1), so contraction saves instructions but
# costs cycles; and the board then sums exactly as the host build does.
ARM_CFLAGS = (*ARM_ARCH, "-O2", "-std=gnu99", "-Wall", "-Wextra", "-Werror", "-ffp-contract=off",
              "-ffunction-sections", "-fdata-sections", "-g")
ARM_LDFLAGS = ("-nostartfiles", "--specs=nano.specs", "-Wl,--gc-sections")
# policy.c's weights go to SRAM (.data, copied from flash at reset by startup.c): SRAM has
# no wait states, flash 5 at 168 MHz (RM0090 rev 19, table 10). The 64 KB CCM RAM would
# serve too on silicon, but QEMU 7.2's STM32F405 model does not map it.
POLICY_DEFINES = ("-DROBOLEARN_WEIGHTS_ATTR=__attribute__((section(\".data.robolearn_weights\")))",)
HOST_CFLAGS = ("-O2", "-std=c99", "-Wall", "-Wextra", "-Werror", "-ffp-contract=off")

QEMU_MACHINE = "netduinoplus2"
QEMU_CPU_HZ = 168_000_000  # the board model's fixed SYSCLK (QEMU hw/arm/netduinoplus2.c)
QEMU_ICOUNT_SHIFT = 0  # virtual ns per instruction = 2**shift

_APT = {"arm-none-eabi-gcc": "gcc-arm-none-eabi libnewlib-arm-none-eabi",
        "arm-none-eabi-size": "binutils-arm-none-eabi",
        "qemu-system-arm": "qemu-system-arm", "cc": "gcc"}


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise ExportError(f"{name} not found: install the Debian package(s) {_APT[name]} "
                          f"(sudo apt-get install {_APT[name]}, or run .ci/system-deps.sh)")
    return path


def host_cc() -> str:
    """Path of the host C compiler (``$CC``, default ``cc``); ExportError when missing."""
    cc = os.environ.get("CC") or "cc"
    path = shutil.which(cc)
    if path is None:
        raise ExportError(f"host C compiler {cc} not found: install the Debian package gcc "
                          "(sudo apt-get install gcc)")
    return path


def _run(cmd: list[str], what: str) -> str:
    p = subprocess.run([str(c) for c in cmd], capture_output=True, text=True)
    if p.returncode != 0:
        lines = [ln for ln in (p.stderr + p.stdout).splitlines() if ln.strip()]
        first = next((ln for ln in lines if "error" in ln.lower()), lines[0] if lines else "")
        raise ExportError(f"{what} failed ({Path(cmd[0]).name} exit {p.returncode}): {first.strip()}")
    return p.stdout


def _policy_sources(export_dir: Path) -> tuple[Path, Path]:
    export_dir = Path(export_dir)
    c, h = export_dir / "policy.c", export_dir / "policy.h"
    if not (c.is_file() and h.is_file()):
        raise ExportError(f"{export_dir} has no policy.c/policy.h: export with the c format "
                          "(robolearn export RUN --format onnx,c)")
    return c, h


def _sizes(size_tool: str, path: Path) -> dict:
    """``arm-none-eabi-size -A`` (per section) of an object or ELF, as a dict."""
    out = _run([size_tool, "-A", str(path)], "arm-none-eabi-size")
    sec = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0].startswith(".") and parts[1].isdigit():
            sec[parts[0]] = int(parts[1])
    return sec


def _berkeley(size_tool: str, path: Path) -> dict:
    """``arm-none-eabi-size`` default (Berkeley) output: text, data, bss."""
    out = _run([size_tool, "-B", str(path)], "arm-none-eabi-size").splitlines()
    text, data, bss = (int(x) for x in out[1].split()[:3])
    return {"text": text, "data": data, "bss": bss}


def build_firmware(export_dir: str | Path, out_dir: str | Path | None = None) -> Path:
    """Build the STM32F405 image for ``export_dir``'s ``policy.c``; returns the ELF path.

    Also writes ``firmware_size.json`` next to the ELF: ``arm-none-eabi-size`` figures
    (Berkeley text/data/bss and per section), flash = text + data, RAM = data + bss
    (bss includes the reserved stack), and the policy's own share (``policy.o``).
    """
    export_dir = Path(export_dir)
    policy_c, _ = _policy_sources(export_dir)
    gcc, size_tool = _tool("arm-none-eabi-gcc"), _tool("arm-none-eabi-size")
    out = Path(out_dir) if out_dir is not None else export_dir / "firmware"
    out.mkdir(parents=True, exist_ok=True)
    inc = ["-I", str(export_dir), "-I", str(PROTO_DIR)]
    sources = [policy_c, PROTO_DIR / "rl_proto.c", PROTO_DIR / "rl_device.c",
               FIRMWARE_DIR / "board.c", FIRMWARE_DIR / "startup.c"]
    with tempfile.TemporaryDirectory(prefix="robolearn_fw_") as tmp_name:
        tmp = Path(tmp_name)
        objs = []
        for src in sources:
            obj = tmp / (src.stem + ".o")
            defs = POLICY_DEFINES if src == policy_c else ()
            _run([gcc, *ARM_CFLAGS, *defs, *inc, "-c", str(src), "-o", str(obj)],
                 f"compiling {src.name} for the Cortex-M4F")
            objs.append(obj)
        elf_tmp = tmp / ELF_NAME
        _run([gcc, *ARM_ARCH, *ARM_LDFLAGS, "-T", str(FIRMWARE_DIR / "stm32f405.ld"),
              f"-Wl,-Map={tmp / 'robolearn_fw.map'}", *map(str, objs), "-lm", "-lc", "-lgcc",
              "-o", str(elf_tmp)], "linking the firmware")
        sections = _sizes(size_tool, elf_tmp)
        berkeley = _berkeley(size_tool, elf_tmp)
        policy_o = _berkeley(size_tool, tmp / "policy.o")
        version = _run([gcc, "--version"], "arm-none-eabi-gcc --version").splitlines()[0]
        stack = sections.get(".stack", 0)
        report = {
            "elf": ELF_NAME, "target": "STM32F405 (Cortex-M4F), netduinoplus2 under QEMU",
            "compiler": version, "cflags": " ".join(ARM_CFLAGS), "ldflags": " ".join(ARM_LDFLAGS),
            "size_berkeley": berkeley, "sections": sections,
            "flash_bytes": berkeley["text"] + berkeley["data"],
            "ram_bytes": berkeley["data"] + berkeley["bss"],
            "ram_static_bytes": berkeley["data"] + berkeley["bss"] - stack, "stack_reserved_bytes": stack,
            "flash_capacity_bytes": 1 << 20, "ram_capacity_bytes": 128 << 10,
            "policy_o": policy_o | {"flash_bytes": policy_o["text"] + policy_o["data"],
                                    "ram_bytes": policy_o["data"] + policy_o["bss"]},
            "cycle_counter": "DWT CYCCNT on silicon; SysTick (processor clock) where DWT does not count (QEMU)",
        }
        os.replace(tmp / "robolearn_fw.map", out / "robolearn_fw.map")
        (out / (SIZE_NAME + ".tmp")).write_text(json.dumps(report, indent=2) + "\n")
        os.replace(out / (SIZE_NAME + ".tmp"), out / SIZE_NAME)
        shutil.move(str(elf_tmp), str(out / (ELF_NAME + ".tmp")))
        os.replace(out / (ELF_NAME + ".tmp"), out / ELF_NAME)
    return out / ELF_NAME


def firmware_size(elf: str | Path) -> dict[str, Any]:
    """The ``firmware_size.json`` written next to ``elf`` by :func:`build_firmware`."""
    report: dict[str, Any] = json.loads((Path(elf).parent / SIZE_NAME).read_text())
    return report


def qemu_command(elf: str | Path, serial_spec: str) -> list[str]:
    """``qemu-system-arm`` running ``elf`` on netduinoplus2, USART1 on ``serial_spec``
    (a QEMU chardev: ``pty``, ``tcp:127.0.0.1:PORT,server=on,wait=off``, ...).

    ``-icount shift=0``: deterministic virtual time, 1 ns per instruction (see the
    module docstring for what the cycle counts mean)."""
    qemu = _tool("qemu-system-arm")
    return [qemu, "-M", QEMU_MACHINE, "-nodefaults", "-display", "none", "-monitor", "none",
            "-serial", str(serial_spec), "-icount", f"shift={QEMU_ICOUNT_SHIFT},align=off",
            "-kernel", str(elf)]


def instructions_from_cycles(cycles: float, cpu_hz: float = QEMU_CPU_HZ,
                             shift: int = QEMU_ICOUNT_SHIFT) -> float:
    """Guest instructions behind a cycle count measured with SysTick under QEMU
    ``-icount shift``: ticks = instructions x 2**shift ns x cpu_hz."""
    return float(cycles) / (cpu_hz * float(2 ** shift) * 1e-9)  # int ** int is Any to mypy


def build_host_device(export_dir: str | Path, out_dir: str | Path | None = None) -> Path:
    """Compile the device loop with ``policy.c`` for the host (``cc -O2 -Wall -Wextra
    -Werror``); returns the executable, run as ``EXE /dev/pts/N``."""
    export_dir = Path(export_dir)
    policy_c, _ = _policy_sources(export_dir)
    cc = host_cc()
    out = Path(out_dir) if out_dir is not None else export_dir / "firmware" / "host"
    out.mkdir(parents=True, exist_ok=True)
    exe = out / HOST_EXE_NAME
    tmp_exe = out / (HOST_EXE_NAME + f".tmp{os.getpid()}")
    _run([cc, *HOST_CFLAGS, "-I", str(export_dir), "-I", str(PROTO_DIR), str(policy_c),
          str(PROTO_DIR / "rl_proto.c"), str(PROTO_DIR / "rl_device.c"), str(PROTO_DIR / "host_platform.c"),
          "-o", str(tmp_exe), "-lm"], "compiling the host device")
    os.replace(tmp_exe, exe)
    return exe

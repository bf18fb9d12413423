"""Byte-stream devices the HIL runner talks to.

All backends have the same small interface (:class:`Device`): ``open()``, ``close()``,
``write(bytes)``, ``read(timeout) -> bytes`` (what is available, waiting up to
``timeout`` for the first byte; ``b""`` on time-out), ``info()``, and work as context
managers. ``read``/``write`` raise :class:`~hardware.errors.DeviceLost` when the
device goes away.

* :class:`SerialDevice` – a serial port (``/dev/ttyACM0``), or any pyserial URL
  (``socket://127.0.0.1:PORT``).
* :class:`PtyProcessDevice` – a host process (the C policy compiled for the host, or
  the Python device model) on a pseudo-terminal from ``os.openpty()``; the slave path
  is the process's first argument.
* :class:`QemuDevice` – the STM32 firmware under ``qemu-system-arm``, serial port on a
  local TCP socket (default) or a QEMU pty.
* :class:`ModelDevice` – the Python device model in this process (fast tests, faults).

Child processes (QEMU, host devices) are always stopped by their PID: ``close()``
(also from ``__exit__`` and ``finally``), an ``atexit`` hook, SIGTERM/SIGHUP turned
into ``SystemExit`` while a child runs (Ctrl-C already raises ``KeyboardInterrupt``),
and ``PR_SET_PDEATHSIG`` so the kernel kills them if this process dies by SIGKILL.
Each is reaped with ``wait()``: no zombies.
"""

from __future__ import annotations

import atexit
import ctypes
import os
import re
import select
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, Callable, NoReturn, Self, Sequence

from .errors import DeviceLost, DeviceOpenError

if TYPE_CHECKING:
    import serial as pyserial

    from .device_model import DeviceModel

# ------------------------------------------------------------------ child processes
_LIVE: dict[int, subprocess.Popen] = {}
_LIVE_LOCK = threading.Lock()
_Handler = Callable[[int, FrameType | None], Any] | int | signal.Handlers | None
_SAVED_HANDLERS: dict[int, _Handler] = {}
_FORWARDED = (signal.SIGTERM, signal.SIGHUP)

_prctl: Callable[..., int] | None
try:
    _libc = ctypes.CDLL(None, use_errno=True)
    _prctl = _libc.prctl
except (OSError, AttributeError):  # not Linux
    _prctl = None
_PR_SET_PDEATHSIG = 1


def _child_setup() -> None:  # runs in the child between fork and exec
    if _prctl is not None:
        _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def _raise_exit(signum: int, frame: FrameType | None) -> NoReturn:  # noqa: ARG001
    raise SystemExit(128 + signum)


def _install_handlers() -> None:
    if threading.current_thread() is not threading.main_thread():
        return
    for sig in _FORWARDED:
        if sig in _SAVED_HANDLERS:
            continue
        cur = signal.getsignal(sig)
        if cur in (signal.SIG_DFL, None):
            try:
                signal.signal(sig, _raise_exit)
            except (ValueError, OSError):
                continue
            _SAVED_HANDLERS[sig] = cur


def _restore_handlers() -> None:
    if threading.current_thread() is not threading.main_thread():
        return
    for sig, old in list(_SAVED_HANDLERS.items()):
        try:
            if signal.getsignal(sig) is _raise_exit:
                signal.signal(sig, old)
        except (ValueError, OSError):
            pass
        del _SAVED_HANDLERS[sig]


class ChildLog:
    """An anonymous temporary file for a child's output (unlinked at once: nothing is
    left behind even if this process is killed); ``text()`` reads it back."""

    def __init__(self) -> None:
        self.file = tempfile.TemporaryFile(prefix="robolearn-child-")

    def fileno(self) -> int:
        return self.file.fileno()

    def read(self) -> bytes:
        try:
            return os.pread(self.file.fileno(), 1 << 20, 0)
        except (OSError, ValueError):
            return b""

    def tail(self, n: int = 600) -> str:
        text = self.read()[-n:].decode("utf-8", "replace").strip()
        return " | ".join(line.strip() for line in text.splitlines() if line.strip())

    def close(self) -> None:
        self.file.close()


def start_process(argv: Sequence[str], log: ChildLog, env: dict[str, str] | None = None) -> subprocess.Popen:
    """Start a child in its own session, output to ``log``; tracked until stopped."""
    proc = subprocess.Popen(list(map(str, argv)), stdin=subprocess.DEVNULL, stdout=log.fileno(),
                            stderr=subprocess.STDOUT, start_new_session=True,
                            preexec_fn=_child_setup, close_fds=True, env=env)
    with _LIVE_LOCK:
        _LIVE[proc.pid] = proc
        _install_handlers()
    return proc


def stop_process(proc: subprocess.Popen | None, grace_s: float = 2.0) -> int | None:
    """Stop ``proc`` by its PID (SIGTERM, then SIGKILL after ``grace_s``) and reap it."""
    if proc is None:
        return None
    try:
        if proc.poll() is None:
            try:
                proc.terminate()
                proc.wait(grace_s)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5.0)
    except ProcessLookupError:
        pass
    finally:
        with _LIVE_LOCK:
            _LIVE.pop(proc.pid, None)
            if not _LIVE:
                _restore_handlers()
    return proc.returncode


def live_children() -> list[int]:
    """PIDs of the child processes started here and not stopped yet."""
    with _LIVE_LOCK:
        return list(_LIVE)


@atexit.register
def _stop_all() -> None:
    for proc in list(_LIVE.values()):
        stop_process(proc, grace_s=0.5)


def _tail(log: ChildLog | None) -> str:
    return log.tail() if log is not None else ""


# ------------------------------------------------------------------------ devices
class Device:
    """Byte-stream device. Subclasses implement ``_open``, ``_close``, ``_write``, ``_read``."""

    kind = "device"

    def __init__(self) -> None:
        self.is_open = False
        self.bytes_written = 0
        self.bytes_read = 0

    def open(self) -> Self:
        if not self.is_open:
            try:
                self._open()
            except BaseException:
                self._close()
                raise
            self.is_open = True
        return self

    def close(self) -> None:
        try:
            self._close()
        finally:
            self.is_open = False

    def __enter__(self) -> Self:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def write(self, data: bytes) -> None:
        if not self.is_open:
            raise DeviceLost(f"{self.kind} device is not open")
        self._write(bytes(data))
        self.bytes_written += len(data)

    def read(self, timeout: float) -> bytes:
        if not self.is_open:
            raise DeviceLost(f"{self.kind} device is not open")
        data = self._read(max(0.0, timeout))
        self.bytes_read += len(data)
        return data

    def info(self) -> dict:
        return {"kind": self.kind}

    # subclass hooks
    def _open(self) -> None: ...
    def _close(self) -> None: ...
    def _write(self, data: bytes) -> None: raise NotImplementedError
    def _read(self, timeout: float) -> bytes: raise NotImplementedError


class SerialDevice(Device):
    """A serial port or pyserial URL (``/dev/ttyACM0``, ``/dev/pts/3``, ``socket://host:port``)."""

    kind = "serial"

    def __init__(self, port: str, baud: int = 115200, write_timeout: float = 2.0):
        super().__init__()
        self.port, self.baud, self.write_timeout = str(port), int(baud), write_timeout
        self._s: pyserial.SerialBase | None = None

    def _open(self) -> None:
        import serial

        try:
            s = self._s = serial.serial_for_url(self.port, baudrate=self.baud, timeout=0,
                                                write_timeout=self.write_timeout)
        except (serial.SerialException, OSError, ValueError) as e:
            raise DeviceOpenError(f"cannot open serial port {self.port}: {e}") from None
        try:
            s.reset_input_buffer()
        except Exception:  # noqa: BLE001  (not all URL handlers support it)
            pass

    def _close(self) -> None:
        if self._s is not None:
            try:
                self._s.close()
            except Exception:  # noqa: BLE001
                pass
            self._s = None

    def _write(self, data: bytes) -> None:
        import serial

        s = self._port()
        try:
            s.write(data)
            s.flush()
        except (serial.SerialException, OSError) as e:
            raise DeviceLost(f"serial port {self.port}: write failed: {e}") from None

    def _read(self, timeout: float) -> bytes:
        import serial

        s = self._port()
        try:
            try:
                fd: int | None = s.fileno()
            except Exception:  # noqa: BLE001  (URL handlers without a descriptor)
                fd = None
            if fd is not None:
                r, _, _ = select.select([fd], [], [], timeout)
                if not r:
                    return b""
                return bytes(s.read(65536))  # timeout 0: what is there now
            s.timeout = timeout
            first = s.read(1)
            s.timeout = 0
            # every pyserial port class has in_waiting; the SerialBase stub does not declare it
            return first + s.read(s.in_waiting) if first else b""  # type: ignore[attr-defined]
        except (serial.SerialException, OSError) as e:
            raise DeviceLost(f"serial port {self.port}: read failed: {e}") from None

    def _port(self) -> pyserial.SerialBase:
        if self._s is None:
            raise DeviceLost(f"serial port {self.port} is not open")
        return self._s

    def info(self) -> dict:
        return {"kind": self.kind, "port": self.port, "baud": self.baud}


class PtyProcessDevice(Device):
    """A host process serving the protocol on a pseudo-terminal (slave path = argv[1]).

    ``argv`` is the command without the tty path; the path is inserted after
    ``argv[0]`` (``[exe, PTY, *rest]``), or replaces a ``"{tty}"`` item when present.
    """

    kind = "pty"

    def __init__(self, argv: Sequence[str | os.PathLike], startup_s: float = 0.0, name: str = "pty",
                 env: dict[str, str] | None = None):
        super().__init__()
        self.argv = [str(a) for a in argv]
        self.env = env
        self.startup_s = startup_s
        self.kind = name
        self.proc: subprocess.Popen | None = None
        self.master: int | None = None
        self.slave: int | None = None
        self.tty_path: str | None = None
        self._log: ChildLog | None = None

    def _open(self) -> None:
        import termios
        import tty

        master, slave = self.master, self.slave = os.openpty()
        tty.setraw(slave, termios.TCSANOW)  # no echo, no line editing, 8-bit clean
        os.set_blocking(master, False)
        tty_path = self.tty_path = os.ttyname(slave)
        log = self._log = ChildLog()
        argv = list(self.argv)
        if "{tty}" in argv:
            argv = [tty_path if a == "{tty}" else a for a in argv]
        else:
            argv.insert(1, tty_path)
        try:
            self.proc = start_process(argv, log, self.env)
        except OSError as e:
            raise DeviceOpenError(f"cannot start host device {argv[0]}: {e}") from None
        if self.startup_s:
            time.sleep(self.startup_s)
        self._check_alive()

    def _check_alive(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            raise DeviceLost(f"host device process {self.proc.pid} exited with code "
                             f"{self.proc.returncode}: {_tail(self._log) or 'no output'}")

    def _close(self) -> None:
        try:
            stop_process(self.proc)
        finally:
            for fd in (self.master, self.slave):
                if fd is not None:
                    try:
                        os.close(fd)
                    except OSError:
                        pass
            self.master = self.slave = None
            if self._log is not None:
                self._log.close()
                self._log = None

    def _fd(self) -> int:
        if self.master is None:
            raise DeviceLost("host device pty is not open")
        return self.master

    def _write(self, data: bytes) -> None:
        self._check_alive()
        fd = self._fd()
        view = memoryview(data)
        deadline = time.monotonic() + 2.0
        while view:
            try:
                n = os.write(fd, view)
                view = view[n:]
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise DeviceLost("host device does not read its pty (write blocked 2 s)") from None
                select.select([], [fd], [], 0.05)
            except OSError as e:
                raise DeviceLost(f"host device pty write failed: {e}") from None

    def _read(self, timeout: float) -> bytes:
        fd = self._fd()
        r, _, _ = select.select([fd], [], [], timeout)
        if not r:
            self._check_alive()
            return b""
        try:
            return os.read(fd, 65536)
        except BlockingIOError:
            return b""
        except OSError as e:
            self._check_alive()
            raise DeviceLost(f"host device pty read failed: {e}") from None

    def info(self) -> dict:
        return {"kind": self.kind, "argv": self.argv, "tty": self.tty_path,
                "pid": self.proc.pid if self.proc else None}


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class QemuDevice(Device):
    """Firmware ``elf`` under QEMU; ``command(elf, serial_spec) -> argv`` builds the QEMU
    command line (``firmware_export.qemu_command``). ``serial="tcp"`` puts the board's
    USART on ``tcp:127.0.0.1:PORT,server=on,wait=off,nodelay=on`` and connects with pyserial's
    ``socket://`` URL; ``serial="pty"`` uses ``-serial pty`` and reads the pty path QEMU
    prints."""

    kind = "emulated"

    def __init__(self, elf: str | os.PathLike, command: Callable[[Path, str], list[str]],
                 serial: str = "tcp", boot_timeout: float = 15.0):
        super().__init__()
        if serial not in ("tcp", "pty"):
            raise ValueError(f"serial must be 'tcp' or 'pty', got {serial!r}")
        self.elf, self.command, self.serial = Path(elf), command, serial
        self.boot_timeout = boot_timeout
        self.proc: subprocess.Popen | None = None
        self.link: SerialDevice | None = None
        self.url: str | None = None
        self._log: ChildLog | None = None
        self.argv: list[str] = []

    def _open(self) -> None:
        if not self.elf.is_file():
            raise DeviceOpenError(f"firmware not found: {self.elf}")
        log = self._log = ChildLog()
        deadline = time.monotonic() + self.boot_timeout
        for attempt in range(3):  # a free port can be taken between bind and QEMU's listen
            if self.serial == "tcp":
                port = _free_port()
                # nodelay: QEMU writes the USART byte by byte; without it, Nagle + delayed
                # ACK add ~40 ms to every reply
                spec = f"tcp:127.0.0.1:{port},server=on,wait=off,nodelay=on"
            else:
                spec = "pty"
            self.argv = [str(a) for a in self.command(self.elf, spec)]
            try:
                self.proc = start_process(self.argv, log)
            except OSError as e:
                raise DeviceOpenError(f"cannot start {self.argv[0]}: {e}") from None
            try:
                if self.serial == "tcp":
                    self.url = f"socket://127.0.0.1:{port}"
                    self._connect(deadline)
                else:
                    self.url = self._pty_path(deadline)
                    self._connect(deadline)
                    # QEMU notices a pty client by polling once a second and drops the
                    # guest's output until then
                    time.sleep(1.1)
                return
            except DeviceOpenError:
                stop_process(self.proc)
                if attempt == 2 or time.monotonic() > deadline or self.serial == "pty":
                    raise

    def _connect(self, deadline: float) -> None:
        last = ""
        proc, url = self.proc, self.url
        assert proc is not None and url is not None, "_open starts QEMU and sets the url first"
        while True:
            if proc.poll() is not None:
                raise DeviceOpenError(f"QEMU exited with code {proc.returncode}: "
                                      f"{_tail(self._log) or 'no output'} (command: {' '.join(self.argv)})")
            link = SerialDevice(url)
            try:
                self.link = link.open()
                sock = getattr(link._s, "_socket", None)
                if sock is not None:
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                return
            except DeviceOpenError as e:
                last = str(e)
            if time.monotonic() > deadline:
                raise DeviceOpenError(f"QEMU serial port {self.url} did not open within "
                                      f"{self.boot_timeout:g} s: {last}")
            time.sleep(0.05)

    def _pty_path(self, deadline: float) -> str:
        pat = re.compile(rb"char device redirected to (/dev/pts/\d+)")
        log, proc = self._log, self.proc
        assert log is not None and proc is not None, "_open starts QEMU first"
        while time.monotonic() < deadline:
            m = pat.search(log.read())
            if m:
                return m.group(1).decode()
            if proc.poll() is not None:
                break
            time.sleep(0.05)
        raise DeviceOpenError(f"QEMU did not report its serial pty: {_tail(self._log) or 'no output'}")

    def _close(self) -> None:
        try:
            if self.link is not None:
                self.link.close()
                self.link = None
        finally:
            stop_process(self.proc)
            if self._log is not None:
                self._log.close()
                self._log = None

    def _check_alive(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            raise DeviceLost(f"QEMU exited with code {self.proc.returncode}: {_tail(self._log) or 'no output'}")

    def _serial(self) -> SerialDevice:
        if self.link is None:
            raise DeviceLost("QEMU serial link is not open")
        return self.link

    def _write(self, data: bytes) -> None:
        self._check_alive()
        self._serial().write(data)

    def _read(self, timeout: float) -> bytes:
        try:
            return self._serial().read(timeout)
        except DeviceLost:
            self._check_alive()
            raise

    def info(self) -> dict:
        return {"kind": self.kind, "elf": str(self.elf), "serial": self.url,
                "pid": self.proc.pid if self.proc else None, "command": self.argv}


class ModelDevice(Device):
    """The Python :class:`~hardware.device_model.DeviceModel` in this process.

    Replies become readable ``model.faults.delay_s`` after the request; a read with
    nothing pending waits for its timeout like a real port.
    """

    kind = "model"

    def __init__(self, model: DeviceModel):
        super().__init__()
        self.model = model
        self._queue: list[tuple[float, bytes]] = []

    def _write(self, data: bytes) -> None:
        out = self.model.process(data)
        if out:
            self._queue.append((time.monotonic() + self.model.faults.delay_s, out))

    def _read(self, timeout: float) -> bytes:
        end = time.monotonic() + timeout
        while True:
            now = time.monotonic()
            ready = [d for t, d in self._queue if t <= now]
            if ready:
                self._queue = [(t, d) for t, d in self._queue if t > now]
                return b"".join(ready)
            nxt = min((t for t, _ in self._queue), default=None)
            wake = end if nxt is None else min(end, nxt)
            if wake <= now:
                return b""
            time.sleep(wake - now)

    def _close(self) -> None:
        self._queue.clear()

    def info(self) -> dict:
        return {"kind": self.kind, "faults": self.model.faults.to_json()}

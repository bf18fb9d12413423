"""A pure-Python model of the device side of the protocol, with fault injection.

:class:`DeviceModel` turns request bytes into reply bytes exactly as the firmware
should (``hardware/c/rl_device.c`` is the reference on the board); :class:`Faults`
makes it misbehave on purpose: lost or corrupted frames in either direction, line
noise, duplicate replies, reboots in the middle of a run, silence, slow replies, a
wrong policy. It backs :class:`hardware.devices.ModelDevice` (in-process, for fast
tests) and runs as a process on a pseudo-terminal::

    python -m hardware.device_model /dev/pts/N --export-dir DIR [--faults JSON]

which behaves like the C host device (``hardware.firmware_image.build_host_device``).
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import select
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from . import protocol as P


@dataclass
class Faults:
    """What the model does wrong. Probabilities are per frame; all off by default."""

    seed: int = 0
    drop_request: float = 0.0  # request lost before the device sees it
    drop_reply: float = 0.0  # reply lost on the way back
    corrupt_request: float = 0.0  # one byte of the request flipped (device answers ERROR 1)
    corrupt_reply: float = 0.0  # one byte of the reply flipped
    garbage: float = 0.0  # random line noise (1..40 bytes, may contain 0x00) before a reply
    duplicate_reply: float = 0.0  # the reply is sent twice
    reset_at_steps: tuple[int, ...] = ()  # reboot when the k-th STEP arrives (1-based); that STEP is lost
    boot_banner: bytes = b""  # bytes sent after each reboot (a boot log)
    silent: bool = False  # never answers anything
    silent_after_steps: int | None = None  # dies after answering this many STEPs
    delay_s: float = 0.0  # reply latency (ModelDevice and the pty server honour it)
    action_offset: float = 0.0  # added to every action (an inexact device)
    answer_corrupt: bool = True  # answer corrupt requests with ERROR (else ignore them)

    @classmethod
    def from_json(cls, text: str) -> "Faults":
        d = json.loads(text) if text else {}
        if "reset_at_steps" in d:
            d["reset_at_steps"] = tuple(d["reset_at_steps"])
        if "boot_banner" in d:
            d["boot_banner"] = d["boot_banner"].encode("latin-1")
        return cls(**d)

    def to_json(self) -> str:
        d = dataclasses.asdict(self)
        d["reset_at_steps"] = list(self.reset_at_steps)
        d["boot_banner"] = self.boot_banner.decode("latin-1")
        return json.dumps(d)


@dataclass
class ModelCounters:
    requests: int = 0
    replies: int = 0
    steps: int = 0
    resets: int = 0  # reboots
    rejected: int = 0
    dropped_requests: int = 0
    dropped_replies: int = 0
    ignored_steps: int = 0  # STEPs before HELLO (after a reboot)
    duplicates: int = 0  # retransmitted requests answered from the cache
    state_errors: int = 0  # STEPs refused with ERROR 5 (policy state not at that step)


class DeviceModel:
    """Device side of the protocol in Python.

    ``policy(obs) -> action`` computes one action from a float32 observation; if it has
    a ``reset()`` method, a RESET frame and a STEP with step index 0 (episode start)
    call it. ``state_dim`` (default: the policy's ``state_dim`` attribute, else 0) is
    announced in HELLO_ACK; a stateful model answers a STEP whose step index is not the
    next one of its episode with ERROR 5, as ``hardware/c/rl_device.c`` does.
    ``cycles(obs) -> int`` gives the reported inference time (default: a fixed 10000 cycles).
    A freshly started (or rebooted) model ignores STEP until it has answered a HELLO,
    as the protocol allows; it answers a retransmitted request (same type and seq as
    the last one) from a cache, without running the policy again.
    """

    def __init__(self, policy: Callable[[np.ndarray], np.ndarray], obs_dim: int, act_dim: int,
                 manifest_sha256: bytes, cpu_hz: int = 168_000_000,
                 cycles: Callable[[np.ndarray], int] | None = None,
                 faults: Faults | None = None, version: int = P.VERSION, state_dim: int | None = None):
        self.policy = policy
        self.state_dim = int(state_dim if state_dim is not None else getattr(policy, "state_dim", 0))
        self.obs_dim, self.act_dim = int(obs_dim), int(act_dim)
        self.sha = bytes(manifest_sha256)
        self.cpu_hz = int(cpu_hz)
        self.version = int(version)
        self.cycles = cycles or (lambda obs: 10_000)
        self.faults = faults or Faults()
        self.rng = np.random.default_rng(self.faults.seed)
        self.count = ModelCounters()
        self._boot()

    def _boot(self) -> None:
        self.decoder = P.StreamDecoder()
        self.ready = False  # HELLO seen since boot
        self._last: tuple[int, int, bytes] | None = None  # (type, seq, reply wire)
        self.next_step: int | None = None  # step index the policy state is at (None: no episode)
        self._reset_policy()

    def _reset_policy(self) -> None:
        reset = getattr(self.policy, "reset", None)
        if callable(reset):
            reset()

    def reboot(self) -> bytes:
        """Simulate a device reset: state lost; returns the boot banner bytes."""
        self.count.resets += 1
        self._boot()
        return self.faults.boot_banner

    # ------------------------------------------------------------------ faults
    def _chance(self, p: float) -> bool:
        return p > 0 and self.rng.random() < p

    def _flip(self, wire: bytes) -> bytes:
        b = bytearray(wire)
        i = int(self.rng.integers(0, max(1, len(b) - 1)))  # not the delimiter
        b[i] ^= int(self.rng.integers(1, 256))
        return bytes(b)

    def _emit(self, wire: bytes) -> bytes:
        f = self.faults
        out = b""
        if self._chance(f.garbage):
            out += self.rng.integers(0, 256, int(self.rng.integers(1, 41)), dtype=np.uint8).tobytes()
        if self._chance(f.drop_reply):
            self.count.dropped_replies += 1
            return out
        if self._chance(f.corrupt_reply):
            wire = self._flip(wire)
        out += wire
        if self._chance(f.duplicate_reply):
            out += wire
        self.count.replies += 1
        return out

    # ----------------------------------------------------------------- process
    def process(self, data: bytes) -> bytes:
        """Feed request bytes; return the reply bytes (possibly empty)."""
        f = self.faults
        if f.silent:
            return b""
        if f.corrupt_request and data:
            # corrupt whole frames as they arrive (a byte flipped inside the data)
            if self._chance(f.corrupt_request):
                data = self._flip(data)
        out = b""
        before = self.decoder.rejected
        frames = self.decoder.feed(data)
        for _ in range(self.decoder.rejected - before):
            self.count.rejected += 1
            err = self.decoder.last_error
            if f.answer_corrupt and self.ready and err is not None:
                out += self._emit(P.encode_frame(P.ERROR, P.SEQ_UNKNOWN,
                                                 P.pack_error(P.REJECT_ERROR_CODE[err.reason])))
        for fr in frames:
            out += self._handle(fr)
        return out

    def _handle(self, fr: P.Frame) -> bytes:
        f = self.faults
        self.count.requests += 1
        if self._chance(f.drop_request):
            self.count.dropped_requests += 1
            return b""
        if fr.type == P.STEP:
            self.count.steps += 1
            if self.count.steps in f.reset_at_steps:
                return self.reboot()
            if f.silent_after_steps is not None and self.count.steps > f.silent_after_steps:
                return b""
        if self._last is not None and self._last[0] == fr.type and self._last[1] == fr.seq and fr.type != P.HELLO:
            self.count.duplicates += 1
            return self._emit(self._last[2])
        reply = self._reply(fr)
        if reply is None:
            return b""
        if fr.type in (P.STEP, P.RESET) and not reply_is_error(reply):
            self._last = (fr.type, fr.seq, reply)
        return self._emit(reply)

    def _reply(self, fr: P.Frame) -> bytes | None:
        if fr.type == P.HELLO:
            self.ready = True
            ack = P.HelloAck(self.version, self.obs_dim, self.act_dim, self.sha, self.cpu_hz, self.state_dim)
            if self.version != P.VERSION:  # an older device: version first, the rest as it was
                return P.encode_frame(P.HELLO_ACK, fr.seq, P.pack_hello_ack(ack)[:-2])
            return P.encode_frame(P.HELLO_ACK, fr.seq, P.pack_hello_ack(ack))
        if fr.type == P.RESET:
            self._reset_policy()
            self.next_step = 0
            return P.encode_frame(P.RESET_ACK, fr.seq)
        if fr.type == P.STEP:
            if not self.ready:
                self.count.ignored_steps += 1
                return None
            if len(fr.payload) != P.STEP_HEADER_SIZE + 4 * self.obs_dim:
                return P.encode_frame(P.ERROR, fr.seq, P.pack_error(P.ERR_OBS_SIZE, fr.seq))
            step, obs = P.unpack_step(fr.payload, self.obs_dim)
            if step == 0:
                self._reset_policy()  # episode start
            elif self.state_dim > 0 and step != self.next_step:
                self.count.state_errors += 1
                return P.encode_frame(P.ERROR, fr.seq, P.pack_error(P.ERR_STATE, fr.seq))
            self.next_step = step + 1
            act = np.asarray(self.policy(obs), np.float32).reshape(self.act_dim)
            if self.faults.action_offset:
                act = act + np.float32(self.faults.action_offset)
            return P.encode_frame(P.ACTION, fr.seq, P.pack_action(act, int(self.cycles(obs))))
        return P.encode_frame(P.ERROR, fr.seq, P.pack_error(P.ERR_TYPE, fr.seq))


def reply_is_error(wire: bytes) -> bool:
    """Whether an encoded reply is an ERROR frame (not cached: the host fixes the cause and retries)."""
    return P.decode_frame(wire).type == P.ERROR


# ------------------------------------------------------------------ export helpers
def manifest_sha256(export_dir: str | Path) -> bytes:
    """SHA-256 of ``EXPORT_DIR/manifest.json``'s bytes (what the device announces)."""
    return hashlib.sha256((Path(export_dir) / "manifest.json").read_bytes()).digest()


def model_from_export(export_dir: str | Path, faults: Faults | None = None,
                      sha: bytes | None = None, cpu_hz: int = 168_000_000) -> DeviceModel:
    """A device model running the export's ``policy.onnx`` (an exact device; its policy
    state, if any, is kept as the C code keeps it)."""
    from .onnx_actor import OnnxActor

    actor = OnnxActor(Path(export_dir) / "policy.onnx")
    return DeviceModel(actor, actor.obs_dim, actor.act_dim,
                       sha if sha is not None else manifest_sha256(export_dir),
                       cpu_hz=cpu_hz, faults=faults)


def serve_fd(model: DeviceModel, fd: int, stop: Callable[[], bool] = lambda: False) -> None:
    """Serve ``model`` on a file descriptor (a pty slave) until EOF or ``stop()``."""
    delay = model.faults.delay_s
    while not stop():
        r, _, _ = select.select([fd], [], [], 0.1)
        if not r:
            continue
        try:
            data = os.read(fd, 4096)
        except OSError:
            return
        if not data:
            return
        out = model.process(data)
        if out:
            if delay:
                time.sleep(delay)
            view = memoryview(out)
            while view:
                try:
                    n = os.write(fd, view)
                except BlockingIOError:
                    select.select([], [fd], [], 0.1)
                    continue
                except OSError:
                    return
                view = view[n:]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Serve the Python device model on a tty path.")
    ap.add_argument("tty")
    ap.add_argument("--export-dir", required=True, type=Path)
    ap.add_argument("--faults", default="", help="Faults as JSON, e.g. '{\"drop_reply\": 0.1}'")
    ap.add_argument("--sha", default=None, help="manifest SHA-256 to announce (hex; default: the real one)")
    args = ap.parse_args(argv)
    import termios
    import tty

    model = model_from_export(args.export_dir, Faults.from_json(args.faults),
                              bytes.fromhex(args.sha) if args.sha else None)
    fd = os.open(args.tty, os.O_RDWR | os.O_NOCTTY)
    try:
        tty.setraw(fd, termios.TCSANOW)
    except termios.error:
        pass
    serve_fd(model, fd)
    return 0


if __name__ == "__main__":
    sys.exit(main())

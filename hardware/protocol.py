"""robolearn serial protocol, version 2: framing, CRC, messages (see ``PROTOCOL.md``).

Host side of the protocol, pure Python (plus the ``cobs`` package for the byte
stuffing and ``binascii.crc_hqx`` for the CRC)::

    wire = COBS(body) 0x00
    body = type:u8 seq:u16 len:u16 payload:len bytes crc:u16      (little-endian)

* :func:`encode_frame` / :func:`decode_frame` turn one frame into wire bytes and back;
  :func:`decode_frame` raises :class:`FrameError` whose ``reason`` names the check that
  failed (one of :data:`REJECT_REASONS`).
* :class:`StreamDecoder` splits a byte stream at ``0x00`` delimiters, returns the good
  frames and counts the rejected ones; it resynchronizes at the next ``0x00`` after any
  corruption and never buffers more than one maximal frame.
* ``pack_*`` / ``unpack_*`` build and parse the message payloads; ``unpack_*`` raise
  :class:`MessageError` on a payload of the wrong size.

Decoding rules shared with the C implementation (``hardware/c/rl_proto.c``) and pinned
by ``hardware/test_vectors.json``:

1. Bytes are collected up to a ``0x00``. An empty chunk (``0x00`` right after
   ``0x00``, or at the start) is ignored: it is not a frame and not a reject. Senders
   may put a ``0x00`` before a frame to flush the receiver.
2. A chunk longer than :data:`MAX_WIRE` bytes (without the delimiter) is one reject,
   reason ``"overflow"``; the bytes up to the next ``0x00`` are dropped.
3. Checks, in this order, each a reject with the given reason: invalid COBS
   (``"cobs"``: a code byte points past the end of the chunk); decoded body shorter
   than 7 bytes (``"short"``); CRC of ``body[:-2]`` differs from the last two bytes
   (``"crc"``); ``len`` differs from the payload length or exceeds 1024
   (``"length"``). An unknown ``type`` is not a framing error: it is reported by the
   message layer (the device answers ERROR code 3).
"""

from __future__ import annotations

import binascii
import struct
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np
from cobs import cobs as _cobs

VERSION = 2  # 2: STEP carries the episode step index (0 = episode start), HELLO_ACK the state size
MAX_PAYLOAD = 1024
HEADER_SIZE = 5  # frame type u8, seq u16, len u16 (not a "type:" comment, which mypy would parse)
CRC_SIZE = 2
MIN_BODY = HEADER_SIZE + CRC_SIZE
MAX_BODY = MIN_BODY + MAX_PAYLOAD


def cobs_max_encoded(n: int) -> int:
    """Longest COBS encoding of ``n`` bytes (without the 0x00 delimiter)."""
    return n + n // 254 + 1


MAX_WIRE = cobs_max_encoded(MAX_BODY)  # 1036: longest chunk between delimiters
DELIMITER = b"\x00"

# Message types
HELLO = 0x01
HELLO_ACK = 0x81
STEP = 0x02
ACTION = 0x82
RESET = 0x03
RESET_ACK = 0x83
ERROR = 0x7F
TYPE_NAMES = {HELLO: "HELLO", HELLO_ACK: "HELLO_ACK", STEP: "STEP", ACTION: "ACTION",
              RESET: "RESET", RESET_ACK: "RESET_ACK", ERROR: "ERROR"}
REPLY_TYPE = {HELLO: HELLO_ACK, STEP: ACTION, RESET: RESET_ACK}

# ERROR codes
ERR_CRC = 1
ERR_LENGTH = 2
ERR_TYPE = 3
ERR_OBS_SIZE = 4
ERR_STATE = 5  # a stateful device got STEP t but its policy state is not at step t (rebooted mid-episode)
ERROR_NAMES = {ERR_CRC: "bad CRC", ERR_LENGTH: "bad length", ERR_TYPE: "unknown type",
               ERR_OBS_SIZE: "wrong observation size",
               ERR_STATE: "policy state lost (STEP out of sequence)"}
SEQ_UNKNOWN = 0xFFFF

REJECT_REASONS = ("overflow", "cobs", "short", "crc", "length")
# ERROR code a device answers for each reject reason (seq is 0xFFFF: not trustworthy).
REJECT_ERROR_CODE = {"overflow": ERR_LENGTH, "cobs": ERR_CRC, "short": ERR_LENGTH,
                     "crc": ERR_CRC, "length": ERR_LENGTH}

HELLO_ACK_SIZE = 4 + 2 + 2 + 32 + 4 + 2
_HELLO_ACK = struct.Struct("<IHH32sIH")
STEP_HEADER_SIZE = 4  # step:u32 before the observation
MAX_OBS_FLOATS = (MAX_PAYLOAD - STEP_HEADER_SIZE) // 4  # 255
_HEADER = struct.Struct("<BHH")
_ERROR = struct.Struct("<BH")


# ----------------------------------------------------------------------------- errors
class ProtocolError(Exception):
    """Base class of every protocol-level error raised by this module."""


class FrameError(ProtocolError):
    """A chunk of wire bytes is not a valid frame; ``reason`` is one of REJECT_REASONS."""

    def __init__(self, reason: str, detail: str):
        assert reason in REJECT_REASONS, reason
        super().__init__(f"frame rejected ({reason}): {detail}")
        self.reason = reason


class MessageError(ProtocolError):
    """A well-framed message has a payload that does not fit its type."""


# ------------------------------------------------------------------------------ CRC
def crc16(data: bytes) -> int:
    """CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, no reflection, xorout 0)."""
    return binascii.crc_hqx(data, 0xFFFF)


# ----------------------------------------------------------------------------- COBS
def cobs_encode(data: bytes) -> bytes:
    """COBS-encode ``data`` (no delimiter appended)."""
    out: bytes = _cobs.encode(bytes(data))  # cobs is untyped
    return out


def cobs_decode(data: bytes) -> bytes:
    """Decode one COBS chunk (no delimiter); FrameError("cobs") when invalid."""
    try:
        out: bytes = _cobs.decode(bytes(data))
        return out
    except _cobs.DecodeError as e:
        raise FrameError("cobs", str(e)) from None


# ---------------------------------------------------------------------------- frames
@dataclass(frozen=True)
class Frame:
    type: int
    seq: int
    payload: bytes = b""

    @property
    def name(self) -> str:
        return TYPE_NAMES.get(self.type, f"0x{self.type:02X}")


def encode_body(type_: int, seq: int, payload: bytes = b"") -> bytes:
    """``type seq len payload crc`` (before COBS)."""
    payload = bytes(payload)
    if not 0 <= type_ <= 0xFF:
        raise ValueError(f"frame type must be 0..255, got {type_}")
    if not 0 <= seq <= 0xFFFF:
        raise ValueError(f"sequence number must be 0..65535, got {seq}")
    if len(payload) > MAX_PAYLOAD:
        raise ValueError(f"payload of {len(payload)} bytes exceeds the maximum {MAX_PAYLOAD}")
    head = _HEADER.pack(type_, seq, len(payload)) + payload
    return head + struct.pack("<H", crc16(head))


def encode_frame(type_: int, seq: int, payload: bytes = b"") -> bytes:
    """Wire bytes of one frame: ``COBS(body) 0x00``."""
    body: bytes = _cobs.encode(encode_body(type_, seq, payload))
    return body + DELIMITER


def decode_body(body: bytes) -> Frame:
    """Check and parse a decoded body; FrameError("short"|"crc"|"length")."""
    n = len(body)
    if n < MIN_BODY:
        raise FrameError("short", f"body of {n} bytes, need at least {MIN_BODY}")
    want = body[-2] | (body[-1] << 8)
    got = crc16(body[:-2])
    if got != want:
        raise FrameError("crc", f"CRC 0x{got:04X} computed, 0x{want:04X} received")
    type_, seq, length = _HEADER.unpack_from(body)
    if length > MAX_PAYLOAD:
        raise FrameError("length", f"len {length} exceeds the maximum {MAX_PAYLOAD}")
    if length != n - MIN_BODY:
        raise FrameError("length", f"len field {length}, payload has {n - MIN_BODY} bytes")
    return Frame(type_, seq, bytes(body[HEADER_SIZE:-2]))


def decode_frame(wire: bytes) -> Frame:
    """Decode one frame from its wire bytes (a trailing 0x00 is allowed, no other 0x00)."""
    wire = bytes(wire)
    if wire.endswith(DELIMITER):
        wire = wire[:-1]
    if not wire:
        raise FrameError("short", "empty frame")
    if len(wire) > MAX_WIRE:
        raise FrameError("overflow", f"{len(wire)} bytes exceed the maximum frame {MAX_WIRE}")
    if 0 in wire:
        raise FrameError("cobs", "0x00 inside a COBS chunk")
    return decode_body(cobs_decode(wire))


class StreamDecoder:
    """Incremental frame decoder over a byte stream.

    ``feed(data)`` returns the frames completed by ``data``; rejects are counted in
    :attr:`rejected` (total) and :attr:`reject_reasons` (per reason), the last error in
    :attr:`last_error`. Memory is bounded by :data:`MAX_WIRE`.
    """

    def __init__(self) -> None:
        self._buf = bytearray()
        self._overflow = False  # dropping bytes until the next delimiter
        self.frames = 0
        self.rejected = 0
        self.reject_reasons: dict[str, int] = {r: 0 for r in REJECT_REASONS}
        self.bytes_in = 0
        self.last_error: FrameError | None = None

    def reset(self) -> None:
        """Forget a partial frame (the counters are kept)."""
        self._buf.clear()
        self._overflow = False

    @property
    def pending(self) -> int:
        """Bytes of an unfinished frame held in the buffer."""
        return len(self._buf)

    def _reject(self, err: FrameError) -> None:
        self.rejected += 1
        self.reject_reasons[err.reason] += 1
        self.last_error = err

    def _chunk(self, chunk: bytes, out: list[Frame]) -> None:
        if not chunk:
            return  # empty chunk: ignored (flush / idle delimiter)
        try:
            out.append(decode_body(cobs_decode(chunk)))
            self.frames += 1
        except FrameError as e:
            self._reject(e)

    def feed(self, data: bytes) -> list[Frame]:
        out: list[Frame] = []
        data = bytes(data)
        self.bytes_in += len(data)
        start = 0
        n = len(data)
        while start < n:
            end = data.find(0, start)
            piece = data[start:] if end < 0 else data[start:end]
            if self._overflow:
                pass
            elif len(self._buf) + len(piece) > MAX_WIRE:
                self._overflow = True
                self._buf.clear()
                self._reject(FrameError("overflow", f"more than {MAX_WIRE} bytes without a delimiter"))
            else:
                self._buf += piece
            if end < 0:
                break
            if not self._overflow:
                chunk = bytes(self._buf)
                self._buf.clear()
                self._chunk(chunk, out)
            self._overflow = False
            start = end + 1
        return out

    def stats(self) -> dict:
        return {"frames": self.frames, "rejected": self.rejected,
                "reject_reasons": dict(self.reject_reasons), "bytes_in": self.bytes_in}


def decode_stream(data: bytes) -> tuple[list[Frame], int]:
    """All frames in ``data`` and the number of rejected chunks (one-shot helper)."""
    d = StreamDecoder()
    frames = d.feed(data)
    return frames, d.rejected


# -------------------------------------------------------------------------- messages
@dataclass(frozen=True)
class HelloAck:
    version: int
    obs_dim: int
    act_dim: int
    manifest_sha256: bytes
    cpu_hz: int
    state_dim: int = 0  # floats of policy state kept on the device between STEPs (0: stateless)


def _f32(values: Iterable[float] | np.ndarray) -> bytes:
    return np.ascontiguousarray(np.asarray(values, dtype=np.float32).ravel()).astype("<f4").tobytes()


def pack_hello_ack(ack: HelloAck) -> bytes:
    sha = bytes(ack.manifest_sha256)
    if len(sha) != 32:
        raise ValueError(f"manifest_sha256 must be 32 bytes, got {len(sha)}")
    return _HELLO_ACK.pack(ack.version, ack.obs_dim, ack.act_dim, sha, ack.cpu_hz, ack.state_dim)


def unpack_hello_ack(payload: bytes) -> HelloAck:
    if len(payload) >= 4 and struct.unpack_from("<I", payload)[0] != VERSION:
        # another protocol version: report the version (the layout may differ), not a size error
        (v,) = struct.unpack_from("<I", payload)
        return HelloAck(v, 0, 0, bytes(32), 0)
    if len(payload) != HELLO_ACK_SIZE:
        raise MessageError(f"HELLO_ACK payload has {len(payload)} bytes, expected {HELLO_ACK_SIZE}")
    v, o, a, sha, hz, k = _HELLO_ACK.unpack(payload)
    return HelloAck(v, o, a, sha, hz, k)


def pack_step(obs: Sequence[float] | np.ndarray, step: int = 0) -> bytes:
    """STEP payload: ``step:u32`` (control step within the episode; 0 = episode start:
    the device resets the policy state first) then the observation as float32."""
    if not 0 <= int(step) <= 0xFFFFFFFF:
        raise ValueError(f"step must be 0..2**32-1, got {step}")
    p = _f32(obs)
    if len(p) > 4 * MAX_OBS_FLOATS:
        raise ValueError(f"observation of {len(p) // 4} floats does not fit one frame (max {MAX_OBS_FLOATS})")
    return struct.pack("<I", int(step)) + p


def unpack_step(payload: bytes, obs_dim: int | None = None) -> tuple[int, np.ndarray]:
    """(step, obs float32) from a STEP payload; MessageError on a wrong size."""
    n = len(payload) - STEP_HEADER_SIZE
    if n < 0 or n % 4 or (obs_dim is not None and n != 4 * obs_dim):
        want = f"{STEP_HEADER_SIZE + 4 * obs_dim}" if obs_dim is not None else f"{STEP_HEADER_SIZE} + a multiple of 4"
        raise MessageError(f"STEP payload has {len(payload)} bytes, expected {want}")
    (step,) = struct.unpack_from("<I", payload)
    return step, np.frombuffer(payload, "<f4", offset=STEP_HEADER_SIZE).astype(np.float32)


def pack_action(action: Sequence[float] | np.ndarray, cycles: int = 0) -> bytes:
    return _f32(action) + struct.pack("<I", int(cycles) & 0xFFFFFFFF)


def unpack_action(payload: bytes, act_dim: int) -> tuple[np.ndarray, int]:
    if len(payload) != 4 * act_dim + 4:
        raise MessageError(f"ACTION payload has {len(payload)} bytes, expected {4 * act_dim + 4}")
    act = np.frombuffer(payload, "<f4", count=act_dim).astype(np.float32)
    (cycles,) = struct.unpack_from("<I", payload, 4 * act_dim)
    return act, cycles


def pack_error(code: int, seq: int = SEQ_UNKNOWN) -> bytes:
    return _ERROR.pack(code, seq)


def unpack_error(payload: bytes) -> tuple[int, int]:
    if len(payload) != _ERROR.size:
        raise MessageError(f"ERROR payload has {len(payload)} bytes, expected {_ERROR.size}")
    return _ERROR.unpack(payload)


def describe_error(code: int) -> str:
    return ERROR_NAMES.get(code, f"error code {code}")

"""Seeded frame mutator for fuzzing protocol decoders (Python here, C via the vectors).

:func:`mutated_frames` yields ``(kind, original, mutated_wire, other)`` from a numpy
seed; the same generator makes the ``fuzz`` section of ``test_vectors.json`` so the C
decoder sees the same inputs with the expected outcome.

Mutation kinds:

* ``body_bitflip`` / ``body_burst``: 1 bit anywhere in the body, or a burst of 2 to
  16 bits (in the CRC's MSB-first bit order) inside ``type seq len payload``, flipped
  before COBS (re-encoded validly). CRC-16/CCITT detects every such error, so a
  decoder must never accept these.
* ``wire_bitflip``, ``wire_bytes`` (1-4 bytes replaced), ``insert``, ``delete``,
  ``truncate``, ``splice`` (head of one frame + tail of another), ``garbage`` (random
  bytes, zeros included), ``duplicate_segment``, ``body_random`` (random bytes in the
  body, valid COBS): anything may happen, only a valid CRC may be accepted.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np

from . import protocol as P

KINDS = ("body_bitflip", "body_burst", "wire_bitflip", "wire_bytes", "insert", "delete",
         "truncate", "splice", "garbage", "duplicate_segment", "body_random")
DETECTED_KINDS = ("body_bitflip", "body_burst")  # CRC-16 detects these always
TYPES = (P.HELLO, P.HELLO_ACK, P.STEP, P.ACTION, P.RESET, P.RESET_ACK, P.ERROR, 0x55)


def random_frame(rng: np.random.Generator, max_payload: int = P.MAX_PAYLOAD) -> P.Frame:
    t = int(TYPES[rng.integers(len(TYPES))])
    r = rng.random()
    if r < 0.6:
        n = int(rng.integers(0, min(max_payload, 128) + 1))
    elif r < 0.9:
        n = int(rng.integers(0, max_payload + 1))
    else:
        n = max_payload
    style = rng.integers(3)
    if style == 0:
        payload = rng.integers(0, 256, n, dtype=np.uint8).tobytes()
    elif style == 1:  # sparse: many zeros (COBS short blocks)
        payload = (rng.integers(0, 256, n, dtype=np.uint8) * (rng.random(n) < 0.2)).astype(np.uint8).tobytes()
    else:  # no zeros (COBS long blocks)
        payload = rng.integers(1, 256, n, dtype=np.uint8).tobytes()
    return P.Frame(t, int(rng.integers(0, 0x10000)), payload)


def _wire(body: bytes) -> bytes:
    return P.cobs_encode(body) + b"\x00"


def mutate(rng: np.random.Generator, frame: P.Frame, kind: str, other: P.Frame | None = None) -> bytes:
    body = P.encode_body(frame.type, frame.seq, frame.payload)
    wire = _wire(body)
    core = wire[:-1]
    n = len(core)
    if kind == "body_bitflip":
        b = bytearray(body)
        i = int(rng.integers(len(b) * 8))
        b[i // 8] ^= 1 << (i % 8)
        return _wire(bytes(b))
    if kind == "body_burst":
        # a burst in the bit order the CRC reads (MSB first), inside type..payload
        msg = body[:-2]
        bits = int.from_bytes(msg, "big")
        L = int(rng.integers(2, 17))
        start = int(rng.integers(0, len(msg) * 8 - L + 1))
        middle = int(rng.integers(0, 1 << (L - 2))) if L > 2 else 0
        pattern = 1 | (1 << (L - 1)) | (middle << 1)
        bits ^= pattern << start
        return _wire(bits.to_bytes(len(msg), "big") + body[-2:])
    if kind == "wire_bitflip":
        c = bytearray(core)
        i = int(rng.integers(n * 8))
        c[i // 8] ^= 1 << (i % 8)
        return bytes(c) + b"\x00"
    if kind == "wire_bytes":
        c = bytearray(core)
        for _ in range(int(rng.integers(1, 5))):
            c[int(rng.integers(n))] = int(rng.integers(0, 256))
        return bytes(c) + b"\x00"
    if kind == "insert":
        i = int(rng.integers(n + 1))
        ins = rng.integers(0, 256, int(rng.integers(1, 4)), dtype=np.uint8).tobytes()
        return core[:i] + ins + core[i:] + b"\x00"
    if kind == "delete":
        i = int(rng.integers(n))
        k = int(rng.integers(1, 4))
        return core[:i] + core[i + k:] + b"\x00"
    if kind == "truncate":
        return core[:int(rng.integers(0, n))] + b"\x00"
    if kind == "splice":
        o = _wire(P.encode_body(other.type, other.seq, other.payload))[:-1] if other else core
        # a non-empty head of this frame, so the result is never simply the other frame
        return core[:int(rng.integers(1, n + 1))] + o[int(rng.integers(0, len(o) + 1)):] + b"\x00"
    if kind == "garbage":
        return rng.integers(0, 256, int(rng.integers(1, 64)), dtype=np.uint8).tobytes() + b"\x00"
    if kind == "duplicate_segment":
        i = int(rng.integers(n))
        j = int(rng.integers(i, n + 1))
        return core[:j] + core[i:j] + core[j:] + b"\x00"
    if kind == "body_random":
        b = bytearray(body)
        for _ in range(int(rng.integers(1, 9))):
            b[int(rng.integers(len(b)))] = int(rng.integers(0, 256))
        return _wire(bytes(b))
    raise ValueError(f"unknown mutation kind {kind!r}")


def mutated_frames(seed: int, n: int, max_payload: int = P.MAX_PAYLOAD,
                   pool: int = 512) -> Iterator[tuple[str, P.Frame, bytes, P.Frame]]:
    """``n`` mutated frames (kinds in rotation) from a pool of random frames:
    ``(kind, original, mutated wire, other)`` where ``other`` is the frame a splice
    took its tail from (a splice can rebuild ``other`` exactly, legitimately)."""
    rng = np.random.default_rng(seed)
    frames = [random_frame(rng, max_payload) for _ in range(pool)]
    for i in range(n):
        kind = KINDS[i % len(KINDS)]
        f = frames[int(rng.integers(pool))]
        other = frames[int(rng.integers(pool))]
        yield kind, f, mutate(rng, f, kind, other), other


# ----------------------------------------------------------------------- fault campaign
REASON_CODE = {"overflow": 1, "cobs": 2, "short": 3, "crc": 4, "length": 5}  # rl_status in rl_proto.h
SENTINEL = P.encode_frame(P.RESET, 0xABCD)


def fuzz_records(seed: int, n: int, max_payload: int = 256, valid_every: int = 12) -> Iterator[tuple[str, bytes, P.Frame, P.Frame]]:
    """``n`` records ``(kind, wire, original, other)`` for a decoder campaign: every
    ``valid_every``-th is a random frame left intact (kind ``"valid"``: must be
    accepted), the others come from :func:`mutated_frames` (kinds in rotation; a third
    of the pool is oversized garbage so the overflow path is hit too)."""
    rng = np.random.default_rng(seed + 1)
    mut = mutated_frames(seed, n, max_payload=max_payload)
    for i in range(n):
        kind, f, wire, other = next(mut)
        if valid_every and i % valid_every == 0:
            yield "valid", P.encode_frame(f.type, f.seq, f.payload), f, other
        elif i % 97 == 1:  # no delimiter for longer than a maximal frame: overflow
            junk = rng.integers(1, 256, int(rng.integers(P.MAX_WIRE + 1, P.MAX_WIRE + 300)), dtype=np.uint8)
            yield "overflow", junk.tobytes(), f, other
        else:
            yield kind, wire, f, other


def stream_verdicts(records: Iterator[bytes] | list[bytes]) -> tuple[np.ndarray, P.StreamDecoder]:
    """What ``hardware/c/fuzz_decoder.c`` prints, computed with the Python stream decoder:
    per record (frames accepted, chunks rejected, last reject reason code, sentinel
    recovered), all records through one decoder, each followed by 0x00 and the sentinel."""
    d = P.StreamDecoder()
    out = []
    for wire in records:
        r0 = d.rejected
        frames = d.feed(wire + P.DELIMITER)
        rej = d.rejected - r0
        last = REASON_CODE[d.last_error.reason] if rej and d.last_error is not None else 0
        tail = d.feed(SENTINEL)
        sent = int(tail == [P.Frame(P.RESET, 0xABCD)])
        out.append((min(len(frames), 255), min(rej, 255), last, sent))
    return np.array(out, np.uint8).reshape(-1, 4), d

"""Generate ``hardware/test_vectors.json``: shared test vectors of the serial protocol.

Run ``python -m hardware.make_test_vectors`` (writes the file) or with ``--check``
(exits 1 when the committed file differs from what this script produces). The Python
tests (``tests/test_protocol.py``) and the C tests of ``hardware/c/rl_proto.c`` both
read the JSON; every byte string is lower-case hex.

Sections:

* ``crc``: CRC-16/CCITT-FALSE of ``data_hex``.
* ``cobs``: ``raw_hex`` -> ``encoded_hex`` (without the 0x00 delimiter); a decoder must
  give back ``raw_hex``. ``cobs_invalid``: chunks a decoder must reject.
* ``frames``: valid frames of every type: ``body_hex`` (before COBS) and ``wire_hex``
  (COBS + 0x00), with the decoded message fields in ``message``.
* ``invalid_frames``: ``wire_hex`` that must be rejected with ``reason``
  (see ``hardware/protocol.py``; ``error_code`` is what a device answers, seq 0xFFFF).
* ``streams``: byte streams and the frames a streaming decoder must return, the number
  of rejected chunks and the per-reason counts; ``pending`` bytes are an unfinished
  frame left in the buffer.
* ``fuzz``: mutated frames (``hardware/fuzz.py``, fixed seed) with the outcome a
  decoder must give: ``accept`` and the frame, or the reject ``reason``.
* ``device``: requests and the reply every device must give, independent of the policy,
  for a device with ``obs_dim``/``act_dim`` from ``device_dims``; a vector with ``state``
  ("stateful" / "stateless") applies only to such a device (``state_dim`` > 0 or 0).
"""

from __future__ import annotations

import argparse
import json
import struct
import sys
from pathlib import Path

import numpy as np

from . import protocol as P

OUT = Path(__file__).with_name("test_vectors.json")
OBS_DIM, ACT_DIM = 26, 4  # the default quadrotor policy view (action_history = 2)


def _hex(b: bytes) -> str:
    return bytes(b).hex()


def _f32_list(a: np.ndarray | list[float]) -> list[float]:
    return [float(x) for x in np.asarray(a, np.float32)]


def _frame_entry(name: str, type_: int, seq: int, payload: bytes, message: dict) -> dict:
    body = P.encode_body(type_, seq, payload)
    return {"name": name, "type": type_, "seq": seq, "payload_hex": _hex(payload),
            "body_hex": _hex(body), "wire_hex": _hex(P.encode_frame(type_, seq, payload)),
            "message": message}


def _raw_wire(body: bytes) -> bytes:
    return P.cobs_encode(body) + b"\x00"


def _body_with_crc(head: bytes) -> bytes:
    return head + struct.pack("<H", P.crc16(head))


def build() -> dict:
    rng = np.random.default_rng(20240501)
    sha = bytes(range(0xA0, 0xC0))  # a recognizable 32-byte digest

    # ------------------------------------------------------------------ CRC
    crc_data = [b"123456789", b"", b"\x00", b"\xff", bytes(range(256)), b"\x02\x01\x00\x00\x00"]
    crc = [{"data_hex": _hex(d), "crc": P.crc16(d)} for d in crc_data]
    assert crc[0]["crc"] == 0x29B1

    # ------------------------------------------------------------------ COBS
    cobs_raw = {
        "single zero": b"\x00",
        "two zeros": b"\x00\x00",
        "zero in the middle": b"\x00\x11\x00",
        "zero inside": b"\x11\x22\x00\x33",
        "no zero": b"\x11\x22\x33\x44",
        "trailing zeros": b"\x11\x00\x00\x00",
        "253 non-zero": bytes(range(1, 254)),
        "254 non-zero (one full block)": bytes(range(1, 255)),
        "255 non-zero": bytes(range(1, 256)),
        "zero then 254 non-zero": bytes(range(0, 255)),
        "254 non-zero then zero": bytes(range(2, 256)) + b"\x00",
        "253 non-zero then zero then one": bytes(range(3, 256)) + b"\x00\x01",
        "508 non-zero (two full blocks)": bytes((i % 255) + 1 for i in range(508)),
        "1031 random bytes with zeros": rng.integers(0, 4, 1031, dtype=np.uint8).tobytes(),
        "1031 non-zero": bytes((i % 255) + 1 for i in range(1031)),
    }
    cobs = [{"name": k, "raw_hex": _hex(v), "encoded_hex": _hex(P.cobs_encode(v))}
            for k, v in cobs_raw.items()]
    for e in cobs:
        assert P.cobs_decode(bytes.fromhex(e["encoded_hex"])) == bytes.fromhex(e["raw_hex"])
    cobs_invalid = [
        {"name": "code byte past the end", "encoded_hex": "05112233"},
        {"name": "full block code past the end", "encoded_hex": "ff" + "11" * 100},
        {"name": "second code past the end", "encoded_hex": "021103aa"},
    ]
    for e in cobs_invalid:
        try:
            P.cobs_decode(bytes.fromhex(e["encoded_hex"]))
        except P.FrameError:
            pass
        else:
            raise AssertionError(e)

    # ------------------------------------------------------------------ valid frames
    obs = np.linspace(-2.5, 3.0, OBS_DIM, dtype=np.float32)
    obs[3] = 0.0
    obs[4] = -0.0
    obs[5] = np.float32(1e-40)  # subnormal
    obs[6] = np.float32(3.0e38)
    act = np.array([-1.0, 1.0, 0.125, -0.333333343], np.float32)
    ack = P.HelloAck(P.VERSION, OBS_DIM, ACT_DIM, sha, 168_000_000, 3)
    frames = [
        _frame_entry("HELLO", P.HELLO, 0, b"", {}),
        _frame_entry("HELLO seq 0x1234", P.HELLO, 0x1234, b"", {}),
        _frame_entry("HELLO_ACK", P.HELLO_ACK, 0x1234, P.pack_hello_ack(ack),
                     {"version": ack.version, "obs_dim": ack.obs_dim, "act_dim": ack.act_dim,
                      "manifest_sha256_hex": _hex(sha), "cpu_hz": ack.cpu_hz, "state_dim": ack.state_dim}),
        _frame_entry("STEP (episode start)", P.STEP, 7, P.pack_step(obs), {"step": 0, "obs": _f32_list(obs)}),
        _frame_entry("STEP all zeros, step 0x01020304", P.STEP, 8, P.pack_step(np.zeros(OBS_DIM), 0x01020304),
                     {"step": 0x01020304, "obs": [0.0] * OBS_DIM}),
        _frame_entry("ACTION", P.ACTION, 7, P.pack_action(act, 123456),
                     {"action": _f32_list(act), "cycles": 123456}),
        _frame_entry("ACTION cycles 0", P.ACTION, 9, P.pack_action(np.zeros(ACT_DIM), 0),
                     {"action": [0.0] * ACT_DIM, "cycles": 0}),
        _frame_entry("RESET", P.RESET, 0xFFFE, b"", {}),
        _frame_entry("RESET_ACK", P.RESET_ACK, 0xFFFE, b"", {}),
        _frame_entry("ERROR bad CRC", P.ERROR, 0xFFFF, P.pack_error(P.ERR_CRC, 0xFFFF),
                     {"code": P.ERR_CRC, "seq": 0xFFFF}),
        _frame_entry("ERROR wrong observation size", P.ERROR, 5, P.pack_error(P.ERR_OBS_SIZE, 5),
                     {"code": P.ERR_OBS_SIZE, "seq": 5}),
        _frame_entry("unknown type 0x55 (valid frame)", 0x55, 3, b"\x01\x02", {}),
        _frame_entry("payload of zeros", P.STEP, 0x0100, bytes(64), {"step": 0, "obs": [0.0] * 15}),
        _frame_entry("seq and len with zero bytes", P.STEP, 0x0000, bytes(8), {"step": 0, "obs": [0.0]}),
        _frame_entry("payload run of 254 non-zero", 0x55, 0x0101, bytes(range(1, 255)), {}),
        _frame_entry("payload run of 255 non-zero", 0x55, 0x0101, bytes(range(1, 256)), {}),
        _frame_entry("max payload 1024 non-zero", 0x55, 0x0202, bytes((i % 255) + 1 for i in range(1024)), {}),
        _frame_entry("max payload 1024 zeros", 0x55, 0x0303, bytes(1024), {}),
        _frame_entry("max STEP: step + 255 floats", P.STEP, 0x0404,
                     P.pack_step(rng.standard_normal(255).astype(np.float32), 99), {}),
    ]
    for f in frames:
        assert len(bytes.fromhex(f["wire_hex"])) - 1 <= P.MAX_WIRE

    # ------------------------------------------------------------------ invalid frames
    step_body = P.encode_body(P.STEP, 7, P.pack_step(obs))
    flip_crc = bytearray(step_body)
    flip_crc[-1] ^= 0x01
    flip_pay = bytearray(step_body)
    flip_pay[10] ^= 0x80
    invalid = [
        ("CRC low byte flipped", _raw_wire(bytes(flip_crc)), "crc"),
        ("payload bit flipped", _raw_wire(bytes(flip_pay)), "crc"),
        ("type flipped", _raw_wire(bytes([step_body[0] ^ 0x04]) + step_body[1:]), "crc"),
        ("CRC byte-swapped", _raw_wire(step_body[:-2] + step_body[-1:] + step_body[-2:-1]), "crc"),
        ("body of 1 byte", _raw_wire(b"\x01"), "short"),
        ("body of 6 bytes", _raw_wire(b"\x01\x00\x00\x00\x00\x00"), "short"),
        ("len one more than payload (CRC valid)", _raw_wire(_body_with_crc(struct.pack("<BHH", 2, 1, 5) + b"abcd")), "length"),
        ("len one less than payload (CRC valid)", _raw_wire(_body_with_crc(struct.pack("<BHH", 2, 1, 3) + b"abcd")), "length"),
        ("len 1025 with 1025 payload bytes (CRC valid)", _raw_wire(_body_with_crc(struct.pack("<BHH", 0x55, 1, 1025) + bytes(1025))), "length"),
        ("len 0xFFFF (CRC valid)", _raw_wire(_body_with_crc(struct.pack("<BHH", 1, 1, 0xFFFF))), "length"),
        ("COBS code byte past the end", bytes.fromhex("0811223344") + b"\x00", "cobs"),
        ("truncated frame (last 3 bytes lost)", P.encode_frame(P.STEP, 7, P.pack_step(obs))[:-4] + b"\x00", "cobs"),
        ("1037 non-zero bytes", b"\x01" * (P.MAX_WIRE + 1) + b"\x00", "overflow"),
    ]
    invalid_frames = []
    for name, wire, reason in invalid:
        try:
            P.decode_frame(wire)
        except P.FrameError as e:
            assert e.reason == reason, (name, e)
        else:
            raise AssertionError(name)
        invalid_frames.append({"name": name, "wire_hex": _hex(wire), "reason": reason,
                               "error_code": P.REJECT_ERROR_CODE[reason]})

    # ------------------------------------------------------------------ streams
    f_hello = P.encode_frame(P.HELLO, 1)
    f_step = P.encode_frame(P.STEP, 2, P.pack_step(obs))
    f_reset = P.encode_frame(P.RESET, 3)
    f_big = P.encode_frame(0x55, 4, bytes(1024))
    dropped = f_step[:20] + f_step[21:]
    zeroed = bytearray(f_step)
    zeroed[30] = 0
    streams_raw = [
        ("three frames back to back", f_hello + f_step + f_reset),
        ("leading and repeated delimiters are ignored", b"\x00\x00" + f_hello + b"\x00" + f_reset + b"\x00"),
        ("garbage before a frame", b"\x11\x22\x33\x00" + f_hello),
        ("garbage without delimiter merges into the next frame", b"\x11\x22\x33" + f_hello + f_reset),
        ("one byte dropped inside a frame", dropped + f_reset),
        ("a byte of a frame turned into 0x00", bytes(zeroed) + f_reset),
        ("overflow then resync", b"\x07" * 3000 + b"\x00" + f_hello),
        ("max-size frame", f_big + f_hello),
        ("unfinished frame at the end", f_hello + f_step[:-1]),
        ("bad CRC between good frames", f_hello + _raw_wire(bytes(flip_crc)) + f_reset),
    ]
    streams = []
    for name, data in streams_raw:
        d = P.StreamDecoder()
        got = d.feed(data)
        # feeding byte by byte must give the same result
        d1 = P.StreamDecoder()
        got1 = [f for b in data for f in d1.feed(bytes([b]))]
        assert got1 == got and d1.rejected == d.rejected and d1.pending == d.pending, name
        streams.append({"name": name, "stream_hex": _hex(data),
                        "frames": [{"type": f.type, "seq": f.seq, "payload_hex": _hex(f.payload)} for f in got],
                        "rejected": d.rejected,
                        "reject_reasons": {k: v for k, v in d.reject_reasons.items() if v},
                        "pending": d.pending})

    # ------------------------------------------------------------------ device rules
    dev = [
        {"name": "HELLO -> HELLO_ACK with the same seq", "request_hex": _hex(P.encode_frame(P.HELLO, 0x0102)),
         "reply_type": P.HELLO_ACK, "reply_seq": 0x0102},
        {"name": "RESET -> RESET_ACK, empty payload", "request_hex": _hex(P.encode_frame(P.RESET, 0x0203)),
         "reply_type": P.RESET_ACK, "reply_seq": 0x0203, "reply_payload_hex": ""},
        {"name": "STEP with obs_dim - 1 floats -> ERROR 4", "request_hex": _hex(P.encode_frame(P.STEP, 0x0304, P.pack_step(obs[:-1]))),
         "reply_type": P.ERROR, "reply_seq": 0x0304, "reply_payload_hex": _hex(P.pack_error(P.ERR_OBS_SIZE, 0x0304))},
        {"name": "STEP with obs_dim + 1 floats -> ERROR 4", "request_hex": _hex(P.encode_frame(P.STEP, 0x0305, P.pack_step(np.append(obs, 1.0)))),
         "reply_type": P.ERROR, "reply_seq": 0x0305, "reply_payload_hex": _hex(P.pack_error(P.ERR_OBS_SIZE, 0x0305))},
        {"name": "unknown type -> ERROR 3", "request_hex": _hex(P.encode_frame(0x55, 0x0406, b"\x01")),
         "reply_type": P.ERROR, "reply_seq": 0x0406, "reply_payload_hex": _hex(P.pack_error(P.ERR_TYPE, 0x0406))},
        {"name": "bad CRC -> ERROR 1 with seq 0xFFFF, or no reply", "request_hex": _hex(_raw_wire(bytes(flip_crc))),
         "reply_type": P.ERROR, "reply_seq": 0xFFFF, "reply_payload_hex": _hex(P.pack_error(P.ERR_CRC, 0xFFFF)),
         "no_reply_allowed": True},
        {"name": "STEP with obs_dim floats -> ACTION with act_dim floats + cycles", "request_hex": _hex(P.encode_frame(P.STEP, 0x0507, P.pack_step(obs))),
         "reply_type": P.ACTION, "reply_seq": 0x0507, "reply_payload_len": 4 * ACT_DIM + 4},
        {"name": "STEP without the step index (v1 payload) -> ERROR 4",
         "request_hex": _hex(P.encode_frame(P.STEP, 0x0608, P.pack_step(obs)[P.STEP_HEADER_SIZE:])),
         "reply_type": P.ERROR, "reply_seq": 0x0608, "reply_payload_hex": _hex(P.pack_error(P.ERR_OBS_SIZE, 0x0608))},
        # no episode started since boot: a stateful policy cannot be at step 5; a stateless one has nothing to lose
        {"name": "STEP step 5 with no episode -> ERROR 5 (stateful device)", "state": "stateful",
         "request_hex": _hex(P.encode_frame(P.STEP, 0x0709, P.pack_step(obs, 5))),
         "reply_type": P.ERROR, "reply_seq": 0x0709, "reply_payload_hex": _hex(P.pack_error(P.ERR_STATE, 0x0709))},
        {"name": "STEP step 5 with no episode -> ACTION (stateless device)", "state": "stateless",
         "request_hex": _hex(P.encode_frame(P.STEP, 0x070A, P.pack_step(obs, 5))),
         "reply_type": P.ACTION, "reply_seq": 0x070A, "reply_payload_len": 4 * ACT_DIM + 4},
    ]

    # ------------------------------------------------------------------ fuzz corpus
    from .fuzz import mutated_frames

    fuzz = []
    for kind, _orig, wire, _other in mutated_frames(seed=2024, n=440, max_payload=48, pool=64):
        try:
            frame = P.decode_frame(wire)
            out = {"accept": True, "type": frame.type, "seq": frame.seq, "payload_hex": _hex(frame.payload)}
        except P.FrameError as e:
            out = {"accept": False, "reason": e.reason}
        fuzz.append({"kind": kind, "wire_hex": _hex(wire), **out})

    return {
        "protocol_version": P.VERSION,
        "generated_by": "python -m hardware.make_test_vectors",
        "rules": "Decoding rules " + (P.__doc__ or "").split("Decoding rules", 1)[-1].strip(),
        "constants": {"max_payload": P.MAX_PAYLOAD, "max_wire": P.MAX_WIRE, "min_body": P.MIN_BODY,
                      "types": {v: k for k, v in P.TYPE_NAMES.items()},
                      "error_codes": {"bad_crc": P.ERR_CRC, "bad_length": P.ERR_LENGTH,
                                      "unknown_type": P.ERR_TYPE, "wrong_obs_size": P.ERR_OBS_SIZE,
                                      "state_lost": P.ERR_STATE},
                      "seq_unknown": P.SEQ_UNKNOWN,
                      "reject_error_code": P.REJECT_ERROR_CODE},
        "crc": crc,
        "cobs": cobs,
        "cobs_invalid": cobs_invalid,
        "frames": frames,
        "invalid_frames": invalid_frames,
        "streams": streams,
        "fuzz": fuzz,
        "device_dims": {"obs_dim": OBS_DIM, "act_dim": ACT_DIM},
        "device": dev,
    }


def render() -> str:
    return json.dumps(build(), indent=1) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="exit 1 if the committed file is stale")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    text = render()
    if args.check:
        ok = args.out.exists() and args.out.read_text() == text
        print(f"{args.out}: {'up to date' if ok else 'STALE, run python -m hardware.make_test_vectors'}")
        return 0 if ok else 1
    args.out.write_text(text)
    print(f"wrote {args.out} ({len(text)} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

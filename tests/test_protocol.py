"""Serial protocol (hardware/protocol.py): CRC, COBS, frames, messages, shared vectors."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hardware import protocol as P
from hardware.device_model import DeviceModel
from hardware.make_test_vectors import render

VECTORS_PATH = Path(__file__).resolve().parents[1] / "hardware" / "test_vectors.json"
V = json.loads(VECTORS_PATH.read_text())
H = bytes.fromhex


def test_vectors_file_is_up_to_date():
    assert VECTORS_PATH.read_text() == render(), "run: python -m hardware.make_test_vectors"


def test_crc_check_value_and_vectors():
    assert P.crc16(b"123456789") == 0x29B1
    for v in V["crc"]:
        assert P.crc16(H(v["data_hex"])) == v["crc"]


@pytest.mark.parametrize("v", V["cobs"], ids=lambda v: v["name"])
def test_cobs_vectors(v):
    raw, enc = H(v["raw_hex"]), H(v["encoded_hex"])
    assert P.cobs_encode(raw) == enc
    assert P.cobs_decode(enc) == raw
    assert 0 not in enc
    assert len(enc) <= P.cobs_max_encoded(len(raw))


def test_cobs_known_encodings():
    # Cheshire & Baker examples (as on Wikipedia's COBS page)
    assert P.cobs_encode(b"\x00") == H("0101")
    assert P.cobs_encode(b"\x11\x22\x00\x33") == H("03112202 33".replace(" ", ""))
    assert P.cobs_encode(bytes(range(1, 255))) == b"\xff" + bytes(range(1, 255))
    assert P.cobs_encode(bytes(range(1, 256))) == b"\xff" + bytes(range(1, 255)) + b"\x02\xff"


@pytest.mark.parametrize("v", V["cobs_invalid"], ids=lambda v: v["name"])
def test_cobs_invalid(v):
    with pytest.raises(P.FrameError) as e:
        P.cobs_decode(H(v["encoded_hex"]))
    assert e.value.reason == "cobs"


@pytest.mark.parametrize("v", V["frames"], ids=lambda v: v["name"])
def test_frame_vectors(v):
    payload = H(v["payload_hex"])
    assert P.encode_body(v["type"], v["seq"], payload) == H(v["body_hex"])
    wire = P.encode_frame(v["type"], v["seq"], payload)
    assert wire == H(v["wire_hex"])
    assert wire[-1] == 0 and 0 not in wire[:-1]
    f = P.decode_frame(wire)
    assert (f.type, f.seq, f.payload) == (v["type"], v["seq"], payload)
    m = v["message"]
    if v["type"] == P.HELLO_ACK:
        ack = P.unpack_hello_ack(payload)
        assert (ack.version, ack.obs_dim, ack.act_dim, ack.manifest_sha256.hex(), ack.cpu_hz, ack.state_dim) == (
            m["version"], m["obs_dim"], m["act_dim"], m["manifest_sha256_hex"], m["cpu_hz"], m["state_dim"])
        assert P.pack_hello_ack(ack) == payload
    elif v["type"] == P.STEP and m:
        step, obs = P.unpack_step(payload)
        assert obs.tolist() == m["obs"] and step == m["step"]
        assert P.pack_step(obs, step) == payload
    elif v["type"] == P.ACTION:
        act, cycles = P.unpack_action(payload, len(m["action"]))
        assert act.tolist() == m["action"] and cycles == m["cycles"]
        assert P.pack_action(act, cycles) == payload
    elif v["type"] == P.ERROR:
        assert P.unpack_error(payload) == (m["code"], m["seq"])


@pytest.mark.parametrize("v", V["invalid_frames"], ids=lambda v: v["name"])
def test_invalid_frame_vectors(v):
    wire = H(v["wire_hex"])
    with pytest.raises(P.FrameError) as e:
        P.decode_frame(wire)
    assert e.value.reason == v["reason"]
    assert P.REJECT_ERROR_CODE[v["reason"]] == v["error_code"]
    d = P.StreamDecoder()
    assert d.feed(wire) == []
    assert d.rejected == 1 and d.reject_reasons[v["reason"]] == 1


@pytest.mark.parametrize("v", V["streams"], ids=lambda v: v["name"])
def test_stream_vectors(v):
    data = H(v["stream_hex"])
    want = [(f["type"], f["seq"], H(f["payload_hex"])) for f in v["frames"]]
    rng = np.random.default_rng(0)
    for split in ("whole", "bytes", "random"):
        d = P.StreamDecoder()
        if split == "whole":
            got = d.feed(data)
        elif split == "bytes":
            got = [f for i in range(len(data)) for f in d.feed(data[i:i + 1])]
        else:
            cuts = sorted(rng.integers(0, len(data) + 1, 5).tolist())
            parts = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)])]
            got = [f for p in parts for f in d.feed(p)]
        assert [(f.type, f.seq, f.payload) for f in got] == want, split
        assert d.rejected == v["rejected"]
        assert {k: n for k, n in d.reject_reasons.items() if n} == v["reject_reasons"]
        assert d.pending == v["pending"]


@pytest.mark.parametrize("state_dim", [0, 3], ids=["stateless", "stateful"])
@pytest.mark.parametrize("v", V["device"], ids=lambda v: v["name"])
def test_device_rule_vectors_python_model(v, state_dim):
    dims = V["device_dims"]
    if v.get("state") and v["state"] != ("stateful" if state_dim else "stateless"):
        pytest.skip(f"vector for a {v['state']} device")
    model = DeviceModel(lambda obs: np.zeros(dims["act_dim"]), dims["obs_dim"], dims["act_dim"], bytes(32),
                        state_dim=state_dim)
    model.process(P.encode_frame(P.HELLO, 1))  # the model answers STEP after a HELLO
    frames, rejected = P.decode_stream(model.process(H(v["request_hex"])))
    assert rejected == 0
    if not frames:
        assert v.get("no_reply_allowed")
        return
    assert len(frames) == 1
    f = frames[0]
    assert (f.type, f.seq) == (v["reply_type"], v["reply_seq"])
    if "reply_payload_hex" in v:
        assert f.payload == H(v["reply_payload_hex"])
    if "reply_payload_len" in v:
        assert len(f.payload) == v["reply_payload_len"]


# ------------------------------------------------------------------ round trips, errors
@settings(max_examples=300, deadline=None)
@given(type_=st.integers(0, 255), seq=st.integers(0, 0xFFFF), payload=st.binary(max_size=P.MAX_PAYLOAD))
def test_frame_round_trip(type_, seq, payload):
    wire = P.encode_frame(type_, seq, payload)
    assert 0 not in wire[:-1] and wire[-1] == 0
    assert len(wire) - 1 <= P.MAX_WIRE
    assert P.decode_frame(wire) == P.Frame(type_, seq, payload)


@settings(max_examples=100, deadline=None)
@given(frames=st.lists(st.tuples(st.integers(0, 255), st.integers(0, 0xFFFF), st.binary(max_size=300)), max_size=8),
       cuts=st.lists(st.integers(0, 4000), max_size=10))
def test_stream_round_trip_any_split(frames, cuts):
    data = b"".join(P.encode_frame(*f) for f in frames)
    cuts = sorted(c for c in cuts if c <= len(data))
    d = P.StreamDecoder()
    got = []
    for a, b in zip([0, *cuts], [*cuts, len(data)]):
        got += d.feed(data[a:b])
    assert [(f.type, f.seq, f.payload) for f in got] == frames
    assert d.rejected == 0 and d.pending == 0


@settings(max_examples=200, deadline=None)
@given(obs=st.lists(st.floats(width=32, allow_nan=False), min_size=1, max_size=255),
       cycles=st.integers(0, 2**32 - 1), step=st.integers(0, 2**32 - 1))
def test_message_round_trips(obs, cycles, step):
    a = np.array(obs, np.float32)
    t, b = P.unpack_step(P.pack_step(a, step), len(a))
    assert np.array_equal(b, a) and t == step
    act, c = P.unpack_action(P.pack_action(a, cycles), len(a))
    assert np.array_equal(act, a) and c == cycles


def test_nan_observation_round_trips_bitwise():
    a = np.array([np.nan, np.inf, -np.inf, -0.0], np.float32)
    _, b = P.unpack_step(P.pack_step(a))
    assert a.tobytes() == b.tobytes()


def test_hello_ack_layout_is_little_endian():
    ack = P.HelloAck(2, 26, 4, bytes(range(32)), 168_000_000, 3)
    p = P.pack_hello_ack(ack)
    assert len(p) == P.HELLO_ACK_SIZE == 46
    assert p[:4] == b"\x02\x00\x00\x00" and p[4:6] == b"\x1a\x00" and p[6:8] == b"\x04\x00"
    assert p[8:40] == bytes(range(32)) and p[40:44] == struct.pack("<I", 168_000_000) and p[44:] == b"\x03\x00"
    assert P.unpack_hello_ack(p) == ack
    # a version-1 device (44-byte HELLO_ACK): its version is read, so the host can name it
    assert P.unpack_hello_ack(struct.pack("<IHH32sI", 1, 26, 4, bytes(32), 1)).version == 1


def test_step_layout_is_little_endian():
    p = P.pack_step(np.array([1.0], np.float32), 0x01020304)
    assert p == b"\x04\x03\x02\x01" + struct.pack("<f", 1.0)
    with pytest.raises(ValueError, match="step must be"):
        P.pack_step([0.0], -1)


def test_encode_rejects_bad_arguments():
    with pytest.raises(ValueError, match="exceeds the maximum 1024"):
        P.encode_frame(P.STEP, 1, bytes(1025))
    with pytest.raises(ValueError, match="sequence number"):
        P.encode_frame(P.STEP, 0x10000)
    with pytest.raises(ValueError, match="frame type"):
        P.encode_frame(256, 1)
    with pytest.raises(ValueError, match="32 bytes"):
        P.pack_hello_ack(P.HelloAck(1, 1, 1, b"short", 0))
    with pytest.raises(ValueError, match="does not fit"):
        P.pack_step(np.zeros(256))


def test_unpack_wrong_sizes_raise_message_error():
    with pytest.raises(P.MessageError, match="HELLO_ACK payload has 45 bytes"):
        P.unpack_hello_ack(b"\x02" + bytes(44))
    with pytest.raises(P.MessageError, match="expected 20"):
        P.unpack_action(bytes(16), 4)
    with pytest.raises(P.MessageError, match="expected 108"):
        P.unpack_step(bytes(104), 26)
    with pytest.raises(P.MessageError):
        P.unpack_step(bytes(3))
    with pytest.raises(P.MessageError):
        P.unpack_error(bytes(2))
    assert issubclass(P.MessageError, P.ProtocolError) and issubclass(P.FrameError, P.ProtocolError)


def test_decoder_resyncs_and_bounds_memory():
    d = P.StreamDecoder()
    good = P.encode_frame(P.HELLO, 5)
    # a long run without delimiter: one overflow reject, buffer stays bounded
    for _ in range(10):
        assert d.feed(b"\x01" * 1000) == []
        assert d.pending <= P.MAX_WIRE
    assert d.rejected == 1 and d.reject_reasons["overflow"] == 1
    assert d.feed(b"\x00" + good) == [P.Frame(P.HELLO, 5)]
    assert d.rejected == 1
    # a chunk of exactly MAX_WIRE bytes is decoded (and rejected on content, not size)
    d2 = P.StreamDecoder()
    d2.feed(b"\x01" * P.MAX_WIRE + b"\x00")
    assert d2.reject_reasons["overflow"] == 0 and d2.rejected == 1
    # decoder reset drops a partial frame
    d.feed(good[:3])
    assert d.pending == 3
    d.reset()
    assert d.pending == 0 and d.feed(good) == [P.Frame(P.HELLO, 5)]
    assert d.stats()["frames"] == 2


def test_max_payload_frame_fits_max_wire():
    worst = bytes((i % 255) + 1 for i in range(P.MAX_PAYLOAD))  # no zeros: worst COBS overhead
    wire = P.encode_frame(0xFF, 0xFFFF, worst)
    assert len(wire) - 1 <= P.MAX_WIRE == 1036
    assert P.decode_frame(wire).payload == worst


def test_fuzz_corpus_vectors():
    assert len(V["fuzz"]) >= 400
    for v in V["fuzz"]:
        wire = H(v["wire_hex"])
        try:
            f = P.decode_frame(wire)
        except P.FrameError as e:
            assert not v["accept"] and e.reason == v["reason"], v
        else:
            assert v["accept"] and (f.type, f.seq, f.payload.hex()) == (v["type"], v["seq"], v["payload_hex"]), v

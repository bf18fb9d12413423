"""The C protocol (hardware/c/rl_proto.c) against the shared vectors (hardware/test_vectors.json)
and against the Python implementation, through the line-driven harness hardware/c/test_proto.c
(host cc -O2 -Wall -Wextra -Werror -pedantic -Wconversion)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from hardware import protocol as P
from hardware.fuzz import random_frame
from hardware.testing import ProtoHarness

V = json.loads((Path(__file__).resolve().parents[1] / "hardware" / "test_vectors.json").read_text())
H = bytes.fromhex

pytestmark = pytest.mark.skipif(shutil.which("cc") is None, reason="no host C compiler (cc): apt-get install gcc")


@pytest.fixture(scope="module")
def c(tmp_path_factory) -> ProtoHarness:
    return ProtoHarness(tmp_path_factory.mktemp("proto_c"))


def test_crc_vectors(c):
    got = c.run([f"crc {c.hex(H(v['data_hex']))}" for v in V["crc"]])
    assert [int(x) for x in got] == [v["crc"] for v in V["crc"]]
    assert int(c.run(["crc " + b"123456789".hex()])[0]) == 0x29B1


def test_cobs_vectors(c):
    enc = c.run([f"cobs_enc {c.hex(H(v['raw_hex']))}" for v in V["cobs"]])
    assert enc == [v["encoded_hex"] for v in V["cobs"]]
    dec = c.run([f"cobs_dec {v['encoded_hex']}" for v in V["cobs"]])
    assert dec == [v["raw_hex"] or "-" for v in V["cobs"]]
    bad = c.run([f"cobs_dec {v['encoded_hex']}" for v in V["cobs_invalid"]])
    assert bad == ["REJ cobs"] * len(V["cobs_invalid"])


def test_cobs_encoder_matches_python_on_random_runs(c):
    """Run lengths around the 254-byte block boundary, with and without zeros."""
    rng = np.random.default_rng(0)
    raws = []
    for n in [0, 1, 253, 254, 255, 507, 508, 509, 762, 1031]:
        for zeros in (0.0, 0.01, 0.5):
            b = rng.integers(1, 256, n, dtype=np.uint8)
            b[rng.random(n) < zeros] = 0
            raws.append(b.tobytes())
    got = c.run([f"cobs_enc {c.hex(r)}" for r in raws])
    assert got == [P.cobs_encode(r).hex() or "-" for r in raws]


def test_frame_vectors_decode_and_pack(c):
    fr = V["frames"]
    got = c.decode_frames([H(v["wire_hex"]) for v in fr])
    assert got == [("OK", v["type"], v["seq"], H(v["payload_hex"])) for v in fr]
    packed = c.run([f"pack {v['type']} {v['seq']} {v['payload_hex'] or '-'}" for v in fr])
    assert packed == [v["wire_hex"] for v in fr]


def test_pack_rejects_oversized_payload(c):
    assert c.run([f"pack 85 1 {'11' * (P.MAX_PAYLOAD + 1)}"]) == ["-"]  # 0 bytes written


def test_invalid_frame_vectors(c):
    got = c.decode_frames([H(v["wire_hex"]) for v in V["invalid_frames"]])
    assert got == [("REJ", v["reason"]) for v in V["invalid_frames"]]


def test_stream_vectors(c):
    got = c.streams([H(v["stream_hex"]) for v in V["streams"]])
    for v, g in zip(V["streams"], got):
        want = [(f["type"], f["seq"], H(f["payload_hex"])) for f in v["frames"]]
        assert g["frames"] == want, v["name"]
        assert (g["rejected"], g["reject_reasons"], g["pending"]) == \
            (v["rejected"], v["reject_reasons"], v["pending"]), v["name"]


def test_fuzz_corpus_vectors(c):
    fz = V["fuzz"]
    got = c.decode_frames([H(v["wire_hex"]) for v in fz])
    want = [("OK", v["type"], v["seq"], H(v["payload_hex"])) if v["accept"] else ("REJ", v["reason"]) for v in fz]
    assert got == want
    assert any(v["accept"] for v in fz) and not all(v["accept"] for v in fz)


def test_random_frames_round_trip_python_to_c_and_back(c):
    """Frames packed by Python decode in C, frames packed by C decode in Python."""
    rng = np.random.default_rng(5)
    frames = [random_frame(rng) for _ in range(300)]
    assert c.decode_frames([P.encode_frame(f.type, f.seq, f.payload) for f in frames]) == \
        [("OK", f.type, f.seq, f.payload) for f in frames]
    wires = c.run([f"pack {f.type} {f.seq} {c.hex(f.payload)}" for f in frames])
    assert [P.decode_frame(H(w)) for w in wires] == frames

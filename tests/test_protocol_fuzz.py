"""Fuzzing the frame decoders: 1e5 seeded mutated frames plus hypothesis properties.

Properties: the decoder never raises anything but FrameError (one-shot) / nothing
(streaming); every accepted frame is exactly the body that arrived (its canonical
encoding equals the COBS-decoded bytes, and an independent table CRC over them holds);
it never accepts a frame corrupted by a single bit flip or a burst of <= 16 bits; the
stream decoder resynchronizes (a good frame after a 0x00 is always recovered) and its
buffer stays bounded; streaming with random splits gives the same frames as one-shot
decoding. The same 1e5 frames go through the C decoder (hardware/c/rl_proto.c), one
shot and streaming, and must give the same results as Python.
"""

from __future__ import annotations

import shutil
import struct
import time

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hardware import protocol as P
from hardware.fuzz import DETECTED_KINDS, KINDS, mutate, mutated_frames, random_frame

N_FRAMES = 100_000
SENTINEL = P.encode_frame(P.RESET, 0xABCD)


def _table() -> list[int]:
    # CRC-16/CCITT-FALSE table, MSB first, built here independently of protocol.crc16
    t = []
    for i in range(256):
        c = i << 8
        for _ in range(8):
            c = ((c << 1) ^ 0x1021) if c & 0x8000 else (c << 1)
        t.append(c & 0xFFFF)
    return t


_T = _table()


def _ref_crc(data: bytes) -> int:
    c = 0xFFFF
    for b in data:
        c = ((c << 8) & 0xFFFF) ^ _T[(c >> 8) ^ b]
    return c


def _crc_ok(f: P.Frame, wire: bytes | None = None) -> bool:
    """An accepted frame is a well-formed frame; with ``wire``, it is exactly the body
    that arrived and that body's CRC (reference implementation) holds."""
    head = struct.pack("<BHH", f.type, f.seq, len(f.payload)) + f.payload
    if len(f.payload) > P.MAX_PAYLOAD or P.decode_body(head + struct.pack("<H", P.crc16(head))) != f:
        return False
    if wire is None:
        return True
    body = P.cobs_decode(wire.rstrip(b"\x00"))
    return body[:-2] == head and _ref_crc(head) == int.from_bytes(body[-2:], "little")


@pytest.fixture(scope="module")
def corpus() -> list[tuple[str, P.Frame, bytes, P.Frame]]:
    return list(mutated_frames(seed=12345, n=N_FRAMES, max_payload=256))


def test_fuzz_1e5_mutated_frames(corpus):
    t0 = time.perf_counter()
    rng = np.random.default_rng(1)
    sentinel = SENTINEL
    stream = P.StreamDecoder()
    pending: list[bytes] = []
    expected: list[P.Frame] = []
    accepted = {k: 0 for k in KINDS}
    changed = {k: 0 for k in KINDS}
    total = 0
    for kind, orig, wire, other in corpus:
        total += 1
        try:
            f = P.decode_frame(wire)
        except P.FrameError as e:
            assert e.reason in P.REJECT_REASONS
            f = None
        if f is not None:
            accepted[kind] += 1
            assert _crc_ok(f, wire)
            if f not in (orig, other):
                changed[kind] += 1
                assert kind not in DETECTED_KINDS, (kind, orig, wire.hex())
        # the same bytes through the stream decoder, each piece followed by a flush and a
        # good frame; what the stream yields must equal piece-by-piece decoding
        pending.append(wire + b"\x00" + sentinel)
        expected += P.decode_stream(wire)[0] + [P.Frame(P.RESET, 0xABCD)]
        if len(pending) == 500:
            data = b"".join(pending)
            cuts = np.sort(rng.integers(0, len(data), 40))
            got = []
            for a, b in zip([0, *cuts], [*cuts, len(data)]):
                got += stream.feed(data[a:b])
                assert stream.pending <= P.MAX_WIRE
            assert got == expected
            pending.clear()
            expected.clear()
    assert total == N_FRAMES
    # mutations that must be caught were caught; others may pass only with a valid CRC,
    # at about the 2^-16 collision rate
    assert all(changed[k] == 0 for k in DETECTED_KINDS)
    undetected = sum(changed.values())
    assert undetected <= 2, changed
    assert stream.rejected > 0.8 * N_FRAMES
    print(f"\nfuzz: {total} mutated frames, {stream.frames} frames through the stream decoder, "
          f"{stream.rejected} rejected {stream.reject_reasons}, accepted per kind {accepted}, "
          f"undetected changes {undetected}, {time.perf_counter() - t0:.1f} s")


@pytest.mark.skipif(shutil.which("cc") is None, reason="no host C compiler (cc): apt-get install gcc")
def test_fuzz_1e5_c_decoder_equals_python(corpus, tmp_path):
    """The same 1e5 mutated frames through the C decoder: one-shot results (frame or
    reject reason) and streaming results (frames, per-reason rejects, pending bytes,
    each mutated frame followed by a flush and a good frame) equal Python's."""
    from hardware.testing import ProtoHarness

    c = ProtoHarness(tmp_path)
    wires = [w for _, _, w, _ in corpus]
    want = []
    for w in wires:
        try:
            f = P.decode_frame(w)
            want.append(("OK", f.type, f.seq, f.payload))
        except P.FrameError as e:
            want.append(("REJ", e.reason))
    got = c.decode_frames(wires)
    assert len(got) == N_FRAMES
    bad = [(i, g, w) for i, (g, w) in enumerate(zip(got, want)) if g != w]
    assert not bad, f"{len(bad)} differences, first: {bad[0]}, wire {wires[bad[0][0]].hex()}"
    n_acc = sum(g[0] == "OK" for g in got)
    assert 0 < n_acc < N_FRAMES // 2

    # streams of ~200 KB; the C harness starts a fresh decoder per stream, so does Python
    streams, cur = [], bytearray()
    for w in wires:
        cur += w + b"\x00" + SENTINEL
        if len(cur) > 200_000:
            streams.append(bytes(cur))
            cur = bytearray()
    streams.append(bytes(cur))
    got_s = c.streams(streams)
    total_frames = 0
    for s, g in zip(streams, got_s):
        d = P.StreamDecoder()
        frames = d.feed(s)
        assert g["frames"] == [(f.type, f.seq, f.payload) for f in frames]
        assert g["rejected"] == d.rejected and g["pending"] == d.pending
        assert g["reject_reasons"] == {k: v for k, v in d.reject_reasons.items() if v}
        total_frames += len(frames)
    # every sentinel was recovered: the C decoder resynchronized after each mutated frame
    assert sum(f[:2] == (P.RESET, 0xABCD) for g in got_s for f in g["frames"]) >= N_FRAMES


def test_fuzz_random_byte_soup_stream():
    """Pure random bytes (rich in 0x00 and not) in random chunks: never raises, bounded."""
    rng = np.random.default_rng(7)
    d = P.StreamDecoder()
    for _ in range(200):
        n = int(rng.integers(1, 5000))
        zero_rate = rng.choice([0.0, 0.001, 0.05, 0.5])
        data = rng.integers(1, 256, n, dtype=np.uint8)
        data[rng.random(n) < zero_rate] = 0
        for f in d.feed(data.tobytes()):
            assert _crc_ok(f)
        assert d.pending <= P.MAX_WIRE
    good = P.encode_frame(P.HELLO, 1)
    assert d.feed(b"\x00" + good) == [P.Frame(P.HELLO, 1)]


_mutation = st.sampled_from(KINDS)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), kinds=st.lists(_mutation, min_size=1, max_size=4))
def test_hypothesis_mutations(seed, kinds):
    rng = np.random.default_rng(seed)
    frame = random_frame(rng, max_payload=300)
    for kind in kinds:
        wire = mutate(rng, frame, kind, random_frame(rng, 64))
        try:
            f = P.decode_frame(wire)
        except P.FrameError:
            continue
        assert _crc_ok(f)
        if kind in DETECTED_KINDS:
            raise AssertionError(f"a CRC-detectable corruption ({kind}) was accepted: {wire.hex()}")


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=3000), cuts=st.lists(st.integers(0, 3000), max_size=8))
def test_hypothesis_stream_never_raises(data, cuts):
    d = P.StreamDecoder()
    cuts = sorted(c for c in cuts if c <= len(data))
    got = []
    for a, b in zip([0, *cuts], [*cuts, len(data)]):
        got += d.feed(data[a:b])
        assert d.pending <= P.MAX_WIRE
    for f in got:
        assert _crc_ok(f)
    # one-shot decoding agrees
    assert P.decode_stream(data)[0] == got


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=1200))
def test_hypothesis_decode_frame_only_frame_errors(data):
    try:
        f = P.decode_frame(data)
    except P.FrameError as e:
        assert e.reason in P.REJECT_REASONS
    else:
        assert _crc_ok(f)


@pytest.mark.skipif(shutil.which("cc") is None, reason="no host C compiler (cc): apt-get install gcc")
def test_fault_campaign_python_and_sanitized_c():
    """benchmarks/protocol_fuzz.py on 2e4 records (the recorded figure is its 1e6 run):
    random and mutated frames through Python and the ASan/UBSan-built C decoder: no
    crash, no hang, every bad frame rejected and counted, C equals Python per record."""
    from benchmarks.protocol_fuzz import run

    r = run(frames=20_000, seed=7, chunk=10_000)
    assert r["ok"], r
    assert r["frames"] == 20_000 and r["crashes"] == r["hangs"] == 0
    assert r["bad_frames_not_rejected"] == r["valid_frames_rejected"] == r["crc_detectable_accepted"] == 0
    assert r["c"]["disagreements_with_python"] == 0 and r["sentinels_lost"] == 0
    assert "-fsanitize=address,undefined" in r["c"]["build"]
    assert set(r["kinds"]) >= set(KINDS) | {"valid", "overflow"}
    reasons = r["python"]["reject_reasons"]
    assert all(reasons[k] > 0 for k in ("overflow", "cobs", "short", "crc"))
    # the C driver's totals line counts the same rejects as Python
    c_rejected = sum(int(b.split()[5]) for b in r["c"]["batches"])
    assert c_rejected == r["python"]["rejected"] > 0.8 * 20_000


def test_fault_campaign_catches_a_broken_decoder(monkeypatch):
    """The campaign is not vacuous: a decoder that accepts frames without checking the
    CRC is reported (bad frames not rejected)."""
    from benchmarks import protocol_fuzz

    real = P.decode_body

    def no_crc(body):
        try:
            return real(body)
        except P.FrameError as e:
            if e.reason != "crc":
                raise
            t, s, n = struct.unpack_from("<BHH", body)
            return P.Frame(t, s, bytes(body[5:-2]))

    monkeypatch.setattr(P, "decode_body", no_crc)
    r = protocol_fuzz.run(frames=2_000, seed=1, c=False)
    assert not r["ok"] and r["bad_frames_not_rejected"] > 0

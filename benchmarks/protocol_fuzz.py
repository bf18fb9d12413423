"""Protocol decoders under 1e6 random and mutated frames: Python and C (ASan + UBSan).

    python -m benchmarks.protocol_fuzz [--frames 1000000] [--seed 0] [--max-payload 256] [--json OUT]
    robolearn bench protocol-fuzz ...

Records (``hardware.fuzz.fuzz_records``): 1 in 12 an intact random frame (must be
accepted), 1 in 97 a run of non-zero bytes longer than a maximal frame (overflow), the
rest mutated frames (bit flips, bursts, inserted/deleted/replaced bytes, truncation,
splices, garbage, duplicated segments, random body bytes). Every record goes through

* Python's one-shot ``decode_frame`` (must raise nothing but ``FrameError``; an
  accepted frame must carry a valid CRC; CRC-detectable corruptions never accepted);
* Python's ``StreamDecoder`` and the C ``rl_decoder`` (``hardware/c/fuzz_decoder.c``
  built with ``-fsanitize=address,undefined -fno-sanitize-recover=all``), one decoder
  each for the whole campaign, every record followed by a 0x00 and a good sentinel
  frame: per record the frames accepted, the chunks rejected, the last reason, and
  whether the sentinel came through must be the same in C and Python.

Figures: crashes (sanitizer aborts, exceptions other than FrameError), hangs (the C run
bounded by ``--timeout``), bad records not rejected, undetected corruptions (accepted
frames that differ from what was sent: only possible at the CRC-16 collision rate
for kinds that rewrite the CRC region), C/Python disagreements, sentinels lost.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from hardware import protocol as P
from hardware.fuzz import DETECTED_KINDS, fuzz_records, stream_verdicts


def _valid_crc(f: P.Frame, wire: bytes) -> bool:
    """An accepted frame is exactly the body that arrived, and that body's CRC holds
    (checked by re-encoding, independently of the decoder under test)."""
    try:
        body = P.cobs_decode(wire[:-1] if wire.endswith(P.DELIMITER) else wire)
    except P.FrameError:
        return False
    return body == P.encode_body(f.type, f.seq, f.payload)


def run(frames: int = 1_000_000, seed: int = 0, max_payload: int = 256, c: bool = True,
        timeout: float = 1800.0, chunk: int = 100_000) -> dict:
    """The campaign; returns the figures (see the module docstring). ``c=False`` or no
    host compiler: Python only (the report says so)."""
    from hardware.testing import build_fuzz_decoder, run_fuzz_decoder

    t0 = time.perf_counter()
    gen = fuzz_records(seed, frames, max_payload=max_payload)
    kinds: dict[str, int] = {}
    undetected_kinds: dict[str, int] = {}
    crashes = hangs = bad_not_rejected = undetected = valid_rejected = detected_accepted = 0
    disagreements = sentinels_lost = 0
    py_s = c_s = 0.0
    exe = None
    c_note = "not run"
    tmp = tempfile.TemporaryDirectory(prefix="robolearn_fuzz_")
    if c and shutil.which("cc"):
        exe = build_fuzz_decoder(tmp.name, sanitize=True)
        c_note = "cc -O2 -fsanitize=address,undefined -fno-sanitize-recover=all"
    elif c:
        c_note = "not run: no host C compiler (cc)"
    c_totals = []
    done = 0
    py_rejected_total = 0
    reasons: dict[str, int] = {r: 0 for r in P.REJECT_REASONS}
    while done < frames:
        batch = [next(gen) for _ in range(min(chunk, frames - done))]
        wires = [w for _, w, _, _ in batch]
        t = time.perf_counter()
        for kind, wire, orig, other in batch:
            kinds[kind] = kinds.get(kind, 0) + 1
            try:
                f = P.decode_frame(wire)
            except P.FrameError:
                f = None
                if kind == "valid":
                    valid_rejected += 1
            except Exception:  # noqa: BLE001  (anything else is a crash of the decoder)
                crashes += 1
                continue
            if f is not None:
                if not _valid_crc(f, wire):
                    bad_not_rejected += 1
                elif kind != "valid" and f not in (orig, other):
                    undetected += 1
                    undetected_kinds[kind] = undetected_kinds.get(kind, 0) + 1
                    if kind in DETECTED_KINDS:
                        detected_accepted += 1
        try:
            verdicts, d = stream_verdicts(wires)
        except Exception:  # noqa: BLE001
            crashes += 1
            break
        py_rejected_total += d.rejected
        for r, v in d.reject_reasons.items():
            reasons[r] += v
        py_s += time.perf_counter() - t
        sentinels_lost += int(np.sum(verdicts[:, 3] == 0))
        # a bad record (one-shot rejected, not only 0x00 bytes) must show a reject in the stream
        for (kind, wire, _, _), v in zip(batch, verdicts):
            if v[1] == 0 and v[0] == 0 and wire.strip(b"\x00"):
                bad_not_rejected += 1
        if exe is not None:
            t = time.perf_counter()
            # the C driver keeps one decoder per process: one process per batch, Python likewise
            try:
                cv, totals = run_fuzz_decoder(exe, wires, timeout=timeout)
            except RuntimeError as e:  # a sanitizer abort or a hang: counted, and the campaign stops
                if "hung" in str(e):
                    hangs += 1
                else:
                    crashes += 1
                c_totals.append(str(e))
                break
            c_s += time.perf_counter() - t
            disagreements += int(np.sum(np.any(cv != verdicts, axis=1)))
            c_totals.append(totals)
        done += len(batch)
    tmp.cleanup()
    return {
        "frames": done, "seed": seed, "max_payload": max_payload, "kinds": kinds,
        "crashes": crashes, "hangs": hangs, "bad_frames_not_rejected": bad_not_rejected,
        "valid_frames_rejected": valid_rejected, "crc_detectable_accepted": detected_accepted,
        "undetected_corruptions": undetected, "undetected_by_kind": undetected_kinds,
        "python": {"rejected": py_rejected_total, "reject_reasons": reasons, "seconds": round(py_s, 1)},
        "c": {"build": c_note, "disagreements_with_python": disagreements if exe is not None else None,
              "seconds": round(c_s, 1), "batches": c_totals},
        "sentinels_lost": sentinels_lost,
        "wall_s": round(time.perf_counter() - t0, 1),
        "ok": (crashes == 0 and hangs == 0 and done == frames and bad_not_rejected == 0 and valid_rejected == 0 and detected_accepted == 0
               and sentinels_lost == 0 and (exe is None or disagreements == 0)),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.protocol_fuzz", description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-payload", type=int, default=256)
    ap.add_argument("--no-c", action="store_true", help="Python decoder only")
    ap.add_argument("--timeout", type=float, default=1800.0, help="bound on each C batch, s (a hang fails)")
    ap.add_argument("--json", type=Path, default=None, help="also write the figures here")
    a = ap.parse_args(argv)
    if a.frames < 1 or not 0 <= a.max_payload <= P.MAX_PAYLOAD:
        print(f"error: --frames must be >= 1 and --max-payload 0..{P.MAX_PAYLOAD}", file=sys.stderr)
        return 2
    r = run(a.frames, a.seed, a.max_payload, c=not a.no_c, timeout=a.timeout)
    text = json.dumps(r, indent=2)
    if a.json:
        a.json.write_text(text + "\n")
    print(text)
    return 0 if r["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())

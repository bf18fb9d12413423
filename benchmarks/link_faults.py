"""The serial HIL runner under a byte-damaging link: 1 %, 10 % and 30 % of the bytes
dropped, corrupted, duplicated or delayed.

    python -m benchmarks.link_faults [--rates 0.01,0.1,0.3] [--episodes 2] [--steps 100] [--seed 0] [--json OUT]
    robolearn bench link-faults ...

Set-up (all in-process, nothing but this process's threads): a test export with the
linear hover controller (``hardware.testing.make_test_export(hover=True)``), the Python
device model serving it on one pseudo-terminal pair, :class:`hardware.testing.PtyFaultProxy`
relaying to a second pair, and ``run_hil`` on that pair's slave through ``SerialDevice``
(pyserial), the path a real board takes. Each relayed byte is hit with probability
``rate`` by one fault chosen uniformly among drop / corrupt / duplicate / delay (2 ms).

Per rate: how the run ended (``ok``: every episode flown; ``device_lost``: a request
failed after all retries, with the one-line reason), steps and episodes flown, wall time
against its bound, the link counters, and the books: the host's frame identities
(``LinkStats.balance``), the proxy's per direction (out = in - dropped + duplicated),
bytes sent by the host = bytes into the proxy, bytes out of the proxy = bytes the device
decoded, every device action equal to onnxruntime's (a damaged frame never becomes a
wrong action).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from hardware.device_model import model_from_export, serve_fd
from hardware.devices import SerialDevice
from hardware.hil import run_hil
from hardware.testing import EASY_START, PtyFaultProxy, make_test_export


def fly_under_faults(export_dir: Path, rate: float, *, episodes: int = 2, steps: int = 100, seed: int = 0,
                     timeout: float = 0.05, retries: int = 6, hello_timeout: float = 0.1,
                     clean_bytes: int = 0) -> dict[str, Any]:
    """One HIL run through a :class:`PtyFaultProxy` at ``rate``; the figures and checks."""
    model = model_from_export(export_dir)
    emitted = [0]
    process = model.process

    def counted(data: bytes) -> bytes:
        out = process(data)
        emitted[0] += len(out)
        return out

    model.process = counted  # type: ignore[method-assign]
    # worst case per request: every try times out, a HELLO before each try from the second on
    per_request = (retries + 1) * timeout + max(0, retries - 1) * hello_timeout
    bound_s = 30.0 + (episodes * (steps + 1) + 1) * per_request
    with PtyFaultProxy(rate, seed=seed, clean_bytes=clean_bytes) as proxy:
        stop = threading.Event()
        server = threading.Thread(target=serve_fd, args=(model, proxy.device_fd, stop.is_set), daemon=True)
        server.start()
        t0 = time.monotonic()
        try:
            r = run_hil(export_dir, SerialDevice(proxy.host_path, 115200), episodes=episodes, steps=steps,
                        seed=seed, timeout=timeout, retries=retries, hello_timeout=hello_timeout,
                        report_path=Path(tempfile.mkdtemp(prefix="robolearn_link_")) / "hil_report.json")
            status, error, report = r["status"], r["error"], r
        except Exception as e:  # noqa: BLE001  (a refusal before flying is a result here: HELLO never got through)
            status, error, report = "refused", f"{type(e).__name__}: {e}", None
        wall = time.monotonic() - t0
        time.sleep(0.3)  # let the relay and the device drain what is in flight
        stop.set()
        server.join(2.0)
        counts = {d: dict(c) for d, c in proxy.count.items()}
    dec = model.decoder
    out: dict[str, Any] = {"rate": rate, "clean_bytes": clean_bytes, "status": status, "error": error, "wall_s": round(wall, 2),
                           "bound_s": round(bound_s, 1), "within_bound": wall <= bound_s, "proxy": counts,
                           "device": {"frames_decoded": model.count.requests, "rejected": model.count.rejected,
                                      "steps_seen": model.count.steps, "duplicates_from_cache": model.count.duplicates,
                                      "bytes_decoded": dec.bytes_in, "bytes_emitted": emitted[0]}}
    books: dict[str, bool] = {}
    for d, c in counts.items():
        books[f"proxy {d}: out == in - dropped + duplicated"] = c["bytes_out"] == c["bytes_in"] - c["dropped"] + c["duplicated"]
    books["device decoded every byte the proxy delivered"] = counts["to_device"]["bytes_out"] == dec.bytes_in
    books["proxy received every byte the device emitted"] = counts["to_host"]["bytes_in"] == emitted[0]
    if report is not None:
        f = report["frames"]
        a = report["action_error"]
        eps = report["closed_loop"]["episodes"]
        out.update({"steps_flown": report["steps"], "episodes_finished": sum(e["hil"]["error"] is None for e in eps),
                    "episodes_started": len(eps), "frames": f, "action_error": a["max_abs"],
                    "latency_ms_p99": (report["latency_ms"] or {}).get("p99")})
        books["host sent == requests + retried + rehellos"] = f["balance"]["sent - (requests + retried + rehellos)"] == 0
        books["host received == answers + stale + malformed"] = f["balance"]["received - (answers + stale + malformed)"] == 0
        books["host bytes sent == proxy bytes in (to device)"] = f["bytes_sent"] == counts["to_device"]["bytes_in"]
        books["host bytes received <= proxy bytes out (to host)"] = f["bytes_received"] <= counts["to_host"]["bytes_out"]
        books["steps flown == actions compared"] = report["steps"] == a["n"]
        books["every action equals onnxruntime's"] = a["n"] == 0 or a["max_abs"] == 0.0
        books["a stopped run says why"] = status == "ok" or bool(error)
    out["books"] = books
    out["books_balance"] = all(books.values())
    return out


def run(rates: tuple[float, ...] = (0.01, 0.1, 0.3), episodes: int = 2, steps: int = 100, seed: int = 0,
        timeout: float = 0.05, retries: int = 6, clean_bytes: tuple[int, ...] = (0, 600)) -> dict[str, Any]:
    """Every rate, with faults from the first byte and after ``clean_bytes`` bytes per
    direction (600: past HELLO, RESET and a few steps, so the faults hit mid-episode)."""
    with tempfile.TemporaryDirectory(prefix="robolearn_link_faults_") as tmp:
        exp = make_test_export(Path(tmp) / "run", hover=True, ranges=EASY_START)
        runs = [fly_under_faults(exp, r, episodes=episodes, steps=steps, seed=seed + i, timeout=timeout,
                                 retries=retries, clean_bytes=cb)
                for cb in clean_bytes for i, r in enumerate(rates)]
    return {"episodes": episodes, "steps": steps, "seed": seed, "timeout_s": timeout, "retries": retries,
            "clean_bytes": list(clean_bytes), "runs": runs,
            "ok": all(r["books_balance"] and r["within_bound"] for r in runs)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.link_faults", description=__doc__.splitlines()[0])
    ap.add_argument("--rates", default="0.01,0.1,0.3", help="comma-separated byte fault probabilities")
    ap.add_argument("--episodes", type=int, default=2)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--timeout", type=float, default=0.05)
    ap.add_argument("--retries", type=int, default=6)
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args(argv)
    try:
        rates = tuple(float(x) for x in a.rates.split(",") if x.strip())
    except ValueError:
        print(f"error: --rates must be comma-separated numbers in [0, 1], got {a.rates!r}", file=sys.stderr)
        return 2
    if not rates or any(not 0 <= x <= 1 for x in rates) or a.episodes < 1 or a.steps < 1 or a.retries < 0 or a.timeout <= 0:
        print("error: --rates in [0, 1], --episodes/--steps >= 1, --retries >= 0, --timeout > 0", file=sys.stderr)
        return 2
    r = run(rates, a.episodes, a.steps, a.seed, a.timeout, a.retries)
    text = json.dumps(r, indent=2)
    if a.json:
        a.json.write_text(text + "\n")
    for x in r["runs"]:
        print(f"rate {x['rate']:.0%} after {x['clean_bytes']} clean bytes: {x['status']}, {x.get('steps_flown', 0)} steps, "
              f"{x.get('episodes_finished', 0)}/{x.get('episodes_started', 0)} episodes finished, "
              f"{x['wall_s']} s (bound {x['bound_s']} s), books balance: {x['books_balance']}"
              + (f" | {x['error']}" if x["error"] else ""), file=sys.stderr)
    print(text)
    return 0 if r["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())

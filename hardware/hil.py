"""Hardware in the loop: fly simulated episodes with the policy running on a device.

Each control step the host sends the policy observation and its step index in the
episode (STEP; step 0 starts an episode and resets the policy state on the device),
the device runs the exported policy and answers with the action and the ticks of its
counter across the inference (ACTION), and the host applies that action in the
simulator (lock-step: the simulator waits for the device). Alongside, the ONNX actor
(``policy.onnx``, onnxruntime; reset with the device at each episode start) is fed the
same observations in order, and the same episodes (same seeds) are flown in pure
simulation with the ONNX actor. The report (``hil_report.json``) holds the round-trip
latency, the device's counter named for what it counts (``inference``: an instruction
count under QEMU, cycles on silicon, host time on a pty) beside the exporter's cycle
estimate, warnings (not real-time, estimate over budget), the frame counters, the
action error against ONNX over whole episodes and the closed-loop outcome of both runs;
``replay_latency=True`` also flies the episodes in simulation with the measured latency
injected as ``randomization.latency_steps``.

Entry point: :func:`run_hil`. Building blocks: :class:`HilClient` (protocol client
with retries and re-handshake), :class:`~hardware.onnx_actor.OnnxActor`,
:func:`resolve_export`, :func:`open_device`, :func:`fly_episode`.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np

from . import protocol as P
from .device_model import Faults, model_from_export
from .devices import Device, ModelDevice, PtyProcessDevice, QemuDevice, SerialDevice
from .errors import (DeviceError, DeviceLost, DeviceTimeout, ExportError, HandshakeError,
                     HilError, ManifestMismatch, StateLost)
from .onnx_actor import OnnxActor

if TYPE_CHECKING:
    from sims.quadrotor import QuadrotorConfig, QuadrotorVecEnv

__all__ = ["run_hil", "format_report", "HilClient", "OnnxActor", "resolve_export", "open_device",
           "fly_episode", "ExportInfo", "check_hello", "pty_model_device"]

REPORT_NAME = "hil_report.json"
REPORT_SCHEMA = "robolearn.hil_report/1"
DEVICE_KINDS = ("emulated", "pty", "model", "pty-model")
# Per-request reply time-outs (s) by device kind; serial ports not listed use "serial".
DEFAULT_TIMEOUT = {"model": 0.25, "pty-model": 0.5, "pty": 0.5, "serial": 0.5, "emulated": 2.0}
# Closed-loop agreement tolerance on the last-second position error (m).
AGREE_POS_TOL_M = 0.01


# ================================================================= export directory
@dataclass
class ExportInfo:
    export_dir: Path
    manifest: dict
    manifest_sha256: bytes
    obs_dim: int
    act_dim: int
    config: QuadrotorConfig
    config_source: str
    run_dir: Path | None = None
    notes: list[str] = field(default_factory=list)
    state_dim: int = 0  # floats of policy state (policy.onnx's state_in; 0: stateless)
    estimate: dict | None = None  # the exporter's cycle estimate (firmware_export.cost), see cycle_estimate()


def cycle_estimate(export_dir: Path, manifest: dict, run_dir: Path | None) -> tuple[dict | None, str]:
    """The exporter's inference-cost ESTIMATE for this policy on the STM32F405, and where
    it came from: ``export_report.json``'s ``cost`` (what ``robolearn export`` computed with
    ``firmware_export.cost.estimate``), else ``cost.estimate`` on the run's ``policy.pt``
    when its SHA-256 matches the manifest, else ``None``."""
    rep = export_dir / "export_report.json"
    if rep.is_file():
        try:
            data = json.loads(rep.read_text())
            budget = (data.get("targets") or {}).get("inference_us_max")
            # the estimate from the instruction mix QEMU counted, else the analytic one
            for key in ("cost_measured", "cost"):
                est = data.get(key)
                if isinstance(est, dict) and isinstance(est.get("cycles_estimate"), (int, float)):
                    return {**est, "budget_us": budget}, f"{rep} ({key})"
        except (OSError, json.JSONDecodeError):
            pass
    raw_src = manifest.get("source")
    src: dict = raw_src if isinstance(raw_src, dict) else {}
    if run_dir is not None and (run_dir / "policy.pt").is_file() and src.get("policy_sha256"):
        try:
            from firmware_export import cost
            from firmware_export.pipeline import TARGET_US
            from firmware_export.policy_file import load_policy

            spec = load_policy(run_dir / "policy.pt")
            if spec.sha256 == src["policy_sha256"]:
                est = cost.estimate(spec, manifest.get("quantize"))
                return {**est, "budget_us": TARGET_US}, f"firmware_export.cost.estimate({run_dir / 'policy.pt'})"
        except Exception as e:  # noqa: BLE001  (an estimate is optional; say why it is missing)
            return None, f"no estimate: {' '.join(str(e).split())[:120]}"
    return None, "no estimate: no export_report.json and no matching policy.pt"


def resolve_export(path: str | os.PathLike) -> ExportInfo:
    """Find the export directory (``manifest.json`` + ``policy.onnx``) and the env config.

    ``path`` is an export directory, or a run directory holding ``export/`` (made by
    ``robolearn export``; if missing it is made now with ``firmware_export.export``).
    The manifest is read with ``firmware_export.manifest.read_manifest``; the simulator
    config comes from the run's ``config.yaml`` (looked up in ``path``, the export
    directory, its parent, and the manifest's ``run_dir``; read with
    ``firmware_export.layout``), else from the manifest's ``env`` entry, else the
    defaults with the action history implied by ``obs_dim``.
    """
    from firmware_export import ExportError as FwExportError
    from firmware_export import layout
    from firmware_export.manifest import read_manifest

    p = Path(path)
    if not p.exists():
        raise ExportError(f"no such run or export directory: {p}")
    notes: list[str] = []
    run_dir = None
    if (p / "manifest.json").is_file():
        export_dir = p
    elif (p / "export" / "manifest.json").is_file():
        export_dir, run_dir = p / "export", p
    elif (p / "policy.pt").is_file():
        run_dir = p
        export_dir = p / "export"
        from firmware_export import export

        try:
            export(p, export_dir, formats=("onnx", "c"), quantize=None)
        except FwExportError as e:
            raise ExportError(str(e)) from None
        notes.append(f"exported {p} to {export_dir}")
    else:
        raise ExportError(f"{p} holds neither manifest.json (an export) nor policy.pt (a run)")

    try:
        m = read_manifest(export_dir)
        if not (export_dir / "policy.onnx").is_file():
            raise ExportError(f"{export_dir} has no policy.onnx; export with the onnx format")
        obs_dim, act_dim = m.obs_dim, m.act_dim
        candidates = [p, export_dir, export_dir.parent] + ([m.run_dir] if m.run_dir is not None else [])
        config = None
        source = ""
        for c in candidates:
            f = c / "config.yaml"
            if f.is_file():
                config = layout.read_sim_settings(f, obs_dim).config
                source, run_dir = str(f), run_dir or c
                break
        if config is None and m.env is not None:
            source = f"{m.path} (env)"
            config = layout.config_from_env(m.env, source)
            layout.check_obs_dim(config, obs_dim, source)
        if config is None:
            settings = layout.read_sim_settings(None, obs_dim)
            config, source = settings.config, settings.source
            notes.append("no config.yaml found near the export: simulator defaults used")
    except FwExportError as e:
        raise ExportError(str(e)) from None
    if act_dim != 4:
        raise ExportError(f"the policy outputs {act_dim} actions; the quadrotor needs 4")
    est, est_source = cycle_estimate(export_dir, m.data, run_dir)
    if est is not None:
        est["source"] = est_source
    else:
        notes.append(est_source)
    return ExportInfo(export_dir, m.data, m.sha256, obs_dim, act_dim, config, source, run_dir, notes,
                      estimate=est)


# ==================================================================== devices
def _repo_root() -> Path:
    return Path(__file__).resolve().parents[1]


def device_kind(device: str | Device) -> str:
    if isinstance(device, Device):
        return device.kind if device.kind in DEFAULT_TIMEOUT else "serial"
    return device if device in DEVICE_KINDS else "serial"


def pty_model_device(export_dir: str | os.PathLike, faults: Faults | None = None, sha: bytes | None = None) -> PtyProcessDevice:
    """The Python device model as a separate process on a pseudo-terminal (``faults``: a
    :class:`~hardware.device_model.Faults`; ``sha``: a manifest digest to announce)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(_repo_root()), env.get("PYTHONPATH")]))
    argv = [sys.executable, "-m", "hardware.device_model", "{tty}", "--export-dir", str(export_dir)]
    if faults is not None:
        argv += ["--faults", faults.to_json()]
    if sha is not None:
        argv += ["--sha", bytes(sha).hex()]
    return PtyProcessDevice(argv, name="pty-model", env=env)


def open_device(device: str | Device, export_dir: Path, baud: int = 115200) -> Device:
    """Device object for a ``--device`` value (not opened yet).

    ``emulated``: firmware built by :func:`hardware.firmware_image.build_firmware` under
    QEMU; ``pty``: :func:`hardware.firmware_image.build_host_device` on a pseudo-terminal; ``model``:
    the Python device model in-process; ``pty-model``: the Python device model as a
    process on a pseudo-terminal; anything else is a serial port or pyserial URL.
    """
    if isinstance(device, Device):
        return device
    if device == "model":
        return ModelDevice(model_from_export(export_dir))
    if device == "pty-model":
        return pty_model_device(export_dir)
    if device in ("pty", "emulated"):
        from . import firmware_image as fe

        try:
            if device == "pty":
                exe = fe.build_host_device(export_dir)
                return PtyProcessDevice([exe], name="pty")
            elf = fe.build_firmware(export_dir)
        except HilError:
            raise
        except Exception as e:  # noqa: BLE001  (compiler errors, missing toolchain)
            msg = str(e).strip().splitlines()[-1] if str(e).strip() else type(e).__name__
            raise ExportError(f"cannot build the {device} device from {export_dir}: {msg}") from None
        return QemuDevice(elf, fe.qemu_command)
    return SerialDevice(device, baud)


# ==================================================================== client
@dataclass
class LinkStats:
    frames_sent: int = 0
    frames_received: int = 0
    frames_rejected: int = 0  # host decoder rejects (framing, CRC, length) + malformed payloads
    retried: int = 0
    timed_out: int = 0
    stale: int = 0  # valid frames that answer no outstanding request (late duplicates)
    device_errors: dict = field(default_factory=dict)  # ERROR frames by code
    rehandshakes: int = 0
    requests: int = 0
    state_resyncs: int = 0  # episodes replayed from step 0 after the device lost its policy state
    replayed_steps: int = 0  # STEPs sent again by those replays
    rehellos: int = 0  # HELLOs sent before a retry (answered ones are counted in rehandshakes)
    answers: int = 0  # received frames that answered a request (the reply, or an ERROR for it)
    malformed: int = 0  # ERROR frames whose payload is not code + seq (dropped; also counted as rejected)

    def balance(self) -> dict:
        """Identities the counters obey (each is 0 when the books balance):
        sent = requests + retried + rehellos; received = answers + stale + malformed."""
        return {"sent - (requests + retried + rehellos)": self.frames_sent - (self.requests + self.retried + self.rehellos),
                "received - (answers + stale + malformed)": self.frames_received - (self.answers + self.stale + self.malformed)}

    def as_dict(self) -> dict:
        return {"sent": self.frames_sent, "received": self.frames_received,
                "rejected": self.frames_rejected, "retried": self.retried,
                "timed_out": self.timed_out, "stale": self.stale,
                "device_errors": {P.describe_error(k): v for k, v in sorted(self.device_errors.items())},
                "rehandshakes": self.rehandshakes, "requests": self.requests,
                "state_resyncs": self.state_resyncs, "replayed_steps": self.replayed_steps,
                "rehellos": self.rehellos, "answers": self.answers, "malformed": self.malformed,
                "balance": self.balance()}


class HilClient:
    """Host side of the protocol over a :class:`Device`: one request, one reply.

    A request whose reply does not come within ``timeout`` is sent again with the same
    sequence number, up to ``retries`` times (at once when a corrupt frame arrives
    instead of the reply, with ``fast_retry``); from the second retry on, a HELLO goes
    first (a device that rebooted answers STEP only after HELLO). Replies with another
    sequence number are counted as stale and dropped; ERROR 1/2 (the request arrived
    corrupted) triggers an immediate retry, ERROR 3/4 raises :class:`DeviceError`.
    """

    def __init__(self, device: Device, timeout: float = 0.5, retries: int = 3,
                 hello_timeout: float | None = None, hello_retries: int = 5, fast_retry: bool = True):
        self.dev = device
        self.fast_retry = fast_retry
        self.timeout = float(timeout)
        self.retries = int(retries)
        self.hello_timeout = float(hello_timeout if hello_timeout is not None else max(timeout, 1.0))
        self.hello_retries = int(hello_retries)
        self.decoder = P.StreamDecoder()
        self.stats = LinkStats()
        self.ack: P.HelloAck | None = None
        self._seq = 0
        self._malformed = 0

    # ------------------------------------------------------------------ plumbing
    def _next_seq(self) -> int:
        self._seq = (self._seq + 1) & 0xFFFF
        if self._seq == P.SEQ_UNKNOWN:
            self._seq = 0
        return self._seq

    def _send(self, type_: int, seq: int, payload: bytes) -> None:
        self.dev.write(P.encode_frame(type_, seq, payload))
        self.stats.frames_sent += 1

    # _await result: a corrupt frame arrived instead of the reply. A Frame (compared by
    # identity) so the result type stays Frame | None; type -1 never comes off the wire.
    _CORRUPT = P.Frame(-1, 0)

    def _await(self, seq: int, want: int, timeout: float) -> P.Frame | None:
        """The reply (or an ERROR for this request), ``None`` on time-out, or
        ``_CORRUPT`` when a frame was rejected and nothing valid is pending (the reply
        was probably garbled: retransmit now rather than wait for the time-out)."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            data = self.dev.read(left)
            if not data:
                continue
            before = self.decoder.rejected
            frames = self.decoder.feed(data)
            rejected = self.decoder.rejected - before
            self.stats.frames_rejected += rejected
            found = None
            for f in frames:
                self.stats.frames_received += 1
                if found is not None:
                    self.stats.stale += 1
                elif f.type == want and f.seq == seq:
                    found = f
                elif f.type == P.ERROR:
                    try:
                        code, eseq = P.unpack_error(f.payload)
                    except P.MessageError:
                        self.stats.frames_rejected += 1
                        self.stats.malformed += 1
                        continue
                    if seq in (f.seq, eseq) or eseq == P.SEQ_UNKNOWN:
                        found = f
                    else:
                        self.stats.stale += 1
                else:
                    self.stats.stale += 1
            if found is not None:
                self.stats.answers += 1
                return found
            if rejected and self.fast_retry and self.decoder.pending == 0:
                return self._CORRUPT

    def request(self, type_: int, payload: bytes = b"", *, timeout: float | None = None,
                retries: int | None = None, rehello: bool = True) -> tuple[P.Frame, float]:
        """Send a request and return (reply frame, round-trip seconds of the answered try)."""
        want = P.REPLY_TYPE[type_]
        timeout = self.timeout if timeout is None else timeout
        retries = self.retries if retries is None else retries
        seq = self._next_seq()
        self.stats.requests += 1
        name = P.TYPE_NAMES[type_]
        last_err = "no reply"
        for attempt in range(retries + 1):
            if attempt:
                self.stats.retried += 1
            if attempt >= 2 and rehello and type_ != P.HELLO:
                self._rehello()
            t0 = time.perf_counter()
            self._send(type_, seq, payload)
            f = self._await(seq, want, timeout)
            rtt = time.perf_counter() - t0
            if f is None:
                self.stats.timed_out += 1
                last_err = f"no reply within {timeout:g} s"
                continue
            if f is self._CORRUPT:
                last_err = "corrupt replies"
                continue
            if f.type == P.ERROR:
                code, eseq = P.unpack_error(f.payload)
                self.stats.device_errors[code] = self.stats.device_errors.get(code, 0) + 1
                if code in (P.ERR_CRC, P.ERR_LENGTH):
                    last_err = f"device reported {P.describe_error(code)}"
                    continue
                if code == P.ERR_STATE:
                    raise StateLost(f"device answered {name} seq {seq} with ERROR {code} ({P.describe_error(code)})")
                raise DeviceError(f"device answered {name} seq {seq} with ERROR {code} "
                                  f"({P.describe_error(code)})")
            return f, rtt
        raise DeviceTimeout(f"device did not answer {name} (seq {seq}) after {retries + 1} tries "
                            f"({last_err}); check the port, baud rate and that the firmware runs")

    # ------------------------------------------------------------------ messages
    def hello(self) -> P.HelloAck:
        f, _ = self.request(P.HELLO, timeout=self.hello_timeout, retries=self.hello_retries, rehello=False)
        try:
            ack = P.unpack_hello_ack(f.payload)
        except P.MessageError as e:
            raise HandshakeError(f"bad HELLO_ACK from the device: {e}") from None
        self.ack = ack
        return ack

    def _rehello(self) -> None:
        """One HELLO try (after a possible device reset); checks the device is unchanged."""
        seq = self._next_seq()
        self._send(P.HELLO, seq, b"")
        self.stats.rehellos += 1
        f = self._await(seq, P.HELLO_ACK, self.hello_timeout)
        if f is None or f is self._CORRUPT or f.type != P.HELLO_ACK:
            if f is None:
                self.stats.timed_out += 1
            return
        try:
            ack = P.unpack_hello_ack(f.payload)
        except P.MessageError:
            self.stats.frames_rejected += 1
            return
        self.stats.rehandshakes += 1
        if self.ack is not None and ack.manifest_sha256 != self.ack.manifest_sha256:
            raise ManifestMismatch("the device came back with a different policy (manifest SHA-256 changed)")
        self.ack = ack

    def reset(self) -> None:
        self.request(P.RESET)

    def step(self, obs: np.ndarray, step: int = 0) -> tuple[np.ndarray, int, float]:
        """(action, counter ticks, round-trip s) for the observation of control step
        ``step`` of the episode (0: episode start, the device resets the policy state).
        :class:`StateLost` when a stateful device's state is not at ``step``."""
        act_dim = self.ack.act_dim if self.ack else 4
        for _ in range(self.retries + 1):
            f, rtt = self.request(P.STEP, P.pack_step(obs, step))
            try:
                act, cycles = P.unpack_action(f.payload, act_dim)
                return act, cycles, rtt
            except P.MessageError:
                self.stats.frames_rejected += 1
        raise DeviceError(f"device keeps answering STEP with malformed ACTION payloads (expected {act_dim} floats + cycles)")


def check_hello(ack: P.HelloAck, info: ExportInfo) -> None:
    """Refuse a device that runs another policy, protocol version, dimensions or state size."""
    if ack.version != P.VERSION:
        raise HandshakeError(f"device speaks protocol version {ack.version}, the host {P.VERSION}; "
                             "rebuild/flash the firmware from this version of robolearn")
    if ack.manifest_sha256 != info.manifest_sha256:
        raise ManifestMismatch(
            f"device runs a different policy: manifest SHA-256 {ack.manifest_sha256.hex()[:16]}... on the "
            f"device, {info.manifest_sha256.hex()[:16]}... in {info.export_dir / 'manifest.json'}; "
            f"build/flash the firmware from this export")
    if (ack.obs_dim, ack.act_dim) != (info.obs_dim, info.act_dim):
        raise HandshakeError(f"device policy is {ack.obs_dim} -> {ack.act_dim}, the export "
                             f"{info.obs_dim} -> {info.act_dim}")
    if ack.state_dim != info.state_dim:
        raise HandshakeError(f"device policy keeps {ack.state_dim} floats of state, policy.onnx {info.state_dim}; "
                             "build/flash the firmware from this export")


# ==================================================================== episodes
@dataclass
class EpisodeResult:
    seed: int
    steps: int
    survived: bool  # not terminated (crash / bounds) within the steps flown
    terminated: bool
    truncated: bool  # reached the episode length
    cut: bool  # stopped by the --steps limit before the episode ended
    return_: float
    position_error_last_1s_m: float  # mean |p - target| over the last second flown
    env_position_error_m: float | None  # the env's own figure when the episode ended
    positions: np.ndarray  # (steps, 3) at each observation
    error: str | None = None  # set when the device was lost during the episode
    actions: np.ndarray | None = None  # (steps, act_dim) the actions applied, in order

    def summary(self) -> dict:
        return {"seed": self.seed, "steps": self.steps, "survived": self.survived,
                "terminated": self.terminated, "truncated": self.truncated, "cut": self.cut,
                "return": self.return_, "position_error_last_1s_m": self.position_error_last_1s_m,
                "env_position_error_m": self.env_position_error_m, "error": self.error}


def fly_episode(env: QuadrotorVecEnv, act: Callable[[np.ndarray], np.ndarray], seed: int, max_steps: int,
                start: Callable[[], None] | None = None) -> EpisodeResult:
    """One episode of a 1-env ``QuadrotorVecEnv`` from ``reset(seed=seed)``.

    ``start()`` runs after the env reset (a stateful actor zeroes its state there);
    ``act(obs) -> action`` gets a copy of the policy view, once per control step in
    order. Stops at the end of the episode or after ``max_steps``. A :class:`HilError`
    from ``act`` ends the episode early with ``error`` set.
    """
    obs, _ = env.reset(seed=seed)
    if start is not None:
        start()
    acts: list[np.ndarray] = []
    dt = env.config.dt
    pos, err = [], []
    ret = 0.0
    term = trunc = False
    env_err = None
    error = None
    n = 0
    for _ in range(max_steps):
        st = env.state[0]
        p = st[:3].astype(np.float64)
        pos.append(p)
        err.append(float(np.linalg.norm(p - env.targets[0])))
        try:
            a = act(obs["policy"][0].copy())
        except HilError as e:
            pos.pop()
            err.pop()
            error = str(e)
            break
        acts.append(np.asarray(a, np.float32).reshape(-1).copy())
        obs, r, te, tr, info = env.step(np.asarray(a, np.float32).reshape(1, -1))
        ret += float(r[0])
        n += 1
        if te[0] or tr[0]:
            term, trunc = bool(te[0]), bool(tr[0])
            env_err = float(info["episode"]["position_error_m"][0])
            break
    w = max(1, min(n, round(1.0 / dt)))
    return EpisodeResult(seed, n, not term and error is None, term, trunc,
                         cut=(error is None and not term and not trunc), return_=ret,
                         position_error_last_1s_m=float(np.mean(err[-w:])) if err else float("nan"),
                         env_position_error_m=env_err,
                         positions=np.array(pos).reshape(-1, 3), error=error,
                         actions=np.stack(acts) if acts else np.zeros((0, 0), np.float32))


def _stats(x: Sequence[float] | np.ndarray, scale: float = 1.0) -> dict | None:
    if len(x) == 0:
        return None
    a = np.asarray(x, np.float64) * scale
    return {"median": float(np.median(a)), "p99": float(np.percentile(a, 99)),
            "max": float(a.max()), "mean": float(a.mean()), "min": float(a.min()), "n": int(a.size)}


def _nanmean(x: Sequence[float] | np.ndarray) -> float:
    a = np.asarray(x, np.float64)
    a = a[np.isfinite(a)]
    return float(a.mean()) if a.size else float("nan")


def _outcome(eps: list[EpisodeResult]) -> dict:
    if not eps:
        return {"episodes": 0}
    return {"episodes": len(eps),
            "survival_rate": float(np.mean([e.survived for e in eps])),
            "mean_steps": float(np.mean([e.steps for e in eps])),
            "mean_position_error_last_1s_m": _nanmean([e.position_error_last_1s_m for e in eps]),
            "mean_return": float(np.mean([e.return_ for e in eps]))}


def _fly_sim(config: QuadrotorConfig, actor: OnnxActor, seeds: list[int], limits: list[int],
             latency_steps: int | None = None) -> list[EpisodeResult]:
    from sims.quadrotor import QuadrotorVecEnv

    env = QuadrotorVecEnv(1, config=config, seed=seeds[0] if seeds else 0)
    if latency_steps is not None:
        env.set_range("randomization.latency_steps", latency_steps, latency_steps)
    return [fly_episode(env, actor, s, n, start=actor.reset) for s, n in zip(seeds, limits)]


def _jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, (np.floating, float)):
        v = float(x)
        return v if math.isfinite(v) else None
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (np.bool_,)):
        return bool(x)
    if isinstance(x, Path):
        return str(x)
    return x


# ==================================================================== runner
def run_hil(export_dir: str | os.PathLike, device: str | Device = "emulated", *, baud: int = 115200,
            episodes: int = 1, steps: int | None = None, seed: int = 0,
            timeout: float | None = None, retries: int = 3, hello_timeout: float | None = None,
            replay_latency: bool = False, report_path: str | os.PathLike | None = None,
            progress: Callable[[str], None] | None = None) -> dict:
    """Fly ``episodes`` episodes with the policy on ``device``; return and write the report.

    ``export_dir``: an export directory or a run directory (see :func:`resolve_export`).
    ``device``: ``"emulated"``, ``"pty"``, ``"model"``, ``"pty-model"``, a serial port /
    pyserial URL, or a :class:`~hardware.devices.Device`. Episode ``e`` uses seed
    ``seed + e``; ``steps`` caps each episode (default: the config's episode length).
    ``timeout`` is the per-request reply time-out (default by device kind), ``retries``
    the retransmissions per request, ``hello_timeout`` the HELLO time-out (default
    ``max(timeout, 1 s)``, 3 s for the emulated board: boot time); HELLO is tried 6 times.

    Each episode starts with RESET and a STEP with step index 0 (the device zeroes the
    policy state); the reference ``policy.onnx`` is reset with it and fed the same
    observations in order, so a stateful policy is compared over whole episodes, step
    by step. A stateful device that loses its state mid-episode (ERROR 5: it rebooted)
    is brought back by replaying the episode's observations from step 0; the replayed
    actions must equal the first ones, bit for bit.

    Raises a :class:`~hardware.errors.HilError` subclass (one-line message) when it
    cannot fly at all: bad export, device cannot be built/opened, no answer to HELLO,
    a different policy on the device. A device lost mid-run does not raise: the
    report says ``status: "device_lost"`` with the error, and holds what was flown.
    The report goes to ``report_path`` (default ``<export_dir>/hil_report.json``).
    """
    say = progress or (lambda msg: None)
    t_start = time.perf_counter()
    check_run_options(episodes=episodes, steps=steps, timeout=timeout, retries=retries,
                      hello_timeout=hello_timeout, baud=baud)
    info = resolve_export(export_dir)
    cfg = info.config
    max_steps = int(steps) if steps is not None else int(cfg.episode_steps)
    kind = device_kind(device)
    if timeout is None:
        timeout = DEFAULT_TIMEOUT[kind]
    actor = OnnxActor(info.export_dir / "policy.onnx")
    if (actor.obs_dim, actor.act_dim) != (info.obs_dim, info.act_dim):
        raise ExportError(f"policy.onnx is {actor.obs_dim} -> {actor.act_dim}, manifest.json says "
                          f"{info.obs_dim} -> {info.act_dim}")
    info.state_dim = actor.state_dim

    from sims.quadrotor import QuadrotorVecEnv

    seeds = [int(seed) + e for e in range(episodes)]
    rtts: list[float] = []
    ticks: list[int] = []
    diffs: list[np.ndarray] = []
    ep_diffs: list[float] = []  # per episode: max |device - reference| over its steps
    nonfinite = 0
    hil_eps: list[EpisodeResult] = []
    status, error = "ok", None
    dev = open_device(device, info.export_dir, baud)
    say(f"device: {kind} ({type(dev).__name__}), timeout {timeout:g} s, {retries} retries")
    if hello_timeout is None:
        hello_timeout = max(timeout, 1.0) if kind != "emulated" else max(timeout, 3.0)
    client = HilClient(dev, timeout=timeout, retries=retries, hello_timeout=hello_timeout)
    with dev:
        t_open = time.perf_counter()
        dev.write(P.DELIMITER)  # flush a half-received frame on the device side
        ack = client.hello()
        check_hello(ack, info)
        dev_info = dev.info()
        say(f"HELLO_ACK: protocol {ack.version}, {ack.obs_dim} -> {ack.act_dim}, state {ack.state_dim}, "
            f"counter {ack.cpu_hz / 1e6:g} MHz, manifest {ack.manifest_sha256.hex()[:12]} ok "
            f"({(time.perf_counter() - t_open) * 1e3:.0f} ms)")

        episode_obs: list[np.ndarray] = []  # this episode's observations, for a state replay
        episode_act: list[np.ndarray] = []
        ep_err = [0.0]

        def start() -> None:
            actor.reset()
            episode_obs.clear()
            episode_act.clear()
            ep_err[0] = 0.0

        def resync() -> None:
            """The device lost its policy state: replay this episode from step 0."""
            client.stats.state_resyncs += 1
            for t, (o, a0) in enumerate(zip(episode_obs, episode_act)):
                a, _, _ = client.step(o, t)
                client.stats.replayed_steps += 1
                if a.tobytes() != a0.tobytes():
                    raise DeviceError(f"replaying the episode after a state loss, step {t} gave another action "
                                      "than the first time: the device policy is not deterministic")

        def device_act(obs: np.ndarray) -> np.ndarray:
            nonlocal nonfinite
            t = len(episode_obs)
            for attempt in range(retries + 1):
                try:
                    a, tk, rtt = client.step(obs, t)
                    break
                except StateLost:
                    if attempt == retries:
                        raise
                    resync()
            ref = actor(obs)
            episode_obs.append(obs.copy())
            episode_act.append(a.copy())
            rtts.append(rtt)
            ticks.append(tk)
            if not np.all(np.isfinite(a)):
                nonfinite += 1
            d = np.abs(a.astype(np.float64) - ref.astype(np.float64))
            diffs.append(d)
            ep_err[0] = max(ep_err[0], float(np.nanmax(d)) if np.isfinite(d).any() else math.inf)
            return a

        env = QuadrotorVecEnv(1, config=cfg, seed=seeds[0])
        for s in seeds:
            try:
                client.reset()
            except HilError as e:
                status, error = _status_of(e), str(e)
                break
            ep = fly_episode(env, device_act, s, max_steps, start=start)
            hil_eps.append(ep)
            ep_diffs.append(ep_err[0])
            say(f"episode seed {s}: {ep.steps} steps, survived={ep.survived}, "
                f"pos err (last 1 s) {ep.position_error_last_1s_m:.3f} m"
                + (f", ERROR: {ep.error}" if ep.error else ""))
            if ep.error:
                status, error = "device_lost", ep.error
                break

    # the same episodes (seeds, lengths) in pure simulation with the ONNX actor
    flown = [e for e in hil_eps]
    limits = [max_steps] * len(flown)
    sim_eps = _fly_sim(cfg, actor, [e.seed for e in flown], limits)
    per_ep = []
    agree = bool(flown) and status == "ok"
    for h, se, dmax in zip(flown, sim_eps, ep_diffs):
        n = min(len(h.positions), len(se.positions))
        div = float(np.max(np.linalg.norm(h.positions[:n] - se.positions[:n], axis=1))) if n else 0.0
        d_err = abs(h.position_error_last_1s_m - se.position_error_last_1s_m)
        # whole episode, step by step: the actions applied in HIL vs in pure simulation
        ha = h.actions if h.actions is not None else np.zeros((0, info.act_dim), np.float32)
        sa = se.actions if se.actions is not None else np.zeros((0, info.act_dim), np.float32)
        m = min(len(ha), len(sa))
        act_div = float(np.max(np.abs(ha[:m].astype(np.float64) - sa[:m]))) if m else 0.0
        ok = (h.error is None and h.survived == se.survived and h.steps == se.steps
              and (d_err <= AGREE_POS_TOL_M or (math.isnan(d_err) and h.steps == 0)))
        agree &= ok
        per_ep.append({"seed": h.seed, "agree": ok, "max_position_divergence_m": div,
                       "position_error_diff_m": d_err, "steps_compared": m,
                       "action_max_abs_vs_onnx": dmax, "action_max_abs_vs_sim": act_div,
                       "hil": h.summary(), "sim": se.summary()})

    D = np.array(diffs) if diffs else np.zeros((0, info.act_dim))
    rtt_stats = _stats(rtts, 1e3)
    fits = (rtt_stats["p99"] / 1e3 < cfg.dt) if rtt_stats else None
    inference = _inference_section(kind, ticks, ack.cpu_hz, info.estimate)
    warnings = _warnings(kind, fits, rtt_stats, cfg.dt, inference)
    report: dict[str, Any] = {
        "schema": REPORT_SCHEMA,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "status": status,
        "error": error,
        "warnings": warnings,
        "export_dir": str(info.export_dir.resolve()),
        "manifest_sha256": info.manifest_sha256.hex(),
        "config_source": info.config_source,
        "notes": info.notes,
        "device": {"spec": device if isinstance(device, str) else type(device).__name__, "kind": kind,
                   **_jsonable(dev_info), "protocol_version": ack.version, "obs_dim": ack.obs_dim,
                   "act_dim": ack.act_dim, "state_dim": ack.state_dim, "cpu_hz": ack.cpu_hz,
                   "timeout_s": timeout, "retries": retries, "baud": baud if kind == "serial" else None},
        "episodes_requested": episodes,
        "steps_limit": max_steps,
        "seed": seed,
        "control_dt_s": cfg.dt,
        "steps": len(rtts),
        "latency_ms": rtt_stats,
        "fits_control_period": fits,
        "inference": inference,
        "frames": client.stats.as_dict() | {"host_reject_reasons": {k: v for k, v in client.decoder.reject_reasons.items() if v},
                                            "bytes_sent": dev.bytes_written, "bytes_received": dev.bytes_read},
        "action_error": {"n": int(D.shape[0]),
                         "max_abs": float(D.max()) if D.size else None,
                         "mean_abs": float(D.mean()) if D.size else None,
                         "per_dim_max_abs": D.max(axis=0).tolist() if D.size else None,
                         "exact": bool(D.size and D.max() == 0.0),
                         "nonfinite_actions": nonfinite,
                         "compared": "whole episodes: policy.onnx reset at each episode start and fed the "
                                     "device's observations in order"},
        "closed_loop": {"hil": _outcome(flown), "sim": _outcome(sim_eps), "agree": agree,
                        "agree_tolerance_m": AGREE_POS_TOL_M, "episodes": per_ep},
    }
    if replay_latency and rtt_stats:
        rtt_s = rtt_stats["median"] / 1e3
        lat = int(min(7, math.ceil(rtt_s / cfg.dt - 1e-9)))
        lat_eps = _fly_sim(cfg, actor, [e.seed for e in flown], limits, latency_steps=lat)
        report["latency_replay"] = {
            "rtt_median_ms": rtt_stats["median"], "rtt_p99_ms": rtt_stats["p99"],
            "latency_steps": lat, "rule": "ceil(median RTT / dt), at most 7",
            "latency_steps_p99": int(min(7, math.ceil(rtt_stats["p99"] / 1e3 / cfg.dt - 1e-9))),
            "sim_with_latency": _outcome(lat_eps), "sim_without_latency": _outcome(sim_eps),
            "survival_change": _outcome(lat_eps)["survival_rate"] - _outcome(sim_eps)["survival_rate"]
            if lat_eps else None,
            "position_error_change_m": (_outcome(lat_eps)["mean_position_error_last_1s_m"]
                                        - _outcome(sim_eps)["mean_position_error_last_1s_m"]) if lat_eps else None,
            "episodes": [e.summary() for e in lat_eps]}
    report["wall_s"] = time.perf_counter() - t_start
    report = _jsonable(report)
    out = Path(report_path) if report_path is not None else info.export_dir / REPORT_NAME
    try:
        out.write_text(json.dumps(report, indent=2) + "\n")
        report["report_path"] = str(out)
    except OSError as e:
        report["report_path"] = None
        report["notes"] = report["notes"] + [f"could not write {out}: {e}"]
    return report


def check_run_options(*, episodes: int = 1, steps: int | None = None, timeout: float | None = None,
                      retries: int = 3, hello_timeout: float | None = None, baud: int = 115200) -> None:
    """ValueError (one line naming the option and the fix) for an option no run can use."""
    def bad(name: str, value: Any, want: str) -> ValueError:
        return ValueError(f"{name} must be {want}, got {value!r}")

    if not isinstance(episodes, int) or episodes < 1:
        raise bad("--episodes", episodes, "an integer >= 1")
    if steps is not None and (not isinstance(steps, int) or steps < 1):
        raise bad("--steps", steps, "an integer >= 1 (or left out: the config's episode length)")
    if not isinstance(retries, int) or retries < 0:
        raise bad("--retries", retries, "an integer >= 0 (retransmissions per request)")
    for name, v in (("--timeout", timeout), ("--hello-timeout", hello_timeout)):
        if v is not None and not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
            raise bad(name, v, "a number of seconds > 0")
    if not isinstance(baud, int) or baud < 1:
        raise bad("--baud", baud, "a positive integer")


# What each device's ACTION counter counts (the u32 after the action): what the figures mean.
_COUNTERS = {
    "emulated": "SysTick on the processor clock under QEMU -icount shift={shift}: QEMU's virtual clock advances "
                "2**shift ns per guest instruction, so ticks / cpu_hz = instructions x 1 ns: an INSTRUCTION COUNT, "
                "not time and not Cortex-M4 cycles",
    "pty": "CLOCK_MONOTONIC ns of the host process (cpu_hz 1e9): host wall time of the C policy, not MCU time",
    "model": "the Python device model's stated cycles (a fixed figure), not a measurement",
    "pty-model": "the Python device model's stated cycles (a fixed figure), not a measurement",
    "serial": "the device's cycle counter (DWT CYCCNT on the STM32F405 firmware): core cycles",
}


def _inference_section(kind: str, ticks: list[int], cpu_hz: int, estimate: dict | None) -> dict:
    """Inference figures named for what they are (see ``_COUNTERS``), with the exporter's
    cycle ESTIMATE and its method beside them."""
    from .firmware_image import QEMU_ICOUNT_SHIFT, instructions_from_cycles

    out: dict[str, Any] = {"counter": _COUNTERS[kind].format(shift=QEMU_ICOUNT_SHIFT), "counter_hz": cpu_hz,
                           "ticks": _stats(ticks), "cycles_reported": bool(any(ticks)),
                           "instructions": None, "cycles": None, "us": None}
    if kind == "emulated":
        if ticks and cpu_hz:
            out["instructions"] = _stats([instructions_from_cycles(c, cpu_hz) for c in ticks])
    elif kind == "pty":
        out["us"] = _stats([c / cpu_hz * 1e6 for c in ticks]) if cpu_hz else None
    else:
        out["cycles"] = _stats(ticks)
        out["us"] = _stats([c / cpu_hz * 1e6 for c in ticks]) if cpu_hz else None
    if estimate is not None and isinstance(estimate.get("cycles_estimate"), (int, float)):
        est_cycles = estimate.get("cycles_estimate")
        out["cycles_estimate"] = {
            "cycles": est_cycles, "us_at_168mhz": estimate.get("us_estimate_at_168mhz"),
            "budget_us": estimate.get("budget_us"), "method": estimate.get("method"),
            "source": estimate.get("source"), "note": "an ESTIMATE (firmware_export.cost), not a measurement"}
        ins = out["instructions"]
        if ins and isinstance(est_cycles, (int, float)) and ins["median"] > 0:
            # cycles per instruction the estimate implies for the measured instruction count
            out["cycles_estimate"]["implied_cycles_per_instruction"] = est_cycles / ins["median"]
    else:
        out["cycles_estimate"] = None
    return out


def _warnings(kind: str, fits: bool | None, rtt: dict | None, dt: float, inference: dict) -> list[str]:
    w = []
    if fits is False and rtt is not None:
        where = " (QEMU on this host: emulation speed, not the board's)" if kind == "emulated" else ""
        w.append(f"round trip p99 {rtt['p99']:.2f} ms exceeds the control period {dt * 1e3:g} ms{where}: "
                 "not real-time at this rate")
    est = inference.get("cycles_estimate")
    if est and isinstance(est.get("us_at_168mhz"), (int, float)):
        us = float(est["us_at_168mhz"])
        if us >= dt * 1e6:
            w.append(f"estimated inference {us:g} us at 168 MHz exceeds the control period {dt * 1e3:g} ms")
        elif isinstance(est.get("budget_us"), (int, float)) and us > float(est["budget_us"]):
            w.append(f"estimated inference {us:g} us at 168 MHz exceeds the {float(est['budget_us']):g} us budget (estimate)")
    return w


def _status_of(e: HilError) -> str:
    return "device_error" if isinstance(e, (DeviceError, HandshakeError)) else "device_lost"


def format_report(r: dict) -> str:
    """A short human-readable summary of a report: "HIL ok" only for a clean run
    (status ok and no warnings: real-time, estimate within budget)."""
    lines = []
    d = r["device"]
    warnings = r.get("warnings") or []
    head = r["status"] if r["status"] != "ok" or not warnings else "finished with warnings"
    lines.append(f"HIL {head}: {d['kind']} device, protocol {d['protocol_version']}, "
                 f"{d['obs_dim']} -> {d['act_dim']}" + (f", state {d['state_dim']}" if d.get("state_dim") else "")
                 + f", counter {d['cpu_hz'] / 1e6:g} MHz")
    if r.get("error"):
        lines.append(f"  error: {r['error']}")
    for w in warnings:
        lines.append(f"  warning: {w}")
    lat = r["latency_ms"]
    if lat:
        lines.append(f"  round trip: median {lat['median']:.3f} ms, p99 {lat['p99']:.3f} ms, "
                     f"max {lat['max']:.3f} ms over {lat['n']} steps (control period {r['control_dt_s'] * 1e3:g} ms)")
    inf = r["inference"]
    if inf["instructions"]:
        lines.append(f"  emulated: median {inf['instructions']['median']:.0f} instructions per inference "
                     "(QEMU -icount: an instruction count, not cycles, not time)")
    elif inf["cycles"] and inf["cycles_reported"]:
        us = inf["us"]
        lines.append(f"  inference: median {inf['cycles']['median']:.0f} cycles"
                     + (f" = {us['median']:.1f} us, max {us['max']:.1f} us" if us else ""))
    elif inf["us"] and inf["cycles_reported"]:
        lines.append(f"  inference: median {inf['us']['median']:.1f} us host time (not MCU time)")
    else:
        lines.append("  inference: the device reports no counter")
    est = inf.get("cycles_estimate")
    if est:
        extra = (f", {est['implied_cycles_per_instruction']:.2f} cycles per measured instruction"
                 if est.get("implied_cycles_per_instruction") else "")
        lines.append(f"  estimate: {est['cycles']} cycles = {est['us_at_168mhz']} us at 168 MHz{extra} "
                     f"({est['method']})")
    f = r["frames"]
    lines.append(f"  frames: sent {f['sent']}, received {f['received']}, rejected {f['rejected']}, "
                 f"retried {f['retried']}, timed out {f['timed_out']}, stale {f['stale']}, "
                 f"re-handshakes {f['rehandshakes']}"
                 + (f", state resyncs {f['state_resyncs']} ({f['replayed_steps']} steps replayed)"
                    if f.get("state_resyncs") else "")
                 + (f", device errors {f['device_errors']}" if f["device_errors"] else ""))
    a = r["action_error"]
    if a["n"]:
        lines.append(f"  action vs ONNX (whole episodes): max |diff| {a['max_abs']:.3g}, mean {a['mean_abs']:.3g} "
                     f"over {a['n']} steps")
    cl = r["closed_loop"]
    h, s = cl["hil"], cl["sim"]
    if h.get("episodes"):
        lines.append(f"  closed loop: HIL survival {h['survival_rate']:.0%}, pos err {h['mean_position_error_last_1s_m']:.3f} m | "
                     f"sim survival {s['survival_rate']:.0%}, pos err {s['mean_position_error_last_1s_m']:.3f} m | "
                     f"agree: {cl['agree']}")
    lr = r.get("latency_replay")
    if lr:
        w = lr["sim_with_latency"]
        lines.append(f"  latency replay: {lr['latency_steps']} step(s) -> survival {w['survival_rate']:.0%}, "
                     f"pos err {w['mean_position_error_last_1s_m']:.3f} m")
    if r.get("report_path"):
        lines.append(f"  report: {r['report_path']}")
    return "\n".join(lines)

"""Hardware in the loop: fly simulated episodes with the policy running on a device.

Each control step the host sends the policy observation (STEP), the device runs the
exported policy and answers with the action and its inference time in CPU cycles
(ACTION), and the host applies that action in the simulator (lock-step: the simulator
waits for the device). Alongside, the ONNX actor (``policy.onnx``, onnxruntime) is
evaluated on the same observations, and the same episodes (same seeds) are flown in
pure simulation with the ONNX actor. The report (``hil_report.json``) holds the
round-trip latency, the device inference time, the frame counters, the action error
against ONNX and the closed-loop outcome of both runs; ``replay_latency=True`` also
flies the episodes in simulation with the measured latency injected as
``randomization.latency_steps``.

Entry point: :func:`run_hil`. Building blocks: :class:`HilClient` (protocol client
with retries and re-handshake), :class:`OnnxActor`, :func:`resolve_export`,
:func:`open_device`, :func:`fly_episode`.
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
from .devices import Device, ModelDevice, PtyProcessDevice, QemuDevice, SerialDevice
from .errors import (DeviceError, DeviceLost, DeviceTimeout, ExportError, HandshakeError,
                     HilError, ManifestMismatch)

if TYPE_CHECKING:
    from sims.quadrotor import QuadrotorConfig, QuadrotorVecEnv

    from .device_model import Faults

REPORT_NAME = "hil_report.json"
REPORT_SCHEMA = "robolearn.hil_report/1"
DEVICE_KINDS = ("emulated", "pty", "model", "pty-model")
# Per-request reply time-outs (s) by device kind; serial ports not listed use "serial".
DEFAULT_TIMEOUT = {"model": 0.25, "pty-model": 0.5, "pty": 0.5, "serial": 0.5, "emulated": 2.0}
# Closed-loop agreement tolerance on the last-second position error (m).
AGREE_POS_TOL_M = 0.01


# ============================================================================ ONNX
class OnnxActor:
    """``policy.onnx`` under onnxruntime: float32 observation (obs_dim,) -> action (act_dim,)."""

    def __init__(self, path: str | os.PathLike):
        import onnxruntime as ort

        path = Path(path)
        if not path.is_file():
            raise ExportError(f"ONNX actor not found: {path}")
        so = ort.SessionOptions()
        so.intra_op_num_threads = 1
        so.inter_op_num_threads = 1
        so.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        except Exception as e:  # noqa: BLE001  (onnxruntime raises its own types)
            raise ExportError(f"cannot load {path}: {e}") from None
        inp = self.session.get_inputs()[0]
        out = self.session.get_outputs()[0]
        self.input_name, self.output_name = inp.name, out.name
        self.obs_dim = int(inp.shape[-1])
        # a symbolic output size (str) is learned from one evaluation
        last = out.shape[-1]
        self.act_dim: int = int(last) if isinstance(last, int) else int(self(np.zeros(self.obs_dim, np.float32)).shape[0])

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        x = np.asarray(obs, np.float32).reshape(1, self.obs_dim)
        y: np.ndarray = self.session.run([self.output_name], {self.input_name: x})[0]
        return y.reshape(-1).astype(np.float32)


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


def _manifest_dims(m: dict) -> tuple[int | None, int | None]:
    """obs/act dimensions from a manifest, tolerant of where the exporter puts them."""
    def find(keys: list[str]) -> int | None:
        for k in keys:
            node: Any = m
            for part in k.split("."):
                node = node.get(part) if isinstance(node, dict) else None
            if isinstance(node, int):
                return node
        return None

    return (find(["obs_dim", "observation.dim", "observation.obs_dim", "policy.obs_dim", "obs.dim"]),
            find(["act_dim", "action.dim", "action.act_dim", "policy.act_dim", "act.dim"]))


def _load_yaml(path: Path) -> dict:
    import re

    import yaml

    class Loader(yaml.SafeLoader):  # reads 3e-4 (no dot) as a float, as robolearn's config does
        pass

    Loader.add_implicit_resolver("tag:yaml.org,2002:float",
                                 re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
                                 list("-+0123456789"))
    try:
        data = yaml.load(path.read_text(), Loader=Loader)
    except (OSError, yaml.YAMLError) as e:
        raise ExportError(f"cannot read {path}: {e}") from None
    return data if isinstance(data, dict) else {}


def sim_config_from_run(cfg: dict) -> QuadrotorConfig:
    """``QuadrotorConfig`` from a run's ``config.yaml`` mapping (its ``env`` section):
    ``env.sim`` holds the simulator settings and ``env.ranges`` the parameter ranges,
    as the trainer uses them."""
    from sims.quadrotor import QuadrotorConfig
    from sims.quadrotor.config import migrate_sim_settings

    env = cfg.get("env", cfg) or {}
    try:  # a run from before the vehicle presets flew today's l2f_paper
        sim = dict(migrate_sim_settings(dict(env.get("sim") or {})))
    except ValueError as e:
        raise ExportError(f"config.yaml env.sim: {e}") from None
    names = set(QuadrotorConfig.field_names()) - {"ranges"}
    unknown = sorted(set(sim) - names)
    if unknown:
        raise ExportError(f"config.yaml env.sim has settings this simulator does not know: {', '.join(unknown)}")
    if "home_target" in sim:
        sim["home_target"] = tuple(sim["home_target"])
    ranges = {k: (float(v[0]), float(v[1])) for k, v in (env.get("ranges") or {}).items()}
    try:
        return QuadrotorConfig(**sim, ranges=ranges)
    except (TypeError, ValueError) as e:
        raise ExportError(f"config.yaml env section: {e}") from None


def resolve_export(path: str | os.PathLike) -> ExportInfo:
    """Find the export directory (``manifest.json`` + ``policy.onnx``) and the env config.

    ``path`` is an export directory, or a run directory holding ``export/`` (made by
    ``robolearn export``; if missing and ``firmware_export`` is available it is made
    now). The simulator config comes from the run's ``config.yaml`` (looked up in
    ``path``, the export directory, its parent, and the manifest's ``run_dir``), else
    from the manifest's ``env`` entry, else the defaults with the action history
    implied by ``obs_dim``.
    """
    from sims.quadrotor import QuadrotorConfig
    from sims.quadrotor.physics import policy_obs_dim

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
        try:
            import firmware_export
            exporter = getattr(firmware_export, "export")
        except (ImportError, AttributeError):
            raise ExportError(f"{p} is a run directory without an export; run `robolearn export {p}` first") from None
        try:
            exporter(p, export_dir, formats=("onnx", "c"), quantize=None)
        except TypeError:
            exporter(p, export_dir)
        notes.append(f"exported {p} to {export_dir}")
    else:
        raise ExportError(f"{p} holds neither manifest.json (an export) nor policy.pt (a run)")

    mpath = export_dir / "manifest.json"
    raw = mpath.read_bytes()
    try:
        manifest = json.loads(raw)
    except json.JSONDecodeError as e:
        raise ExportError(f"{mpath}: invalid JSON: {e}") from None
    sha = hashlib.sha256(raw).digest()
    if not (export_dir / "policy.onnx").is_file():
        raise ExportError(f"{export_dir} has no policy.onnx; export with the onnx format")
    obs_dim, act_dim = _manifest_dims(manifest)
    if obs_dim is None or act_dim is None:
        a = OnnxActor(export_dir / "policy.onnx")
        obs_dim, act_dim = obs_dim or a.obs_dim, act_dim or a.act_dim
        notes.append("obs/act dimensions taken from policy.onnx (not in manifest.json)")

    candidates = [p, export_dir, export_dir.parent]
    if isinstance(manifest.get("run_dir"), str):
        rd = Path(manifest["run_dir"])
        candidates.append(rd if rd.is_absolute() else export_dir / rd)
    config = None
    source = ""
    for c in candidates:
        f = c / "config.yaml"
        if f.is_file():
            config = sim_config_from_run(_load_yaml(f))
            source, run_dir = str(f), run_dir or c
            break
    if config is None and isinstance(manifest.get("env"), dict):
        config = sim_config_from_run({"env": manifest["env"]})
        source = f"{mpath} (env)"
    if config is None:
        h = (obs_dim - policy_obs_dim(0)) // 4
        if policy_obs_dim(h) != obs_dim or not 0 <= h <= 8:
            raise ExportError(f"no config.yaml found and obs_dim {obs_dim} is not a quadrotor policy view")
        config = QuadrotorConfig(action_history=h)
        source = f"defaults (no config.yaml found; action_history={h} from obs_dim)"
        notes.append("no config.yaml found near the export: simulator defaults used")
    if policy_obs_dim(config.action_history) != obs_dim:
        raise ExportError(f"the policy takes {obs_dim} observations but the config ({source}) gives "
                          f"{policy_obs_dim(config.action_history)}")
    if act_dim != 4:
        raise ExportError(f"the policy outputs {act_dim} actions; the quadrotor needs 4")
    return ExportInfo(export_dir, manifest, sha, obs_dim, act_dim, config, source, run_dir, notes)


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

    ``emulated``: firmware built by ``firmware_export.build_firmware`` under QEMU;
    ``pty``: ``firmware_export.build_host_device`` on a pseudo-terminal; ``model``:
    the Python device model in-process; ``pty-model``: the Python device model as a
    process on a pseudo-terminal; anything else is a serial port or pyserial URL.
    """
    if isinstance(device, Device):
        return device
    if device == "model":
        from .device_model import model_from_export

        return ModelDevice(model_from_export(export_dir))
    if device == "pty-model":
        return pty_model_device(export_dir)
    if device in ("pty", "emulated"):
        try:
            from firmware_export import firmware as fe  # build_firmware, qemu_command, build_host_device
        except ImportError as e:
            raise ExportError(f"--device {device} needs firmware_export: {e}") from None
        need = ["build_host_device"] if device == "pty" else ["build_firmware", "qemu_command"]
        missing = [n for n in need if not hasattr(fe, n)]
        if missing:
            raise ExportError(f"--device {device}: firmware_export lacks {', '.join(missing)}")
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

    def as_dict(self) -> dict:
        return {"sent": self.frames_sent, "received": self.frames_received,
                "rejected": self.frames_rejected, "retried": self.retried,
                "timed_out": self.timed_out, "stale": self.stale,
                "device_errors": {P.describe_error(k): v for k, v in sorted(self.device_errors.items())},
                "rehandshakes": self.rehandshakes, "requests": self.requests}


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
                        continue
                    if seq in (f.seq, eseq) or eseq == P.SEQ_UNKNOWN:
                        found = f
                    else:
                        self.stats.stale += 1
                else:
                    self.stats.stale += 1
            if found is not None:
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

    def step(self, obs: np.ndarray) -> tuple[np.ndarray, int, float]:
        """(action, cycles, round-trip s) for one observation."""
        act_dim = self.ack.act_dim if self.ack else 4
        for _ in range(self.retries + 1):
            f, rtt = self.request(P.STEP, P.pack_step(obs))
            try:
                act, cycles = P.unpack_action(f.payload, act_dim)
                return act, cycles, rtt
            except P.MessageError:
                self.stats.frames_rejected += 1
        raise DeviceError(f"device keeps answering STEP with malformed ACTION payloads (expected {act_dim} floats + cycles)")


def check_hello(ack: P.HelloAck, info: ExportInfo) -> None:
    """Refuse a device that runs another policy, protocol version or dimensions."""
    if ack.version != P.VERSION:
        raise HandshakeError(f"device speaks protocol version {ack.version}, the host {P.VERSION}")
    if ack.manifest_sha256 != info.manifest_sha256:
        raise ManifestMismatch(
            f"device runs a different policy: manifest SHA-256 {ack.manifest_sha256.hex()[:16]}... on the "
            f"device, {info.manifest_sha256.hex()[:16]}... in {info.export_dir / 'manifest.json'}; "
            f"build/flash the firmware from this export")
    if (ack.obs_dim, ack.act_dim) != (info.obs_dim, info.act_dim):
        raise HandshakeError(f"device policy is {ack.obs_dim} -> {ack.act_dim}, the export "
                             f"{info.obs_dim} -> {info.act_dim}")


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

    def summary(self) -> dict:
        return {"seed": self.seed, "steps": self.steps, "survived": self.survived,
                "terminated": self.terminated, "truncated": self.truncated, "cut": self.cut,
                "return": self.return_, "position_error_last_1s_m": self.position_error_last_1s_m,
                "env_position_error_m": self.env_position_error_m, "error": self.error}


def fly_episode(env: QuadrotorVecEnv, act: Callable[[np.ndarray], np.ndarray], seed: int, max_steps: int) -> EpisodeResult:
    """One episode of a 1-env ``QuadrotorVecEnv`` from ``reset(seed=seed)``.

    ``act(obs) -> action`` gets a copy of the policy view. Stops at the end of the
    episode or after ``max_steps``. A :class:`HilError` from ``act`` ends the episode
    early with ``error`` set.
    """
    obs, _ = env.reset(seed=seed)
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
                         positions=np.array(pos).reshape(-1, 3), error=error)


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
    return [fly_episode(env, actor, s, n) for s, n in zip(seeds, limits)]


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

    Raises a :class:`~hardware.errors.HilError` subclass (one-line message) when it
    cannot fly at all: bad export, device cannot be built/opened, no answer to HELLO,
    a different policy on the device. A device lost mid-run does not raise: the
    report says ``status: "device_lost"`` with the error, and holds what was flown.
    The report goes to ``report_path`` (default ``<export_dir>/hil_report.json``).
    """
    say = progress or (lambda msg: None)
    t_start = time.perf_counter()
    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    info = resolve_export(export_dir)
    cfg = info.config
    max_steps = int(steps) if steps is not None else int(cfg.episode_steps)
    if max_steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    kind = device_kind(device)
    if timeout is None:
        timeout = DEFAULT_TIMEOUT[kind]
    actor = OnnxActor(info.export_dir / "policy.onnx")
    if (actor.obs_dim, actor.act_dim) != (info.obs_dim, info.act_dim):
        raise ExportError(f"policy.onnx is {actor.obs_dim} -> {actor.act_dim}, manifest.json says "
                          f"{info.obs_dim} -> {info.act_dim}")

    from sims.quadrotor import QuadrotorVecEnv

    seeds = [int(seed) + e for e in range(episodes)]
    rtts: list[float] = []
    cycles: list[int] = []
    diffs: list[np.ndarray] = []
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
        say(f"HELLO_ACK: protocol {ack.version}, {ack.obs_dim} -> {ack.act_dim}, "
            f"cpu {ack.cpu_hz / 1e6:g} MHz, manifest {ack.manifest_sha256.hex()[:12]} ok "
            f"({(time.perf_counter() - t_open) * 1e3:.0f} ms)")

        def device_act(obs: np.ndarray) -> np.ndarray:
            nonlocal nonfinite
            a, cyc, rtt = client.step(obs)
            ref = actor(obs)
            rtts.append(rtt)
            cycles.append(cyc)
            if not np.all(np.isfinite(a)):
                nonfinite += 1
            diffs.append(np.abs(a.astype(np.float64) - ref.astype(np.float64)))
            return a

        env = QuadrotorVecEnv(1, config=cfg, seed=seeds[0])
        for s in seeds:
            try:
                client.reset()
            except HilError as e:
                status, error = _status_of(e), str(e)
                break
            ep = fly_episode(env, device_act, s, max_steps)
            hil_eps.append(ep)
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
    for h, se in zip(flown, sim_eps):
        n = min(len(h.positions), len(se.positions))
        div = float(np.max(np.linalg.norm(h.positions[:n] - se.positions[:n], axis=1))) if n else 0.0
        d_err = abs(h.position_error_last_1s_m - se.position_error_last_1s_m)
        ok = (h.error is None and h.survived == se.survived and h.steps == se.steps
              and (d_err <= AGREE_POS_TOL_M or (math.isnan(d_err) and h.steps == 0)))
        agree &= ok
        per_ep.append({"seed": h.seed, "agree": ok, "max_position_divergence_m": div,
                       "position_error_diff_m": d_err, "hil": h.summary(), "sim": se.summary()})

    D = np.array(diffs) if diffs else np.zeros((0, info.act_dim))
    inf_us = [c / ack.cpu_hz * 1e6 for c in cycles] if ack.cpu_hz else []
    rtt_stats = _stats(rtts, 1e3)
    report: dict[str, Any] = {
        "schema": REPORT_SCHEMA,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "status": status,
        "error": error,
        "export_dir": str(info.export_dir.resolve()),
        "manifest_sha256": info.manifest_sha256.hex(),
        "config_source": info.config_source,
        "notes": info.notes,
        "device": {"spec": device if isinstance(device, str) else type(device).__name__, "kind": kind,
                   **_jsonable(dev_info), "protocol_version": ack.version, "obs_dim": ack.obs_dim,
                   "act_dim": ack.act_dim, "cpu_hz": ack.cpu_hz, "timeout_s": timeout, "retries": retries,
                   "baud": baud if kind == "serial" else None},
        "episodes_requested": episodes,
        "steps_limit": max_steps,
        "seed": seed,
        "control_dt_s": cfg.dt,
        "steps": len(rtts),
        "latency_ms": rtt_stats,
        "fits_control_period": (rtt_stats["p99"] / 1e3 < cfg.dt) if rtt_stats else None,
        "inference": {"cycles": _stats(cycles), "us": _stats(inf_us), "cpu_hz": ack.cpu_hz,
                      "cycles_reported": bool(any(cycles))},
        "frames": client.stats.as_dict() | {"host_reject_reasons": {k: v for k, v in client.decoder.reject_reasons.items() if v},
                                            "bytes_sent": dev.bytes_written, "bytes_received": dev.bytes_read},
        "action_error": {"n": int(D.shape[0]),
                         "max_abs": float(D.max()) if D.size else None,
                         "mean_abs": float(D.mean()) if D.size else None,
                         "per_dim_max_abs": D.max(axis=0).tolist() if D.size else None,
                         "exact": bool(D.size and D.max() == 0.0),
                         "nonfinite_actions": nonfinite},
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
    if kind == "emulated" and cycles:
        # QEMU has no cycle-accurate timing: the firmware's SysTick runs on QEMU's virtual
        # clock, which advances 2**shift ns per guest instruction under -icount (see
        # firmware_export/firmware.py), so the count converts exactly into instructions.
        from firmware_export.firmware import QEMU_ICOUNT_SHIFT, instructions_from_cycles

        report["inference"]["emulation"] = {
            "counter": "SysTick (processor clock) on QEMU's virtual clock, -icount shift="
                       f"{QEMU_ICOUNT_SHIFT}: cycles = instructions x 2**shift ns x cpu_hz",
            "instructions": _stats([instructions_from_cycles(c, ack.cpu_hz) for c in cycles]),
            "honesty": "an instruction count, not Cortex-M4 cycles; real cycles = instructions x CPI "
                       "(about 1-1.5 for this code: 1-cycle FPU ops, 2-cycle loads, flash wait states)"}
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


def _status_of(e: HilError) -> str:
    return "device_error" if isinstance(e, (DeviceError, HandshakeError)) else "device_lost"


def format_report(r: dict) -> str:
    """A short human-readable summary of a report."""
    lines = []
    d = r["device"]
    lines.append(f"HIL {r['status']}: {d['kind']} device, protocol {d['protocol_version']}, "
                 f"{d['obs_dim']} -> {d['act_dim']}, cpu {d['cpu_hz'] / 1e6:g} MHz")
    if r.get("error"):
        lines.append(f"  error: {r['error']}")
    lat = r["latency_ms"]
    if lat:
        lines.append(f"  round trip: median {lat['median']:.3f} ms, p99 {lat['p99']:.3f} ms, "
                     f"max {lat['max']:.3f} ms over {lat['n']} steps (control period {r['control_dt_s'] * 1e3:g} ms)")
    inf = r["inference"]
    emu = inf.get("emulation")
    emulated = bool(emu and emu["instructions"])
    # Under QEMU the device's timer runs on emulated time, so its "cycles" are not the
    # board's: only the instruction count is printed for an emulated device.
    if not emulated and inf["cycles"] and inf["cycles_reported"]:
        us = inf["us"]
        lines.append(f"  inference: median {inf['cycles']['median']:.0f} cycles"
                     + (f" = {us['median']:.1f} us, max {us['max']:.1f} us" if us else ""))
    elif not emulated:
        lines.append("  inference: the device reports no cycle count")
    if emulated:
        lines.append(f"  emulated: median {emu['instructions']['median']:.0f} instructions per inference "
                     "(QEMU -icount; an instruction count, not a cycle-accurate time)")
    f = r["frames"]
    lines.append(f"  frames: sent {f['sent']}, received {f['received']}, rejected {f['rejected']}, "
                 f"retried {f['retried']}, timed out {f['timed_out']}, stale {f['stale']}, "
                 f"re-handshakes {f['rehandshakes']}"
                 + (f", device errors {f['device_errors']}" if f["device_errors"] else ""))
    a = r["action_error"]
    if a["n"]:
        lines.append(f"  action vs ONNX: max |diff| {a['max_abs']:.3g}, mean {a['mean_abs']:.3g} over {a['n']} steps")
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

"""Small export directories for tests, without the exporter or torch.

:func:`make_test_export` writes ``policy.onnx`` (an MLP actor built with
``onnx.helper``: normalize, clip, dense layers, clip to [-1, 1]), ``manifest.json``,
``policy.c``/``policy.h`` (the same network as C with the exporter's API, written by
:func:`write_policy_c`) and a run ``config.yaml`` next to it, so the HIL runner and the
device builds can be tested on their own. The real exporter (``firmware_export.export``)
makes the same files from a ``policy.pt``.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from .devices import Device, PtyProcessDevice, start_process, stop_process


@dataclass(frozen=True)
class Integrator:
    """The integrator state of a ``robolearn.actor/2`` policy (see ``policy_v2``):
    per control step ``z = clip(z + gain * obs[index], -limit, limit)``, network input
    ``concat(obs, z)``; ``z = 0`` at episode start."""

    index: tuple[int, ...] = (0, 1, 2)  # the position error (m)
    gain: float = 0.01  # dt of 10 ms: z in m*s
    limit: float = 0.5


def _onnx_actor(path: Path, weights: list[tuple[np.ndarray, np.ndarray]], mean: np.ndarray,
                std: np.ndarray, clip: float, activation: str = "tanh",
                integrator: Integrator | None = None) -> None:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    k = len(integrator.index) if integrator else 0
    obs_dim = int(weights[0][0].shape[1]) - k
    act_dim = int(weights[-1][0].shape[0])
    inits = [numpy_helper.from_array(mean.astype(np.float32), "mean"),
             numpy_helper.from_array(std.astype(np.float32), "std"),
             numpy_helper.from_array(np.array(-clip, np.float32), "clip_lo"),
             numpy_helper.from_array(np.array(clip, np.float32), "clip_hi"),
             numpy_helper.from_array(np.array(-1.0, np.float32), "act_lo"),
             numpy_helper.from_array(np.array(1.0, np.float32), "act_hi")]
    nodes = []
    x = "obs"
    if integrator:
        inits += [numpy_helper.from_array(np.array(integrator.index, np.int64), "z_index"),
                  numpy_helper.from_array(np.array(integrator.gain, np.float32), "z_gain"),
                  numpy_helper.from_array(np.array(-integrator.limit, np.float32), "z_lo"),
                  numpy_helper.from_array(np.array(integrator.limit, np.float32), "z_hi")]
        nodes += [helper.make_node("Gather", ["obs", "z_index"], ["z_err"], axis=1),
                  helper.make_node("Mul", ["z_err", "z_gain"], ["z_inc"]),
                  helper.make_node("Add", ["state_in", "z_inc"], ["z_sum"]),
                  helper.make_node("Clip", ["z_sum", "z_lo", "z_hi"], ["state_out"]),
                  helper.make_node("Concat", ["obs", "state_out"], ["x"], axis=1)]
        x = "x"
    nodes += [helper.make_node("Sub", [x, "mean"], ["centered"]),
             helper.make_node("Div", ["centered", "std"], ["scaled"]),
             helper.make_node("Clip", ["scaled", "clip_lo", "clip_hi"], ["h0"])]
    h = "h0"
    for i, (w, b) in enumerate(weights):
        inits += [numpy_helper.from_array(w.astype(np.float32), f"w{i}"),
                  numpy_helper.from_array(b.astype(np.float32), f"b{i}")]
        nodes.append(helper.make_node("Gemm", [h, f"w{i}", f"b{i}"], [f"z{i}"], transB=1))
        h = f"z{i}"
        if i < len(weights) - 1:
            op = {"tanh": "Tanh", "relu": "Relu"}[activation]
            nodes.append(helper.make_node(op, [h], [f"a{i}"]))
            h = f"a{i}"
    nodes.append(helper.make_node("Clip", [h, "act_lo", "act_hi"], ["action"]))
    inputs = [helper.make_tensor_value_info("obs", TensorProto.FLOAT, ["batch", obs_dim])]
    outputs = [helper.make_tensor_value_info("action", TensorProto.FLOAT, ["batch", act_dim])]
    if integrator:
        inputs.append(helper.make_tensor_value_info("state_in", TensorProto.FLOAT, ["batch", k]))
        outputs.append(helper.make_tensor_value_info("state_out", TensorProto.FLOAT, ["batch", k]))
    graph = helper.make_graph(nodes, "actor", inputs, outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


# Gains of the linear hover controller (attitude PD, position/velocity to attitude,
# altitude PD, yaw-rate damping), tuned in the default quadrotor: 100 % survival from
# starts within 0.3 rad tilt / 0.3 m/s / 0.5 rad/s, about 50 % from the task defaults.
HOVER_GAINS = dict(kp_att=49.0, kd_att=12.0, kp_pos=0.3, kv_pos=0.35, kp_z=0.8, kv_z=0.5, kd_yaw=0.1)
EASY_START = {"task.start_tilt_rad": (0.3, 0.3), "task.start_speed_mps": (0.3, 0.3),
              "task.start_angvel_rps": (0.5, 0.5)}


def hover_linear(obs_dim: int, g: dict = HOVER_GAINS, vehicle: str = "l2f_paper") -> tuple[np.ndarray, np.ndarray]:
    """``action = W obs + b``: a linear hover controller in the policy's action space.

    Policy view: [0:3] position - target, [3:12] R body->world (row-major), [12:15]
    velocity, [15:18] body rates. Small angles: roll ~ -R[1,2], pitch ~ R[0,2].
    Rotors 0 front-right, 1 back-right, 2 back-left, 3 front-left.
    """
    from sims.quadrotor import hover_action

    # gains and per_unit tuned on the l2f_paper vehicle (the default quadrotor when tuned)
    hover = hover_action(vehicle)
    per_unit = 2890.0  # rad/s^2 of roll/pitch acceleration per unit differential command
    roll, pitch = np.array([-1.0, -1.0, 1.0, 1.0]), np.array([-1.0, 1.0, 1.0, -1.0])
    yaw = np.array([-1.0, 1.0, -1.0, 1.0])
    r, p, t, y = (np.zeros(obs_dim) for _ in range(4))
    r[1], r[13], r[8], r[15] = g["kp_att"] * g["kp_pos"], g["kp_att"] * g["kv_pos"], g["kp_att"], -g["kd_att"]
    p[0], p[12], p[5], p[16] = -g["kp_att"] * g["kp_pos"], -g["kp_att"] * g["kv_pos"], -g["kp_att"], -g["kd_att"]
    t[2], t[14] = -g["kp_z"], -g["kv_z"]
    y[17] = -g["kd_yaw"]
    W = (np.outer(roll, r / per_unit) + np.outer(pitch, p / per_unit) + np.outer(np.ones(4), t)
         + np.outer(yaw, y))
    return W, np.full(4, hover)


def hover_weights(obs_dim: int, eps: float = 0.01, ki_z: float | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
    """The linear hover controller as a tanh MLP with one hidden layer of 4 units:
    ``W1 tanh(eps W0 x) / eps + b ~ W0 x + b`` (exact to ~1e-4), so any exporter of
    tanh MLPs can export it. ``ki_z``: also an integral term on the altitude error, for
    the 3 integrator inputs of :class:`Integrator` (x, y, z of the position error;
    command per m*s), which makes it a stateful (PI) policy."""
    W, b = hover_linear(obs_dim)
    if ki_z is not None:
        Wi = np.zeros((4, 3))
        Wi[:, 2] = -ki_z
        W = np.concatenate([W, Wi], axis=1)
    return [(eps * W, np.zeros(4)), (np.eye(4) / eps, b)]


def write_policy_pt(path: str | Path, weights: list[tuple[np.ndarray, np.ndarray]],
                    activation: str = "tanh", mean: np.ndarray | None = None, std: np.ndarray | None = None,
                    obs_clip: float = 10.0) -> Path:
    """A ``policy.pt`` (format ``robolearn.actor/1``, ``firmware_export.policy_file``) with
    the given layers, for the exporter."""
    from firmware_export.policy_file import PolicySpec, save_policy

    obs_dim, act_dim = int(weights[0][0].shape[1]), int(weights[-1][0].shape[0])
    f32 = lambda a: np.array(a, np.float32)  # noqa: E731
    spec = PolicySpec(obs_dim, act_dim, [int(w.shape[0]) for w, _ in weights[:-1]], activation, "none",
                      f32(np.zeros(obs_dim) if mean is None else mean), f32(np.ones(obs_dim) if std is None else std),
                      float(obs_clip), [f32(w) for w, _ in weights], [f32(b) for _, b in weights],
                      np.full(act_dim, -1.0, np.float32), np.full(act_dim, 1.0, np.float32))
    return save_policy(spec, path)


def _c_floats(a: np.ndarray) -> str:
    """C float literals; %.9g round-trips every binary32 (IEEE 754-2008, 5.12.2)."""
    out = []
    for v in np.asarray(a, np.float32).ravel():
        t = "%.9g" % float(v)
        out.append(t + ("" if any(ch in t for ch in ".e") else ".0") + "f")
    return ", ".join(out)


def write_policy_c(export_dir: str | Path, weights: list[tuple[np.ndarray, np.ndarray]], mean: np.ndarray,
                   std: np.ndarray, clip: float, activation: str = "tanh",
                   integrator: Integrator | None = None) -> None:
    """``policy.h``/``policy.c`` with the exporter's C API for the network of
    :func:`_onnx_actor` (same operations, same order: ``(obs - mean) / std``, clip,
    dense + activation, output clip to [-1, 1]); embeds the SHA-256 of the
    ``manifest.json`` already in ``export_dir``. With ``integrator`` the state is a
    static array, updated first in every call and zeroed by ``robolearn_policy_reset()``;
    ``policy.h`` then defines ``ROBOLEARN_STATE_DIM``."""
    exp = Path(export_dir)
    sha = hashlib.sha256((exp / "manifest.json").read_bytes()).digest()
    ns = len(integrator.index) if integrator else 0
    n_in, act_dim = int(weights[0][0].shape[1]), int(weights[-1][0].shape[0])
    obs_dim = n_in - ns
    width = max([n_in] + [int(w.shape[0]) for w, _ in weights])
    (exp / "policy.h").write_text(
        "/* policy.h - test fixture (hardware/testing.py) */\n#ifndef ROBOLEARN_POLICY_H\n#define ROBOLEARN_POLICY_H\n"
        f"#define ROBOLEARN_OBS_DIM {obs_dim}\n#define ROBOLEARN_ACT_DIM {act_dim}\n"
        + (f"#define ROBOLEARN_STATE_DIM {ns}\n" if ns else "") +
        "void robolearn_policy(const float *obs, float *action);\nvoid robolearn_policy_reset(void);\n"
        "extern const unsigned char robolearn_manifest_sha256[32];\n#endif\n")
    act = {"tanh": "tanhf(v)", "relu": "(v > 0.0f ? v : 0.0f)"}[activation]
    c = ["/* policy.c - test fixture (hardware/testing.py) */", '#include <math.h>', '#include "policy.h"',
         "const unsigned char robolearn_manifest_sha256[32] = {" + ", ".join(str(b) for b in sha) + "};",
         f"static const float mean[{n_in}] = {{{_c_floats(mean)}}};",
         f"static const float stdev[{n_in}] = {{{_c_floats(std)}}};",
         f"static float buf_a[{width}], buf_b[{width}];"]
    if integrator:
        c += [f"static float z[{ns}];",
              f"static const int z_index[{ns}] = {{{', '.join(str(int(i)) for i in integrator.index)}}};"]
    for i, (w, b) in enumerate(weights):
        c.append(f"static const float w{i}[{w.size}] = {{{_c_floats(w)}}};")
        c.append(f"static const float b{i}[{b.size}] = {{{_c_floats(b)}}};")
    c += ["static void dense(const float *w, const float *b, const float *x, float *y, int n_out, int n_in, int act)",
          "{", "    int o, i;", "    for (o = 0; o < n_out; ++o) {", "        float v = 0.0f;",
          "        for (i = 0; i < n_in; ++i) v += w[o * n_in + i] * x[i];", "        v += b[o];",
          f"        y[o] = act ? {act} : v;", "    }", "}",
          "void robolearn_policy(const float *obs, float *action)", "{", "    int i;"]
    if integrator:
        g, lim = _c_floats(np.array([integrator.gain])), _c_floats(np.array([integrator.limit]))
        c += [f"    for (i = 0; i < {ns}; ++i) {{",  # integrate first, then use (as the ONNX graph)
              f"        float v = z[i] + {g} * obs[z_index[i]];",
              f"        z[i] = v < -{lim} ? -{lim} : (v > {lim} ? {lim} : v);", "    }"]
    c += [f"    for (i = 0; i < {n_in}; ++i) {{",
          f"        float v = ((i < {obs_dim} ? obs[i] : {'z[i - ' + str(obs_dim) + ']' if ns else '0.0f'}) - mean[i]) / stdev[i];",
          f"        buf_a[i] = v < {-clip!r}f ? {-clip!r}f : (v > {clip!r}f ? {clip!r}f : v);", "    }"]
    src, dst = "buf_a", "buf_b"
    for i, (w, _) in enumerate(weights):
        o, k = w.shape
        c.append(f"    dense(w{i}, b{i}, {src}, {dst}, {o}, {k}, {int(i < len(weights) - 1)});")
        src, dst = dst, src
    c += [f"    for (i = 0; i < {act_dim}; ++i) action[i] = {src}[i] < -1.0f ? -1.0f : ({src}[i] > 1.0f ? 1.0f : {src}[i]);",
          "}", "void robolearn_policy_reset(void)", "{",
          (f"    int i;\n    for (i = 0; i < {ns}; ++i) z[i] = 0.0f;" if ns else "    /* stateless */"), "}", ""]
    (exp / "policy.c").write_text("\n".join(c))


def make_test_export(out_dir: str | Path, seed: int = 0, action_history: int = 2,
                     hidden: tuple[int, ...] = (32, 32),
                     weights: list[tuple[np.ndarray, np.ndarray]] | None = None,
                     hover: bool = False, episode_steps: int = 500, sim: dict | None = None,
                     ranges: dict | None = None, integrator: Integrator | None = None,
                     ki_z: float = 0.5) -> Path:
    """Write ``policy.onnx``, ``manifest.json``, ``policy.c``/``policy.h`` (in
    ``out_dir/export``) and ``config.yaml`` (in ``out_dir``, a run directory). Returns
    the export directory.

    The actor is a random tanh MLP (``hidden``), the given ``weights``, or with
    ``hover=True`` the hover controller of :func:`hover_weights`. With ``integrator``
    the policy is stateful (its network also takes the integrator state; the hover
    controller then gets the altitude integral gain ``ki_z``)."""
    import yaml

    from sims.quadrotor.physics import policy_obs_dim

    out = Path(out_dir)
    exp = out / "export"
    exp.mkdir(parents=True, exist_ok=True)
    obs_dim, act_dim = policy_obs_dim(action_history), 4
    k = len(integrator.index) if integrator else 0
    rng = np.random.default_rng(seed)
    random_net = weights is None and not hover
    if hover:
        weights = hover_weights(obs_dim, ki_z=ki_z if integrator else None)
    if weights is None:
        mean, std = 0.1 * rng.standard_normal(obs_dim + k), 1.0 + 0.1 * rng.random(obs_dim + k)
    else:
        mean, std = np.zeros(obs_dim + k), np.ones(obs_dim + k)
    if random_net:
        dims = [obs_dim + k, *hidden, act_dim]
        weights = [(rng.standard_normal((dims[i + 1], dims[i])) / np.sqrt(dims[i]),
                    0.1 * rng.standard_normal(dims[i + 1])) for i in range(len(dims) - 1)]
    assert weights is not None  # random, hover or given
    _onnx_actor(exp / "policy.onnx", weights, mean, std, 10.0, integrator=integrator)
    sim_cfg = {"action_history": action_history, "episode_steps": episode_steps, **(sim or {})}
    env = {"name": "quadrotor", "num_envs": 16, "sim": sim_cfg,
           "ranges": {k: list(v) for k, v in (ranges or {}).items()}}
    cfg = {"algo": "ppo", "seed": seed, "env": env}
    (out / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    manifest = {"format": "robolearn.export/test", "obs_dim": obs_dim, "act_dim": act_dim,
                "policy_onnx_sha256": hashlib.sha256((exp / "policy.onnx").read_bytes()).hexdigest()}
    (exp / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    write_policy_c(exp, weights, mean, std, 10.0, integrator=integrator)
    return exp


# ------------------------------------------------------------------ C protocol harness
class ProtoHarness:
    """``hardware/c/test_proto.c`` + ``rl_proto.c`` built with the host ``cc -O2 -Wall
    -Wextra -Werror``; :meth:`run` sends command lines and returns the answer lines."""

    def __init__(self, out_dir: str | Path):
        import subprocess

        from .firmware_image import HOST_CFLAGS, PROTO_DIR, host_cc

        self.exe = Path(out_dir) / "test_proto"
        cmd = [host_cc(), *HOST_CFLAGS, "-pedantic", "-Wconversion", "-Wshadow", "-I", str(PROTO_DIR),
               str(PROTO_DIR / "rl_proto.c"), str(PROTO_DIR / "test_proto.c"), "-o", str(self.exe)]
        p = subprocess.run(cmd, capture_output=True, text=True)
        if p.returncode != 0:
            raise RuntimeError(f"building the C protocol harness failed: {p.stderr.strip()}")

    def run(self, lines: list[str]) -> list[str]:
        import subprocess

        p = subprocess.run([str(self.exe)], input="\n".join(lines) + "\n", capture_output=True,
                           text=True, timeout=300)
        if p.returncode != 0:
            raise RuntimeError(f"test_proto exited {p.returncode}: {p.stderr.strip()}")
        return p.stdout.splitlines()

    @staticmethod
    def hex(b: bytes) -> str:
        return bytes(b).hex() or "-"

    def decode_frames(self, wires: list[bytes]) -> list[tuple[Any, ...]]:
        """One-shot decoding of each wire frame: ``("OK", type, seq, payload)`` or ``("REJ", reason)``."""
        out: list[tuple[Any, ...]] = []
        for line in self.run([f"frame {self.hex(w)}" for w in wires]):
            parts = line.split()
            if parts[0] == "OK":
                out.append(("OK", int(parts[1]), int(parts[2]), b"" if parts[3] == "-" else bytes.fromhex(parts[3])))
            else:
                out.append(("REJ", parts[1]))
        return out

    def streams(self, streams: list[bytes]) -> list[dict]:
        """Each stream through a fresh C stream decoder, byte by byte: frames, reject
        counts per reason, pending bytes."""
        res, cur = [], []
        for line in self.run([f"stream {self.hex(s)}" for s in streams]):
            parts = line.split()
            if parts[0] == "F":
                cur.append((int(parts[1]), int(parts[2]), b"" if parts[3] == "-" else bytes.fromhex(parts[3])))
            else:
                n = [int(x) for x in parts[1:]]
                reasons = dict(zip(("overflow", "cobs", "short", "crc", "length"), n[1:6]))
                res.append({"frames": cur, "rejected": n[0], "reject_reasons": {k: v for k, v in reasons.items() if v},
                            "pending": n[6]})
                cur = []
        return res


# ------------------------------------------------------------------ fault injection
class FaultyLink(Device):
    """A proxy between the host and any :class:`~hardware.devices.Device` that damages
    the byte stream: each byte is independently dropped (``drop``) or has random bits
    flipped (``corrupt``), in the direction(s) chosen (``"to_device"``, ``"from_device"``,
    ``"both"``); ``silent=True`` drops everything the device sends. Seeded, so the
    decisions depend on the byte position in the stream, not on how reads are chunked.
    """

    def __init__(self, inner: Device, seed: int = 0, drop: float = 0.0, corrupt: float = 0.0,
                 direction: str = "both", silent: bool = False):
        super().__init__()
        self.inner, self.drop, self.corrupt, self.silent = inner, drop, corrupt, silent
        self.direction = direction
        self.kind = inner.kind
        self.rng = np.random.default_rng(seed)
        self.dropped = self.corrupted = 0

    def _damage(self, data: bytes) -> bytes:
        n = len(data)
        if not n or not (self.drop or self.corrupt):
            return data
        a = np.frombuffer(data, np.uint8).copy()
        flip = self.rng.random(n) < self.corrupt
        a[flip] ^= self.rng.integers(1, 256, int(flip.sum()), dtype=np.uint8)
        keep = self.rng.random(n) >= self.drop
        self.corrupted += int(flip.sum())
        self.dropped += int(n - keep.sum())
        return a[keep].tobytes()

    def _open(self) -> None:
        self.inner.open()

    def _close(self) -> None:
        self.inner.close()

    def _write(self, data: bytes) -> None:
        self.inner.write(self._damage(data) if self.direction in ("both", "to_device") else data)

    def _read(self, timeout: float) -> bytes:
        data = self.inner.read(timeout)
        if self.silent:
            return b""
        return self._damage(data) if self.direction in ("both", "from_device") else data

    def info(self) -> dict:
        return {**self.inner.info(), "fault_proxy": {"drop": self.drop, "corrupt": self.corrupt,
                                                     "direction": self.direction, "silent": self.silent,
                                                     "dropped": self.dropped, "corrupted": self.corrupted}}


class RebootingPty(PtyProcessDevice):
    """A host device process that is killed and started again (a power cycle: all its
    state lost) when the host sends the k-th STEP frame, for k in ``reboot_at_steps``;
    that STEP is lost with the old process."""

    def __init__(self, argv: Sequence[str], reboot_at_steps: Sequence[int] = (), **kw: Any):
        super().__init__(argv, **kw)
        self.reboot_at = set(reboot_at_steps)
        self.steps = 0
        self.reboots = 0
        from . import protocol as P

        self._P = P
        self._dec = P.StreamDecoder()

    def _write(self, data: bytes) -> None:
        for f in self._dec.feed(data):
            if f.type == self._P.STEP:
                self.steps += 1
                if self.steps in self.reboot_at:
                    stop_process(self.proc)
                    tty, log = self.tty_path, self._log
                    assert tty is not None and log is not None, "only an open device gets writes"
                    argv = [tty if a == "{tty}" else a for a in self.argv]
                    if "{tty}" not in self.argv:
                        argv.insert(1, tty)
                    self.proc = start_process(argv, log, self.env)
                    self.reboots += 1
                    return
        super()._write(data)


def build_fuzz_decoder(out_dir: str | Path, sanitize: bool = True) -> Path:
    """``hardware/c/fuzz_decoder.c`` + ``rl_proto.c`` with the host compiler, by default
    with ``-fsanitize=address,undefined -fno-sanitize-recover=all`` (any memory error or
    undefined behaviour aborts the run). Returns the executable."""
    import subprocess

    from .firmware_image import HOST_CFLAGS, PROTO_DIR, host_cc

    exe = Path(out_dir) / ("fuzz_decoder_asan" if sanitize else "fuzz_decoder")
    san = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-g", "-fno-omit-frame-pointer"] if sanitize else []
    cmd = [host_cc(), *HOST_CFLAGS, *san, "-I", str(PROTO_DIR), str(PROTO_DIR / "rl_proto.c"),
           str(PROTO_DIR / "fuzz_decoder.c"), "-o", str(exe)]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError(f"building the C fuzz driver failed: {' '.join(p.stderr.split())[:300]}")
    return exe


def run_fuzz_decoder(exe: str | Path, records: list[bytes], timeout: float = 600.0) -> tuple[np.ndarray, str]:
    """Feed ``records`` to the C driver; (per-record verdicts (n, 4) uint8, its totals line).
    A crash (sanitizer abort) or a hang past ``timeout`` raises RuntimeError."""
    import struct
    import subprocess

    data = b"".join(struct.pack("<I", len(r)) + r for r in records)
    try:
        p = subprocess.run([str(exe)], input=data, capture_output=True, timeout=timeout,
                           env={"ASAN_OPTIONS": "detect_leaks=1:abort_on_error=1", "UBSAN_OPTIONS": "halt_on_error=1"})
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"the C fuzz driver hung: no result within {timeout:g} s") from None
    err = p.stderr.decode(errors="replace")
    if p.returncode != 0:
        raise RuntimeError(f"the C fuzz driver exited {p.returncode}: {err.strip()[-400:]}")
    out = np.frombuffer(p.stdout, np.uint8)
    if out.size != 4 * len(records):
        raise RuntimeError(f"the C fuzz driver answered {out.size // 4} of {len(records)} records")
    return out.reshape(-1, 4), err.strip().splitlines()[-1] if err.strip() else ""


# ------------------------------------------------------------------ byte-level fault proxy
class PtyFaultProxy:
    """Two pseudo-terminal pairs and a relay thread between them, in-process: the host
    opens :attr:`host_path` like a serial port (``SerialDevice``), a device serves on
    :attr:`device_fd`. Each byte relayed is, with probability ``rate``, hit by one fault
    chosen uniformly among drop, corrupt (random bits flipped), duplicate and delay (the
    relay pauses ``delay_s`` before it, order kept). Seeded; counters per direction:
    ``bytes_in``, ``bytes_out``, ``dropped``, ``corrupted``, ``duplicated``, ``delayed``
    with ``bytes_out == bytes_in - dropped + duplicated`` at any quiet moment.
    ``clean_bytes``: the first that many bytes of each direction pass unharmed (so a run
    gets past the handshake before the faults start)."""

    FAULTS = ("drop", "corrupt", "duplicate", "delay")

    def __init__(self, rate: float, seed: int = 0, delay_s: float = 0.002, max_delay_s: float = 0.02,
                 clean_bytes: int = 0):
        import os
        import threading
        import tty

        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"rate must be in [0, 1], got {rate}")
        self.rate, self.delay_s, self.max_delay_s = float(rate), float(delay_s), float(max_delay_s)
        self.clean_bytes = int(clean_bytes)
        self.rng = np.random.default_rng(seed)
        self._host_master, self._host_slave = os.openpty()
        self._dev_master, self._dev_slave = os.openpty()
        for fd in (self._host_master, self._host_slave, self._dev_master, self._dev_slave):
            tty.setraw(fd)
        self.host_path = os.ttyname(self._host_slave)
        self.device_fd = self._dev_master  # serve the device model here (serve_fd)
        self.count = {d: {k: 0 for k in ("bytes_in", "bytes_out", "dropped", "corrupted", "duplicated", "delayed")}
                      for d in ("to_device", "to_host")}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._relay, daemon=True)
        self._thread.start()

    def _damage(self, data: bytes, c: dict[str, int]) -> tuple[bytes, float]:
        n = len(data)
        first = c["bytes_in"]
        c["bytes_in"] += n
        hit = self.rng.random(n) < self.rate
        hit &= np.arange(first, first + n) >= self.clean_bytes
        kind = self.rng.integers(0, 4, n)
        flips = self.rng.integers(1, 256, n)
        out = bytearray()
        pause = 0.0
        for i, b in enumerate(data):
            if not hit[i]:
                out.append(b)
                continue
            k = self.FAULTS[int(kind[i])]
            if k == "drop":
                c["dropped"] += 1
            elif k == "corrupt":
                c["corrupted"] += 1
                out.append(b ^ int(flips[i]))
            elif k == "duplicate":
                c["duplicated"] += 1
                out += bytes([b, b])
            else:
                c["delayed"] += 1
                out.append(b)
                pause += self.delay_s
        c["bytes_out"] += len(out)
        return bytes(out), min(pause, self.max_delay_s)

    def _relay(self) -> None:
        import os
        import select
        import time

        a, b = self._host_master, self._dev_slave
        while not self._stop.is_set():
            try:
                r, _, _ = select.select([a, b], [], [], 0.05)
            except (OSError, ValueError):
                return
            for src in r:
                try:
                    data = os.read(src, 4096)
                except OSError:
                    continue
                if not data:
                    continue
                direction = "to_device" if src == a else "to_host"
                out, pause = self._damage(data, self.count[direction])
                if pause:
                    time.sleep(pause)
                dst = b if src == a else a
                view = memoryview(out)
                while view:
                    try:
                        view = view[os.write(dst, view):]
                    except BlockingIOError:
                        select.select([], [dst], [], 0.05)
                    except OSError:
                        break

    def close(self) -> None:
        import os

        self._stop.set()
        self._thread.join(2.0)
        for fd in (self._host_master, self._host_slave, self._dev_master, self._dev_slave):
            try:
                os.close(fd)
            except OSError:
                pass

    def __enter__(self) -> "PtyFaultProxy":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

"""``manifest.json``: everything an integrator needs to feed the policy and use its output.

Deterministic (no timestamps, sorted ranges, run directory stored relative to the
export) so the same policy, config and options give the same bytes: the device
handshake announces SHA-256(manifest.json bytes), and policy.c embeds that digest.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import layout
from .c_codegen import weight_bytes
from .errors import ExportError
from .onnx_export import INPUT, OUTPUTS, STATE_IN, STATE_OUT
from .policy_file import PolicySpec

MANIFEST_FORMAT = "robolearn.export_manifest/1"
MANIFEST_NAME = "manifest.json"


def build_manifest(spec: PolicySpec, sim: layout.SimSettings, run_dir: Path, out_dir: Path,
                   formats: tuple[str, ...], quantize: str | None) -> dict:
    cfg = sim.config
    h = cfg.action_history
    span = cfg.rpm_max - cfg.rpm_min
    try:
        rel_run = os.path.relpath(run_dir.resolve(), out_dir.resolve())
    except ValueError:  # different drives (Windows)
        rel_run = str(run_dir.resolve())
    return {
        "format": MANIFEST_FORMAT,
        "obs_dim": spec.obs_dim,
        "act_dim": spec.act_dim,
        "source": {
            "run_dir": rel_run,
            "policy": "policy.pt",
            "policy_sha256": spec.sha256,
            "config": "config.yaml" if sim.sha256 else None,
            "config_sha256": sim.sha256,
            "config_source": sim.source if not sim.sha256 else "config.yaml",
        },
        # hardware/hil.py resolves the run (config.yaml) through these two keys.
        "run_dir": rel_run,
        "env": sim.env,
        "control": {"rate_hz": round(1.0 / cfg.dt, 9), "dt_s": cfg.dt,
                    "note": "call robolearn_policy once per control period; the policy was trained at this rate"},
        "observation": {
            "dim": spec.obs_dim,
            "dtype": "float32",
            "layout": layout.observation_layout(h),
            "conventions": {
                "world_frame": "z up (ENU-like), gravity (0, 0, -g); x, y as the position setpoint's frame",
                "body_frame": "x forward, y left, z up (thrust direction)",
                "quaternion": "q = (w, x, y, z), Hamilton product, unit norm, rotates body vectors into the world frame",
                "rotation_matrix": "R(q) body->world (v_world = R v_body), row-major in the observation",
                "normalization": "none needed: pass raw values in these units; (obs - mean) / std and the clip "
                                 "are inside policy.onnx and policy.c",
            },
            "action_history": h,
        },
        "action": {
            "dim": spec.act_dim,
            "dtype": "float32",
            "range": [-1.0, 1.0],
            "motors": layout.action_layout(cfg.vehicle),
            "to_rpm": {"formula": "rpm = rpm_min + (action + 1) / 2 * (rpm_max - rpm_min)",
                       "rpm_min": cfg.rpm_min, "rpm_max": cfg.rpm_max, "rpm_per_unit_action": span / 2.0},
            "to_thrust": {"formula": "thrust_N = k_f * rpm^2 per rotor, along body z",
                          "k_f_N_per_rpm2": _kf(cfg.vehicle),
                          "normalized_force": "thrust / thrust(rpm_max) = (rpm / rpm_max)^2"},
            "clip": {"low": spec.action_low.tolist(), "high": spec.action_high.tolist()},
        },
        "network": {
            "type": "mlp",
            "layers": spec.layer_sizes,
            "activation": spec.activation,
            "output_activation": spec.output_activation,
            "obs_clip": spec.obs_clip,
            "parameters": spec.num_parameters,
            "macs": spec.macs,
            "weight_bytes_float32": weight_bytes(spec, None),
            "weight_bytes_int8": weight_bytes(spec, "int8"),
        },
        "state": {
            "dim": spec.state_dim,
            "policy_format": spec.format,
            "integrator": ({"index": [int(i) for i in spec.integrator_index], "gain": spec.integrator_gain,
                            "limit": spec.integrator_limit,
                            "update": "z = clip(z + gain * obs[index], -limit, limit), first, every step; "
                                      "network input concat(obs, z)"} if spec.state_dim else None),
            "reset": "z = 0 at every episode start: robolearn_policy_reset() in C; state_in = 0 in ONNX",
        },
        "quantize": quantize,
        "files": {
            "onnx": {"file": "policy.onnx", "input": INPUT, "outputs": list(OUTPUTS),
                     "state": ({"input": STATE_IN, "output": STATE_OUT, "shape": ["batch", spec.state_dim]}
                               if spec.state_dim else None),
                     "output_units": {"action": "normalized [-1, 1]", "rpm": "RPM"}} if "onnx" in formats else None,
            "c": {"files": ["policy.c", "policy.h"], "entry": "robolearn_policy(const float *obs, float *action)",
                  "reset": "robolearn_policy_reset(void)",
                  "weights": quantize or "float32"} if "c" in formats else None,
        },
    }


def _kf(vehicle: str) -> float:
    """The vehicle's quadratic thrust term per RPM^2 (its whole curve for l2f_paper; for
    presets with c0, c1 != 0 the k_f rpm^2 formula above is an approximation)."""
    from sims.quadrotor.vehicles import get

    v = get(vehicle)
    return v.thrust_curve[2] / v.max_rpm**2


def manifest_bytes(manifest: dict) -> bytes:
    return (json.dumps(manifest, indent=2) + "\n").encode()


def manifest_sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# ------------------------------------------------------------------------------ reading
@dataclass(frozen=True)
class Manifest:
    """What a consumer (the HIL runner, an integrator) reads back from ``manifest.json``:
    the keys :func:`build_manifest` writes, in one place."""

    path: Path
    sha256: bytes  # SHA-256 of the file's bytes: what policy.c embeds and the device announces
    data: dict[str, Any]
    obs_dim: int
    act_dim: int
    run_dir: Path | None  # the run directory (config.yaml), resolved against the export directory
    env: dict[str, Any] | None  # {"sim": {...}, "ranges": {...}}, the simulator settings exported


def read_manifest(export_dir: str | Path) -> Manifest:
    """Read ``EXPORT_DIR/manifest.json`` (or the file itself); ExportError (one line)
    when it is missing, not JSON, or lacks ``obs_dim`` / ``act_dim``."""
    p = Path(export_dir)
    path = p if p.name == MANIFEST_NAME and p.is_file() else p / MANIFEST_NAME
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise ExportError(f"cannot read {path}: {e.strerror or e}; export the run first (robolearn export RUN)") from None
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ExportError(f"{path}: invalid JSON ({e}); export the run again") from None
    if not isinstance(data, dict):
        raise ExportError(f"{path}: not a JSON object; export the run again")
    dims = []
    for key in ("obs_dim", "act_dim"):
        v = data.get(key)
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise ExportError(f"{path}: {key} missing or not a positive integer; export the run again")
        dims.append(v)
    rd = data.get("run_dir")
    run_dir = None
    if isinstance(rd, str) and rd:
        run_dir = Path(rd) if Path(rd).is_absolute() else path.parent / rd
    env = data.get("env") if isinstance(data.get("env"), dict) else None
    return Manifest(path, hashlib.sha256(raw).digest(), data, dims[0], dims[1], run_dir, env)

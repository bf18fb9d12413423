"""``manifest.json``: everything an integrator needs to feed the policy and use its output.

Deterministic (no timestamps, sorted ranges, run directory stored relative to the
export) so the same policy, config and options give the same bytes: the device
handshake announces SHA-256(manifest.json bytes), and policy.c embeds that digest.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from . import layout
from .c_codegen import weight_bytes
from .onnx_export import INPUT, OUTPUTS
from .policy_file import PolicySpec

MANIFEST_FORMAT = "robolearn.export_manifest/1"


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
        "quantize": quantize,
        "files": {
            "onnx": {"file": "policy.onnx", "input": INPUT, "outputs": list(OUTPUTS),
                     "output_units": {"action": "normalized [-1, 1]", "rpm": "RPM"}} if "onnx" in formats else None,
            "c": {"files": ["policy.c", "policy.h"], "entry": "robolearn_policy(const float *obs, float *action)",
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

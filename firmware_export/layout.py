"""What the numbers mean: the quadrotor's observation and action layout and the run's sim settings.

The layout is the policy view written by ``sims/quadrotor/physics.py: observe`` (checked
against it in tests/test_export.py):

====================  ====  ======  ======================================================
position_error          3   m       world frame (z up), ``position - target``
rotation_matrix         9   1       R(q) body->world, row-major (R00 R01 R02 R10 ...)
linear_velocity         3   m/s     world frame
angular_velocity        3   rad/s   body frame
action_history        4*H   1       last H normalized actions in [-1, 1], newest first
====================  ====  ======  ======================================================

Actions are four normalized rotor commands ``a`` in [-1, 1]; the simulator spins rotor
k at ``rpm_min + (a + 1) / 2 * (rpm_max - rpm_min)`` RPM (``physics.py: step_env``).
The settings (history length H, dt, rpm range) come from the run's resolved
``config.yaml`` (``env.sim``), with the simulator's defaults for keys it leaves out.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import ExportError

if TYPE_CHECKING:
    from sims.quadrotor.config import QuadrotorConfig


@dataclass
class SimSettings:
    config: QuadrotorConfig
    env: dict  # {"sim": {...}, "ranges": {...}}: what hardware/hil.py rebuilds the config from
    source: str  # config.yaml path, or a note that defaults were used
    sha256: str | None  # of config.yaml's bytes


def policy_obs_dim(history: int) -> int:
    return 18 + 4 * history


def load_yaml(path: Path) -> tuple[dict[str, Any], bytes]:
    """(mapping, raw bytes) of a YAML file; ``3e-4`` (no dot) reads as a float, as in
    YAML 1.2 and robolearn's own config loader. ExportError (one line) when unreadable."""
    import re

    import yaml

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_implicit_resolver("tag:yaml.org,2002:float",
                                 re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
                                 list("-+0123456789"))
    try:
        raw = path.read_bytes()
        data = yaml.load(raw, Loader=Loader)
    except OSError as e:
        raise ExportError(f"cannot read {path}: {e.strerror or e}") from None
    except yaml.YAMLError as e:
        raise ExportError(f"{path}: invalid YAML ({' '.join(str(e).split())[:160]}); fix or remove it") from None
    return (data if isinstance(data, dict) else {}), raw


def config_from_env(env: dict[str, Any] | None, where: str) -> QuadrotorConfig:
    """``QuadrotorConfig`` from an ``env`` mapping (``env.sim`` simulator settings,
    ``env.ranges`` parameter ranges), as ``config.yaml`` and ``manifest.json`` hold it."""
    from sims.quadrotor.config import QuadrotorConfig, migrate_sim_settings

    env = env if isinstance(env, dict) else {}
    try:  # a run from before the vehicle presets flew today's l2f_paper
        sim = dict(migrate_sim_settings(dict(env.get("sim") or {})))
    except ValueError as e:
        raise ExportError(f"{where}: env.sim: {e}") from None
    unknown = sorted(set(sim) - set(QuadrotorConfig.field_names()) - {"ranges"})
    if unknown:
        raise ExportError(f"{where}: env.sim has settings the quadrotor simulator does not know: {', '.join(unknown)}")
    if "home_target" in sim:
        sim["home_target"] = tuple(sim["home_target"])
    try:
        ranges = {k: (float(v[0]), float(v[1])) for k, v in (env.get("ranges") or {}).items()}
        return QuadrotorConfig(**sim, ranges=ranges)
    except (TypeError, ValueError, IndexError) as e:
        raise ExportError(f"{where}: env section: {e}") from None


def check_obs_dim(cfg: QuadrotorConfig, obs_dim: int, where: str) -> None:
    if policy_obs_dim(cfg.action_history) != obs_dim:
        raise ExportError(f"the policy takes {obs_dim} observations but {where} (action_history="
                          f"{cfg.action_history}) gives {policy_obs_dim(cfg.action_history)}; the policy and "
                          "the config come from different runs")


def read_sim_settings(config_path: Path | None, obs_dim: int) -> SimSettings:
    """Simulator settings from ``config.yaml`` (``env.sim``/``env.ranges``), or the
    defaults with the action history implied by ``obs_dim`` when there is no config."""
    from sims.quadrotor.config import QuadrotorConfig

    if config_path is None or not config_path.is_file():
        h, rem = divmod(obs_dim - policy_obs_dim(0), 4)
        if rem or not 0 <= h <= 8:
            raise ExportError(f"obs_dim {obs_dim} is not a quadrotor policy view (18 + 4*H) and there is no "
                              "config.yaml next to policy.pt; export from the run directory")
        cfg = QuadrotorConfig(action_history=h)
        return SimSettings(cfg, _env_dict(cfg), f"simulator defaults (no config.yaml; action_history={h} from obs_dim)", None)
    data, raw = load_yaml(config_path)
    cfg = config_from_env(data.get("env"), str(config_path))
    check_obs_dim(cfg, obs_dim, str(config_path))
    return SimSettings(cfg, _env_dict(cfg), str(config_path), hashlib.sha256(raw).hexdigest())


def _env_dict(cfg: QuadrotorConfig) -> dict[str, Any]:
    d = cfg.to_dict()
    ranges = d.pop("ranges")
    return {"sim": d, "ranges": ranges}


def observation_layout(history: int) -> list[dict]:
    """One entry per observation block, with offsets into the observation vector."""
    blocks = [
        ("position_error", 3, "m", "world",
         "position minus target position (x, y, z); world frame z up, x/y as the setpoint's frame"),
        ("rotation_matrix", 9, "1", "body->world",
         "R(q) with v_world = R v_body, row-major: R00 R01 R02 R10 R11 R12 R20 R21 R22; "
         "q = (w, x, y, z) Hamilton, unit norm"),
        ("linear_velocity", 3, "m/s", "world", "velocity (vx, vy, vz) in the world frame"),
        ("angular_velocity", 3, "rad/s", "body", "body rates (p, q, r) about body x (forward), y (left), z (up)"),
    ]
    out, off = [], 0
    for name, size, units, frame, desc in blocks:
        out.append({"name": name, "offset": off, "size": size, "units": units, "frame": frame, "description": desc})
        off += size
    if history:
        out.append({"name": "action_history", "offset": off, "size": 4 * history, "units": "normalized [-1, 1]",
                    "frame": "motor", "description": f"the last {history} actions this policy output (after clipping "
                    "to [-1, 1]), newest first, 4 motors each in action order; at episode start all are the hover action"})
    return out


def action_layout(vehicle: str | None = None) -> list[dict]:
    """Motor order of the action vector (``sims/quadrotor/vehicles.py``: rotor_xy, rotor_yaw_dir;
    default: the default vehicle preset)."""
    from sims.quadrotor import vehicles as V

    veh = V.get(vehicle or V.DEFAULT_VEHICLE)

    names = ("front_right", "back_right", "back_left", "front_left")
    # Bitcraze numbers the Crazyflie 2.x motors M1 front-right, M2 back-right,
    # M3 back-left, M4 front-left (x forward, seen from above), the same order.
    out = []
    for k, name in enumerate(names):
        spin = "counter-clockwise" if veh.rotor_yaw_dir[k] < 0 else "clockwise"
        out.append({"index": k, "name": name, "crazyflie_motor": f"M{k + 1}",
                    "position_m": [veh.rotor_xy[k][0], veh.rotor_xy[k][1]],
                    "reaction_torque_z_sign": veh.rotor_yaw_dir[k],
                    "spin_seen_from_above": spin})
    return out

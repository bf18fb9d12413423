"""``export()``: policy.pt -> manifest.json, policy.onnx, policy.c/.h (+ firmware), verified.

Output is atomic: everything is written into a temporary directory next to ``out_dir``
and renamed into place only after every check passed; on any error the temporary
directory is removed and ``out_dir`` is left as it was.

Order matters: manifest.json is written first, because policy.c embeds its SHA-256
(the hardware-in-the-loop handshake compares the device's digest with the file's).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from . import cost, layout, qemu_count, verify
from .c_codegen import TANH_SEGMENTS, generate_header, generate_source, int8_episodes, int8_model, int8_network, weight_bytes
from .errors import ExportError
from .manifest import build_manifest, manifest_bytes, manifest_sha256
from .onnx_export import build_onnx, onnx_session, run_onnx, run_onnx_episodes, save_onnx
from .policy_file import PolicySpec, episodes_torch, forward_torch, load_policy

FORMATS = ("onnx", "c", "firmware")
QUANTIZE = (None, "int8")
TOL = 1e-5  # max abs error allowed between float32 backends (actions in [-1, 1])
INT8_TOL = 0.05  # max abs int8-vs-float error on recorded observations before the export fails
REPORT_FORMAT = "robolearn.export_report/1"
# MCU budget of the exported policy (issue 23): <= 16 KB float32 weights, <= 150 us per
# inference at 168 MHz (estimated: see cost.py for the method).
TARGET_WEIGHT_BYTES, TARGET_US = 16 * 1024, 150.0


def _resolve_input(path: Path) -> tuple[Path, Path]:
    """(run directory, policy.pt) for a run directory or a policy.pt path."""
    if not path.exists():
        raise ExportError(f"no such run directory or policy file: {path}")
    if path.is_file():
        return path.parent, path
    pol = path / "policy.pt"
    if not pol.is_file():
        raise ExportError(f"{path} has no policy.pt; pass a run directory made by `robolearn train` "
                          "(training writes policy.pt at the end)")
    return path, pol


def _check_options(formats: str | Sequence[str], quantize: str | None) -> tuple[str, ...]:
    if isinstance(formats, str):
        formats = [f for f in formats.split(",") if f.strip()]
    fs = tuple(dict.fromkeys(str(f).strip().lower() for f in formats))
    bad = [f for f in fs if f not in FORMATS]
    if bad or not fs:
        raise ExportError(f"unknown export format {', '.join(bad) or '(none)'}; choose from {', '.join(FORMATS)}")
    if quantize not in QUANTIZE:
        raise ExportError(f"unknown quantization {quantize!r}; the only option is int8")
    if "firmware" in fs and "c" not in fs:
        fs = fs + ("c",)  # the firmware image is built from policy.c
    if quantize and "c" not in fs:
        raise ExportError("--quantize int8 applies to the C code; add c to --format")
    return fs


def _check_firmware_builder(fmts: tuple[str, ...], builder: Callable[[Path], Path] | None) -> None:
    # The STM32F405 image (board support, device loop, serial protocol) lives in the
    # `hardware` package, which uses this one; this package never imports it back.
    if "firmware" in fmts and builder is None:
        raise ExportError("the firmware format needs a firmware builder: use `robolearn export --format "
                          "firmware`, or pass firmware_builder=hardware.firmware_image.build_firmware")


def _firmware_size(elf: Path) -> dict[str, Any] | None:
    """``firmware_size.json`` next to the ELF when the builder wrote one (it does)."""
    f = elf.parent / "firmware_size.json"
    try:
        data = json.loads(f.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


def _prepare_target(out_dir: Path) -> None:
    """Refuse to replace a directory that is not a previous export (or empty)."""
    if out_dir.exists():
        if not out_dir.is_dir():
            raise ExportError(f"--out {out_dir} is a file; choose a directory")
        entries = list(out_dir.iterdir())
        if entries and not (out_dir / "manifest.json").exists() and not (out_dir / "export_report.json").exists():
            raise ExportError(f"--out {out_dir} exists and is not an export directory; choose another --out")


def _install(tmp: Path, out_dir: Path) -> None:
    """Move the finished export into place (rename; the old export is removed after)."""
    old = None
    if out_dir.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.old-", dir=out_dir.parent))
        os.rmdir(old)
        os.replace(out_dir, old)
    try:
        os.replace(tmp, out_dir)
    except OSError:
        if old is not None:
            os.replace(old, out_dir)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


EPISODES_RANDOM, EPISODE_STEPS_RANDOM = 16, 300


def _first_step_inputs(spec: PolicySpec, obs: np.ndarray) -> np.ndarray:
    """Network inputs (N, obs_dim + k) of observations each taken as the first step after a reset."""
    from .policy_file import integrate

    if not spec.state_dim:
        return obs
    return np.concatenate([obs, integrate(spec, np.zeros((len(obs), spec.state_dim), np.float32), obs)], axis=-1)


def _episode_check(got: list, ref: list, what: str, against: str) -> dict:
    """Max abs error of actions and states over whole episodes; ExportError above TOL."""
    a = max(verify.max_abs(g[0].reshape(-1), r[0].reshape(-1)) for g, r in zip(got, ref))
    z = max(verify.max_abs(g[-1].reshape(-1), r[-1].reshape(-1)) for g, r in zip(got, ref))
    if a > TOL or z > TOL:
        raise ExportError(f"{what} disagrees with {against} over whole episodes: max abs error action {a:.3g}, "
                          f"state {z:.3g} > {TOL:g}; this is an exporter bug, please report it")
    return {"max_abs_action": a, "max_abs_state": z,
            "steps": int(sum(np.asarray(r[0]).shape[0] * np.asarray(r[0]).shape[1] for r in ref))}


def _err_stats(a: np.ndarray, b: np.ndarray) -> dict:
    e = np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))
    return {"max_abs": float(e.max()), "mean_abs": float(e.mean()), "rms": float(np.sqrt((e ** 2).mean()))}


def export(run_or_policy_dir: str | Path, out_dir: str | Path | None = None,
           formats: str | Sequence[str] = ("onnx", "c"), quantize: str | None = None, *,
           n_random: int = 10_000, record_envs: int = 32, record_steps: int = 150,
           closed_loop_episodes: int = 32, seed: int = 0,
           firmware_builder: Callable[[Path], Path] | None = None) -> dict[str, Any]:
    """Export a run's ``policy.pt``; returns the export report (also written as
    ``export_report.json``). Raises :class:`ExportError` (one line) on bad input or a
    failed check, leaving no partial output. ``out_dir`` default: ``RUN_DIR/export``.
    ``firmware_builder(export_dir) -> ELF path`` builds the ``firmware`` format
    (``hardware.firmware_image.build_firmware``); it runs on the finished export
    before it is moved into place, so a failed build leaves no output either."""
    fmts = _check_options(formats, quantize)
    run_dir, policy_path = _resolve_input(Path(run_or_policy_dir))
    out_dir = Path(out_dir) if out_dir is not None else run_dir / "export"
    # Fail fast on missing tools, before any work or output.
    if "c" in fmts:
        verify.find_cc()
    _check_firmware_builder(fmts, firmware_builder)
    build_firmware = firmware_builder if "firmware" in fmts else None
    spec = load_policy(policy_path)
    sim = layout.read_sim_settings(run_dir / "config.yaml", spec.obs_dim)
    _prepare_target(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    try:
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(tmp, 0o777 & ~mask)  # mkdtemp makes 0700; the export gets the usual mode
        report = _export_into(tmp, spec, sim, run_dir, out_dir, fmts, quantize, n_random,
                              record_envs, record_steps, closed_loop_episodes, seed)
        if build_firmware is not None:
            elf = Path(build_firmware(tmp))
            # Paths relative to the export: tmp is renamed to out_dir below.
            report["firmware"] = {"elf": str(elf.relative_to(tmp)), "size": _firmware_size(elf)}
            report["files"] = sorted(set(report["files"]) | {elf.relative_to(tmp).parts[0]})
        report["out_dir"] = str(out_dir)
        # every file written, firmware included (paths relative to the export directory)
        report["files"] = sorted({str(p.relative_to(tmp)) for p in tmp.rglob("*") if p.is_file()}
                                 | {"export_report.json"})
        (tmp / "export_report.json").write_text(json.dumps(report, indent=2) + "\n")
        _install(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return report


def _export_into(tmp: Path, spec: PolicySpec, sim: layout.SimSettings, run_dir: Path, out_dir: Path,
                 formats: tuple[str, ...], quantize: str | None, n_random: int, record_envs: int,
                 record_steps: int, closed_loop_episodes: int, seed: int) -> dict[str, Any]:
    cfg = sim.config
    notes: list[str] = []
    manifest = build_manifest(spec, sim, run_dir, out_dir, formats, quantize)
    mbytes = manifest_bytes(manifest)
    (tmp / "manifest.json").write_bytes(mbytes)
    msha = manifest_sha256(mbytes)

    # Observations for every comparison: random ones around the normalizer's statistics
    # and the ones met when the policy flies the run's simulator.
    obs_rand = verify.random_observations(spec, n_random, seed)
    ep_rec = verify.recorded_episodes(spec, cfg, record_envs, record_steps, seed)
    obs_rec = ep_rec.reshape(-1, spec.obs_dim)
    obs = np.concatenate([obs_rand, obs_rec])  # each on its own: the first step after a reset
    # Whole episodes, step by step after a reset (the integrator state carried): the
    # recorded flights and random walks long enough to reach the anti-windup clamp.
    ep_rand = verify.random_episodes(spec, EPISODES_RANDOM, EPISODE_STEPS_RANDOM, seed + 1)
    sizes: dict = {"weight_bytes_float32": weight_bytes(spec, None), "weight_bytes_int8": weight_bytes(spec, "int8"),
                   "tanh_table_bytes": 16 * TANH_SEGMENTS if "tanh" in (spec.activation, spec.output_activation) else 0}
    checks: dict = {"observations": {"random": int(len(obs_rand)), "recorded": int(len(obs_rec)),
                                     "recorded_from": f"{record_envs} envs x {record_steps} steps of the run's simulator, "
                                                      "flown by the policy",
                                     "episodes": {"recorded": f"{record_envs} x {record_steps} steps",
                                                  "random_walk": f"{EPISODES_RANDOM} x {EPISODE_STEPS_RANDOM} steps",
                                                  "state_dim": spec.state_dim}},
                    "tolerance": TOL}
    episodes = [ep_rec, ep_rand]
    ref_eps = [episodes_torch(spec, e) for e in episodes]

    model = build_onnx(spec, cfg.rpm_min, cfg.rpm_max, doc=f"robolearn actor; manifest sha256 {msha}")
    onnx_act, onnx_rpm = run_onnx(onnx_session(model.SerializeToString()), obs)
    torch_act = forward_torch(spec, obs)
    e_onnx = _err_stats(onnx_act, torch_act)
    rpm_ref = cfg.rpm_min + (torch_act.astype(np.float64) + 1.0) * 0.5 * (cfg.rpm_max - cfg.rpm_min)
    e_rpm = float(np.max(np.abs(onnx_rpm - rpm_ref)))
    checks["onnx_vs_torch"] = {**e_onnx, "max_abs_recorded": verify.max_abs(onnx_act[n_random:], torch_act[n_random:]),
                               "rpm_max_abs": e_rpm, "rpm_max_abs_over_span": e_rpm / (cfg.rpm_max - cfg.rpm_min),
                               "checker": "onnx.checker.check_model(full_check=True) passed"}
    if e_onnx["max_abs"] > TOL or e_rpm > TOL * (cfg.rpm_max - cfg.rpm_min):
        raise ExportError(f"policy.onnx disagrees with torch: max abs error {e_onnx['max_abs']:.3g} > {TOL:g}; "
                          "this is an exporter bug, please report it")
    sess = onnx_session(model.SerializeToString())
    onnx_eps = [run_onnx_episodes(sess, e) for e in episodes]
    checks["episodes_onnx_vs_torch"] = _episode_check(onnx_eps, ref_eps, "policy.onnx", "torch")
    if "onnx" in formats:
        sizes["onnx_bytes"] = save_onnx(model, tmp / "policy.onnx")

    if "c" in formats:
        (tmp / "policy.h").write_text(generate_header(spec, msha, cfg.rpm_min, cfg.rpm_max, 1.0 / cfg.dt, quantize))
        (tmp / "policy.c").write_text(generate_source(spec, msha, quantize))
        sizes["policy_c_bytes"] = (tmp / "policy.c").stat().st_size
        c_act, stdout, syms = verify.c_actions(tmp, obs, spec.act_dim, spec.state_dim)
        c_eps = [verify.c_episodes(tmp, e, spec.act_dim, spec.state_dim) for e in episodes]
        lines = dict(line.split(" ", 1) for line in stdout.splitlines() if " " in line)
        if lines.get("sha256") != msha:
            raise ExportError("policy.c does not carry the manifest digest; this is an exporter bug")
        extra = sorted(syms - verify.ALLOWED_UNDEFINED)
        if extra:
            raise ExportError(f"policy.c needs symbols beyond <math.h>: {', '.join(extra)}; this is an exporter bug")
        checks["c_undefined_symbols"] = sorted(syms)
        checks["c_compiler_flags"] = " ".join(verify.CFLAGS)
        if quantize == "int8":
            m8 = int8_model(spec)
            emu = int8_network(spec, m8, _first_step_inputs(spec, obs))
            e_c = _err_stats(c_act, emu)
            checks["episodes_c_int8_vs_numpy_emulation"] = _episode_check(
                c_eps, [int8_episodes(spec, m8, e) for e in episodes], "the int8 C", "its numpy emulation")
            checks["episodes_int8_vs_float32_onnx"] = {
                "recorded": _err_stats(c_eps[0][0], onnx_eps[0][0]), "random_walk": _err_stats(c_eps[1][0], onnx_eps[1][0]),
                "note": "int8 C vs float32 ONNX on whole episodes (not held to the 1e-5 bar)"}
            checks["c_int8_vs_numpy_emulation"] = e_c
            if e_c["max_abs"] > TOL:
                raise ExportError(f"the int8 C disagrees with its numpy emulation: {e_c['max_abs']:.3g} > {TOL:g}; exporter bug")
            vs = _err_stats(c_act, onnx_act)
            vs["max_abs_recorded"] = verify.max_abs(c_act[n_random:], onnx_act[n_random:])
            vs["mean_abs_recorded"] = float(np.mean(np.abs(c_act[n_random:] - onnx_act[n_random:]))) if len(obs_rec) else None
            checks["int8_vs_float32"] = vs
            checks["int8_closed_loop"] = verify.closed_loop_int8(spec, cfg, m8, closed_loop_episodes, seed + 12345)
            if len(obs_rec) and vs["max_abs_recorded"] > INT8_TOL:
                notes.append(f"int8 error on recorded observations {vs['max_abs_recorded']:.3f} exceeds {INT8_TOL}: "
                             "prefer the float32 C for this policy")
        else:
            e_c = _err_stats(c_act, onnx_act)
            checks["c_vs_onnx"] = e_c
            checks["episodes_c_vs_onnx"] = _episode_check(c_eps, onnx_eps, "policy.c", "policy.onnx")
            if e_c["max_abs"] > TOL:
                raise ExportError(f"policy.c disagrees with policy.onnx: max abs error {e_c['max_abs']:.3g} > {TOL:g}; "
                                  "this is an exporter bug, please report it")
        with tempfile.TemporaryDirectory(prefix="robolearn_arm_") as b:
            arm = cost.arm_object_sizes(tmp, b)
        if arm is not None:
            sizes["arm_cortex_m4_policy_o"] = arm

    est = cost.estimate(spec, quantize if "c" in formats else None)
    measured = None
    if "c" in formats and qemu_count.tools_available():
        measured = qemu_count.count_instructions(tmp, "ram")
        measured.pop("mix", None)
    us = measured["us_estimate_at_168mhz"] if measured else est["us_estimate_at_168mhz"]
    wb = sizes["weight_bytes_int8" if quantize == "int8" else "weight_bytes_float32"]
    if us > TARGET_US:
        notes.append(f"estimated {us} us per inference exceeds the {TARGET_US:g} us budget at 168 MHz")
    if wb > TARGET_WEIGHT_BYTES:
        notes.append(f"{wb} B of weights exceed the {TARGET_WEIGHT_BYTES} B budget")
    return {
        "format": REPORT_FORMAT,
        "ok": True,
        "source": {"run_dir": str(run_dir), "policy": str(spec.path), "policy_sha256": spec.sha256,
                   "config": sim.source, "config_sha256": sim.sha256},
        "formats": list(formats),
        "quantize": quantize,
        "files": sorted(p.name for p in tmp.iterdir()) + ["export_report.json"],
        "manifest_sha256": msha,
        "network": {"layers": spec.layer_sizes, "activation": spec.activation,
                    "output_activation": spec.output_activation, "parameters": spec.num_parameters,
                    "macs": spec.macs},
        "sizes": sizes,
        "verification": checks,
        "cost": est,  # analytic; robolearn's firmware image: weights copied to SRAM at reset
        "cost_measured": measured,  # QEMU instruction count of this policy.c + cycle estimate from its mix
        "cost_weights_in_flash": cost.estimate(spec, quantize if "c" in formats else None, weights_in="flash"),
        "targets": {"weight_bytes_max": TARGET_WEIGHT_BYTES, "weight_bytes": wb,
                    "weight_bytes_ok": wb <= TARGET_WEIGHT_BYTES,
                    "inference_us_max": TARGET_US, "inference_us_estimated": us,
                    "inference_us_estimated_from": "cost_measured (QEMU instruction mix)" if measured else "cost (analytic)",
                    "inference_ok_estimated": us <= TARGET_US},
        "notes": notes,
    }

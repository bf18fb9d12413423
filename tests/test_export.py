"""firmware_export: policy.pt -> manifest.json + policy.onnx (+ C), checked against robolearn's own actor.

The reference for every comparison here is ``robolearn.networks.actor_from_export`` (the
trainer's deployable actor), not the exporter's own torch re-implementation.
"""

from __future__ import annotations

import hashlib
import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from firmware_export import ExportError, export
from firmware_export.onnx_export import build_onnx, onnx_session, run_onnx
from firmware_export.policy_file import parse_policy
from robolearn.config import dump_config, load_config
from robolearn.networks import DeterministicActor, actor_from_export, export_actor

ROOT = Path(__file__).resolve().parent.parent
N_OBS = 10_000
TOL = 1e-5


# ----------------------------------------------------------------------- helpers
def make_policy(activation="tanh", hidden=(32, 32), obs_dim=26, act_dim=4, output_activation="none", seed=0) -> dict:
    """A random ``policy.pt`` dict of the trainer's format, with non-trivial normalizer
    statistics and non-zero biases (the trainer's init zeroes them)."""
    g = torch.Generator().manual_seed(seed)
    a = DeterministicActor(obs_dim, act_dim, list(hidden), activation, output_activation=output_activation)
    with torch.no_grad():
        a.norm.update(torch.randn(4096, obs_dim, generator=g) * (0.2 + torch.rand(obs_dim, generator=g) * 3)
                      + torch.randn(obs_dim, generator=g))
        for lin in [m for m in a.net if isinstance(m, torch.nn.Linear)]:
            lin.bias.copy_(torch.randn(lin.out_features, generator=g) * 0.1)
    return export_actor(a.norm, a.net, activation, output_activation=output_activation)


def make_v2_policy(k: int = 3, activation: str = "tanh", hidden=(32, 32), obs_dim: int = 26, seed: int = 0,
                   gain: float = 0.05, limit: float = 0.4) -> dict:
    """A random ``robolearn.actor/2`` dict: an integrator of the first ``k`` raw observation
    entries (the position error in the quadrotor's view); k = 0 gives a v2 file without one.
    The integrated inputs get a normalizer of std ``limit`` / 2 so they matter to the actions."""
    d = make_policy(activation, hidden=hidden, obs_dim=obs_dim + k, seed=seed)
    d["format"] = "robolearn.actor/2"
    d["obs_dim"] = obs_dim
    if k:
        d["integrator.index"] = torch.arange(k, dtype=torch.int64)
        d["integrator.gain"] = gain
        d["integrator.limit"] = limit
        d["obs_mean"][obs_dim:] = 0.0
        d["obs_std"][obs_dim:] = limit / 2
    return d


def make_run(path: Path, policy: dict | None = None, action_history: int = 2) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    torch.save(make_policy() if policy is None else policy, path / "policy.pt")
    cfg = load_config(ROOT / "configs/quadrotor_hover.yaml", [f"env.sim.action_history={action_history}"])
    (path / "config.yaml").write_text(dump_config(cfg))
    return path


def observations(policy: dict, n: int = N_OBS, seed: int = 1) -> np.ndarray:
    """Raw observations around the normalizer statistics, some far out (hit the clip)."""
    rng = np.random.default_rng(seed)
    mean, std = policy["obs_mean"].numpy(), policy["obs_std"].numpy()
    z = rng.standard_normal((n, mean.size)) * np.where(rng.random((n, 1)) < 0.1, 30.0, 2.0)
    return (mean + z * std).astype(np.float32)


def robolearn_actions(policy: dict, obs: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return actor_from_export(policy)(torch.from_numpy(obs)).numpy()


def no_leftovers(parent: Path) -> list[str]:
    return [p.name for p in parent.iterdir() if ".tmp-" in p.name or ".old-" in p.name]


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """One export (onnx + c) of a default-shape run; shared by the tests that read it."""
    run = make_run(tmp_path_factory.mktemp("run") / "run")
    report = export(run, run / "export")
    return run, run / "export", report


# ----------------------------------------------------------------------- ONNX
def test_onnx_matches_robolearn_actor(exported):
    import onnx

    run, out, report = exported
    policy = torch.load(run / "policy.pt", weights_only=True)
    model = onnx.load(out / "policy.onnx")
    onnx.checker.check_model(model, full_check=True)
    sess = onnx_session(out / "policy.onnx")
    # hardware/hil.py (OnnxActor) reads the first output: it must be the normalized action.
    assert [o.name for o in sess.get_outputs()] == ["action", "rpm"]
    assert sess.get_inputs()[0].shape[-1] == 26
    obs = observations(policy)
    act, rpm = run_onnx(sess, obs)
    ref = robolearn_actions(policy, obs)
    err = np.abs(act - ref).max()
    assert err <= TOL, err
    assert np.all(act >= -1) and np.all(act <= 1) and np.any(np.abs(act) < 0.99)
    # rpm = rpm_min + (a + 1) / 2 * (rpm_max - rpm_min) with the config's 0..21702 RPM
    np.testing.assert_allclose(rpm, (ref.astype(np.float64) + 1) / 2 * 21702.0, atol=TOL * 21702.0, rtol=0)
    v = report["verification"]
    assert v["onnx_vs_torch"]["max_abs"] <= TOL and v["observations"]["random"] >= N_OBS
    assert v["observations"]["recorded"] > 0


@pytest.mark.parametrize("activation,out_act", [("relu", "none"), ("elu", "none"), ("silu", "none"), ("tanh", "tanh")])
def test_onnx_other_activations(activation, out_act):
    policy = make_policy(activation, hidden=(48, 24), output_activation=out_act, seed=3)
    spec = parse_policy(policy)
    act, _ = run_onnx(onnx_session(build_onnx(spec, 0.0, 21702.0).SerializeToString()), observations(policy))
    assert np.abs(act - robolearn_actions(policy, observations(policy))).max() <= TOL


def test_export_reference_is_torch_in_float64():
    """The export's torch reference runs in float64 (so a float32 export's own rounding is
    what it measures) and agrees with the numpy float64 forward pass."""
    from firmware_export.policy_file import forward_numpy, forward_torch

    policy = make_policy()
    spec = parse_policy(policy)
    obs = observations(policy)
    ref = forward_torch(spec, obs)
    assert ref.dtype == np.float64
    np.testing.assert_allclose(ref, forward_numpy(spec, obs), rtol=0, atol=1e-12)
    act, _ = run_onnx(onnx_session(build_onnx(spec, 0.0, 21702.0).SerializeToString()), obs)
    assert 0 < np.abs(act - ref).max() <= TOL  # float32 rounding, nothing more


def test_onnx_comparison_can_fail():
    """The error measure is not vacuous: a 1e-4 change to one weight is detected."""
    policy = make_policy()
    spec = parse_policy(policy)
    spec.weights[-1][0, 0] += 1e-3
    act, _ = run_onnx(onnx_session(build_onnx(spec, 0.0, 21702.0).SerializeToString()), observations(policy))
    assert np.abs(act - robolearn_actions(policy, observations(policy))).max() > TOL


# ----------------------------------------------------------------------- manifest
def test_manifest_contents(exported):
    from firmware_export.manifest import read_manifest
    from sims.quadrotor import QuadrotorVecEnv
    from sims.quadrotor.physics import policy_obs_dim

    run, out, report = exported
    raw = (out / "manifest.json").read_bytes()
    m = json.loads(raw)
    rm = read_manifest(out)
    assert m["obs_dim"] == 26 and m["act_dim"] == 4 and (rm.obs_dim, rm.act_dim) == (26, 4)
    assert rm.data == m and rm.run_dir is not None and (rm.run_dir / "policy.pt").is_file()
    lay = m["observation"]["layout"]
    assert sum(b["size"] for b in lay) == m["obs_dim"] == policy_obs_dim(2)
    assert QuadrotorVecEnv(1, seed=0).single_observation_space["policy"].shape == (m["obs_dim"],)
    assert [b["name"] for b in lay] == ["position_error", "rotation_matrix", "linear_velocity",
                                        "angular_velocity", "action_history"]
    assert [b["offset"] for b in lay] == [0, 3, 12, 15, 18]
    assert {b["name"]: (b["units"], b["frame"]) for b in lay}["angular_velocity"] == ("rad/s", "body")
    assert "(w, x, y, z)" in m["observation"]["conventions"]["quaternion"]
    assert m["action"]["to_rpm"]["rpm_max"] == 21702.0 and m["control"]["rate_hz"] == 100.0
    assert m["network"]["layers"] == [26, 32, 32, 4] and m["network"]["parameters"] == 2052
    assert m["network"]["weight_bytes_float32"] == report["sizes"]["weight_bytes_float32"] == 4 * 2052 + 4 * (2 * 26 + 2 * 4)
    assert m["source"]["policy_sha256"] == hashlib.sha256((run / "policy.pt").read_bytes()).hexdigest()
    assert m["source"]["config_sha256"] == hashlib.sha256((run / "config.yaml").read_bytes()).hexdigest()
    assert (out / m["run_dir"]).resolve() == run.resolve()
    # the C carries the digest of these exact bytes (the device handshake compares it)
    sha = hashlib.sha256(raw).hexdigest()
    assert report["manifest_sha256"] == sha
    assert f'#define ROBOLEARN_MANIFEST_SHA256_HEX "{sha}"' in (out / "policy.h").read_text()


def test_manifest_is_deterministic(exported, tmp_path):
    run, out, _ = exported
    export(run, run / "export_again", formats=("onnx",))
    a = json.loads((out / "manifest.json").read_text())
    b = json.loads((run / "export_again" / "manifest.json").read_text())
    assert a.pop("files")["onnx"] == b.pop("files")["onnx"]  # formats differ, the rest must not
    assert a == b


def test_layout_matches_simulator():
    """The manifest's meaning of each observation block, checked on a known simulator state."""
    from firmware_export.layout import observation_layout
    from sims.quadrotor import QuadrotorConfig, QuadrotorVecEnv
    from sims.quadrotor import params as P

    env = QuadrotorVecEnv(1, QuadrotorConfig(sensor_noise=False, action_history=2, vehicle="l2f_paper"), seed=0)
    q = np.array([0.9, 0.1, -0.3, 0.2]); q /= np.linalg.norm(q)
    state = np.concatenate([[0.3, -0.2, 1.4], q, [0.5, -0.1, 0.2], [1.0, -2.0, 0.5], [14000.0] * 4])[None]
    obs = env.reset(seed=0, options={"state": state})[0]["policy"][0]
    target = env.targets[0]
    w, x, y, z = q
    R = np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
                  [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
                  [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)]])
    hover = P.hover_action("l2f_paper")
    want = {"position_error": state[0, :3] - target, "rotation_matrix": R.reshape(-1),
            "linear_velocity": state[0, 7:10], "angular_velocity": state[0, 10:13],
            "action_history": np.full(8, hover)}
    for b in observation_layout(2):
        np.testing.assert_allclose(obs[b["offset"]:b["offset"] + b["size"]], want[b["name"]], atol=1e-5, err_msg=b["name"])
    # body->world: R maps body z (thrust axis) into the world frame
    np.testing.assert_allclose(R @ [0, 0, 1], R[:, 2])


def test_report_contents(exported):
    _, out, report = exported
    on_disk = json.loads((out / "export_report.json").read_text())
    assert on_disk == report and report["ok"]
    assert report["verification"]["c_vs_onnx"]["max_abs"] <= TOL
    c = report["cost"]
    assert c["macs"] == 26 * 32 + 32 * 32 + 32 * 4 and c["cycles_estimate"] > c["macs"]
    assert "estimate" in c["method"]
    m = report["cost_measured"]
    if m is not None:  # arm-none-eabi-gcc and QEMU installed: the count and the estimate beside it, named apart
        assert m["instructions"] > c["macs"] and m["cycles_estimate"] >= m["instructions"]
        assert "counted under QEMU" in m["method"] and "ESTIMATE" in m["method"]
    assert report["sizes"]["weight_bytes_int8"] < report["sizes"]["weight_bytes_float32"] / 2
    assert report["targets"]["weight_bytes_ok"]  # default policy <= 16 KB of weights


def test_hil_reads_the_export(exported):
    from hardware.hil import OnnxActor, resolve_export

    run, out, _ = exported
    info = resolve_export(out)
    assert (info.obs_dim, info.act_dim) == (26, 4) and info.config.action_history == 2
    assert info.manifest_sha256 == hashlib.sha256((out / "manifest.json").read_bytes()).digest()
    policy = torch.load(run / "policy.pt", weights_only=True)
    o = observations(policy, 5)
    got = np.stack([OnnxActor(out / "policy.onnx")(x) for x in o])
    assert np.abs(got - robolearn_actions(policy, o)).max() <= TOL


# ----------------------------------------------------------------------- bad input
class NotWeights:  # a pickled instance of this needs code to load: refused by weights_only
    pass


def _bad(path: Path, kind: str) -> None:
    path.mkdir(parents=True)
    good = make_policy()
    if kind == "corrupt":
        (path / "policy.pt").write_bytes(b"\x80\x02garbage" * 10)
    elif kind == "pickle":
        torch.save({"format": "robolearn.actor/1", "obj": NotWeights()}, path / "policy.pt")
    elif kind == "plain_pickle":
        (path / "policy.pt").write_bytes(pickle.dumps({"a": 1}))
    else:
        if kind == "activation":
            good["activation"] = "gelu"
        elif kind == "layer":
            good["layers.3.weight"] = torch.zeros(4, 4)
        elif kind == "shape":
            good["layers.1.weight"] = torch.zeros(32, 31)
        elif kind == "nan":
            good["layers.0.weight"][0, 0] = float("nan")
        elif kind == "format":
            good["format"] = "something/2"
        elif kind.startswith("v2_"):
            good = make_v2_policy(k=3)
            if kind == "v2_limit":
                good["integrator.limit"] = -1.0
            elif kind == "v2_index":
                good["integrator.index"] = torch.tensor([0, 1, 26])
            elif kind == "v2_gain":
                good["integrator.gain"] = float("nan")
            elif kind == "v2_missing":
                del good["integrator.gain"]
            elif kind == "v2_on_v1":
                good["format"] = "robolearn.actor/1"
            elif kind == "v2_float_index":
                good["integrator.index"] = torch.tensor([0.0, 1.0, 2.0])
        torch.save(good, path / "policy.pt")


@pytest.mark.parametrize("kind,fragment", [
    ("missing", "no policy.pt"), ("corrupt", "corrupt"), ("pickle", "weights-only"),
    ("plain_pickle", "corrupt or not a torch file"), ("activation", "unsupported activation 'gelu'"),
    ("layer", "unsupported layer"), ("shape", "layers.1.weight has shape"), ("nan", "NaN"),
    ("format", "robolearn.actor/1"),
    ("v2_limit", "integrator.limit must be > 0"), ("v2_index", "integrator.index 26 is outside"),
    ("v2_gain", "integrator.gain must be a finite number"), ("v2_missing", "integrator.gain missing"),
    ("v2_on_v1", "needs format 'robolearn.actor/2'"), ("v2_float_index", "1-D int64 tensor"),
])
def test_bad_policy_gives_one_line_error_and_no_output(tmp_path, kind, fragment):
    run = tmp_path / "run"
    if kind == "missing":
        run.mkdir()
    else:
        _bad(run, kind)
    with pytest.raises(ExportError) as e:
        export(run, tmp_path / "out")
    msg = str(e.value)
    assert fragment in msg and "\n" not in msg, msg
    assert not (tmp_path / "out").exists() and no_leftovers(tmp_path) == []


def test_policy_and_config_disagree(tmp_path):
    run = make_run(tmp_path / "run", action_history=3)  # config says 30 observations, policy takes 26
    with pytest.raises(ExportError, match="different runs"):
        export(run)
    assert not (run / "export").exists() and no_leftovers(run) == []


def test_missing_compiler(tmp_path, monkeypatch):
    import firmware_export.verify as V

    run = make_run(tmp_path / "run")
    monkeypatch.delenv("CC", raising=False)
    monkeypatch.setattr(V.shutil, "which", lambda name: None)
    with pytest.raises(ExportError, match="no C compiler found.*--format onnx"):
        export(run)
    assert not (run / "export").exists()


def test_failed_export_keeps_previous_one(exported, monkeypatch):
    import firmware_export.pipeline as pipeline

    run, out, _ = exported
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def broken(*a, **k):
        raise ExportError("simulated failure during C verification")

    monkeypatch.setattr(pipeline.verify, "c_actions", broken)
    with pytest.raises(ExportError, match="simulated"):
        export(run, out)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert no_leftovers(run) == []


def test_refuses_to_overwrite_a_non_export(tmp_path):
    run = make_run(tmp_path / "run")
    (tmp_path / "precious").mkdir()
    (tmp_path / "precious" / "notes.txt").write_text("keep me")
    with pytest.raises(ExportError, match="not an export directory"):
        export(run, tmp_path / "precious")
    assert (tmp_path / "precious" / "notes.txt").read_text() == "keep me"


def test_firmware_export_does_not_import_robolearn():
    import subprocess
    import sys

    code = ("import sys, firmware_export.pipeline, firmware_export.verify, firmware_export.qemu_count, "
            "firmware_export.cost, firmware_export.c_codegen; "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('robolearn', 'hardware')]; "
            "assert not bad, bad")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


# ----------------------------------------------------------------------- stateful policy (robolearn.actor/2)
def _reference_episode(d: dict, obs_seq: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The contract of the stateful format written out step by step in float64 numpy from
    the raw dict (not the exporter's code): integrate first, then act on concat(obs, z)."""
    idx = d["integrator.index"].numpy()
    g, lim = np.float32(d["integrator.gain"]), np.float32(d["integrator.limit"])
    mean, std, c = d["obs_mean"].double().numpy(), d["obs_std"].double().numpy(), d["obs_clip"]
    n = len(d["hidden_sizes"]) + 1
    z = np.zeros(len(idx), np.float32)
    acts, zs = [], []
    for o in obs_seq:
        z = np.clip(z + g * o[idx], -lim, lim).astype(np.float32)
        x = np.clip((np.concatenate([o, z]) - mean) / std, -c, c)
        for i in range(n):
            x = d[f"layers.{i}.weight"].double().numpy() @ x + d[f"layers.{i}.bias"].double().numpy()
            if i < n - 1:
                x = np.tanh(x)
        acts.append(np.clip(x, -1, 1))
        zs.append(z)
    return np.array(acts), np.array(zs)


def test_v1_loads_as_stateless_and_the_spec_round_trips():
    from firmware_export.policy_file import PolicySpec

    v1 = parse_policy(make_policy())
    assert v1.state_dim == 0 and v1.format == "robolearn.actor/1" and v1.net_in_dim == v1.obs_dim
    d2 = make_v2_policy(k=3)
    v2 = PolicySpec.from_dict(d2)
    assert (v2.obs_dim, v2.state_dim, v2.net_in_dim, v2.format) == (26, 3, 29, "robolearn.actor/2")
    assert v2.layer_sizes == [29, 32, 32, 4]
    for spec, d in ((v1, make_policy()), (v2, d2)):
        back = spec.to_dict()
        assert set(back) == set(d)
        again = PolicySpec.from_dict(back)
        for a, b in zip(again.weights + [again.obs_mean, again.obs_std], spec.weights + [spec.obs_mean, spec.obs_std]):
            assert np.array_equal(a, b)
        assert np.array_equal(again.integrator_index, spec.integrator_index)
        assert (again.integrator_gain, again.integrator_limit) == (spec.integrator_gain, spec.integrator_limit)
    # a v2 file without integrator keys is stateless and acts like v1
    d1 = make_policy(seed=3)
    v2k0 = parse_policy(dict(d1, format="robolearn.actor/2"))
    obs = observations(d1, 100)
    from firmware_export.policy_file import forward_numpy

    assert v2k0.state_dim == 0 and v2k0.format == "robolearn.actor/1"  # saved back as v1: nothing of v2 in it
    np.testing.assert_array_equal(forward_numpy(v2k0, obs), forward_numpy(parse_policy(d1), obs))


def test_numpy_and_onnx_episodes_follow_the_contract():
    """The exporter's numpy episode reference and the ONNX graph (state fed back through
    state_in/state_out) against the contract written out independently, step by step."""
    from firmware_export.onnx_export import STATE_IN, STATE_OUT, run_onnx_episodes
    from firmware_export.policy_file import episodes_numpy
    from firmware_export.verify import random_episodes

    d = make_v2_policy(k=3)
    spec = parse_policy(d)
    eps = random_episodes(spec, 5, 300, seed=2)
    model = build_onnx(spec, 0.0, 21702.0)
    assert [i.name for i in model.graph.input] == ["obs", STATE_IN]
    assert [o.name for o in model.graph.output] == ["action", "rpm", STATE_OUT]
    n_act, n_z = episodes_numpy(spec, eps)
    o_act, _, o_z = run_onnx_episodes(onnx_session(model.SerializeToString()), eps)
    for e in range(5):
        want_a, want_z = _reference_episode(d, eps[e])
        np.testing.assert_array_equal(n_z[e], want_z)
        np.testing.assert_array_equal(o_z[e], want_z)
        # (the exporter multiplies by float32(1 / std), the contract above divides: ~1e-7 apart)
        assert np.abs(n_act[e] - want_a).max() <= 1e-6 and np.abs(o_act[e] - want_a).max() <= TOL
    assert np.isclose(np.abs(n_z).max(), spec.integrator_limit)  # the anti-windup clamp is reached
    # a stateless graph keeps its interface
    v1 = build_onnx(parse_policy(make_policy()), 0.0, 21702.0)
    assert [i.name for i in v1.graph.input] == ["obs"] and [o.name for o in v1.graph.output] == ["action", "rpm"]


def test_export_of_a_stateful_policy(tmp_path):
    """robolearn export of a v2 run: whole episodes verified through ONNX and C, the state
    in the manifest, the budget figures in the report."""
    run = make_run(tmp_path / "run", make_v2_policy(k=3))
    report = export(run, run / "export", n_random=500, record_envs=8, record_steps=60, closed_loop_episodes=4)
    v = report["verification"]
    for key in ("episodes_onnx_vs_torch", "episodes_c_vs_onnx"):
        assert v[key]["max_abs_action"] <= TOL and v[key]["max_abs_state"] <= TOL and v[key]["steps"] > 4000
    m = json.loads((run / "export" / "manifest.json").read_text())
    assert m["state"]["dim"] == 3 and m["state"]["integrator"]["index"] == [0, 1, 2]
    assert m["files"]["onnx"]["state"] == {"input": "state_in", "output": "state_out", "shape": ["batch", 3]}
    assert "policy.c" in report["files"] and "manifest.json" in report["files"]
    assert report["targets"]["weight_bytes_ok"] and report["network"]["layers"][0] == 29

"""The one typed policy format (issue 26): ``firmware_export.policy_file.PolicySpec``.

The fixtures (``tests/fixtures/``, made by ``make_policy_fixtures.py`` with the code before
this format) are real ``policy.pt`` files of both formats written by the trainer, with the
actions, finished layers and evaluation that code gave: old run directories must still load,
act, finish and export the same.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from firmware_export.policy_file import PolicySpec, episodes_numpy, inverse_std, load_policy, parse_policy
from robolearn.config import dump_config, load_config
from robolearn.errors import CheckpointError
from robolearn.networks import DeterministicActor, actor_from_spec, spec_from_actor, with_integrator
from robolearn.integrator import IntegratorSpec
from robolearn.normalizer import FrozenNorm, RunningNorm
from robolearn.policy import read_policy, save_policy

ROOT = Path(__file__).resolve().parent.parent
FIX = ROOT / "tests" / "fixtures"
CONFIGS = {"v1": "configs/quadrotor_hover_l2f.yaml", "v2": "configs/quadrotor_hover.yaml"}
EXPECTED = np.load(FIX / "policy_expected.npz")


def _torch_episodes(actor: DeterministicActor, obs: np.ndarray) -> np.ndarray:
    """Actions (E, T, act) of ``actor`` flying (E, T, obs) observations after one reset."""
    out = np.zeros((*obs.shape[:2], actor.act_dim), np.float32)
    with torch.no_grad():
        actor.reset_state()
        for t in range(obs.shape[1]):
            out[:, t] = actor(torch.from_numpy(obs[:, t])).numpy()
    return out


@pytest.mark.parametrize("name", ["v1", "v2"])
def test_old_policy_files_load_and_act_as_they_did(name: str) -> None:
    path = FIX / f"policy_{name}.pt"
    raw = torch.load(path, weights_only=True)  # still a weights-only file
    spec = read_policy(path)
    assert spec.format == f"robolearn.actor/{name[1]}" == raw["format"]
    assert spec.state_dim == (3 if name == "v2" else 0)
    got = _torch_episodes(actor_from_spec(spec), EXPECTED[f"{name}_obs"])
    # the fixture's actions came from the code before this format: bit-identical here, 1e-6 allowed
    np.testing.assert_allclose(got, EXPECTED[f"{name}_actions"], rtol=0, atol=1e-6)


@pytest.mark.parametrize("name", ["v1", "v2"])
def test_spec_file_spec_round_trip_keeps_keys_values_and_hash(name: str, tmp_path: Path) -> None:
    spec = read_policy(FIX / f"policy_{name}.pt")
    save_policy(spec, tmp_path / "policy.pt")
    again = read_policy(tmp_path / "policy.pt")
    old = torch.load(FIX / f"policy_{name}.pt", weights_only=True)
    new = torch.load(tmp_path / "policy.pt", weights_only=True)
    assert list(new) == list(old)  # the on-disk keys, in order
    for k, v in old.items():
        if isinstance(v, torch.Tensor):
            assert new[k].dtype == v.dtype and torch.equal(new[k], v), k
        else:
            assert new[k] == v, k
    assert again.content_sha256 == spec.content_sha256
    assert again.sha256 != spec.sha256 or again.sha256 is not None  # both are file hashes, set on load
    changed = spec.replace(obs_mean=spec.obs_mean + np.float32(1e-3))
    assert changed.content_sha256 != spec.content_sha256 and changed.path is None and changed.sha256 is None
    assert not np.shares_memory(changed.weights[0], spec.weights[0])


@pytest.mark.parametrize("name", ["v1", "v2"])
def test_torch_module_equals_numpy_forward_over_an_episode(name: str) -> None:
    """The robolearn torch actor and the exporter's numpy reference: one formula, 1e-6,
    the integrator state included (T steps after one reset)."""
    spec = read_policy(FIX / f"policy_{name}.pt")
    rng = np.random.default_rng(3)
    n = spec.obs_dim
    obs = (spec.obs_mean[:n] + np.cumsum(rng.standard_normal((8, 60, n)), axis=1) * spec.obs_std[:n]).astype(np.float32)
    ref, states = episodes_numpy(spec, obs, dtype=np.float64)
    actor = actor_from_spec(spec)
    got = _torch_episodes(actor, obs)
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-6)
    if spec.state_dim:
        assert np.abs(states).max() > 0.5 * spec.integrator_limit  # the state was exercised, clamp included
        assert actor._z is not None
        np.testing.assert_array_equal(actor._z.numpy(), states[:, -1])  # float32 integrator, bit-identical


@pytest.mark.parametrize("name", ["v1", "v2"])
def test_old_run_directories_export(name: str, tmp_path: Path) -> None:
    from firmware_export import export

    run = tmp_path / "run"
    run.mkdir()
    shutil.copyfile(FIX / f"policy_{name}.pt", run / "policy.pt")
    (run / "config.yaml").write_text(dump_config(load_config(ROOT / CONFIGS[name])))
    report = export(run, run / "export", formats=("onnx", "c"), n_random=2000, record_envs=4, record_steps=40,
                    closed_loop_episodes=4)
    assert (run / "export" / "policy.onnx").is_file() and (run / "export" / "policy.c").is_file()
    assert report["source"]["policy_sha256"] == load_policy(run / "policy.pt").sha256


def test_the_finishing_stages_and_the_evaluation_give_what_they_gave() -> None:
    """Polish, trim and evaluation of the v1 fixture on the tiny settings it was finished with."""
    from robolearn.tasks.quadrotor.evaluate import evaluate
    from robolearn.tasks.quadrotor.polish import polish_from_config
    from robolearn.tasks.quadrotor.trim import trim_from_config

    fin = json.loads((FIX / "policy_finished.json").read_text())
    cfg = load_config(ROOT / CONFIGS["v1"], fin["finish_overrides"])
    spec = read_policy(FIX / "policy_v1.pt")
    spec, rows = polish_from_config(cfg, spec)
    for row, want in zip(rows, fin["polish_rows"], strict=True):
        # the normalizer is now (x - mean) * inv_std (was / std in the polish): fitness within 1e-7
        assert {k: row[k] for k in want} == pytest.approx(want, rel=1e-6, abs=1e-7)
    spec, trim = trim_from_config(cfg, spec)
    assert (trim["episodes"], trim["survivors"]) == (fin["trim"]["episodes"], fin["trim"]["survivors"])
    assert trim["offset_m"] == pytest.approx(fin["trim"]["offset_m"], abs=1e-7)
    for i, (w, b) in enumerate(zip(spec.weights, spec.biases)):
        np.testing.assert_allclose(w, EXPECTED[f"v1_finished.layers.{i}.weight"], rtol=0, atol=1e-6)
        np.testing.assert_allclose(b, EXPECTED[f"v1_finished.layers.{i}.bias"], rtol=0, atol=1e-6)
    np.testing.assert_allclose(spec.obs_mean, EXPECTED["v1_finished.obs_mean"], rtol=0, atol=1e-6)
    result, _ = evaluate(actor_from_spec(spec), cfg)
    for k in ("survival_rate", "position_error_m", "tilt_deg", "yaw_deg"):
        assert result[k] == pytest.approx(fin["eval"][k], rel=1e-5), k
    assert result["nominal"]["return_mean"] == pytest.approx(fin["eval"]["nominal"]["return_mean"], rel=1e-5)


def test_the_running_statistics_are_converted_once_into_mean_and_std() -> None:
    g = torch.Generator().manual_seed(0)
    norm = RunningNorm(5, clip=7.0)
    norm.update(torch.randn(1000, 5, generator=g) * torch.tensor([0.01, 1.0, 3.0, 100.0, 1e-5]) + 2.0)
    actor = DeterministicActor(5, 2, [4], "elu", obs_clip=7.0)
    actor.norm = norm
    spec = actor.spec()
    assert spec.obs_mean.dtype == spec.obs_std.dtype == np.float32 and spec.obs_clip == 7.0
    np.testing.assert_array_equal(spec.obs_mean, norm.mean.numpy().astype(np.float32))
    np.testing.assert_array_equal(spec.obs_std, np.sqrt(norm.var.numpy() + norm.eps).astype(np.float32))
    # loaded back, the normalizer is the spec's: the same constants the exports use
    loaded = actor_from_spec(parse_policy(spec.to_dict()))
    assert isinstance(loaded.norm, FrozenNorm)
    np.testing.assert_array_equal(loaded.norm.inv_std.numpy(), inverse_std(spec.obs_std))
    np.testing.assert_array_equal(loaded.norm.frozen()[1], spec.obs_std)
    assert loaded.spec().content_sha256 == spec.content_sha256  # builder and writer round-trip


def test_a_trainers_integrator_becomes_format_2() -> None:
    integ = IntegratorSpec((0, 2), gain=0.01, limit=0.5)
    actor = DeterministicActor(6 + 2, 3, [4], "tanh")  # the trainer's actor reads concat(obs, z) as one input
    spec = with_integrator(spec_from_actor(actor.norm, actor.net, "tanh"), integ)
    assert (spec.format, spec.obs_dim, spec.net_in_dim, list(spec.integrator_index)) == ("robolearn.actor/2", 6, 8, [0, 2])
    d = spec.to_dict()
    assert d["integrator.gain"] == 0.01 and d["integrator.limit"] == 0.5
    assert parse_policy(d).content_sha256 == spec.content_sha256
    assert actor_from_spec(spec).integrator == integ


@pytest.mark.parametrize("content,fragment", [
    (b"not a torch file", "corrupt or not a torch file"),
    ("missing_key", "missing key 'obs_std'"),
    ("nan", "NaN or infinity"),
    ("bad_std", "obs_std must be > 0"),
])
def test_a_bad_policy_file_is_one_line_naming_the_problem(tmp_path: Path, content: object, fragment: str) -> None:
    path = tmp_path / "policy.pt"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        d = torch.load(FIX / "policy_v1.pt", weights_only=True)
        if content == "missing_key":
            del d["obs_std"]
        elif content == "nan":
            d["layers.1.bias"][0] = float("nan")
        else:
            d["obs_std"][3] = 0.0
        torch.save(d, path)
    with pytest.raises(CheckpointError) as e:
        read_policy(path)
    msg = str(e.value)
    assert fragment in msg and str(path) in msg and "\n" not in msg, msg


def test_a_missing_policy_file_says_how_to_get_one(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="train one first"):
        read_policy(tmp_path / "policy.pt")


def test_the_spec_is_the_type_the_stages_pass_on() -> None:
    """Training's export, the polish, the trim and the evaluation exchange PolicySpec objects."""
    from robolearn.tasks.quadrotor.polish import with_parameters, flatten
    from robolearn.tasks.quadrotor.trim import trimmed

    spec = read_policy(FIX / "policy_v1.pt")
    assert isinstance(with_parameters(spec, flatten(spec)), PolicySpec)
    moved = trimmed(spec, np.array([0.01, 0.0, -0.02]))
    assert isinstance(moved, PolicySpec)
    np.testing.assert_allclose(moved.obs_mean[:3] - spec.obs_mean[:3], [-0.01, 0.0, 0.02], atol=1e-6)
    np.testing.assert_array_equal(moved.obs_mean[3:], spec.obs_mean[3:])


def test_the_polish_refuses_a_stateful_actor_in_one_line() -> None:
    from robolearn.tasks.quadrotor.polish import flatten, fly

    spec = read_policy(FIX / "policy_v2.pt")
    with pytest.raises(ValueError, match="polish.iterations=0") as e:
        fly(spec, flatten(spec)[None], None, np.zeros((1, 17), np.float32), 1, 0.6, seed=0)
    assert "\n" not in str(e.value)

"""benchmarks/distill.py: DAgger from one hover policy into another actor."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from benchmarks.distill import distill, imitation_loss
from robolearn.config import dump_config, load_config
from robolearn.envs import make_env
from robolearn.errors import UserError
from robolearn.networks import DeterministicActor, export_actor
from robolearn.policy import load_policy
from sims.quadrotor import params as P

OVERRIDES = ["eval.episodes=16", "eval.episode_steps=40", "eval.randomized=false", "eval.plots=false"]
A_HOVER = P.hover_action("l2f_paper")


def _run(d: Path, actor: DeterministicActor, history: int = 8) -> Path:
    cfg = load_config("configs/quadrotor_hover_l2f.yaml", [*OVERRIDES, f"env.sim.action_history={history}"])
    d.mkdir()
    (d / "config.yaml").write_text(dump_config(cfg))
    torch.save(export_actor(actor.norm, actor.net, actor.activation), d / "policy.pt")
    return d


def _constant_actor(obs_dim: int, value: float, hidden: list[int]) -> DeterministicActor:
    actor = DeterministicActor(obs_dim, 4, hidden, "tanh")
    with torch.no_grad():
        actor.net[-1].weight.zero_()
        actor.net[-1].bias.fill_(value)
    return actor.eval()


def test_imitation_loss_ignores_only_errors_the_clip_removes() -> None:
    raw = torch.tensor([[1.5, -1.5, 1.5, 0.2]])
    target = torch.tensor([[1.0, -1.0, 0.5, 0.0]])
    # the first two command the same clipped value; the third is 1.0 too high, the fourth 0.2
    assert imitation_loss(raw, target).item() == pytest.approx((1.0 ** 2 + 0.2 ** 2) / 4)


def test_student_learns_the_teachers_commands_and_is_a_run_directory(tmp_path: Path) -> None:
    teacher = _run(tmp_path / "teacher", _constant_actor(50, A_HOVER, [8]))
    student = _run(tmp_path / "student", _constant_actor(50, -1.0, [6, 6]))
    out = tmp_path / "out"
    r = distill(teacher, student, out, rounds=2, envs=64, steps=20, hard_fraction=0.5, epochs=30, lr=1e-2,
                batch=128, pool_draws=2000, hard_eval=0)
    pol = load_policy(out / "policy.pt")
    assert pol.hidden == [6, 6]  # the student's architecture, not the teacher's
    obs, _ = make_env(load_config(out / "config.yaml", []), num_envs=64, seed=5, backend="cpu").reset(seed=5)
    # it started 1.33 away from the teacher's command on every rotor
    dev = (pol(torch.from_numpy(obs["policy"])) - A_HOVER).abs()
    assert dev.mean().item() < 0.05 and dev.max().item() < 0.5
    h = json.loads((out / "distill.json").read_text())["history"]
    assert h[0]["student"]["survival_rate"] < h[-1]["student"]["survival_rate"]  # no thrust falls, hover holds
    assert r["nominal"]["episodes"] == 16 and (out / "eval.json").is_file() and (out / "config.yaml").is_file()


def test_mismatched_observations_and_non_runs_are_one_line_errors(tmp_path: Path) -> None:
    teacher = _run(tmp_path / "teacher", _constant_actor(50, A_HOVER, [8]))
    student = _run(tmp_path / "student", _constant_actor(26, A_HOVER, [8]), history=2)
    with pytest.raises(UserError, match="action_history"):
        distill(teacher, student, tmp_path / "out", rounds=1, envs=4, steps=2, hard_eval=0, pool_draws=100)
    with pytest.raises(UserError, match="not a run directory"):
        distill(tmp_path, student, tmp_path / "out", rounds=1, hard_eval=0)


def test_cli_rejects_a_non_run_in_one_line(tmp_path: Path) -> None:
    from test_cli import assert_one_line_error, robolearn

    student = _run(tmp_path / "student", _constant_actor(50, A_HOVER, [8]))
    assert_one_line_error(robolearn("bench", "distill", "--teacher", tmp_path / "nope", "--student", student,
                                    "--out", tmp_path / "out"), "run directory not found", "nope")

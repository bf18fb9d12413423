"""benchmarks/failures.py: which evaluation starts a policy fails, and the hard-corner pool."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from benchmarks.failures import analyse, hard_corner, survival
from robolearn.config import load_config
from robolearn.tasks.quadrotor.env import EvalBlock
from robolearn.tasks.quadrotor.evaluate import run_block
from robolearn.tasks.quadrotor.hard_starts import is_hard, start_conditions
from sims.quadrotor import params as P

from hover_helpers import hover_actor, write_hover_run

OVERRIDES = ["eval.episodes=200", "eval.episode_steps=50"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_hover_run(tmp_path_factory.mktemp("run"), OVERRIDES)


def test_survival_replays_the_evaluation_block(run_dir: Path) -> None:
    cfg = load_config(run_dir / "config.yaml")
    actor = hover_actor(50)
    surv, rel0 = survival(actor, cfg, cfg.eval.episodes, cfg.eval.seed)
    ref, _ = run_block(actor, cfg, EvalBlock({}), cfg.eval.episodes, cfg.eval.seed)
    assert surv.mean() == pytest.approx(ref["survival_rate"])
    assert 0.0 < surv.mean() < 1.0  # the constant command survives some 0.5 s episodes, not all
    assert np.all(np.abs(rel0[:, :3]) <= 0.2 + 1e-6)  # the default start box


def test_hard_corner_is_a_subset_of_the_start_distribution(run_dir: Path) -> None:
    cfg = load_config(run_dir / "config.yaml")
    pool = hard_corner(cfg, 300, draw=2000)
    assert pool.shape == (300, P.STATE_DIM)
    assert is_hard(pool).all()
    c = start_conditions(pool)
    assert c["tilt_deg"].max() <= 90.0 + 1e-3 and c["tilt_deg"].min() > 40.0
    assert np.all(np.abs(pool[:, :3]) <= 0.2 + 1e-6) and np.all(np.abs(pool[:, 7:10]) <= 1.0 + 1e-6)
    # a constant hover command loses more of these tilted, falling starts than of the whole distribution
    actor = hover_actor(50)
    hard_surv, rel0 = survival(actor, cfg, 0, 7, starts=pool)
    np.testing.assert_allclose(rel0, pool, atol=1e-6)  # the episodes start where they were told
    all_surv, _ = survival(actor, cfg, 300, 7)
    assert hard_surv.mean() < all_surv.mean() - 0.1


def test_analyse_counts_failures_across_runs(run_dir: Path) -> None:
    r = analyse([run_dir, run_dir], hard=100)
    a, b = r["runs"]
    assert a["failed"] == b["failed"] and len(a["failed"]) == round((1 - a["survival_rate"]) * a["episodes"])
    assert r["failed_by_all"] == sorted(a["failed"])
    assert all(s["failed_by"] == 2 for s in r["starts"])
    assert a["hard_corner_starts"] == 100 and 0.0 <= a["hard_corner_survival"] <= 1.0


def test_cli_lists_failures_and_rejects_a_non_run(run_dir: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from robolearn.cli import app

    out = tmp_path / "f.json"
    res = CliRunner().invoke(app, ["bench", "failures", str(run_dir), "--hard", "50", "--json", str(out)])
    assert res.exit_code == 0, res.output
    assert "starts failed by all 1 runs" in res.output and out.is_file()
    from test_cli import assert_one_line_error, robolearn

    assert_one_line_error(robolearn("bench", "failures", tmp_path / "nope"), "run directory not found", "nope")

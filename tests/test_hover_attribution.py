"""benchmarks/hover_attribution.py: the replay matches the evaluation, pins reproduce episodes,
the bins count every episode, and the counterfactuals change what they say they change."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from benchmarks.hover_attribution import factors, replay, run_attribution
from robolearn.config import load_config
from robolearn.errors import UserError
from robolearn.tasks.quadrotor.env import eval_blocks
from robolearn.tasks.quadrotor.evaluate import run_block
from sims.quadrotor import params as P

from hover_helpers import hover_actor, write_hover_run

OVERRIDES = ["eval.episodes=160", "eval.episode_steps=60", "eval.vehicles=[]"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_hover_run(tmp_path_factory.mktemp("run"), OVERRIDES)


def test_replay_matches_the_evaluation_and_pinned_draws_reproduce_it(run_dir: Path) -> None:
    cfg = load_config(run_dir / "config.yaml")
    actor = hover_actor(50)
    block = eval_blocks(cfg)["real_range"]
    n, seed = cfg.eval.episodes, cfg.eval.seed
    r = replay(actor, cfg, block, n, seed)
    ref, _ = run_block(actor, cfg, block, n, seed)
    assert r["survived"].mean() == pytest.approx(ref["survival_rate"])
    assert 0.0 < r["survived"].mean() < 1.0
    # the parameters really vary in this block, and pinning every env to its own draw flies the same episodes
    assert np.ptp(r["params"][:, P.P_MASS]) > 0.1
    again = replay(actor, cfg, block, n, seed, pin=r["params"][:, :P.NUM_RANDOMIZATION])
    np.testing.assert_array_equal(again["survived"], r["survived"])
    np.testing.assert_array_equal(again["t_end"], r["t_end"])
    np.testing.assert_allclose(again["start"], r["start"])


def test_factors_and_counterfactuals(run_dir: Path) -> None:
    res = run_attribution(run_dir, ["real_range"])
    b = res["blocks"]["real_range"]
    assert b["survival_rate"] == pytest.approx(b["eval_json_survival_rate"] or b["survival_rate"])
    assert b["failed"] > 0
    for rows in b["bins"].values():  # every episode lies in exactly one bin, and so does every failure
        assert sum(r["episodes"] for r in rows) == b["episodes"]
        assert sum(r["failed"] for r in rows) == b["failed"]
    # a constant hover command fails the tumbling starts: level at rest at the target, most are saved
    assert b["easy_start_survived"] > 0.5
    assert b["failed_mean"]["tilt_deg"] > b["all_mean"]["tilt_deg"]
    assert 0.0 <= b["early_share"] <= 1.0 and sum(b["bound_share"].values()) == pytest.approx(1.0)


def test_thrust_to_weight_factor() -> None:
    from sims.quadrotor.vehicles import get

    params = np.tile(np.array([p.default[0] for p in P.PARAMS], np.float32), (2, 1))
    params[1, P.P_MASS] = 1.2
    params[1, P.P_KF] = 0.9
    r = {"params": params, "start": np.zeros((2, P.STATE_DIM), np.float32), "dist_force": np.zeros((2, 3)),
         "t_end": np.array([10, 500])}
    f = factors(r, "crazyflie_2_1", 0.01, 9.81)
    tw = get("crazyflie_2_1").thrust_to_weight(9.81)
    np.testing.assert_allclose(f["thrust_to_weight"], [tw, tw * 0.9 / 1.2], rtol=1e-5)
    np.testing.assert_allclose(f["crash_time_s"], [0.1, 5.0])


def test_unknown_block_is_a_one_line_error(run_dir: Path) -> None:
    with pytest.raises(UserError, match="not in this run's evaluation"):
        run_attribution(run_dir, ["sideways"])


def test_cli_prints_the_attribution_and_rejects_a_bad_block(run_dir: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from robolearn.cli import app

    out = tmp_path / "a.json"
    res = CliRunner().invoke(app, ["bench", "attribution", str(run_dir), "--blocks", "nominal", "--json", str(out)])
    assert res.exit_code == 0, res.output
    assert "== nominal: survival" in res.output and out.is_file()
    from test_cli import assert_one_line_error, robolearn

    assert_one_line_error(robolearn("bench", "attribution", str(run_dir), "--blocks", "sideways"),
                          "not in this run's evaluation", "sideways")

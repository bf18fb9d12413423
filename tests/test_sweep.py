"""``robolearn sweep``: grid parsing, the summary statistics, one-line CLI errors, and a
real sweep of tiny runs on a local Ray instance (2 CPUs) checked against the trials' own
eval.json files.

All Ray work is in one test function, so the module starts Ray once even when
pytest-xdist spreads the other tests over workers.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import pytest
import yaml

from robolearn.errors import UserError
from robolearn.sweep import mean_ci95, metric_value, parse_grid, plan, split_values
from cli_helpers import assert_error, cli

ROOT = Path(__file__).resolve().parent.parent
T975 = {1: 12.706204736174707, 2: 4.302652729749464}  # Student t 0.975 quantiles, df = 1, 2

TINY = """
env:
  num_envs: 16
  sim: {task: hover, episode_steps: 100}
network: {actor_hidden: [16], critic_hidden: [16]}
ppo: {rollout_steps: 16, epochs: 1, minibatches: 1}
train: {total_env_steps: 512, checkpoint_every_s: 60}
eval: {episodes: 8, episode_steps: 50, plots: false}
"""


# ----------------------------------------------------------------------------- no Ray
def test_split_values_keeps_commas_inside_brackets():
    assert split_values("1e-3, 3e-4") == ["1e-3", "3e-4"]
    assert split_values("[0.9,1.1],[0.8,1.2]") == ["[0.9,1.1]", "[0.8,1.2]"]
    assert split_values("{a: 1, b: 2},x") == ["{a: 1, b: 2}", "x"]


def test_parse_grid_and_plan_cover_the_product(tmp_path):
    grid = parse_grid(["ppo.lr=1e-3,3e-4", "env.ranges.randomization.mass_scale=[0.9,1.1],[0.8,1.2]"])
    assert grid == [("ppo.lr", ["1e-3", "3e-4"]),
                    ("env.ranges.randomization.mass_scale", ["[0.9,1.1]", "[0.8,1.2]"])]
    trials = plan(grid, 3, tmp_path)
    assert len(trials) == 2 * 2 * 3
    assert len({t.run_dir for t in trials}) == len(trials)
    assert {(t.point, t.seed) for t in trials} == {(p, s) for p in range(4) for s in range(3)}
    assert trials[3].overrides == ["ppo.lr=1e-3", "env.ranges.randomization.mass_scale=[0.8,1.2]"]
    assert plan([], 2, tmp_path)[1].overrides == [] and plan([], 2, tmp_path)[1].seed == 1


@pytest.mark.parametrize("item, fragment", [
    ("ppo.lr", "expected KEY=V1,V2"), ("=1,2", "expected KEY=V1,V2"), ("ppo.lr=1,,2", "empty value"),
    ("seed=1,2", "--seeds")])
def test_parse_grid_rejects(item, fragment):
    with pytest.raises(UserError, match=fragment):
        parse_grid([item])


def test_parse_grid_rejects_a_key_given_twice():
    with pytest.raises(UserError, match="given twice"):
        parse_grid(["ppo.lr=1", "ppo.lr=2"])


def test_mean_ci95_is_the_student_t_interval():
    mean, half = mean_ci95([1.0, 2.0, 3.0])
    assert mean == pytest.approx(2.0) and half == pytest.approx(T975[2] * 1.0 / math.sqrt(3))
    assert mean_ci95([5.0]) == (5.0, None) and mean_ci95([]) == (None, None)
    assert metric_value({"nominal": {"survival_rate": 0.5, "position_error_m": None}}, "nominal.survival_rate") == 0.5
    assert metric_value({"nominal": {"position_error_m": None}}, "nominal.position_error_m") is None
    assert metric_value({}, "real_range.survival_rate") is None


def test_cli_errors_are_one_line_and_start_no_ray(tmp_path, capsys):
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(TINY)
    assert_error(*cli("sweep", cfg, "--grid", "ppo.lr", capsys=capsys)[::2], "--grid 'ppo.lr'")
    assert_error(*cli("sweep", tmp_path / "missing.yaml", capsys=capsys)[::2], "config file not found")
    assert_error(*cli("sweep", cfg, "--seeds", "0", capsys=capsys)[::2], "--seeds")
    assert_error(*cli("sweep", cfg, "--set", "ppo.lr", capsys=capsys)[::2], "--set 'ppo.lr'")
    assert_error(*cli("sweep", cfg, "--set", "ppo.lr=-1", capsys=capsys)[::2], "'ppo.lr' = -1")
    assert_error(*cli("sweep", cfg, "--address", "nonsense", capsys=capsys)[::2], "HOST:PORT")
    assert_error(*cli("sweep", cfg, "--address", "127.0.0.1:1", capsys=capsys)[::2], "no Ray cluster answers")
    (tmp_path / "done").mkdir()
    (tmp_path / "done" / "summary.json").write_text("{}")
    assert_error(*cli("sweep", cfg, "--out", tmp_path / "done", capsys=capsys)[::2], "already holds a sweep")


# ----------------------------------------------------------------------------- on Ray
@pytest.fixture(scope="module")
def ray_session():
    ray = pytest.importorskip("ray", reason="ray is not installed (pip install ray)")
    t0 = time.perf_counter()
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="error")
    print(f"ray.init: {time.perf_counter() - t0:.1f} s")
    yield ray
    ray.shutdown()


def test_sweep_on_local_ray(ray_session, tmp_path, capsys):
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(TINY)
    out = tmp_path / "sweep"
    # 2 learning rates x 2 seeds that train, and a grid value the config rejects.
    t0 = time.perf_counter()
    code, stdout, stderr = cli("sweep", cfg, "--seeds", 2, "--grid", "ppo.lr=1e-3,3e-4,-1", "--retries", 1,
                               "--set", "ppo.epochs=2", "--out", out, capsys=capsys)
    print(f"sweep of 6 trials: {time.perf_counter() - t0:.1f} s")
    assert code == 1, stderr  # some trials failed

    # Every training left an ordinary run directory, configured as robolearn train --set ... --seed would.
    from robolearn.policy import load_policy

    runs = sorted(p.parent for p in out.glob("*/config.yaml"))
    assert len(runs) == 4
    by_lr: dict[float, list[dict]] = {}
    for run in runs:
        c = yaml.safe_load((run / "config.yaml").read_text())
        assert run.name.endswith(f"-s{c['seed']}") and c["ppo"]["epochs"] == 2 and c["train"]["torch_threads"] == 1
        assert (run / "metrics.csv").is_file() and any((run / "checkpoints").iterdir())
        load_policy(run / "policy.pt")
        by_lr.setdefault(c["ppo"]["lr"], []).append(json.loads((run / "eval.json").read_text()))
    assert sorted(by_lr) == [3e-4, 1e-3] and all(len(v) == 2 for v in by_lr.values())

    # The summary is the mean and Student-t 95 % CI of those files, per grid point.
    summary = json.loads((out / "summary.json").read_text())
    points = {p["label"]: p for p in summary["points"]}
    assert set(points) == {"ppo.lr=1e-3", "ppo.lr=3e-4", "ppo.lr=-1"}
    assert "nominal.survival_rate" in summary["metrics"] and "real_range.position_error_m" in summary["metrics"]
    for lr, label in ((1e-3, "ppo.lr=1e-3"), (3e-4, "ppo.lr=3e-4")):
        p = points[label]
        assert (p["seeds_ok"], p["seeds_failed"]) == (2, 0)
        for m in summary["metrics"]:
            vals = [metric_value(e, m) for e in by_lr[lr]]
            vals = [v for v in vals if v is not None]
            s = p["metrics"][m]
            assert s["n"] == len(vals) and sorted(s["values"]) == pytest.approx(sorted(vals))
            if len(vals) == 2:
                mean = (vals[0] + vals[1]) / 2
                sd = abs(vals[0] - vals[1]) / math.sqrt(2)
                assert s["mean"] == pytest.approx(mean) and s["ci95"] == pytest.approx(T975[1] * sd / math.sqrt(2))

    # The rejected value: both seeds failed after 1 + 1 attempts, each error kept, nothing dropped.
    bad = points["ppo.lr=-1"]
    assert (bad["seeds_ok"], bad["seeds_failed"]) == (0, 2)
    assert all(s["n"] == 0 and s["mean"] is None for s in bad["metrics"].values())
    failed = summary["failed"]
    assert len(failed) == 2 and len(summary["trials"]) == 6
    for t in failed:
        assert t["status"] == "failed" and t["attempts"] == 2 and t["retries"] == 1 and len(t["errors"]) == 2
        assert all("ppo.lr" in e and "ConfigError" in e for e in t["errors"])
    assert stdout.count("failed: p2-ppo.lr=-1-s") == 2 and "1 retries" in stdout
    assert stderr.count("retrying") == 2

    rows = (out / "summary.csv").read_text().splitlines()
    assert len(rows) == 4 and rows[0].startswith("point,label,seeds_ok,seeds_failed,nominal.survival_rate_mean")
    assert rows[3].startswith("2,ppo.lr=-1,0,2,")
    assert (out / "summary.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_retry_starts_clean_or_resumes_from_the_checkpoint(tmp_path):
    """run_trial is what each Ray task runs; called here in-process."""
    import numba

    from robolearn.sweep import run_trial

    threads = numba.get_num_threads()
    base = yaml.safe_load(TINY)
    run = tmp_path / "p0-s1"
    try:
        # an attempt that died before its first checkpoint left a partial directory
        run.mkdir()
        (run / "metrics.csv").write_text("iteration,env_steps\n999,999\n")
        first = run_trial(base, ["ppo.lr=3e-4"], 1, str(run))
        rows = (run / "metrics.csv").read_text().splitlines()
        assert not any(r.startswith("999,") for r in rows) and len(rows) == 1 + 2  # header + 2 iterations
        cfg = yaml.safe_load((run / "config.yaml").read_text())
        assert cfg["seed"] == 1 and cfg["ppo"]["lr"] == 3e-4 and cfg["train"]["torch_threads"] == 1
        assert numba.get_num_threads() == 1
        # with a checkpoint, a retry continues that run instead of training again
        again = run_trial(base, ["ppo.lr=3e-4"], 1, str(run))
        assert again["eval"]["env_steps"] == first["eval"]["env_steps"] == 512
        assert len((run / "metrics.csv").read_text().splitlines()) == 1 + 2
    finally:
        numba.set_num_threads(threads)

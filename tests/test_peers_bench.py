"""robolearn bench peers: block definitions, same starts for every controller, the table, the CLI."""

from __future__ import annotations

import itertools
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from benchmarks.peers import CORNER_GROUPS, Block, block_env, default_blocks, format_tables, run_peers
from sims.quadrotor.params import REAL_WORLD_RANGES

REPO = Path(__file__).resolve().parent.parent


def test_corners_cover_every_extreme_combination_evenly():
    block = default_blocks()[2]
    assert block.name == "corners" and block.corners == CORNER_GROUPS
    n = 64
    vals = block.corner_values(n)
    assert set(vals) == {p for g in CORNER_GROUPS for p in g}
    combos = []
    for i in range(n):
        key = []
        for g in CORNER_GROUPS:
            v = {float(vals[p][i]) for p in g}
            assert len(v) == 1  # a group moves together
            lo, hi = REAL_WORLD_RANGES[g[0]]
            (x,) = v
            assert x == pytest.approx(lo) or x == pytest.approx(hi)
            key.append(x == pytest.approx(hi))
        combos.append(tuple(key))
    counts = {c: combos.count(c) for c in set(combos)}
    assert len(counts) == 16 and set(counts.values()) == {4}
    assert set(counts) == set(itertools.product([False, True], repeat=4))


def test_blocks_are_data():
    custom = {"randomization.mass_scale": (0.8, 1.3), "randomization.thrust_coeff_scale": (0.8, 1.2),
              "randomization.inertia_xx_scale": (0.7, 1.3), "randomization.inertia_yy_scale": (0.7, 1.3),
              "randomization.inertia_zz_scale": (0.7, 1.3), "randomization.motor_tau_up_scale": (0.6, 1.6),
              "randomization.motor_tau_down_scale": (0.6, 1.6)}
    blocks = default_blocks(custom)
    assert blocks[1].ranges == custom
    assert float(blocks[2].corner_values(16)["randomization.mass_scale"].max()) == pytest.approx(1.3)
    with pytest.raises(ValueError, match="no range"):
        Block("x", {}, CORNER_GROUPS).corner_values(16)


def test_corner_envs_fly_their_corner():
    from robolearn.cli import _default_config
    from robolearn.config import DEFAULT_CONFIG, load_config

    cfg = load_config(_default_config(DEFAULT_CONFIG))
    block = default_blocks()[2]
    env = block_env(cfg, block, 32, 20, seed=3)
    env.reset(seed=3)
    from sims.quadrotor.params import PARAM_INDEX

    ep = env.episode_params
    for name, v in block.corner_values(32).items():
        np.testing.assert_allclose(ep[:, PARAM_INDEX[name]], v, rtol=1e-6)
    # the rest of the real range is still drawn uniformly
    lo, hi = REAL_WORLD_RANGES["randomization.drag_scale"]
    d = ep[:, PARAM_INDEX["randomization.drag_scale"]]
    assert d.min() >= lo and d.max() <= hi and d.std() > 0


def test_run_peers_same_starts_and_table():
    blocks = [Block("nominal"), default_blocks()[2]]
    r1 = run_peers(episodes=32, steps=120, seed=7, blocks=blocks)
    r2 = run_peers(episodes=32, steps=120, seed=7, blocks=blocks)
    for b in ("nominal", "corners"):
        m = r1["blocks"][b]["raptor"]
        assert 0.0 <= m["survival_rate"] <= 1.0
        for k in ("position_error_m", "yaw_deg", "settling_time_s", "command_rate", "high_frequency_share"):
            assert k in m
        assert m == r2["blocks"][b]["raptor"]  # same seed: the same episodes, deterministically
    r3 = run_peers(episodes=32, steps=120, seed=8, blocks=blocks)
    assert r3["blocks"]["nominal"]["raptor"] != r1["blocks"]["nominal"]["raptor"]
    txt = format_tables(r1)
    assert "[nominal]" in txt and "[corners]" in txt and "raptor" in txt


def test_a_run_flies_next_to_raptor_on_the_same_starts(tmp_path):
    """A stand-in policy.pt (a fresh hover-initialised actor) is flown by the same code path as a trained one."""
    import torch

    from robolearn.networks import DeterministicActor, export_actor
    from sims.quadrotor.physics import policy_obs_dim

    run = tmp_path / "run"
    run.mkdir()
    from robolearn.config import dump_config, load_config

    # a run's config.yaml is resolved (no base:), as robolearn train writes it
    (run / "config.yaml").write_text(dump_config(load_config(REPO / "configs" / "quadrotor_hover.yaml")))
    actor = DeterministicActor(policy_obs_dim(8), 4, [8], "tanh")
    torch.save(export_actor(actor.norm, actor.net, actor.activation), run / "policy.pt")
    r = run_peers([str(run)], episodes=16, steps=60, seed=1, blocks=[Block("nominal")])
    assert set(r["blocks"]["nominal"]) >= {"raptor", "run"}


def test_cli_bad_input_is_one_line():
    p = subprocess.run([sys.executable, "-m", "robolearn", "bench", "peers", "--no-raptor", "--episodes", "4"],
                       capture_output=True, text=True, cwd=REPO, env=_env())
    assert p.returncode == 2
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and "nothing to fly" in lines[0]
    p = subprocess.run([sys.executable, "-m", "robolearn", "bench", "peers", "--sim", "gazebo", "--episodes", "4"],
                       capture_output=True, text=True, cwd=REPO, env=_env())
    assert p.returncode == 2 and p.stderr.strip().startswith("error:") and "ours, l2f" in p.stderr
    p = subprocess.run([sys.executable, "-m", "robolearn", "bench", "peers", "--termination-m", "-1"],
                       capture_output=True, text=True, cwd=REPO, env=_env())
    assert p.returncode == 2 and len(p.stderr.strip().splitlines()) == 1 and "positive" in p.stderr


def _env() -> dict:
    import os

    e = dict(os.environ)
    e["PYTHONPATH"] = str(REPO) + os.pathsep + e.get("PYTHONPATH", "")
    return e


def test_missing_l2f_is_a_one_line_hint(monkeypatch):
    from robolearn.errors import UserError
    from robolearn.peers.l2f_env import import_l2f

    monkeypatch.setitem(sys.modules, "l2f", None)  # import l2f now raises ImportError
    with pytest.raises(UserError, match=r"pip install 'robolearn\[l2f\]'") as e:
        import_l2f()
    assert "\n" not in str(e.value)


def test_torch_controller_checks_the_observation_size():
    from robolearn.controllers import TorchActorController
    from robolearn.networks import DeterministicActor

    c = TorchActorController(DeterministicActor(50, 4, [8], "tanh"))
    out = c.act({"policy": np.zeros((3, 50), np.float32)})
    assert out.shape == (3, 4) and np.all(np.abs(out) <= 1)
    with pytest.raises(ValueError, match="action_history"):
        c.act({"policy": np.zeros((3, 26), np.float32)})

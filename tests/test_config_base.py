"""``base:`` in a config file: read another config first and merge this one over it."""

from __future__ import annotations

from pathlib import Path

import pytest

from robolearn.config import config_to_dict, load_config
from robolearn.errors import ConfigError
from robolearn.tasks.quadrotor.env import sim_config


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_base_merges_mappings_key_by_key_and_replaces_other_values(tmp_path: Path) -> None:
    _write(tmp_path / "base.yaml", "ppo:\n  lr: 1.0e-3\n  epochs: 3\nnetwork:\n  actor_hidden: [28, 24]\n"
           "env:\n  ranges:\n    randomization.mass_scale: [0.9, 1.1]\n")
    child = _write(tmp_path / "sub" / "child.yaml", "base: ../base.yaml\nppo:\n  lr: 3.0e-4\nnetwork:\n"
                   "  actor_hidden: [16]\nenv:\n  ranges:\n    randomization.drag_scale: [0.5, 2.0]\n")
    cfg = load_config(child)
    assert cfg.ppo.lr == 3e-4 and cfg.ppo.epochs == 3  # merged inside the mapping
    assert cfg.network.actor_hidden == [16]  # a list is replaced, not merged
    assert cfg.env.ranges == {"randomization.mass_scale": (0.9, 1.1), "randomization.drag_scale": (0.5, 2.0)}
    assert "base" not in config_to_dict(cfg)  # the run directory holds the resolved config


def test_base_chains_and_overrides_apply_last(tmp_path: Path) -> None:
    _write(tmp_path / "a.yaml", "seed: 1\nppo:\n  epochs: 4\n")
    _write(tmp_path / "b.yaml", "base: a.yaml\nseed: 2\n")
    c = _write(tmp_path / "c.yaml", "base: b.yaml\nppo:\n  minibatches: 8\n")
    cfg = load_config(c, ["seed=5"])
    assert (cfg.seed, cfg.ppo.epochs, cfg.ppo.minibatches) == (5, 4, 8)


def test_the_adr_config_is_the_default_through_base() -> None:
    adr = config_to_dict(load_config("configs/quadrotor_hover_adr.yaml"))
    default = config_to_dict(load_config("configs/quadrotor_hover_l2f.yaml"))
    assert adr["curriculum"]["teacher"] == "adr" and adr["network"] == default["network"]


def test_bad_base_is_one_clear_error(tmp_path: Path) -> None:
    missing = _write(tmp_path / "m.yaml", "base: nope.yaml\n")
    with pytest.raises(ConfigError, match=r"config file not found: .*nope\.yaml \(the base of .*m\.yaml\)"):
        load_config(missing)
    _write(tmp_path / "x.yaml", "base: y.yaml\n")
    loop = _write(tmp_path / "y.yaml", "base: x.yaml\n")
    with pytest.raises(ConfigError, match="'base' files form a loop"):
        load_config(loop)
    wrong = _write(tmp_path / "w.yaml", "base: [a.yaml]\n")
    with pytest.raises(ConfigError, match="'base' must be the path of another config file"):
        load_config(wrong)


def test_cli_reports_a_missing_base_on_one_line(tmp_path: Path) -> None:
    from test_cli import assert_one_line_error, robolearn

    p = _write(tmp_path / "child.yaml", "base: gone.yaml\nseed: 1\n")
    assert_one_line_error(robolearn("train", p), "not found", "gone.yaml", "the base of")


def test_env_sim_vehicle_is_validated_with_the_presets_listed():
    from robolearn.config import load_config
    from robolearn.errors import ConfigError

    with pytest.raises(ConfigError, match=r"^config: 'env.sim.vehicle': unknown vehicle 'cf9'; presets: "
                                         r"crazyflie_2_1, crazyflie_2_1_brushless, l2f_paper$"):
        load_config("configs/quadrotor_hover.yaml", ["env.sim.vehicle=cf9"])
    cfg = load_config("configs/quadrotor_hover.yaml", ["env.sim.vehicle=crazyflie_2_1"])
    assert sim_config(cfg).vehicle == "crazyflie_2_1"
    # the shipped configs keep flying the Learning-to-Fly constants
    for name in ("quadrotor_hover_l2f", "quadrotor_reach", "quadrotor_hover_adr"):
        assert load_config(f"configs/{name}.yaml", []).env.sim.vehicle == "l2f_paper"


def test_a_run_config_from_before_the_vehicle_presets_loads_as_l2f_paper(tmp_path):
    from sims.quadrotor.config import migrate_sim_settings

    old = {"env": {"sim": {"task": "hover", "rpm_min": 0.0, "rpm_max": 21702.0}}}
    cfg = load_config(None, base=old)
    assert cfg.env.sim.vehicle == "l2f_paper" and sim_config(cfg).rpm_max == 21702.0
    with pytest.raises(ConfigError, match=r"^config: 'env.sim.rpm_min/rpm_max': \[0, 30000\] RPM is no vehicle"):
        load_config(None, base={"env": {"sim": {"rpm_min": 0.0, "rpm_max": 30000.0}}})
    with pytest.raises(ConfigError, match="not settings any more"):
        load_config(None, base={"env": {"sim": {"vehicle": "crazyflie_2_1", "rpm_max": 21702.0}}})
    fresh = {"task": "hover"}
    assert migrate_sim_settings(fresh) is fresh

"""Config strictness (issue 25): seeds in range, finite numbers, no booleans or strings for
numbers, one line naming the key; descriptions of every key; ``import robolearn`` is light."""

import re
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import BaseModel

from robolearn.config import DEFAULT_CONFIG, SEED_MAX, RunConfig, describe_config, load_config
from robolearn.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent
CFG = ROOT / DEFAULT_CONFIG


@pytest.mark.parametrize("item, key, words", [
    ("seed=-1", "'seed'", "greater than or equal to 0"),
    ("seed=1e23", "'seed'", "integer"),
    (f"seed={SEED_MAX + 1}", "'seed'", "less than or equal to"),
    ("eval.seed=-5", "'eval.seed'", "greater than or equal to 0"),
    ("ppo.lr=.inf", "'ppo.lr'", "finite"),
    ("ppo.lr=1e30", "'ppo.lr'", "less than or equal to 1"),
    ("ppo.gamma=.nan", "'ppo.gamma'", "finite"),
    ("curriculum.reward_schedule.weights={reward.action: [1.4, .inf]}",
     "'curriculum.reward_schedule.weights.reward.action.1'", "finite"),
    ("env.num_envs=true", "'env.num_envs'", "expected an integer, got True"),
    ("env.num_envs='64'", "'env.num_envs'", "expected an integer, got '64'"),
    ("network.actor_hidden=[16, true]", "'network.actor_hidden'", "item 1: expected an integer"),
    ("env.sim.home_target=[0, 0, true]", "'env.sim.home_target'", "item 2: expected a number"),
    ("env.ranges.bogus=[0, 1]", "'env.ranges.bogus'", "unknown parameter"),
    ("curriculum.bandit.groups={g: {bogus: [0, 1]}}", "'curriculum.bandit.groups.g.bogus'", "unknown parameter"),
    ("env.sim.dt=-1", "'env.sim.dt'", "positive"),
])
def test_bad_values_are_one_line_naming_the_key(item, key, words):
    with pytest.raises(ConfigError) as e:
        load_config(CFG, [item])
    msg = str(e.value)
    assert "\n" not in msg and key in msg and words in msg, msg


def test_good_values_still_pass():
    cfg = load_config(CFG, [f"seed={SEED_MAX}", "eval.seed=0", "ppo.lr=1", "env.num_envs=8", "ppo.gamma=1"])
    assert cfg.seed == SEED_MAX and cfg.ppo.lr == 1.0 and cfg.env.num_envs == 8
    assert isinstance(load_config(CFG, ["ppo.clip_coef=1"]).ppo.clip_coef, float)  # an int is a fine float


def test_load_config_does_not_change_the_callers_base():
    from robolearn.config import read_config_file

    base = read_config_file(CFG)
    before = repr(base)
    load_config(None, ["ppo.lr=0.5", "env.sim.dt=0.02"], base=base)
    assert repr(base) == before


def _fields(model, prefix=""):
    for name, f in model.model_fields.items():
        yield prefix + name, f
        if isinstance(f.annotation, type) and issubclass(f.annotation, BaseModel):
            yield from _fields(f.annotation, prefix + name + ".")


def test_every_config_key_has_a_one_line_description_and_help_config_lists_it():
    fields = list(_fields(RunConfig))
    assert len(fields) > 150
    for key, f in fields:
        assert f.description and "\n" not in f.description, key
        # a simulator field without a comment is described only by where it is defined
        assert not re.fullmatch(r"\w+Config\.\w+ \(\S+\.py\)", f.description), (key, f.description)
    lines = describe_config()
    listed = {ln.split(" ")[0].rstrip(":") for ln in lines}
    assert {k for k, _ in fields} <= listed
    r = subprocess.run([sys.executable, "-m", "robolearn.cli", "train", "--help-config"], capture_output=True,
                       text=True, cwd=ROOT, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "ppo.lr (float, default 0.001): Adam learning rate" in r.stdout
    assert "env.sim.dt (float, default 0.01):" in r.stdout


def test_importing_robolearn_imports_neither_mujoco_nor_torch():
    code = "import robolearn, sys; assert 'mujoco' not in sys.modules and 'torch' not in sys.modules"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                       env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}, timeout=60)
    assert r.returncode == 0, r.stderr

"""One seam per robot family (issue 26): the core never branches on the family.

Outside ``robolearn/tasks/`` no module of ``robolearn/`` compares ``env.name`` (``cfg.env.name
== "arm"``, ``self.env.name != ...``) or any value with a family's name (``"quadrotor"``,
``"arm"``): such a branch belongs in the family's :class:`robolearn.tasks.base.Task`. The
modules are parsed with ``ast``, nothing is imported.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from robolearn.config import load_config
from robolearn.errors import ConfigError
from robolearn.tasks import TASKS, check_switches, resume_fixed_keys, task_for, task_for_episodes

ROOT = Path(__file__).resolve().parent.parent
CORE = ROOT / "robolearn"
FAMILIES = frozenset(TASKS)


def _dotted(node: ast.AST) -> str:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
    return ".".join(reversed(parts))


def family_branches(source: str) -> list[tuple[int, str]]:
    """(line, expression) of each comparison with ``*.env.name`` or with a family's name."""
    out = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Compare):
            continue
        operands = [node.left, *node.comparators]
        names = any(_dotted(o) == "env.name" or _dotted(o).endswith(".env.name") for o in operands)
        literal = any(isinstance(o, ast.Constant) and o.value in FAMILIES for o in operands) or any(
            isinstance(o, (ast.Tuple, ast.List, ast.Set)) and any(
                isinstance(e, ast.Constant) and e.value in FAMILIES for e in o.elts) for o in operands)
        if names or literal:
            out.append((node.lineno, ast.unparse(node)))
    return out


def core_modules() -> list[Path]:
    return [p for p in sorted(CORE.rglob("*.py"))
            if "__pycache__" not in p.parts and (CORE / "tasks") not in p.parents]


def test_the_scan_finds_family_branches():
    """The check is not vacuous: each form of a family branch is caught, a plain use is not."""
    src = ("if cfg.env.name == 'arm':\n    pass\n"
           "x = 1 if self.env.name != 'quadrotor' else 2\n"
           "y = res.get('env') == 'arm'\n"
           "z = family in ('quadrotor', 'arm')\n"
           "w = cfg.env.name\n"
           "v = cfg.algo == 'ppo'\n")
    assert sorted(line for line, _ in family_branches(src)) == [1, 3, 4, 5]


def test_no_family_branch_outside_the_tasks():
    assert len(core_modules()) > 20  # the scan sees the core
    bad = [f"{p.relative_to(ROOT)}:{line}: {expr}" for p in core_modules()
           for line, expr in family_branches(p.read_text())]
    assert not bad, ("the core branches on the robot family; move the branch into the family's Task "
                     "(robolearn/tasks/<family>/__init__.py):\n  " + "\n  ".join(bad))


def test_every_family_of_the_config_has_a_task():
    from robolearn.config import EnvConfig

    names = EnvConfig.model_fields["name"].annotation.__args__
    assert set(names) == FAMILIES
    for name in names:
        task = task_for(load_config(None, [f"env.name={name}", "network.init_action=zero"]))
        assert task.name == name and task.evaluate and task.make_env


def test_finishing_stages_are_the_tasks_own_list():
    assert [s.name for s in TASKS["quadrotor"].finish] == ["polish", "trim"]
    assert TASKS["arm"].finish == ()
    cfg = load_config(None, ["polish.iterations=3"])
    assert [s.enabled(cfg) for s in TASKS["quadrotor"].finish] == [True, False]


@pytest.mark.parametrize("override, key", [
    ("polish.iterations=2", "polish.iterations"),
    ("trim.episodes=2", "trim.episodes"),
    ("curriculum.start_states.enabled=true", "curriculum.start_states.enabled"),
    ("curriculum.hard_starts.fraction=0.3", "curriculum.hard_starts.fraction"),
])
def test_another_familys_switch_is_one_line(override, key):
    check_switches(load_config(None, [override]))  # the quadrotor's own: accepted
    arm = load_config(None, ["env.name=arm", "network.init_action=zero", override])
    with pytest.raises(ConfigError) as e:
        check_switches(arm)
    msg = str(e.value)
    assert msg.startswith(f"config: '{key}':") and "'quadrotor'" in msg and "'arm'" in msg and "\n" not in msg


def test_resume_keys_and_episode_dispatch():
    assert resume_fixed_keys() == ("env.sim.task", "env.sim.action_history", "env.arm.task",
                                   "env.arm.block_gripper", "env.arm.push_features")
    assert task_for_episodes({"return": 0, "success": 0}).name == "arm"
    assert task_for_episodes({"return": 0, "survived": 0}).name == "quadrotor"
    with pytest.raises(KeyError, match="success keys"):
        task_for_episodes({"return": 0})


@pytest.mark.parametrize("modules", ["robolearn, robolearn.config", "robolearn.tasks, robolearn.train, robolearn.cli"])
def test_importing_does_not_import_mujoco(modules):
    """The arm imports MuJoCo only when it builds an env (or renders): reading, checking and
    describing a config, and the trainer's and the CLI's modules, load none."""
    code = (f"import {modules}, sys; from robolearn.config import load_config, describe_config; "
            "load_config(None, ['env.name=arm', 'network.init_action=zero']); describe_config(); "
            "assert 'mujoco' not in sys.modules, 'mujoco was imported'")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]


def test_the_public_evaluate_is_the_familys():
    """``robolearn.evaluate`` (the package's lazy API) dispatches to the config's family."""
    import robolearn
    from robolearn import tasks

    assert robolearn.evaluate is tasks.evaluate


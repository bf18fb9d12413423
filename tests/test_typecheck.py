"""mypy over the project's packages ([tool.mypy] in pyproject.toml) must report no error.

Run alone: ``python tests/test_typecheck.py`` (exit status is mypy's). The cache in
``.mypy_cache`` makes a repeat run take a few seconds; a cold run about 50 s of CPU.
"""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
STUBS = ROOT / ".mypy_cache" / "stubs"  # = mypy_path in pyproject.toml


def write_isaacgym_stubs(dest: Path = STUBS) -> Path:
    """Copy the installed isaacgym-stubs to ``dest/isaacgym`` in a form mypy can parse.

    isaacgym-stubs (every release up to 1.1rc4) declares ``RigidContact.lambda`` and
    ``SoftContact.lambda``, properties named after a keyword: a syntax error that stops
    mypy. They are renamed ``lambda_``; nothing else changes. Files are rewritten only
    when their content changes, so mypy's cache stays valid.
    """
    try:
        files = importlib.metadata.files("isaacgym-stubs") or []
    except importlib.metadata.PackageNotFoundError:
        raise FileNotFoundError("isaacgym-stubs is not installed: pip install -e '.[test]'") from None
    src = next((f for f in files if f.name == "gymapi.pyi"), None)
    if src is None:
        raise FileNotFoundError("isaacgym-stubs has no gymapi.pyi")
    out = {"gymapi.pyi": src.read_text().replace("def lambda(", "def lambda_("),
           "__init__.pyi": "from . import gymapi as gymapi\n"}
    pkg = dest / "isaacgym"
    pkg.mkdir(parents=True, exist_ok=True)
    for name, text in out.items():
        path = pkg / name
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
    return dest


def run_mypy() -> subprocess.CompletedProcess[str]:
    write_isaacgym_stubs()
    return subprocess.run([sys.executable, "-m", "mypy"], cwd=ROOT, capture_output=True, text=True, timeout=1200)


def test_mypy_reports_no_error():
    pytest.importorskip("mypy", reason="mypy is a test extra: pip install -e '.[test]'")
    t0 = time.perf_counter()
    proc = run_mypy()
    print(f"mypy took {time.perf_counter() - t0:.1f} s")
    assert proc.returncode == 0, f"mypy found errors:\n{proc.stdout}{proc.stderr}"


def test_isaacgym_calls_are_checked_against_the_stubs(tmp_path):
    """A wrong call into ``gymapi.Gym`` is an error: the stubs are really in use."""
    pytest.importorskip("mypy", reason="mypy is a test extra: pip install -e '.[test]'")
    write_isaacgym_stubs()
    src = tmp_path / "wrong_gym_call.py"
    src.write_text("from isaacgym import gymapi\n\n\n"
                   "def f(gym: gymapi.Gym, env: gymapi.Env) -> None:\n"
                   "    gym.set_actor_rigid_shape_properties(env, 0, 1.0)\n")
    proc = subprocess.run([sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml"), str(src)],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 1 and "set_actor_rigid_shape_properties" in proc.stdout, proc.stdout + proc.stderr
    assert "arg-type" in proc.stdout, proc.stdout


if __name__ == "__main__":
    p = run_mypy()
    sys.stdout.write(p.stdout + p.stderr)
    sys.exit(p.returncode)

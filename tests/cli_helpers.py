"""Running the robolearn CLI in-process from a test, and what a usage error must look like."""

from __future__ import annotations

import pytest


def cli(*args, capsys) -> tuple[int, str, str]:
    """``robolearn ARGS`` in this process: (exit code, stdout, stderr)."""
    from robolearn.cli import app

    with pytest.raises(SystemExit) as e:
        app([*map(str, args)])
    out = capsys.readouterr()
    return e.value.code, out.out, out.err


def assert_error(code: int, err: str, *fragments: str) -> None:
    """Exit code 2 and exactly one non-empty stderr line, ``error: ...``, holding every fragment."""
    lines = [l for l in err.splitlines() if l.strip()]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err, (code, err)
    for f in fragments:
        assert f in lines[0], (f, lines[0])

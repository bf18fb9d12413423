"""benchmarks.sim and `robolearn bench sim`: the --reference and --cpu-time flags.

Only that the figures are produced and reported consistently: no speed is asserted
(speed is measured in BENCHMARKS.md, never in tests).
"""

import json
import re

from typer.testing import CliRunner

from benchmarks import sim
from robolearn.cli import app

QUICK = ["--envs", "1,64", "--seconds", "0.02", "--repeats", "1"]


def test_reference_and_cpu_time_figures(capsys):
    res = sim.main([*QUICK, "--reference", "--cpu-time"])
    assert res["clock"] == "process CPU time"
    for key in ("full_transitions_per_s", "reference_full_transitions_per_s"):
        assert set(res[key]) == {1, 64}
        assert all(r > 0 for r in res[key].values())
    assert set(res["bare_rk4_steps_per_s"]) == set(res["reference_bare_rk4_steps_per_s"]) == {64}
    out = capsys.readouterr().out
    assert "per second of process CPU time" in out
    # one ratio per full-transition row and one for the bare physics
    assert out.count("scalar reference") == 3 and len(re.findall(r"\(x\d+\.\d\d\)", out)) == 3


def test_without_reference_no_reference_figures():
    res = sim.main([*QUICK, "--json"])
    assert res["clock"] == "wall"
    assert "reference_full_transitions_per_s" not in res
    assert "reference_bare_rk4_steps_per_s" not in res


def test_reference_needs_the_cpu_backend(capsys):
    try:
        sim.main([*QUICK, "--backend", "cuda", "--reference"])
    except SystemExit as e:
        assert e.code == 2
    else:
        raise AssertionError("--reference with --backend cuda was accepted")
    assert "--reference" in capsys.readouterr().err


def test_cli_passes_the_flags_through():
    r = CliRunner().invoke(app, ["bench", "sim", *QUICK, "--reference", "--cpu-time", "--json"])
    assert r.exit_code == 0, r.output
    res = json.loads(r.output[r.output.index("{"):])
    assert res["clock"] == "process CPU time"
    assert set(res["reference_full_transitions_per_s"]) == {"1", "64"}  # JSON keys

"""Generated configs and --set overrides: 0 tracebacks, each invalid one a line naming its key.

The suite runs 2,000 examples (~10 s); ``python -m benchmarks.faults configs`` runs 10,000
(docs/experiments/2026-12-07-reliability.md).
"""

from config_fuzz import run_fuzz


def test_generated_overrides_give_one_line_naming_the_key():
    r = run_fuzz(2000)
    assert r["examples"] == 2000
    assert r["tracebacks"] == 0, r["first_problems"]
    assert r["multi_line_errors"] == 0, r["first_problems"]
    assert r["errors_not_naming_the_key"] == 0, r["first_problems"]
    assert r["accepted"] > 0 and r["one_line_errors_naming_the_key"] > 1000  # both kinds were generated

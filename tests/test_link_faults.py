"""The serial HIL runner (SerialDevice on a pty) behind a proxy that drops, corrupts,
duplicates and delays bytes at 1 %, 10 % and 30 % (benchmarks/link_faults.py; the full
figures are recorded in docs/experiments/2026-12-07-hardware.md). Every run must end
within its time bound, either with all episodes flown or with a one-line reason, and
every counter must add up; a damaged frame never becomes a wrong action."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.link_faults import fly_under_faults
from hardware.devices import live_children
from hardware.testing import EASY_START, make_test_export


@pytest.fixture(scope="module")
def export(tmp_path_factory) -> Path:
    return make_test_export(tmp_path_factory.mktemp("link_run"), hover=True, ranges=EASY_START)


@pytest.mark.parametrize("rate", [0.0, 0.01, 0.1, 0.3])
def test_runner_under_byte_faults_ends_in_bounded_time_and_the_books_balance(export, rate):
    r = fly_under_faults(export, rate, episodes=1, steps=30, seed=3, retries=20)
    assert r["within_bound"], (r["wall_s"], r["bound_s"])
    assert all(r["books"].values()), {k: v for k, v in r["books"].items() if not v}
    p = r["proxy"]
    if rate == 0.0:
        assert r["status"] == "ok" and r["steps_flown"] == 30 and r["episodes_finished"] == 1
        assert r["frames"]["retried"] == r["frames"]["rejected"] == 0
    else:
        assert sum(p["to_device"][k] for k in ("dropped", "corrupted", "duplicated", "delayed")) > 0
    if r["status"] == "ok":
        assert r["steps_flown"] == 30 and r["error"] is None
    else:
        # stopped: says why, in one line
        assert r["status"] in ("device_lost", "refused") and r["error"] and "\n" not in r["error"]
        assert "did not answer" in r["error"]
    if rate == 0.01:  # 1 % of bytes hit: with 20 retries the episode is flown, retries counted
        assert r["status"] == "ok" and r["frames"]["retried"] > 0 and r["frames"]["rejected"] > 0
    assert live_children() == []


def test_faults_that_start_mid_episode_stop_it_with_a_partial_report(export):
    """30 % of the bytes hit once the handshake and a few steps are through: the episode
    stops (device_lost, one line), the report holds the steps flown, the books balance."""
    r = fly_under_faults(export, 0.3, episodes=2, steps=60, seed=5, retries=3, clean_bytes=600)
    assert r["status"] == "device_lost" and "did not answer" in r["error"] and "\n" not in r["error"]
    assert 0 < r["steps_flown"] < 60 and r["episodes_finished"] == 0 and r["episodes_started"] == 1
    assert r["within_bound"] and all(r["books"].values())
    assert r["action_error"] == 0.0  # every step flown had the exact action

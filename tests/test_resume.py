"""A training process killed mid-run (SIGKILL) resumes and finishes; nothing on disk is
corrupt; with one thread the resumed run's policy.pt is bit-identical to an uninterrupted
run's. Two kills here (at 40 % and 75 % of the uninterrupted run's wall time: training,
and the polish, trim or evaluation); ``python -m benchmarks.faults kill`` runs 20 at random
moments (docs/experiments/2026-12-07-reliability.md)."""

from benchmarks.faults import kill_trial, uninterrupted


def test_killed_runs_resume_to_the_same_policy(tmp_path):
    ref, t_ref = uninterrupted(tmp_path)
    for i, frac in enumerate((0.4, 0.75)):
        t = kill_trial(ref, tmp_path / f"killed-{i}", frac * t_ref)
        assert t["resumed_and_finished"], t
        assert not t["corrupt"], t
        assert t["metrics_ok"], t
        assert t["policy_bit_identical"], t
        assert t["eval_identical"], t

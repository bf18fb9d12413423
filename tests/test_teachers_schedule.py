"""Curriculum contract and the open-loop schedules."""

import math
import subprocess
import sys

import numpy as np
import pytest

from teachers.base import EpisodeOutcomes, NoTeacher, RangeProposal, Teacher
from teachers.schedule import CombinedTeacher, LinearItem, LinearSchedule, RewardWeightSchedule, WeightRule


def rlt_schedule(interval=100_000):
    return RewardWeightSchedule([WeightRule("reward.action", 0.1, 1.4, 0.5),
                                 WeightRule("reward.position", 10.0, 1.2, 40.0)], interval)


def apply(teacher, steps, state):
    for p in teacher.propose(steps):
        assert isinstance(p, RangeProposal) and p.name in teacher.task_space
        state[p.name] = (p.low, p.high)
    return state


def test_reward_schedule_multiplies_every_interval_and_caps():
    t = rlt_schedule()
    state = apply(t, 0, {})
    assert state == {"reward.action": (0.1, 0.1), "reward.position": (10.0, 10.0)}
    assert t.propose(99_999) == []  # same interval: nothing new
    state = apply(t, 100_000, state)
    assert state["reward.action"][0] == pytest.approx(0.14)
    assert state["reward.position"][0] == pytest.approx(12.0)
    state = apply(t, 350_000, state)  # 3 intervals
    assert state["reward.action"][0] == pytest.approx(0.1 * 1.4 ** 3)
    assert state["reward.position"][0] == pytest.approx(10 * 1.2 ** 3)
    state = apply(t, 10_000_000, state)
    assert state["reward.action"] == (0.5, 0.5)
    assert state["reward.position"] == (40.0, 40.0)
    # first interval that reaches the caps: 1.4^5 > 5 and 1.2^8 > 4
    assert t.value(t.rules[0], 500_000) == 0.5 and t.value(t.rules[0], 499_999) < 0.5
    assert t.value(t.rules[1], 800_000) == 40.0 and t.value(t.rules[1], 799_999) < 40.0


def test_reward_schedule_interval_is_configurable_and_resume_reproposes():
    t = rlt_schedule(interval=1000)
    assert apply(t, 2500, {})["reward.position"][0] == pytest.approx(14.4)
    t2 = rlt_schedule(interval=1000)
    t2.load_state_dict(t.state_dict())
    # a resumed trainer's env starts from config ranges: the teacher must apply again
    assert apply(t2, 2500, {})["reward.position"][0] == pytest.approx(14.4)
    with pytest.raises(ValueError):
        rlt_schedule(interval=0)


def test_decreasing_factor_uses_cap_as_floor():
    t = RewardWeightSchedule([WeightRule("privileged.assist_gain", 1.0, 0.5, 0.1)], 10)
    assert t.value(t.rules[0], 25) == pytest.approx(0.25)
    assert t.value(t.rules[0], 1000) == pytest.approx(0.1)


def test_linear_schedule_interpolates_and_holds_the_end():
    item = LinearItem("task.start_tilt_rad", (0.0, 0.2), (0.0, math.pi / 2), begin=100, finish=1100)
    t = LinearSchedule([item])
    assert t.task_space["task.start_tilt_rad"] == (0.0, math.pi / 2)
    s = apply(t, 0, {})
    assert s["task.start_tilt_rad"] == (0.0, 0.2)
    s = apply(t, 600, s)
    assert s["task.start_tilt_rad"][1] == pytest.approx(0.2 + 0.5 * (math.pi / 2 - 0.2))
    s = apply(t, 5000, s)
    assert s["task.start_tilt_rad"] == (0.0, pytest.approx(math.pi / 2))
    assert t.propose(6000) == []
    with pytest.raises(ValueError):
        LinearSchedule([LinearItem("x", (0, 0), (1, 1), begin=5, finish=5)])


def test_combined_teacher_and_contract():
    a = rlt_schedule()
    b = LinearSchedule([LinearItem("task.start_radius_m", (0.05, 0.05), (0.2, 0.2), 0, 1000)])
    c = CombinedTeacher([a, b])
    names = {p.name for p in c.propose(0)}
    assert names == {"reward.action", "reward.position", "task.start_radius_m"}
    assert set(c.metrics()) >= {"reward.action", "reward.position"}
    c.load_state_dict(c.state_dict())
    with pytest.raises(ValueError):
        CombinedTeacher([a, rlt_schedule()])
    out = EpisodeOutcomes(returns=np.ones(3), success=np.array([True, False, True]),
                          params=np.zeros((3, 2)), param_names=["a", "b"], env_ids=np.arange(3))
    c.update(out)
    assert len(out) == 3 and out.column("b").shape == (3,)
    assert NoTeacher().propose(10) == []
    with pytest.raises(TypeError):
        Teacher()  # abstract


def test_teachers_import_neither_torch_nor_robolearn():
    code = ("import sys, teachers.base, teachers.schedule, teachers.adr, teachers.privileged, teachers.alp_gmm, "
            "teachers.riac, teachers.covar_gmm, teachers.spdl, teachers.bandits, teachers.sampling, "
            "teachers.synthetic, teachers.start_states; "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('torch', 'robolearn', 'sims')]; "
            "print(bad); sys.exit(1 if bad else 0)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr

"""curriculum.teacher = adr | privileged | alp_gmm | riac | covar_gmm | spdl: built from the config, applied."""

import numpy as np
import pytest

from robolearn.config import load_config
from robolearn.curriculum import apply_proposals, build_teacher, outcomes_from_arrays
from robolearn.errors import ConfigError
from sims.quadrotor.config import check_range
from sims.quadrotor.params import PARAMS, REAL_WORLD_RANGES
from teachers.adr import ADRTeacher
from teachers.schedule import CombinedTeacher, RewardWeightSchedule

NAMES = [p.name for p in PARAMS]


class RangeEnv:
    """set_range as the simulator does it: per-env arrays, checked against the hard limits."""

    def __init__(self, n, initial):
        self.param_names = NAMES
        self.lo = np.array([[initial[k][0] for k in NAMES]] * n, float)
        self.hi = np.array([[initial[k][1] for k in NAMES]] * n, float)

    def set_range(self, name, low, high, env_ids=None):
        j = NAMES.index(name)
        ids = slice(None) if env_ids is None else np.asarray(env_ids)
        lo = np.broadcast_to(np.asarray(low, np.float32), self.lo[ids, j].shape)
        hi = np.broadcast_to(np.asarray(high, np.float32), self.hi[ids, j].shape)
        check_range(name, lo, hi)
        self.lo[ids, j], self.hi[ids, j] = lo, hi


def cfg_for(teacher, *extra):
    return load_config("configs/quadrotor_hover.yaml", [f"curriculum.teacher={teacher}", "env.num_envs=16", *extra])


@pytest.mark.parametrize("teacher", ["adr", "privileged", "alp_gmm", "riac", "covar_gmm", "spdl"])
def test_each_teacher_builds_runs_and_keeps_the_reward_schedule(teacher):
    cfg = cfg_for(teacher)
    t = build_teacher(cfg)
    assert isinstance(t, CombinedTeacher) and isinstance(t.teachers[0], RewardWeightSchedule)
    initial = cfg.sim_config().initial_ranges()
    env = RangeEnv(16, initial)
    rng = np.random.default_rng(0)
    for it in range(5):
        assert apply_proposals(env, t, it * 1000) >= (1 if it == 0 else 0)
        params = rng.uniform(env.lo, env.hi)
        t.update(outcomes_from_arrays({"return": rng.normal(size=16), "survived": np.ones(16), "params": params,
                                       "env_ids": np.arange(16)}, NAMES, it * 1000))
    m = t.metrics()
    assert all(np.isfinite(v) or np.isnan(v) for v in m.values())
    assert set(t.teachers[1].task_space) <= set(NAMES)
    alone = build_teacher(cfg_for(teacher, "curriculum.with_reward_schedule=false"))
    assert not isinstance(alone, CombinedTeacher)


def test_adr_defaults_widen_from_nominal_towards_real_world_ranges():
    t = build_teacher(cfg_for("adr")).teachers[1]
    assert isinstance(t, ADRTeacher)
    assert t.task_space == {k: (float(a), float(b)) for k, (a, b) in REAL_WORLD_RANGES.items()}
    assert t.ranges()["randomization.mass_scale"] == (1.0, 1.0)
    assert t.metrics()["adr/fraction_of_limits"] == 0.0


def test_bad_curriculum_settings_are_config_errors():
    with pytest.raises(ConfigError, match="initial range"):
        build_teacher(cfg_for("adr", "curriculum.adr.target={randomization.mass_scale: [1.1, 1.2]}"))
    with pytest.raises(ConfigError, match="privileged.param"):
        build_teacher(cfg_for("privileged", "curriculum.privileged.param=reward.nothing"))
    with pytest.raises(ConfigError, match="curriculum.teacher"):
        cfg_for("goal_gan")

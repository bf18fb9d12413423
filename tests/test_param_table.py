"""Both simulator families check a parameter range with one function (sims/param_table.py)."""

import numpy as np
import pytest

from sims.manipulation import params as arm
from sims.param_table import Param, check_range
from sims.quadrotor import params as quad
from sims.quadrotor.config import check_range as quad_check


def test_both_families_use_the_one_param_type() -> None:
    assert all(type(p) is Param for p in quad.PARAMS + arm.PARAMS)


@pytest.mark.parametrize("check, table", [(quad_check, quad.PARAMS), (arm.check_range, arm.PARAMS)])
def test_each_family_raises_the_same_errors(check, table) -> None:
    p = table[0]
    lo, hi = p.limits
    check(p.name, lo, hi)  # the hard limits themselves are allowed
    check(p.name, np.full(3, lo), np.full(3, hi))  # and per-env arrays
    with pytest.raises(ValueError, match="unknown parameter 'nope'"):
        check("nope", 0.0, 1.0)
    with pytest.raises(ValueError, match="leaves the hard limits"):
        check(p.name, lo - 1.0, hi)
    with pytest.raises(ValueError, match="low must be <= high"):
        check(p.name, hi, lo) if hi > lo else check(p.name, lo + 1.0, lo)
    with pytest.raises(ValueError, match="must be finite"):
        check(p.name, float("nan"), hi)


def test_a_table_of_its_own() -> None:
    table = (Param("a", (0.0, 0.0), (-1.0, 1.0), "a test parameter"),)
    check_range(table, {"a": 0}, "a", -1.0, 1.0)
    with pytest.raises(ValueError, match=r"a: range \[-2.0, 0.0\] leaves the hard limits \[-1.0, 1.0\]"):
        check_range(table, {"a": 0}, "a", -2.0, 0.0)

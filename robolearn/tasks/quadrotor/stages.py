"""The quadrotor's finishing stages, run in this order after the last training iteration:
the ES polish on hard-corner starts (``polish.py``), then the trim of the position input
(``trim.py``). Each is a :class:`robolearn.tasks.base.FinishStage`."""

from __future__ import annotations

import csv
import io
from typing import TYPE_CHECKING

from ..base import FinishStage, StageContext

if TYPE_CHECKING:
    from firmware_export.policy_file import PolicySpec

    from ...config import RunConfig


def _fmt_polish(row: dict, cfg: RunConfig) -> str:
    return (f"polish {row['iteration'] + 1}/{cfg.polish.iterations} | hard-start survival over "
            f"{cfg.polish.horizon_steps} steps {row['horizon_survival_mean']:.1%}")


def run_polish(ctx: StageContext, policy: PolicySpec) -> tuple[PolicySpec, dict]:
    """The ES polish; reuses the hard-start pool of the run's hard starts (else draws it),
    writes polish.csv, returns the new policy and a summary."""
    from ...checkpoint import atomic_write_text
    from .polish import polish_from_config

    cfg = ctx.cfg
    pool = next((r.pool for r in ctx.resets if r.key == "hard_starts"), None)
    policy, rows = polish_from_config(cfg, policy, pool, lambda r: ctx.progress(_fmt_polish(r, cfg)))
    buf = io.StringIO(newline="")
    w = csv.DictWriter(buf, fieldnames=list(rows[0]))
    w.writeheader()
    w.writerows(rows)
    atomic_write_text(buf.getvalue(), ctx.run.path / "polish.csv")
    return policy, {"iterations": len(rows), "horizon_steps": cfg.polish.horizon_steps,
                    "horizon_survival_first": rows[0]["horizon_survival_mean"],
                    "horizon_survival_last": rows[-1]["horizon_survival_mean"]}


def run_trim(ctx: StageContext, policy: PolicySpec) -> tuple[PolicySpec, dict]:
    """Re-centre the actor's position input on its steady hover offset."""
    from .trim import trim_from_config

    return trim_from_config(ctx.cfg, policy)


POLISH = FinishStage("polish", "polish.iterations", lambda cfg: cfg.polish.iterations > 0, run_polish)
TRIM = FinishStage("trim", "trim.episodes", lambda cfg: cfg.trim.episodes > 0, run_trim)

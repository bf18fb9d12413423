"""``robolearn sweep``: seeds x grid of ordinary runs on Ray, then a summary (robolearn/sweep.py)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import List, Optional

import typer

from .sweep import SweepResult


def sweep_cmd(
    config: Path = typer.Argument(..., metavar="CONFIG", help="YAML config every trial starts from"),
    seeds: int = typer.Option(8, "--seeds", min=1, help="seeds 0..N-1 at every grid point"),
    grid: List[str] = typer.Option([], "--grid", help="KEY=V1,V2,... (repeatable; the trials cover the product)"),
    set_: List[str] = typer.Option([], "--set", help="config override for every trial (repeatable)"),
    address: Optional[str] = typer.Option(None, "--address", help="existing Ray cluster: auto or HOST:PORT "
                                                                  "(default: a local Ray instance)"),
    out: Optional[Path] = typer.Option(None, "--out", help="sweep directory (default: OUT_ROOT/sweep-<time>)"),
    retries: int = typer.Option(2, "--retries", min=0, help="resubmissions of a failed trial"),
    metric: List[str] = typer.Option([], "--metric", help="eval.json value to summarize, dotted, e.g. "
                                                          "nominal.survival_rate (repeatable; default: the usual ones)"),
) -> int:
    """Train every grid point x seed as a Ray task (1 CPU each); print and write a mean ± 95 % CI summary.

    Exit code 0 when every trial succeeded, 1 when some failed (they are listed in the summary).
    """
    from .sweep import run_sweep

    def log(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    r = run_sweep(config, seeds, grid=list(grid), sets=list(set_), out=out, address=address, retries=retries,
                  metrics=list(metric) or None, log=log)
    _print_summary(r)
    return 1 if r.failed else 0


def _print_summary(r: SweepResult) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"sweep {r.out}: mean ± 95 % CI over seeds")
    t.add_column("grid point")
    t.add_column("seeds ok", justify="right")
    t.add_column("failed", justify="right")
    for m in r.metrics:
        t.add_column(m, justify="right")
    for row in r.points:
        cells = [row["label"], str(row["seeds_ok"]), str(row["seeds_failed"])]
        for m in r.metrics:
            s = row["metrics"][m]
            cells.append("-" if s["mean"] is None else
                         f"{s['mean']:.4g}" + ("" if s["ci95"] is None else f" ± {s['ci95']:.2g}"))
        t.add_row(*cells)
    console = Console(width=max(120, 30 + 24 * len(r.metrics)))
    console.print(t)
    for tr in r.failed:
        last = tr.errors[-1] if tr.errors else tr.status
        print(f"{tr.status}: {tr.name} after {tr.attempts} attempt(s) ({tr.retries} retries): {last}")
    print(f"summary: {r.out / 'summary.json'}, {r.out / 'summary.csv'}, {r.out / 'summary.png'}")

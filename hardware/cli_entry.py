"""``robolearn hil``: the command-line face of :func:`hardware.hil.run_hil`.

The robolearn CLI wires :func:`hil_command` into typer, e.g.::

    from hardware.cli_entry import hil_command
    @app.command("hil")
    def hil(path: Path, device: str = "emulated", baud: int = 115200, steps: Optional[int] = None,
            episodes: int = 1, seed: int = 0, json_: bool = typer.Option(False, "--json"),
            replay_latency: bool = False, timeout: Optional[float] = None, retries: int = 3,
            report: Optional[Path] = None):
        raise typer.Exit(hil_command(path, device, baud=baud, steps=steps, episodes=episodes,
                                     seed=seed, json_output=json_, replay_latency=replay_latency,
                                     timeout=timeout, retries=retries, report=report))

or registers the ready-made typer command with :func:`register` (``register(app)``).
``python -m hardware.cli_entry PATH --device ...`` runs the same without typer.

Exit codes: 0 the run completed (the report holds the figures, including whether
HIL and simulation agree; the summary says "HIL ok" only without warnings, e.g. a
round trip over the control period); 1 the device was lost or failed during the run (a partial
report is written); 2 nothing was flown (bad export, build failure, device cannot be
opened, no answer to HELLO, a different policy on the device, an unusable option such
as ``--retries -1`` or ``--timeout 0``); 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Optional

from .errors import HilError

if TYPE_CHECKING:
    import typer as typer_

EXIT_OK, EXIT_FAILED, EXIT_REFUSED, EXIT_INTERRUPTED = 0, 1, 2, 130


def hil_command(path: str | Path, device: str = "emulated", *, baud: int = 115200,
                steps: Optional[int] = None, episodes: int = 1, seed: int = 0,
                json_output: bool = False, replay_latency: bool = False,
                timeout: Optional[float] = None, retries: int = 3,
                report: Optional[str | Path] = None,
                echo: Callable[[str], None] | None = None,
                echo_err: Callable[[str], None] | None = None) -> int:
    """Run HIL on ``path`` (a run or export directory) and print the result.

    Prints a summary (progress lines while flying), or with ``json_output`` only the
    report as JSON on stdout. Errors are one line on stderr, ``error: ...``. Returns
    the exit code (see the module docstring).
    """
    from .hil import format_report, run_hil

    out = echo or (lambda s: print(s, flush=True))
    err = echo_err or (lambda s: print(s, file=sys.stderr, flush=True))
    try:
        r = run_hil(path, device, baud=baud, episodes=episodes, steps=steps, seed=seed,
                    timeout=timeout, retries=retries, replay_latency=replay_latency,
                    report_path=report, progress=None if json_output else out)
    except HilError as e:
        err(f"error: {e}")
        return EXIT_REFUSED
    except ValueError as e:
        err(f"error: {e}")
        return EXIT_REFUSED
    except KeyboardInterrupt:
        err("error: interrupted; device processes stopped")
        return EXIT_INTERRUPTED
    if json_output:
        out(json.dumps(r, indent=2))
    else:
        out(format_report(r))
    if r["status"] != "ok":
        if json_output:
            err(f"error: {r['error']}")
        return EXIT_FAILED
    return EXIT_OK


def register(app: typer_.Typer, name: str = "hil") -> None:
    """Add the ``hil`` command to a typer app."""
    import typer

    @app.command(name, help="Fly simulated episodes with the exported policy on a device "
                            "(emulated board, host pty process, or a serial port) and report "
                            "latency, inference time, action error and closed-loop agreement.")
    def hil(path: Path = typer.Argument(..., help="run directory or export directory"),
            device: str = typer.Option("emulated", help="emulated | pty | model | pty-model | /dev/ttyACM0 | socket://HOST:PORT"),
            baud: int = typer.Option(115200, help="serial baud rate"),
            steps: Optional[int] = typer.Option(None, help="max control steps per episode (default: episode length)"),
            episodes: int = typer.Option(1, help="episodes, flown one after the other (seeds seed..seed+E-1)"),
            seed: int = typer.Option(0, help="seed of the first episode"),
            json_output: bool = typer.Option(False, "--json", help="print the report as JSON"),
            replay_latency: bool = typer.Option(False, "--replay-latency", help="also fly in simulation with the measured latency"),
            timeout: Optional[float] = typer.Option(None, help="reply time-out per request, s (default by device)"),
            retries: int = typer.Option(3, help="retransmissions per request"),
            report: Optional[Path] = typer.Option(None, help="report path (default EXPORT/hil_report.json)")) -> None:
        raise typer.Exit(hil_command(path, device, baud=baud, steps=steps, episodes=episodes, seed=seed,
                                     json_output=json_output, replay_latency=replay_latency,
                                     timeout=timeout, retries=retries, report=report))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m hardware.cli_entry", description=__doc__.splitlines()[0])
    ap.add_argument("path")
    ap.add_argument("--device", default="emulated")
    ap.add_argument("--baud", type=int, default=115200)
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--episodes", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true", dest="json_output")
    ap.add_argument("--replay-latency", action="store_true")
    ap.add_argument("--timeout", type=float, default=None)
    ap.add_argument("--retries", type=int, default=3)
    ap.add_argument("--report", default=None)
    a = ap.parse_args(argv)
    return hil_command(a.path, a.device, baud=a.baud, steps=a.steps, episodes=a.episodes, seed=a.seed,
                       json_output=a.json_output, replay_latency=a.replay_latency, timeout=a.timeout,
                       retries=a.retries, report=a.report)


if __name__ == "__main__":
    sys.exit(main())

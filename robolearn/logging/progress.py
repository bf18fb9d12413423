"""The training run's progress bar (rich), with a line of live metrics below it."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, cast

if TYPE_CHECKING:
    from rich.console import Console


class Progress:
    """rich progress bar plus a line of live metrics below it (no-op when disabled)."""

    def __init__(self, total: int, enabled: bool, console: Console | None = None) -> None:
        self.enabled = enabled
        self._last = 0.0
        if not enabled:
            return
        from rich.console import Group
        from rich.live import Live
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
        from rich.text import Text

        self.p = Progress(TextColumn("[bold]train"), BarColumn(bar_width=30),
                          TextColumn("{task.completed:,}/{task.total:,} env steps"),
                          TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(), console=console)
        self.task = self.p.add_task("train", total=total)
        self.text = Text("waiting for the first episodes ...")
        self.live = Live(Group(self.p, self.text), console=console, auto_refresh=False, transient=False)
        self.live.start()

    def update(self, completed: int, info: str, force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.perf_counter()
        if force or now - self._last > 0.25:
            self.p.update(self.task, completed=min(completed, cast(float, self.p.tasks[0].total)))  # set above
            self.text.plain = info
            self.live.refresh()
            self._last = now

    def close(self) -> None:
        if self.enabled:
            self.live.refresh()
            self.live.stop()
            if not self.live.console.is_terminal:  # rich leaves the last line open there
                self.live.console.line()

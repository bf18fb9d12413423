"""SIGINT and SIGTERM during a training run: a clean stop, then exit code 128 + the signal."""

from __future__ import annotations

import signal
import threading
from typing import Any

from .errors import Stopped

EXIT_SIGNAL = {signal.SIGINT: 130, signal.SIGTERM: 143}  # 128 + signal number, the shells' convention


class StopSignals:
    """SIGINT and SIGTERM (what Ray, systemd and docker send) stop the run cleanly.

    While ``deferred`` (the training loop) the first signal is only recorded: the loop ends
    after the current iteration, so the final checkpoint holds whole iterations (env steps
    and iteration counted together). A second one stops at once (``KeyboardInterrupt``;
    the last periodic checkpoint stays the newest). Outside the loop (polish, trim,
    evaluation) a signal raises :class:`Stopped` (a ``KeyboardInterrupt``) at once. Installed only in the main
    thread (signal handlers cannot be set elsewhere).
    """

    def __init__(self) -> None:
        self.signum: int | None = None
        self.deferred = False
        self._old: dict[int, Any] = {}

    def __enter__(self) -> "StopSignals":
        if threading.current_thread() is threading.main_thread():
            for sig in EXIT_SIGNAL:
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: Any) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)

    def _handle(self, signum: int, frame: Any) -> None:
        first = self.signum is None
        self.signum = self.signum or signum
        if not (self.deferred and first):
            raise Stopped(signum)

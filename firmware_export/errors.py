"""The one error type of the exporter: a one-line message naming what to do."""

from __future__ import annotations


class ExportError(Exception):
    """Bad input (missing/corrupt ``policy.pt``, unsupported network, missing toolchain)
    or a failed verification. ``str(e)`` is a single line fit for ``error: ...``."""

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))

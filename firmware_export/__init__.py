"""Export a trained actor (``policy.pt``) to ONNX, dependency-free C and firmware.

``export(run_or_policy_dir, out_dir, formats=("onnx", "c"), quantize=None)`` is the
entry point (see :mod:`firmware_export.pipeline`). This package never imports
``robolearn``: it reads the plain ``policy.pt`` dict and the run's ``config.yaml``.
Heavy modules (torch, onnx) load lazily, on first use of ``export``.
"""

from __future__ import annotations

from typing import Any

from .errors import ExportError

__all__ = ["export", "ExportError"]


def __getattr__(name: str) -> Any:
    # Lazy: `import firmware_export` stays cheap (the firmware builder and the HIL
    # runner import the package without needing torch). The implementation lives in
    # pipeline.py, not export.py, so that the submodule never shadows this function.
    if name == "export":
        from .pipeline import export

        return export
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

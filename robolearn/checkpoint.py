"""Atomic checkpoints that load with ``torch.load(weights_only=True)``.

A checkpoint is a dict of tensors and plain Python values: the algorithm's state
(model, optimizer, normalizers, counters), the curriculum's state, RNG states and the
resolved config. Files are written to a temporary name in the same directory, flushed,
fsynced and renamed over the target (``os.replace`` is atomic on POSIX), so a killed
trainer leaves either the old file or the new one, never half a file.
"""

from __future__ import annotations

import io
import os
import random
import re
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .errors import CheckpointError

CHECKPOINT_FORMAT = "robolearn.checkpoint/1"
_NAME = re.compile(r"^ckpt_(\d{9})\.pt$")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_MODE = 0o666 & ~_umask()  # mkstemp creates 0600; give final files the usual permissions


def atomic_save(obj: Any, path: str | Path) -> None:
    """``torch.save`` to ``path`` atomically (tmp file in the same dir + fsync + os.replace)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    torch.save(obj, buf)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, _MODE)
        with os.fdopen(fd, "wb") as f:
            f.write(buf.getbuffer())
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    try:  # make the rename durable too
        dfd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass


def atomic_write_text(text: str, path: str | Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.fchmod(fd, _MODE)
    with os.fdopen(fd, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def safe_load(path: str | Path, what: str = "checkpoint") -> dict:
    """``torch.load(weights_only=True)``; any failure becomes a one-line CheckpointError."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{what} not found: {path}")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unpickling problem means "corrupt"
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise CheckpointError(f"corrupt or unreadable {what} {path}: {type(e).__name__}: {first[:200]}") from None
    if not isinstance(obj, dict):
        raise CheckpointError(f"corrupt {what} {path}: expected a dict, got {type(obj).__name__}")
    return obj


# ----------------------------------------------------------------------------- RNG state
def rng_state() -> dict:
    """Python, numpy (legacy global) and torch RNG states as weights_only-loadable values."""
    py = random.getstate()
    np_state: Any = np.random.get_state()  # the legacy tuple (name, key, pos, has_gauss, cached)
    return {
        "python": [py[0], list(py[1]), py[2]],
        "numpy": {"key": torch.from_numpy(np_state[1].astype(np.int64)), "pos": int(np_state[2]),
                  "has_gauss": int(np_state[3]), "cached_gaussian": float(np_state[4])},
        "torch": torch.get_rng_state(),
    }


def set_rng_state(d: dict) -> None:
    py = d["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    n = d["numpy"]
    np.random.set_state(("MT19937", n["key"].numpy().astype(np.uint32), n["pos"], n["has_gauss"],
                         n["cached_gaussian"]))
    torch.set_rng_state(d["torch"])


# ----------------------------------------------------------------------------- run checkpoints
def checkpoint_path(ckpt_dir: str | Path, iteration: int) -> Path:
    return Path(ckpt_dir) / f"ckpt_{iteration:09d}.pt"


def list_checkpoints(ckpt_dir: str | Path) -> list[Path]:
    d = Path(ckpt_dir)
    if not d.is_dir():
        return []
    return sorted(p for p in d.iterdir() if _NAME.match(p.name))


def save_checkpoint(ckpt_dir: str | Path, iteration: int, state: dict, keep: int = 0) -> Path:
    """Write ``ckpt_<iteration>.pt`` atomically; then keep only the newest ``keep`` (0: all)."""
    state = dict(state)
    state["format"] = CHECKPOINT_FORMAT
    state["rng"] = rng_state()
    path = checkpoint_path(ckpt_dir, iteration)
    atomic_save(state, path)
    if keep > 0:
        for old in list_checkpoints(ckpt_dir)[:-keep]:
            try:
                old.unlink()
            except OSError:
                pass
    return path


def load_checkpoint(path: str | Path) -> dict:
    d = safe_load(path, "checkpoint")
    if d.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"corrupt checkpoint {path}: format {d.get('format')!r}, expected {CHECKPOINT_FORMAT!r}")
    for key in ("algo", "config", "env_steps"):
        if key not in d:
            raise CheckpointError(f"corrupt checkpoint {path}: missing {key!r}")
    return d


def latest_checkpoint(ckpt_dir: str | Path) -> Path | None:
    """The newest checkpoint file, or None."""
    found = list_checkpoints(ckpt_dir)
    return found[-1] if found else None

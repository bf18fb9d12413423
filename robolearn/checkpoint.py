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
import pickle
import random
import re
import tempfile
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from .errors import CheckpointError, WriteError

CHECKPOINT_FORMAT = "robolearn.checkpoint/1"
_NAME = re.compile(r"^ckpt_(\d{9})\.pt$")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_MODE = 0o666 & ~_umask()  # mkstemp creates 0600; give final files the usual permissions


def atomic_write_bytes(data: bytes | memoryview, path: str | Path) -> None:
    """Write ``data`` to ``path`` atomically (tmp file in the same dir + fsync + os.replace).

    On any failure the tmp file is removed and ``path`` keeps its old content; an OSError
    (full disk, no permission) becomes a one-line :class:`WriteError`.
    """
    path = Path(path)
    tmp: str | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.fchmod(fd, _MODE)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        tmp = None
    except OSError as e:
        raise WriteError(path, e) from None
    finally:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass
    try:  # make the rename durable too
        dfd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass


def atomic_save(obj: Any, path: str | Path) -> None:
    """``torch.save`` to ``path`` atomically (see :func:`atomic_write_bytes`)."""
    buf = io.BytesIO()
    torch.save(obj, buf)
    atomic_write_bytes(buf.getbuffer(), path)


def atomic_write_text(text: str, path: str | Path) -> None:
    """Write ``text`` to ``path`` atomically (see :func:`atomic_write_bytes`)."""
    atomic_write_bytes(text.encode(), path)


def safe_load(path: str | Path, what: str = "checkpoint") -> dict:
    """``torch.load(weights_only=True)``; any failure becomes a one-line CheckpointError."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{what} not found: {path}")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        if "weights only load failed" in str(e).lower():  # torch refused a Python object in it
            raise CheckpointError(f"{what} {path} is an unsafe pickle (it holds Python objects, not only tensors "
                                  f"and plain values); it was not loaded: use a file written by robolearn") from None
        raise CheckpointError(f"corrupt {what} {path}: {_first_line(e)}") from None
    except Exception as e:  # noqa: BLE001 - any other unpickling problem means "corrupt"
        raise CheckpointError(f"corrupt or unreadable {what} {path}: {_first_line(e)}") from None
    if not isinstance(obj, dict):
        raise CheckpointError(f"corrupt {what} {path}: expected a dict, got {type(obj).__name__}")
    return obj


def _first_line(e: BaseException) -> str:
    first = (str(e).strip().splitlines() or [""])[0].strip()
    return f"{type(e).__name__}: {first}" if first else type(e).__name__


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


def latest_good_checkpoint(ckpt_dir: str | Path, notice: Callable[[str], None],
                           move_bad: bool = True) -> tuple[Path, dict] | None:
    """The newest checkpoint that loads, and its contents; None if there is none.

    Newer ones that do not load (truncated, corrupt, an unsafe pickle) are reported through
    ``notice`` (one line each) and, with ``move_bad``, renamed to ``<name>.bad`` so that
    they are kept for a look but never picked again.
    """
    for p in reversed(list_checkpoints(ckpt_dir)):
        try:
            return p, load_checkpoint(p)
        except CheckpointError as e:
            where = ""
            if move_bad:
                bad = p.with_name(p.name + ".bad")
                try:
                    os.replace(p, bad)
                    where = f"; kept as {bad.name}"
                except OSError:
                    where = "; left in place (cannot rename it)"
            notice(f"notice: skipped checkpoint {p.name}, it does not load ({e}){where}")
    return None

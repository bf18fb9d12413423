"""The run directory contract.

::

    RUN_DIR/
      config.yaml        fully resolved config (after --set overrides)
      metrics.csv        one row per logged iteration
      events.out.tfevents.*   TensorBoard scalars (same values)
      checkpoints/       ckpt_<iteration>.pt (atomic), see robolearn.checkpoint
      policy.pt          the deployable actor (robolearn.policy.save_policy of a PolicySpec)
      eval.json          the family's evaluation (robolearn.tasks)
      plots/             learning curves and a flight plot (PNG)
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from ..checkpoint import atomic_write_text
from ..errors import UserError, WriteError

# quadrotor: survived, position_error_m, tilt_deg, yaw_deg; arm: success, object_goal_distance_m
EPISODE_KEYS = ("return", "length", "survived", "position_error_m", "tilt_deg", "yaw_deg", "success",
                "object_goal_distance_m")


class RunDir:
    def __init__(self, path: str | Path):
        self.path = Path(path)

    # layout
    @property
    def config(self) -> Path:
        return self.path / "config.yaml"

    @property
    def metrics(self) -> Path:
        return self.path / "metrics.csv"

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    @property
    def policy(self) -> Path:
        return self.path / "policy.pt"

    @property
    def eval(self) -> Path:
        return self.path / "eval.json"

    @property
    def plots(self) -> Path:
        return self.path / "plots"

    def is_run(self) -> bool:
        """Whether this folder holds (the start of) a robolearn run."""
        return self.config.is_file() or (self.checkpoints.is_dir() and any(self.checkpoints.iterdir()))

    def check_new(self, force: bool = False) -> "RunDir":
        """Check that a new run may be made here, writing nothing: the folder does not exist or
        is empty (or, with ``force``, holds files that are not a robolearn run)."""
        if self.path.exists() and not self.path.is_dir():
            raise UserError(f"run directory {self.path} exists and is not a directory")
        if self.is_run():
            raise UserError(f"run directory {self.path} already holds a run; continue it with --resume {self.path}, "
                            f"or choose another --out")
        if self.path.is_dir() and any(self.path.iterdir()) and not force:
            raise UserError(f"--out {self.path} is a folder with other files in it (not a robolearn run); choose a "
                            f"new or empty folder, or add --force to write the run into it")
        return self

    def create(self, force: bool = False, config_text: str | None = None) -> "RunDir":
        """Make a fresh run directory (see :meth:`check_new`). ``config_text`` (config.yaml) is
        written before the sub-folders: a process killed in between leaves an empty folder
        or a run that ``--resume`` continues, never a folder ``check_new`` refuses."""
        self.check_new(force)
        for d in (self.path, None, self.checkpoints, self.plots):
            try:
                if d is None:
                    if config_text is not None:
                        self.write_config(config_text)
                else:
                    d.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise WriteError(d or self.config, e) from None
        return self

    def require(self) -> "RunDir":
        """Check that this is an existing run directory (for --resume / eval)."""
        if not self.path.is_dir():
            raise UserError(f"run directory not found: {self.path}")
        if not self.config.is_file():
            raise UserError(f"not a run directory (no config.yaml): {self.path}")
        return self

    def write_config(self, text: str) -> None:
        atomic_write_text(text, self.config)


class MetricsLogger:
    """Appends rows to metrics.csv and the same scalars to TensorBoard.

    The CSV columns are fixed by the first row (or by the existing header on resume);
    values for unknown columns are dropped, missing ones left empty.
    """

    def __init__(self, run: RunDir, tensorboard: bool = True, resume_iteration: int | None = None,
                 resume_step: int | None = None):
        """``resume_iteration`` / ``resume_step``: the iteration and env step of the checkpoint a
        resumed run continues from; rows and TensorBoard events after it are dropped (they are
        logged again)."""
        self.run = run
        self.columns: list[str] | None = None
        if resume_iteration is not None:
            _truncate_metrics(run.metrics, resume_iteration)
        if run.metrics.exists() and run.metrics.stat().st_size > 0:
            with open(run.metrics, newline="") as f:
                header = next(csv.reader(f), None)
            self.columns = header or None
        self._file: TextIO | None = None
        self._writer: Any = None  # csv writer (its type is private to the csv stub)
        self._tb: Any = None  # tensorboard SummaryWriter, made at the first row (no empty event file)
        self._tensorboard = tensorboard
        # TensorBoard hides the events of the earlier attempt from this step on
        self._purge_step = None if resume_step is None and resume_iteration is None else (resume_step or 0) + 1

    def _writer_tb(self) -> Any:
        if self._tb is None and self._tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self._tb = SummaryWriter(log_dir=str(self.run.path), flush_secs=5, purge_step=self._purge_step)
            except Exception:  # noqa: BLE001 - tensorboard missing/broken: CSV still works
                self._tensorboard = False
        return self._tb

    def log(self, row: dict, step: int) -> None:
        """Append one row (an OSError, e.g. a full disk, becomes a one-line WriteError)."""
        if self.columns is None:
            self.columns = list(row)
        try:
            if self._file is None:
                new = not self.run.metrics.exists() or self.run.metrics.stat().st_size == 0
                self._file = file = open(self.run.metrics, "a", newline="")
                self._writer = csv.writer(file)
                if new:
                    self._writer.writerow(self.columns)
            self._writer.writerow([_fmt(row.get(c)) for c in self.columns])
            self._file.flush()
        except OSError as e:
            raise WriteError(self.run.metrics, e) from None
        tb = self._writer_tb()
        if tb is not None:
            for k, v in row.items():
                if isinstance(v, (int, float, np.floating, np.integer)) and math.isfinite(float(v)) and k != "env_steps":
                    tb.add_scalar(k, float(v), step)

    def close(self, quiet: bool = False) -> None:
        """Flush and close; ``quiet``: ignore write errors (closing after a failure)."""
        try:
            if self._file is not None:
                f, self._file = self._file, None
                try:
                    f.flush()
                    os.fsync(f.fileno())
                finally:
                    f.close()
            if self._tb is not None:
                tb, self._tb = self._tb, None
                tb.flush()
                tb.close()
        except OSError as e:
            if not quiet:
                raise WriteError(self.run.metrics, e) from None


def _truncate_metrics(path: Path, last_iteration: int) -> None:
    """Drop rows logged after the checkpoint a run resumes from (they are logged again)
    and a partial last line left by a killed process; rewritten atomically."""
    if not path.exists() or path.stat().st_size == 0:
        return
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    header, body = rows[0], rows[1:]
    keep = []
    for r in body:
        if len(r) != len(header):
            continue
        try:
            it = int(float(r[0]))
        except ValueError:
            continue
        if it <= last_iteration:
            keep.append(r)
    buf = io.StringIO(newline="")
    w = csv.writer(buf)
    w.writerow(header)
    w.writerows(keep)
    atomic_write_text(buf.getvalue(), path)


def _fmt(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, (float, np.floating)):  # nan / inf are written as such: an empty cell means "no value"
        return f"{float(v):.6g}"
    return str(v)


def read_metrics(path: str | Path) -> dict[str, np.ndarray]:
    """metrics.csv as columns of floats (empty cells are NaN)."""
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    if not rows:
        return {}
    header, body = rows[0], rows[1:]
    out = {}
    for j, name in enumerate(header):
        col = []
        for r in body:
            try:
                col.append(float(r[j]) if j < len(r) and r[j] != "" else float("nan"))
            except ValueError:
                col.append(float("nan"))
        out[name] = np.asarray(col, dtype=np.float64)
    return out


class EpisodeStats:
    """Collects finished episodes between two log points (all numpy, no per-env loops)."""

    def __init__(self, param_names: list[str]):
        self.param_names = list(param_names)
        self.clear()

    def clear(self) -> None:
        self._chunks: list[dict[str, np.ndarray]] = []

    def add(self, episode: dict, mask: Any) -> None:
        mask = np.asarray(mask, dtype=bool)
        if not mask.any():
            return
        ids = np.nonzero(mask)[0]
        chunk: dict[str, np.ndarray] = {k: np.asarray(episode[k])[ids].astype(np.float64)
                                        for k in EPISODE_KEYS if k in episode}
        chunk["params"] = np.asarray(episode["params"])[ids].astype(np.float64)
        chunk["env_ids"] = ids
        self._chunks.append(chunk)

    def __len__(self) -> int:
        return sum(len(c["env_ids"]) for c in self._chunks)

    def arrays(self) -> dict[str, np.ndarray]:
        if not self._chunks:
            return {}
        return {k: np.concatenate([c[k] for c in self._chunks]) for k in self._chunks[0]}

    def summary(self) -> dict[str, float]:
        a = self.arrays()
        if not a:
            return {}
        out = {
            "episode/count": float(len(a["return"])),
            "episode/return": float(a["return"].mean()),
            "episode/length": float(a["length"].mean()),
        }
        if "success" in a:
            out["episode/success"] = float((a["success"] > 0.5).mean())
            out["episode/object_goal_distance_m"] = float(a["object_goal_distance_m"].mean())
        if "survived" in a:
            surv = a["survived"] > 0.5
            out["episode/survival"] = float(surv.mean())
            for k in ("position_error_m", "tilt_deg", "yaw_deg"):
                if k in a:
                    out[f"episode/{k}"] = float(a[k][surv].mean()) if surv.any() else float("nan")
        return out


def write_eval(result: dict, path: str | Path) -> None:
    """Write an evaluation's result (``eval.json``) atomically."""
    atomic_write_text(json.dumps(result, indent=2) + "\n", path)

"""GIF of evaluation episodes of the arm, rendered with MuJoCo's offscreen renderer.

MuJoCo chooses its OpenGL platform (``MUJOCO_GL``) once, when ``mujoco`` is imported, so
the frames are rendered in a child process per backend: ``MUJOCO_GL`` if the user set
it, else EGL (headless GPU or Mesa), then OSMesa (software) (or the comma-separated list in
``ROBOLEARN_VIDEO_GL``). The first backend that
renders wins; if none does, :func:`write_video` returns the reason instead of a path.
Frames go to a GIF with Pillow (an MP4 would need an ffmpeg binary).

    python -m robolearn.tasks.arm.video TRAJS.npz OUT.gif    (the child; MUJOCO_GL set by the parent)
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

TILE = (240, 320)  # height, width of one episode's view
FPS = 25  # every 2nd control step of the 50 Hz env: real time


def write_video(trajs: list[dict], path: str | Path, task: str = "push", backends: list[str] | None = None,
                timeout_s: float = 600.0) -> tuple[Path | None, str | None]:
    """Render ``trajs`` (from ``robolearn.tasks.arm.evaluate.run_arm_block``) side by side into a GIF.

    ``backends`` default: ``MUJOCO_GL`` if set, else ``ROBOLEARN_VIDEO_GL`` (comma-separated),
    else egl then osmesa. Returns ``(path, None)``, or ``(None, reason)`` when none renders.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    user = os.environ.get("MUJOCO_GL")
    listed = [b for b in os.environ.get("ROBOLEARN_VIDEO_GL", "egl,osmesa").split(",") if b]
    backends = backends or ([user] if user else listed)
    reasons = []
    with tempfile.TemporaryDirectory() as tmp:
        npz = Path(tmp) / "trajs.npz"
        np.savez(npz, n=len(trajs), task=task, **{f"qpos{i}": t["qpos"] for i, t in enumerate(trajs)},
                 **{f"goal{i}": t["goal"] for i, t in enumerate(trajs)},
                 success=np.array([t["success"] for t in trajs]))
        for b in backends:
            env = dict(os.environ, MUJOCO_GL=b)
            if b == "osmesa":
                env.setdefault("PYOPENGL_PLATFORM", "osmesa")  # PyOpenGL must load the same library
            try:
                r = subprocess.run([sys.executable, "-m", "robolearn.tasks.arm.video", str(npz), str(path)], env=env,
                                   capture_output=True, text=True, timeout=timeout_s)
            except subprocess.TimeoutExpired:
                reasons.append(f"{b}: timed out after {timeout_s:.0f} s")
                continue
            if r.returncode == 0 and path.exists():
                return path, None
            last = (r.stderr.strip().splitlines() or ["exit code %d" % r.returncode])[-1]
            reasons.append(f"{b}: {last[:160]}")
    return None, "no OpenGL for MuJoCo's offscreen renderer (" + "; ".join(reasons) + ")"


def _render(npz: str, out: str) -> None:
    import mujoco
    from PIL import Image

    from sims.manipulation import load_model

    d = np.load(npz)
    n = int(d["n"])
    qpos = [d[f"qpos{i}"] for i in range(n)]
    goals = [d[f"goal{i}"] for i in range(n)]
    model = load_model(str(d["task"]))
    data = mujoco.MjData(model)
    goal_site = model.site("goal").id
    model.site_rgba[goal_site] = (0.1, 0.9, 0.1, 0.8)
    model.site_size[goal_site] = 0.015
    h, w = TILE
    cam = mujoco.MjvCamera()
    cam.lookat[:] = (0.38, 0.0, 0.08)
    cam.distance, cam.azimuth, cam.elevation = 0.9, 150.0, -35.0
    cols = min(n, 2)
    rows = (n + cols - 1) // cols
    T = max(len(q) for q in qpos)
    frames = []
    with mujoco.Renderer(model, h, w) as r:
        for t in range(0, T, 2):
            canvas = np.zeros((rows * h, cols * w, 3), np.uint8)
            for i in range(n):
                data.qpos[:] = qpos[i][min(t, len(qpos[i]) - 1)]  # finished episodes hold their last frame
                model.site_pos[goal_site] = goals[i]
                mujoco.mj_forward(model, data)
                r.update_scene(data, camera=cam)
                y, x = divmod(i, cols)
                canvas[y * h:(y + 1) * h, x * w:(x + 1) * w] = r.render()
            frames.append(Image.fromarray(canvas))
    frames[0].save(out, save_all=True, append_images=frames[1:], duration=int(1000 / FPS), loop=0)


if __name__ == "__main__":
    _render(sys.argv[1], sys.argv[2])

"""The arm family (``env.name: arm``, sims.manipulation): push, lift and push_lift with a
5-DoF arm, stepped by ``mujoco.batch``. Nothing here imports MuJoCo before an env is built.

* env: ``env.py`` (``ArmVecEnv``; CPU only); ``network.init_action`` must be ``zero``;
* curricula: ``curriculum.py`` (none, linear, privileged annealing of the three privileges);
  no start-state curricula;
* episodes: success = the box reached the goal; metrics.csv logs success and the final
  box-goal distance;
* evaluation: ``evaluate.py`` (every privilege at 0), the box-path plot, and a GIF of
  evaluation episodes (``video.py``, MuJoCo's offscreen renderer);
* no finishing stages.
"""

"""The quadrotor family (``env.name: quadrotor``, sims.quadrotor): hover and reach.

* env: ``env.py`` (``QuadrotorVecEnv``, the evaluation blocks); ``network.init_action:
  hover`` starts the actor at the nominal vehicle's hover throttle;
* curricula: every teacher of ``curriculum.py``, the start-state curriculum and the
  hard-corner starts (``hard_starts.py``), applied to training resets in that order;
* episodes: success = survived; metrics.csv logs survival and the position, tilt and yaw errors;
* evaluation: ``evaluate.py`` (nominal, real range, corners, other vehicles) and the flight plot;
* finishing stages: the ES polish, then the trim (``stages.py``).
"""

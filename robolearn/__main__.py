"""``python -m robolearn ...``: the ``robolearn`` command without the console script."""

from robolearn.cli import app

app()

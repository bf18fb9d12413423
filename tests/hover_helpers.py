"""A hover 'policy' whose behaviour is known without training, and a run directory holding it."""

from __future__ import annotations

from pathlib import Path

import torch

from robolearn.config import dump_config, load_config
from robolearn.networks import DeterministicActor, export_actor
from sims.quadrotor import params as P

L2F_CONFIG = "configs/quadrotor_hover_l2f.yaml"


def hover_actor(obs_dim: int) -> DeterministicActor:
    """Commands the nominal hover throttle whatever it sees: survives level starts, not tumbling ones."""
    actor = DeterministicActor(obs_dim, 4, [8], "tanh")
    with torch.no_grad():
        actor.net[-1].weight.zero_()
        actor.net[-1].bias.fill_(P.hover_action("l2f_paper"))
    return actor.eval()


def write_hover_run(d: Path, overrides: list[str]) -> Path:
    """``d`` as a run directory: the l2f hover config with ``overrides`` and :func:`hover_actor`'s policy.pt."""
    (d / "config.yaml").write_text(dump_config(load_config(L2F_CONFIG, overrides)))
    actor = hover_actor(50)
    torch.save(export_actor(actor.norm, actor.net, "tanh"), d / "policy.pt")
    return d

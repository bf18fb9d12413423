"""robolearn: asymmetric actor-critic training for small robots (trainer half).

Public API::

    from robolearn import load_config, train, evaluate, load_policy
    cfg = load_config("configs/quadrotor_hover.yaml", ["seed=1"])
    result = train(cfg, out="runs/demo")          # -> TrainResult (run_dir, eval, ...)
    actor = load_policy("runs/demo/policy.pt")     # torch module: obs["policy"] -> actions
    spec = read_policy("runs/demo/policy.pt")      # the typed format (firmware_export PolicySpec)

Heavy modules (torch, the simulator) load on first use of these names.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "RunConfig": ("config", "RunConfig"),
    "load_config": ("config", "load_config"),
    "dump_config": ("config", "dump_config"),
    "train": ("train", "train"),
    "TrainResult": ("train", "TrainResult"),
    "evaluate": ("tasks", "evaluate"),
    "PPO": ("ppo", "PPO"),
    "TD3": ("td3", "TD3"),
    "RunningNorm": ("normalizer", "RunningNorm"),
    "export_actor": ("networks", "export_actor"),
    "actor_from_export": ("networks", "actor_from_export"),
    "load_policy": ("policy", "load_policy"),
    "read_policy": ("policy", "read_policy"),
    "save_policy": ("policy", "save_policy"),
    "PolicySpec": ("networks", "PolicySpec"),
    "spec_from_actor": ("networks", "spec_from_actor"),
    "actor_from_spec": ("networks", "actor_from_spec"),
    "UserError": ("errors", "UserError"),
    "ConfigError": ("errors", "ConfigError"),
    "CheckpointError": ("errors", "CheckpointError"),
}

__all__ = sorted(_LAZY) + ["__version__"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        mod, attr = _LAZY[name]
        value = getattr(importlib.import_module(f".{mod}", __name__), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'robolearn' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__

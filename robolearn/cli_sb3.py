"""``robolearn sb3-export``: a Stable-Baselines3 model -> a run directory (policy.pt, config.yaml, eval.json).

The run directory is what ``robolearn train`` leaves minus checkpoints and metrics, so
``robolearn export RUN_DIR`` and ``robolearn eval RUN_DIR`` work on it unchanged.
"""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer


def sb3_export_cmd(
    model_path: Path = typer.Argument(..., metavar="MODEL", help="an SB3 model zip (model.save) trained on a robolearn env"),
    config: Path = typer.Option(..., "--config", help="the robolearn config the model's env was made from"),
    out: Path = typer.Option(..., "--out", help="run directory to create"),
    algo: str = typer.Option("ppo", "--algo", help="SB3 algorithm: ppo, a2c, sac, td3"),
    vecnormalize: Optional[Path] = typer.Option(None, "--vecnormalize", help="VecNormalize.save() file of the training env"),
    set_: List[str] = typer.Option([], "--set", help="config override, as given to the model's env (repeatable)"),
    evaluate: bool = typer.Option(True, "--eval/--no-eval", help="evaluate into eval.json (robolearn's fixed-seed evaluation)"),
) -> int:
    """Turn an SB3 model (robolearn.sb3 asymmetric policy) into a run directory for robolearn export / eval."""
    from .config import load_config
    from .sb3.export import load_model, load_vec_normalize, write_run_dir

    cfg = load_config(config, list(set_))
    model = load_model(model_path, algo)
    # SB3 does not record in the model whether it was trained under VecNormalize: a model
    # exported without its statistics would see raw observations. The README says so.
    vn = load_vec_normalize(vecnormalize) if vecnormalize is not None else None
    run, result = write_run_dir(model, cfg, out, vec_normalize=vn, evaluate=evaluate, source=str(model_path))
    line = f"run: {run}  (policy.pt from SB3 {algo.upper()}, {model.num_timesteps} env steps)"
    if result and "survival_rate" in result:
        line += f"\neval nominal: survival {result['survival_rate']:.1%}"
    print(line + f"\nnext: robolearn export {run}")
    return 0


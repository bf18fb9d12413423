"""A privileged teacher, distilled into the deployable student (config section ``distill``).

1. **Teacher**: PPO whose *actor* reads the critic's privileged view (true mass, thrust,
   inertia and motor scales, the disturbance, rotor speeds). It need not infer the vehicle:
   it learns what the best command is on each one.
2. **DAgger** (Ross, Gordon & Bagnell, AISTATS 2011) into the student, the configured actor
   on the policy view (and its integrator state): each round all envs fly the student (in
   round 0 a share ``beta0`` of them fly the teacher), every visited student observation is
   labelled with the teacher's deterministic command for the same state, the data of all
   rounds are kept, and the student's MLP is fitted to them by least squares.
3. The trainer then runs its PPO on the student from the distilled weights, with the
   asymmetric critic (Pinto et al. 2018): what the student cannot infer from its sensors it
   cannot copy, and the RL phase makes it as good as its information allows (the
   teacher-student recipe of Lee et al. 2020, Kumar et al. 2021's RMA, without a latent).

The teacher is saved as ``teacher.pt`` in the run directory (in the policy format, as ``policy.pt``)
and a resumed run reuses it; the distilled student goes into the first checkpoint.
"""

from __future__ import annotations

import math
import time
from typing import Any, Callable

import gymnasium as gym
import numpy as np
import torch

from firmware_export.policy_file import PolicySpec

from .config import RunConfig
from .curriculum import apply_proposals
from .networks import actor_from_spec
from .ppo import PPO


class PrivilegedView:
    """A vector env whose ``policy`` view is its ``critic`` view: what the teacher's actor reads."""

    def __init__(self, env: Any):
        self.env = env
        self.num_envs = env.num_envs
        c = env.single_observation_space["critic"]
        self.single_observation_space = gym.spaces.Dict({"policy": c, "critic": c})
        self.single_action_space = env.single_action_space

    def __getattr__(self, name: str) -> Any:
        return getattr(self.env, name)

    @staticmethod
    def _view(obs: dict[str, Any]) -> dict[str, Any]:
        return {"policy": obs["critic"], "critic": obs["critic"]}

    def reset(self, **kwargs: Any) -> tuple[dict[str, Any], dict]:
        obs, info = self.env.reset(**kwargs)
        return self._view(obs), info

    def step(self, actions: Any) -> tuple[dict[str, Any], Any, Any, Any, dict]:
        obs, rew, term, trunc, info = self.env.step(actions)
        if "final_obs" in info:
            info = dict(info, final_obs=self._view(info["final_obs"]))
        return self._view(obs), rew, term, trunc, info


def train_teacher(cfg: RunConfig, env: Any, seed: int,
                  on_iteration: Callable[[int, dict], None] | None = None) -> PolicySpec:
    """PPO with the actor on the privileged view of ``env`` (the raw vector env) for
    ``distill.teacher_env_steps``; the run's curriculum and hard starts apply as in training.
    Returns the teacher's deterministic actor."""
    d = cfg.distill
    net = cfg.network.model_copy(update={"actor_hidden": list(d.teacher_hidden),
                                         "max_actor_params": 10**9})
    ppo_cfg = cfg.ppo.model_copy(update={"symmetry_coef": 0.0})  # no symmetry maps for the privileged view
    from .envs import init_action

    view = PrivilegedView(env)
    algo = PPO(view, ppo_cfg, net, device=cfg.device, seed=seed + 7919, init_action=init_action(cfg),
               total_env_steps=d.teacher_env_steps)
    from .tasks import task_for

    task = task_for(cfg)
    curriculum = task.build_teacher(cfg)
    # only the start curricula that need no finished episodes (the hard starts): none are fed back here
    resets = [r for r in task.build_resets(cfg, env) if not r.learns]
    algo.reset(seed=seed + 7919)
    while algo.env_steps < d.teacher_env_steps:
        apply_proposals(env, curriculum, algo.env_steps)
        for r in resets:
            r.apply(env, algo.env_steps)
        stats = algo.iterate()
        if on_iteration is not None:
            on_iteration(algo.env_steps, stats)
    return algo.export_policy()


def load_or_train_teacher(cfg: RunConfig, env: Any, path: Any, seed: int,
                          on_iteration: Callable[[int, dict], None] | None = None) -> tuple[PolicySpec, bool]:
    """The run's teacher: ``path`` if it exists (a resumed run), else trained and saved there."""
    from .policy import read_policy, save_policy

    if path.exists():
        return read_policy(path), False
    teacher = train_teacher(cfg, env, seed, on_iteration)
    save_policy(teacher, path)
    return teacher, True


@torch.no_grad()
def _collect(env: Any, student: PPO, teacher: torch.nn.Module, steps: int, beta: float,
             gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Fly ``steps`` steps of the (integrator-wrapped) env; (student obs, teacher labels, failures)."""
    obs, _ = env.reset()
    n = env.num_envs
    use_teacher = torch.rand(n, generator=gen) < beta
    xs, ys = [], []
    fails = 0
    for _ in range(steps):
        o_p = torch.from_numpy(np.asarray(obs["policy"]))
        o_c = torch.from_numpy(np.asarray(obs["critic"]))
        raw_c = o_c[:, :teacher.obs_dim]  # the critic view before the integrator state
        label = teacher(raw_c)
        act = student.model.action_mean(o_p).clamp(-1.0, 1.0)
        act = torch.where(use_teacher.unsqueeze(1), label, act)
        xs.append(o_p.clone())
        ys.append(label)
        obs, _, term, trunc, _ = env.step(act.numpy())
        fails += int(np.asarray(term).sum())
    return torch.cat(xs), torch.cat(ys), fails


def distill_into(cfg: RunConfig, env: Any, student: PPO, teacher_policy: PolicySpec, seed: int,
                 on_round: Callable[[dict], None] | None = None) -> list[dict]:
    """DAgger the teacher into ``student``'s actor (and its observation normalizer), in place.

    ``env`` is the student's env (policy view incl. integrator state; critic view whose
    first entries are the teacher's input). Returns one summary row per round."""
    d = cfg.distill
    teacher = actor_from_spec(teacher_policy)
    gen = torch.Generator().manual_seed(seed + 104729)
    model = student.model
    opt = torch.optim.Adam(list(model.actor.parameters()), lr=d.lr)
    data_x: list[torch.Tensor] = []
    data_y: list[torch.Tensor] = []
    rows = []
    for r in range(d.rounds):
        t0 = time.perf_counter()
        x, y, fails = _collect(env, student, teacher, d.steps_per_round, d.beta0 if r == 0 else 0.0, gen)
        data_x.append(x)
        data_y.append(y)
        if r == 0:  # the normalizer follows the states the student will see, fixed while fitting
            model.policy_norm.update(x)
        X, Y = torch.cat(data_x), torch.cat(data_y)
        Xn = model.policy_norm(X)
        loss_sum, batches = 0.0, 0
        for _ in range(d.epochs):
            perm = torch.randperm(X.shape[0], generator=gen)
            for idx in perm.split(d.minibatch):
                pred = model.actor(Xn.index_select(0, idx))
                loss = (pred.clamp(-1.0, 1.0) - Y.index_select(0, idx)).square().mean()
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                loss_sum += loss.item()
                batches += 1
        if not math.isfinite(loss_sum):
            raise FloatingPointError(f"distill round {r}: the regression loss is not finite; lower distill.lr")
        row = {"round": r, "samples": int(X.shape[0]), "mse": loss_sum / max(batches, 1),
               "terminations": fails, "wall_s": time.perf_counter() - t0}
        rows.append(row)
        if on_round is not None:
            on_round(row)
    with torch.no_grad():
        model.log_std.fill_(math.log(d.student_init_std))
    return rows


def teacher_parameters(teacher: PolicySpec) -> int:
    """Weights and biases of the teacher's MLP."""
    return teacher.num_parameters

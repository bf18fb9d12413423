"""Evolution-strategies polish of the deployable actor on the hover task's hard starts.

PPO optimises its *stochastic* policy; what is deployed and evaluated is the
*deterministic* one (the mean action). In the hard corner of the hover start
distribution (tilted, falling, low: ``robolearn/hard_starts.py``) a recovery lasts
0.2-0.35 s and runs the rotors near their limits, and there the two differ the most:
nearly all failed evaluation starts lie there (BENCHMARKS.md, issue 3). This stage
optimises the deterministic actor on those starts directly, after the trainer's last
iteration, with antithetic evolution strategies and rank-based fitness shaping
(Salimans et al., "Evolution Strategies as a Scalable Alternative to Reinforcement
Learning", 2017; Mania et al., "Simple random search provides a competitive approach to
reinforcement learning", 2018).

One iteration: ``pairs`` perturbations ``+-sigma * eps`` of all actor weights fly the same
``starts`` hard-corner starts for ``horizon_steps`` in one batched simulation, with
sensor noise, as in the evaluation. The fitness of a perturbation rewards surviving to
the horizon, with two graded terms so that almost saving a start counts: the fraction
of the horizon survived and the smallest margin to the position bound. The step follows
the rank-weighted perturbations.

* Most hard starts are survived, or failed, by every perturbation, and carry no signal.
  A ``focus`` share of each iteration's starts is therefore drawn from the *frontier*:
  the pool starts the current actor fails or nearly fails (margin < 0.15) within the
  horizon, found every 10 iterations by flying it from fresh pool starts.
* Steady hover is guarded by an anchor: the fitness loses ``anchor_coef`` times the
  mean squared change of the four rotor commands, against the unpolished actor, on
  observations it meets in steady flight (2-3 s into nominal episodes). Without it the
  polish moved steady flight too: yaw drifted to 3.8 deg and position error grew on some
  seeds; anchoring the yaw command alone kept yaw but not position (BENCHMARKS.md, issue 3).

The policy's observation normalizer is kept as it is; only the linear layers move.
"""

from __future__ import annotations

import time
from typing import Any, Callable

import numpy as np
import torch

from firmware_export.policy_file import PolicySpec

from ...networks import DeterministicActor, actor_from_spec

# Weights of the graded fitness terms beside survival to the horizon (ours): both lie in
# [0, 1], so a saved start is worth more than any improvement of a failed one.
W_ALIVE_FRACTION = 0.5
W_MARGIN = 0.5


def flatten(policy: PolicySpec) -> torch.Tensor:
    """All linear-layer parameters of ``policy`` as one float32 vector (per layer W row-major, then b)."""
    return torch.from_numpy(np.concatenate([a.ravel() for w, b in zip(policy.weights, policy.biases)
                                            for a in (w, b)]).astype(np.float32))


def unflatten(policy: PolicySpec, theta: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(M, D) parameter vectors -> per layer (W (M, out, in), b (M, out)), shaped as ``policy``'s layers."""
    out, k = [], 0
    for w, b in zip(policy.weights, policy.biases):
        nw, nb = w.size, b.size
        out.append((theta[:, k:k + nw].reshape(-1, *w.shape), theta[:, k + nw:k + nw + nb]))
        k += nw + nb
    return out


def stacked_layers(policy: PolicySpec, theta: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(M, D) parameter vectors -> per layer (W^T (M, in, out), b (M, 1, out)), contiguous: the
    stacked layout of :func:`robolearn.networks.actor_head` (built once per iteration, not per step)."""
    return [(w.transpose(1, 2).contiguous(), b[:, None, :].contiguous()) for w, b in unflatten(policy, theta)]


def with_parameters(policy: PolicySpec, theta: torch.Tensor) -> PolicySpec:
    """A copy of ``policy`` whose linear layers hold the vector ``theta`` (D,)."""
    layers = unflatten(policy, theta[None])
    return policy.replace(weights=[w[0].numpy().copy() for w, _ in layers], biases=[b[0].numpy().copy() for _, b in layers])


def batched_actions(policy: PolicySpec | DeterministicActor, layers: list[tuple[torch.Tensor, torch.Tensor]],
                    obs: torch.Tensor) -> torch.Tensor:
    """Actions (M, S, act) of M parameter sets (``stacked_layers``) on observations (M, S, obs):
    the deployed actor's normalizer and :meth:`~robolearn.networks.DeterministicActor.head`
    (pass the actor, :func:`robolearn.networks.actor_from_spec`, to build it once)."""
    actor = policy if isinstance(policy, DeterministicActor) else _stateless_actor(policy)
    return actor.head(actor.norm(obs), layers)


def _stateless_actor(policy: PolicySpec) -> DeterministicActor:
    if policy.state_dim:
        raise ValueError("polish: the actor carries an integrator state (robolearn.actor/2); the polish flies "
                         "stateless actors only: set polish.iterations=0")
    return actor_from_spec(policy)


def es_step(theta: torch.Tensor, eps: torch.Tensor, fitness: np.ndarray, lr: float) -> torch.Tensor:
    """One antithetic ES step: ``eps`` (P, D) were flown as ``theta + sigma eps`` (fitness[:P]) and
    ``theta - sigma eps`` (fitness[P:]). Centred ranks make it invariant to the fitness's scale."""
    p = eps.shape[0]
    ranks = np.argsort(np.argsort(fitness, kind="stable"), kind="stable") / max(len(fitness) - 1, 1) - 0.5
    w = torch.from_numpy(ranks[:p] - ranks[p:]).to(eps.dtype)
    return theta + lr / (2 * p) * (w @ eps)


def fly(policy: PolicySpec, theta: torch.Tensor, env: Any, starts: np.ndarray, horizon: int, bound_m: float,
        seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fly M parameter sets ``theta`` (M, D), each from its S of ``starts`` (M * S, 17), for ``horizon`` steps.

    Returns per env (M * S,): alive at the horizon, steps survived, smallest margin to the
    position bound (1 - distance / bound; 0 if terminated).
    """
    actor = _stateless_actor(policy)
    m = theta.shape[0]
    env.set_start_states(starts)
    obs, _ = env.reset(seed=seed)
    layers = stacked_layers(policy, theta)
    n = len(starts)
    alive = np.ones(n, bool)
    steps = np.zeros(n)
    far2 = np.zeros(n, np.float32)  # largest squared distance to the target while alive
    with torch.inference_mode():
        for _ in range(horizon):
            o = torch.from_numpy(obs["policy"]).view(m, n // m, -1)
            obs, _, term, _, _ = env.step(batched_actions(actor, layers, o).reshape(n, -1).numpy())
            alive &= ~term
            steps += alive
            d = env.state[:, :3] - env.targets
            d2 = np.einsum("ij,ij->i", d, d)
            np.maximum(far2, d2, out=far2, where=alive)  # a terminated env has already reset: not counted
    return alive, steps, np.where(alive, 1.0 - np.sqrt(far2) / bound_m, 0.0)


def fitness(policy: PolicySpec, theta: torch.Tensor, env: Any, starts: np.ndarray, horizon: int,
            bound_m: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Fitness (M,) and survival to the horizon (M,) of M parameter sets ``theta`` (M, D) on ``starts`` (S, 17).

    ``env`` has M * S envs; every parameter set flies the same starts.
    """
    m, s = theta.shape[0], len(starts)
    alive, steps, margin = fly(policy, theta, env, np.tile(starts, (m, 1)), horizon, bound_m, seed)
    surv = alive.reshape(m, s).mean(1)
    f = surv + W_ALIVE_FRACTION * steps.reshape(m, s).mean(1) / horizon + W_MARGIN * margin.reshape(m, s).mean(1)
    return f, surv


def anchor_penalty(policy: PolicySpec, theta: torch.Tensor, anchor_obs: torch.Tensor, anchor_act: torch.Tensor) -> np.ndarray:
    """Mean over ``anchor_obs`` (K, obs) of the squared change of the action vector (M,), for
    parameter sets ``theta`` (M, D), against ``anchor_act`` (K, act)."""
    with torch.inference_mode():
        a = batched_actions(policy, stacked_layers(policy, theta), anchor_obs.expand(theta.shape[0], -1, -1))
        return (a - anchor_act).square().sum(-1).mean(-1).numpy()


@torch.inference_mode()
def steady_observations(policy: PolicySpec, env: Any, steps: int, keep: int, seed: int, every: int = 1) -> torch.Tensor:
    """Policy observations of every ``every``-th of the last ``keep`` of ``steps`` control steps that
    ``policy`` flies in ``env``."""
    obs, _ = env.reset(seed=seed)
    layers = stacked_layers(policy, flatten(policy)[None])
    actor = _stateless_actor(policy)
    out = []
    for t in range(steps):
        o = torch.from_numpy(obs["policy"])
        if t >= steps - keep and (t - steps + keep) % every == 0:
            out.append(o.clone())
        obs, *_ = env.step(batched_actions(actor, layers, o[None])[0].numpy())
    return torch.cat(out)


def frontier(policy: PolicySpec, theta: torch.Tensor, env: Any, pool: np.ndarray, horizon: int, bound_m: float,
             rng: np.random.Generator, seed: int) -> np.ndarray:
    """The starts among ``env.num_envs`` fresh pool starts that ``theta`` (D,) fails or nearly fails
    within the horizon (the whole pool if there are none)."""
    ids = rng.integers(0, len(pool), env.num_envs)
    alive, _, margin = fly(policy, theta[None], env, pool[ids], horizon, bound_m, seed)
    near = ids[~alive | (margin < FRONTIER_MARGIN)]
    return pool[near] if len(near) else pool


def polish(policy: PolicySpec, env: Any, pool: np.ndarray, c: Any, bound_m: float, seed: int,
           anchor_obs: torch.Tensor | None = None, on_iteration: Callable[[dict], None] | None = None) -> tuple[PolicySpec, list[dict]]:
    """Run ``c.iterations`` ES steps on ``policy``; returns the new policy and one row per step.

    ``c``: the settings (a ``robolearn.config.PolishConfig``); ``env``: a quadrotor vector
    env of ``2 * c.pairs * c.starts`` envs; ``pool``: hard-corner start states (N, 17)
    relative to the target; ``anchor_obs`` (K, obs): steady-flight observations where the
    actions should stay those of ``policy``.
    Deterministic given ``seed`` (perturbations, the starts drawn, the env's noise streams).
    """
    if env.num_envs != 2 * c.pairs * c.starts:
        raise ValueError(f"polish: env has {env.num_envs} envs, needs 2 * pairs * starts = {2 * c.pairs * c.starts}")
    _stateless_actor(policy)  # a stateful one is refused before any flight
    theta = flatten(policy)
    anchor = None  # (steady observations, the unpolished actor's commands there)
    if anchor_obs is not None and c.anchor_coef > 0:
        anchor = (anchor_obs, batched_actions(policy, stacked_layers(policy, theta[None]), anchor_obs[None])[0])
    gen = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)
    n_focus = int(round(c.focus * c.starts))
    front = pool
    rows: list[dict] = []
    t0 = time.perf_counter()
    for it in range(c.iterations):
        if n_focus and it % FRONTIER_EVERY == 0:
            front = frontier(policy, theta, env, pool, c.horizon_steps, bound_m, rng, seed + FRONTIER_SEED_OFFSET + it)
        eps = torch.randn(c.pairs, theta.numel(), generator=gen)
        cand = torch.cat([theta + c.sigma * eps, theta - c.sigma * eps])
        batch = np.concatenate([front[rng.integers(0, len(front), n_focus)],
                                pool[rng.integers(0, len(pool), c.starts - n_focus)]])
        f, surv = fitness(policy, cand, env, batch, c.horizon_steps, bound_m, seed=seed + it)
        drift = anchor_penalty(policy, cand, *anchor) if anchor is not None else np.zeros(len(f))
        theta = es_step(theta, eps, f - c.anchor_coef * drift, c.lr)
        rows.append({"iteration": it, "fitness_mean": float(f.mean()), "horizon_survival_mean": float(surv.mean()),
                     "horizon_survival_best": float(surv.max()), "frontier_starts": len(front),
                     "anchor_drift_mean": float(drift.mean()), "wall_time_s": time.perf_counter() - t0})
        if on_iteration is not None:
            on_iteration(rows[-1])
    return with_parameters(policy, theta), rows


# The anchor's observations: 16 episodes of the training start distribution, every 4th
# step from 2 to 3 s in (settled: the evaluation measures steady error over its last
# second), 400 in all (1,600, every step, anchored the same and cost 4x the time).
ANCHOR_ENVS, ANCHOR_STEPS, ANCHOR_KEEP, ANCHOR_EVERY = 16, 300, 100, 4
FRONTIER_EVERY, FRONTIER_MARGIN = 10, 0.15  # iterations between frontier searches; margin to the bound
FRONTIER_SEED_OFFSET = 500_000  # the frontier searches fly other noise streams than the ES iterations (seed + it)
POLISH_SEED = 7_000_001  # + the run's seed: the polish env's noise and starts (not the evaluation's seed)


def polish_from_config(cfg: Any, policy: PolicySpec, pool: np.ndarray | None = None,
                       on_iteration: Callable[[dict], None] | None = None) -> tuple[PolicySpec, list[dict]]:
    """:func:`polish` with the settings of ``cfg.polish`` (a RunConfig, quadrotor); ``pool``
    default: the run's hard-start pool (robolearn/tasks/quadrotor/hard_starts.py), drawn here."""
    from .env import make_env, sim_config
    from .hard_starts import run_pool

    c = cfg.polish
    if pool is None:
        pool = run_pool(cfg)
    seed = POLISH_SEED + cfg.seed
    anchor = None
    if c.anchor_coef > 0:
        steady = make_env(cfg, num_envs=ANCHOR_ENVS, seed=seed + 1, backend="cpu")
        anchor = steady_observations(policy, steady, ANCHOR_STEPS, ANCHOR_KEEP, seed + 1, ANCHOR_EVERY)
    env = make_env(cfg, num_envs=2 * c.pairs * c.starts, seed=seed, backend="cpu", episode_steps=c.horizon_steps + 1)
    return polish(policy, env, pool, c, bound_m=sim_config(cfg).termination_m, seed=seed, anchor_obs=anchor,
                  on_iteration=on_iteration)

"""A fake Isaac Gym for testing ``sims.isaac`` without a GPU or Isaac Gym.

``Gym`` implements the ``isaacgym.gymapi.Gym`` methods the adapter and an IsaacGymEnvs
task call, with the names and positional parameters of ``isaacgym-stubs`` (checked by
tests/test_isaacgym_adapter.py). Like the real engine, property setters write into the
simulation's per-env buffers and ``simulate`` reads them, so a changed mass really
changes the dynamics. ``acquire_dof_state_tensor`` returns the torch tensor itself
(the real one returns a ``gymapi.Tensor`` that ``gymtorch.wrap_tensor`` turns into one).

``CartTask`` is an IsaacGymEnvs ``VecTask``-style task on it (after ``Cartpole``): a
1-DoF cart pushed by the action, deferred resets in ``post_physics_step``, time-outs as
in ``VecTask.step``.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch

# gymapi.DofProperties fields (the numpy dtype of get_actor_dof_properties)
DOF_DTYPE = np.dtype([("hasLimits", "?"), ("lower", "<f4"), ("upper", "<f4"), ("driveMode", "<i4"),
                      ("velocity", "<f4"), ("effort", "<f4"), ("stiffness", "<f4"), ("damping", "<f4"),
                      ("friction", "<f4"), ("armature", "<f4")])


class RigidBodyProperties:
    def __init__(self) -> None:
        self.mass = 1.0
        self.invMass = 1.0
        self.flags = 0


class RigidShapeProperties:
    def __init__(self) -> None:
        self.friction = 1.0
        self.restitution = 0.0
        self.rolling_friction = 0.0
        self.torsion_friction = 0.0


class Sim:
    pass


@dataclass
class Env:
    index: int


@dataclass
class ActorSpec:
    """Fake-only: what ``create_actor`` would build from an asset."""

    body_masses: tuple[float, ...] = (1.0,)
    shape_frictions: tuple[float, ...] = (0.5,)
    dofs: int = 1
    damping: float = 0.1
    stiffness: float = 0.0


class Gym:
    """Subset of ``gymapi.Gym``. Each env's actor 0 is the cart; ``simulate`` integrates
    x'' = (F - k x - (d + mu) v) / m with m its total mass, d its DoF damping, k its
    stiffness and mu its (viscous) friction, all read from the property buffers."""

    dt = 0.05

    def __init__(self) -> None:
        self.calls: list[tuple[str, int]] = []  # (setter, env index): what the adapter touched
        self._envs: list[Env] = []
        self._bodies: list[list[list[RigidBodyProperties]]] = []
        self._shapes: list[list[list[RigidShapeProperties]]] = []
        self._dofs: list[list[np.ndarray]] = []
        self.recompute_inertia: list[bool] = []

    # -------------------------------------------------------------- fake-only setup
    def create_sim(self) -> Sim:
        return Sim()

    def add_env(self, sim: Sim, actors: list[ActorSpec]) -> Env:
        env = Env(len(self._envs))
        self._envs.append(env)
        bodies, shapes, dofs = [], [], []
        for a in actors:
            bodies.append([_body(m) for m in a.body_masses])
            shapes.append([_shape(f) for f in a.shape_frictions])
            d = np.zeros(a.dofs, DOF_DTYPE)
            d["damping"], d["stiffness"] = a.damping, a.stiffness
            dofs.append(d)
        self._bodies.append(bodies)
        self._shapes.append(shapes)
        self._dofs.append(dofs)
        return env

    def prepare(self, sim: Sim) -> None:
        n = len(self._envs)
        self._state = torch.zeros((n, 2), dtype=torch.float32)  # cart (x, v) per env
        self._force = torch.zeros(n, dtype=torch.float32)

    # ------------------------------------------------------------------- gymapi.Gym
    def get_env_count(self, arg0: Sim) -> int:
        return len(self._envs)

    def get_env(self, arg0: Sim, arg1: int) -> Env:
        return self._envs[arg1]

    def get_actor_count(self, arg0: Env) -> int:
        return len(self._bodies[arg0.index])

    def get_actor_handle(self, arg0: Env, arg1: int) -> int:
        return arg1

    def get_actor_rigid_body_properties(self, arg0: Env, arg1: int) -> list[RigidBodyProperties]:
        return copy.deepcopy(self._bodies[arg0.index][arg1])  # the binding returns copies

    def set_actor_rigid_body_properties(self, env: Env, actorHandle: int, props: list[RigidBodyProperties],
                                        recomputeInertia: bool = False) -> bool:
        self.calls.append(("set_actor_rigid_body_properties", env.index))
        self.recompute_inertia.append(recomputeInertia)
        self._bodies[env.index][actorHandle] = copy.deepcopy(props)
        return True

    def get_actor_rigid_shape_properties(self, arg0: Env, arg1: int) -> list[RigidShapeProperties]:
        return copy.deepcopy(self._shapes[arg0.index][arg1])

    def set_actor_rigid_shape_properties(self, arg0: Env, arg1: int, arg2: list[RigidShapeProperties]) -> bool:
        self.calls.append(("set_actor_rigid_shape_properties", arg0.index))
        self._shapes[arg0.index][arg1] = copy.deepcopy(arg2)
        return True

    def get_actor_dof_properties(self, arg0: Env, arg1: int) -> np.ndarray:
        return self._dofs[arg0.index][arg1].copy()

    def set_actor_dof_properties(self, arg0: Env, arg1: int, arg2: np.ndarray) -> bool:
        self.calls.append(("set_actor_dof_properties", arg0.index))
        self._dofs[arg0.index][arg1] = np.array(arg2, DOF_DTYPE)
        return True

    def acquire_dof_state_tensor(self, arg0: Sim) -> torch.Tensor:
        return self._state

    def refresh_dof_state_tensor(self, arg0: Sim) -> bool:
        return True

    def set_dof_state_tensor_indexed(self, arg0: Sim, arg1: torch.Tensor, arg2: torch.Tensor, arg3: int) -> bool:
        ids = arg2[:arg3].long()
        self._state[ids] = arg1[ids]
        return True

    def set_dof_actuation_force_tensor(self, arg0: Sim, arg1: torch.Tensor) -> bool:
        self._force.copy_(arg1)
        return True

    def simulate(self, arg0: Sim) -> None:
        m, d, k, mu = (torch.as_tensor(v, dtype=torch.float32) for v in self.cart_properties())
        x, v = self._state[:, 0], self._state[:, 1]
        acc = (self._force - k * x - (d + mu) * v) / m
        v_new = v + self.dt * acc
        self._state[:, 0] = x + self.dt * v_new
        self._state[:, 1] = v_new

    def fetch_results(self, arg0: Sim, arg1: bool) -> None:
        pass

    # ------------------------------------------------------------------ fake-only
    def cart_properties(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Per env: the cart's total mass, damping, stiffness and friction."""
        m = np.array([sum(p.mass for p in b[0]) for b in self._bodies])
        d = np.array([dofs[0]["damping"][0] for dofs in self._dofs])
        k = np.array([dofs[0]["stiffness"][0] for dofs in self._dofs])
        mu = np.array([s[0][0].friction for s in self._shapes])
        return m, d, k, mu


def _body(mass: float) -> RigidBodyProperties:
    p = RigidBodyProperties()
    p.mass, p.invMass = mass, 1.0 / mass
    return p


def _shape(friction: float) -> RigidShapeProperties:
    p = RigidShapeProperties()
    p.friction = friction
    return p


class CartTask:
    """``VecTask``-style task: push a cart (action * ``max_push`` N) and stay near x = 0.

    obs (2): x, v. states (4, privileged): x, v, cart mass, damping. Reward 1 - |x|.
    Ends when |x| > 2 or at the time limit. ``start_x`` (N,) is a task tensor: reset_idx
    starts env i at x = +-start_x[i], at rest. Each env holds the cart and a 2-body
    pendulum-like second actor without DoFs (so scales hit several actors).
    """

    def __init__(self, num_envs: int = 8, max_episode_length: int = 10, seed: int = 0):
        self.gym = Gym()
        self.sim = self.gym.create_sim()
        self.num_envs = num_envs
        self.num_obs, self.num_states, self.num_actions = 2, 4, 1
        self.max_episode_length = max_episode_length
        self.max_push = 10.0
        self.device = "cpu"
        for _ in range(num_envs):
            self.gym.add_env(self.sim, [ActorSpec(body_masses=(0.6, 0.4)),
                                        ActorSpec(body_masses=(0.1, 0.1), shape_frictions=(0.2,), dofs=0)])
        self.gym.prepare(self.sim)
        self.dof_state = self.gym.acquire_dof_state_tensor(self.sim)
        n = num_envs
        self.obs_buf = torch.zeros((n, 2))
        self.states_buf = torch.zeros((n, 4))
        self.rew_buf = torch.zeros(n)
        self.reset_buf = torch.ones(n, dtype=torch.long)  # as VecTask: everything starts reset
        self.progress_buf = torch.zeros(n, dtype=torch.long)
        self.timeout_buf = torch.zeros(n, dtype=torch.long)
        self.extras: dict = {}
        self.start_x = torch.full((n,), 0.5)
        self.gen = torch.Generator().manual_seed(seed)
        self.reset_idx_calls: list[list[int]] = []

    def step(self, actions: torch.Tensor):
        # VecTask.step: clamp, pre_physics_step, simulate, post_physics_step, time-outs
        actions = actions.clamp(-1.0, 1.0)
        self.gym.set_dof_actuation_force_tensor(self.sim, actions[:, 0] * self.max_push)
        self.gym.simulate(self.sim)
        self.gym.fetch_results(self.sim, True)
        self.post_physics_step()
        self.timeout_buf = ((self.progress_buf >= self.max_episode_length - 1) & (self.reset_buf != 0)).long()
        self.extras["time_outs"] = self.timeout_buf
        return {"obs": self.obs_buf, "states": self.states_buf}, self.rew_buf, self.reset_buf, self.extras

    def post_physics_step(self) -> None:
        self.progress_buf += 1
        env_ids = self.reset_buf.nonzero(as_tuple=False).squeeze(-1)  # deferred reset, as Cartpole
        if len(env_ids) > 0:
            self.reset_idx(env_ids)
        self.compute_observations()
        x = self.obs_buf[:, 0]
        self.rew_buf[:] = 1.0 - x.abs()
        self.reset_buf = torch.where(x.abs() > 2.0, torch.ones_like(self.reset_buf), self.reset_buf)
        self.reset_buf = torch.where(self.progress_buf >= self.max_episode_length - 1,
                                     torch.ones_like(self.reset_buf), self.reset_buf)

    def reset_idx(self, env_ids: torch.Tensor) -> None:
        self.reset_idx_calls.append(env_ids.tolist())
        sign = torch.randint(0, 2, (len(env_ids),), generator=self.gen).float() * 2 - 1
        self.dof_state[env_ids, 0] = sign * self.start_x[env_ids]
        self.dof_state[env_ids, 1] = 0.0
        ids32 = env_ids.to(torch.int32)
        self.gym.set_dof_state_tensor_indexed(self.sim, self.dof_state, ids32, len(ids32))
        self.reset_buf[env_ids] = 0
        self.progress_buf[env_ids] = 0

    def compute_observations(self) -> None:
        self.gym.refresh_dof_state_tensor(self.sim)
        m, d, _, _ = self.gym.cart_properties()
        self.obs_buf[:] = self.dof_state
        self.states_buf[:, :2] = self.dof_state
        self.states_buf[:, 2] = torch.as_tensor(m, dtype=torch.float32)
        self.states_buf[:, 3] = torch.as_tensor(d, dtype=torch.float32)

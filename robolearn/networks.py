"""Actor and critic networks, and the torch side of the policy format.

The deployable actor's format is :class:`firmware_export.policy_file.PolicySpec` (the
``policy.pt`` keys, formats ``robolearn.actor/1`` and ``/2``, and its semantics are
documented there). This module holds its two torch conversions, used by every part of
robolearn that makes or runs an actor:

* :func:`spec_from_actor`: a trained normalizer + MLP (+ integrator) -> ``PolicySpec``
  (the trainers' final export, distillation, SB3 export);
* :func:`actor_from_spec`: ``PolicySpec`` -> :class:`DeterministicActor`, a torch module
  (evaluation, polish, trim, the kickstart teacher, benchmarks).

The actor's one torch forward pass is :func:`actor_head` after the normalizer (and
:meth:`DeterministicActor.net_input`, the integrator step); the polish evaluates many
perturbed weight sets through the same function. ``firmware_export.policy_file`` holds
the numpy one the exports are verified against.
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import torch
from torch import nn

import numpy as np
import torch.nn.functional as F

from firmware_export.errors import ExportError
from firmware_export.policy_file import PolicySpec, parse_policy

from .integrator import IntegratorSpec
from .normalizer import FrozenNorm, RunningNorm

ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "tanh": nn.Tanh,
    "relu": nn.ReLU,
    "elu": nn.ELU,
    "silu": nn.SiLU,
}
# The functional forms of ACTIVATIONS, for :func:`actor_head` (a module call per layer and
# step would add ~5 us to the polish's hot loop; tests/test_polish.py checks they agree).
FUNCTIONAL: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "tanh": torch.tanh, "relu": torch.relu, "elu": F.elu, "silu": F.silu}


def prime_cpu_kernels() -> None:
    """Run the float unary ops the networks use once, on one element, before any large call.

    oneMKL 2024.2 (the version torch's CPU wheels link) picks each VML function's kernel
    lazily on its first call. When that first call is split over intra-op threads, one
    thread's chunk can run the low-accuracy kernel: ``torch.tanh`` then errs by up to ~1e-4
    on half the rows, in ~1 process in 10 on this machine (pytorch/pytorch#188792;
    BENCHMARKS.md, Export). A one-element call runs on one thread and settles the choice.
    """
    for dtype in (torch.float32, torch.float64):
        x = torch.zeros(1, dtype=dtype)
        for op in (torch.tanh, torch.exp, torch.expm1, torch.log1p, torch.sqrt, torch.sigmoid):
            op(x)


def mlp(in_dim: int, hidden: list[int] | tuple[int, ...], out_dim: int, activation: str,
        out_gain: float = 1.0) -> nn.Sequential:
    """Linear layers with ``activation`` between them, orthogonal init (CleanRL/SB3 style)."""
    layers: list[nn.Module] = []
    d = in_dim
    for h in hidden:
        lin = nn.Linear(d, h)
        nn.init.orthogonal_(lin.weight, math.sqrt(2.0))
        nn.init.zeros_(lin.bias)
        layers += [lin, ACTIVATIONS[activation]()]
        d = h
    out = nn.Linear(d, out_dim)
    nn.init.orthogonal_(out.weight, out_gain)
    nn.init.zeros_(out.bias)
    layers.append(out)
    return nn.Sequential(*layers)


def linear_layers(net: nn.Sequential) -> list[nn.Linear]:
    return [m for m in net if isinstance(m, nn.Linear)]


def actor_head(h: torch.Tensor, layers: Sequence[tuple[torch.Tensor, torch.Tensor]], activation: str,
               output_activation: str, low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
    """The actor's MLP, output activation and action clip on the NORMALIZED input ``h``.

    ``h`` (B, in) with ``layers`` [(W (out, in), b (out,)), ...] (``nn.Linear`` layout), or
    ``h`` (M, B, in) with M stacked weight sets [(W^T (M, in, out), b (M, 1, out)), ...] (the
    polish's perturbations, one batched matmul per layer). Returns (B, act) or (M, B, act)."""
    act = FUNCTIONAL[activation]
    n = len(layers)
    for i, (w, b) in enumerate(layers):
        h = torch.baddbmm(b, h, w) if h.dim() == 3 else F.linear(h, w, b)
        if i < n - 1:
            h = act(h)
    if output_activation == "tanh":
        h = torch.tanh(h)
    return torch.maximum(torch.minimum(h, high), low)


class DeterministicActor(nn.Module):
    """Normalizer + MLP + clip: the network that runs on the robot.

    Built empty (a :class:`RunningNorm`, for an actor trained as a whole, e.g. by
    ``benchmarks/distill.py``) or from a policy file by :func:`actor_from_spec` (a
    :class:`FrozenNorm` with the file's constants). With an ``integrator`` the actor carries
    state across calls: ``forward`` takes one control step of a batch of (B, obs_dim)
    observations and updates a (B, k) integral; :meth:`reset_state` zeroes it (all rows, or
    those of a (B,) mask) at episode starts. A call with another batch size starts from zero.
    """

    action_low: torch.Tensor  # registered buffers
    action_high: torch.Tensor
    norm: RunningNorm | FrozenNorm

    def __init__(self, obs_dim: int, act_dim: int, hidden: list[int], activation: str,
                 obs_clip: float = 10.0, action_low: float = -1.0, action_high: float = 1.0,
                 output_activation: str = "none", integrator: IntegratorSpec | None = None):
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}")
        if output_activation not in ("none", "tanh"):
            raise ValueError(f"unknown output activation {output_activation!r}")
        self.obs_dim, self.act_dim = int(obs_dim), int(act_dim)
        self.hidden = [int(h) for h in hidden]
        self.activation = activation
        self.output_activation = output_activation
        self.integrator = integrator
        in_dim = self.obs_dim + (integrator.dim if integrator is not None else 0)
        if integrator is not None:
            integrator.check(self.obs_dim)
        self.norm = RunningNorm(in_dim, clip=obs_clip)
        self.net = mlp(in_dim, self.hidden, act_dim, activation)
        self.register_buffer("action_low", torch.full((act_dim,), float(action_low)))
        self.register_buffer("action_high", torch.full((act_dim,), float(action_high)))
        self._z: torch.Tensor | None = None

    @property
    def stateful(self) -> bool:
        return self.integrator is not None

    def reset_state(self, mask: torch.Tensor | None = None) -> None:
        """Zero the integrator state of every row (``mask`` None) or of the rows where ``mask`` is true."""
        if self._z is None:
            return
        # Out of place: the state may be an inference-mode tensor (made under torch.inference_mode)
        # and this call outside it, where an in-place write to one is refused.
        if mask is None:
            self._z = torch.zeros_like(self._z)
        else:
            keep = ~torch.as_tensor(mask, dtype=torch.bool, device=self._z.device).unsqueeze(1)
            self._z = torch.where(keep, self._z, torch.zeros((), dtype=self._z.dtype, device=self._z.device))

    def net_input(self, obs: torch.Tensor) -> torch.Tensor:
        """One control step of the state: ``concat(obs, z)`` with ``z`` updated (or ``obs``, stateless)."""
        spec = self.integrator
        if spec is None:
            return obs
        if self._z is None or self._z.shape[0] != obs.shape[0]:
            self._z = torch.zeros(obs.shape[0], spec.dim, dtype=obs.dtype, device=obs.device)
        z = self._z + spec.gain * obs[:, list(spec.index)]
        self._z = z.clamp(-spec.limit, spec.limit)
        return torch.cat([obs, self._z], dim=1)

    def layers(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """(weight (out, in), bias (out,)) of each linear layer, input to output."""
        return [(lin.weight, lin.bias) for lin in linear_layers(self.net)]

    def head(self, h: torch.Tensor, layers: Sequence[tuple[torch.Tensor, torch.Tensor]] | None = None) -> torch.Tensor:
        """:func:`actor_head` with this actor's activations and action bounds (and its own layers
        unless ``layers`` is given) on normalized inputs ``h``."""
        return actor_head(h, self.layers() if layers is None else layers, self.activation, self.output_activation,
                          self.action_low, self.action_high)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.head(self.norm(self.net_input(obs)))

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.net.parameters())

    def spec(self) -> PolicySpec:
        """This actor as the policy format (:func:`spec_from_actor`)."""
        return spec_from_actor(self.norm, self.net, self.activation, self.action_low, self.action_high,
                               self.output_activation, self.integrator)


def _f32(t: torch.Tensor | float, n: int | None = None) -> np.ndarray:
    a = torch.as_tensor(t).detach().to("cpu", torch.float32)
    if n is not None:
        a = a.expand(n)
    return a.numpy().copy()


def spec_from_actor(norm: RunningNorm | FrozenNorm, net: nn.Sequential, activation: str,
                    action_low: torch.Tensor | float = -1.0, action_high: torch.Tensor | float = 1.0,
                    output_activation: str = "none", integrator: IntegratorSpec | None = None) -> PolicySpec:
    """The policy format of a normalizer and an MLP built by :func:`mlp`: THE writer of actors.

    The normalizer's statistics are converted once, here (``norm.frozen()``: float32 mean,
    std). With an ``integrator`` the normalizer and the MLP take ``concat(obs, z)`` (format 2);
    ``obs_dim`` is then the raw observation size."""
    lins = linear_layers(net)
    act_dim = lins[-1].out_features
    k = integrator.dim if integrator is not None else 0
    mean, std = norm.frozen()
    return PolicySpec(
        obs_dim=int(norm.dim) - k, act_dim=int(act_dim), hidden=[lin.out_features for lin in lins[:-1]],
        activation=activation, output_activation=output_activation, obs_mean=mean, obs_std=std,
        obs_clip=float(norm.clip), weights=[_f32(lin.weight) for lin in lins], biases=[_f32(lin.bias) for lin in lins],
        action_low=_f32(action_low, act_dim), action_high=_f32(action_high, act_dim),
        integrator_index=np.asarray(integrator.index if integrator is not None else (), np.int64),
        integrator_gain=float(integrator.gain) if integrator is not None else 0.0,
        integrator_limit=float(integrator.limit) if integrator is not None else 1.0)


def with_integrator(spec: PolicySpec, integrator: IntegratorSpec | None) -> PolicySpec:
    """A trainer's actor whose input ends with the integrator state, as a format-2 policy.

    The trainer's actor saw ``concat(obs, z)`` as one observation; the deployable policy
    names the raw size and how ``z`` is made from it. ``integrator`` None returns ``spec``."""
    if integrator is None:
        return spec
    return spec.replace(obs_dim=spec.obs_dim - integrator.dim,
                        integrator_index=np.asarray(integrator.index, np.int64),
                        integrator_gain=float(integrator.gain), integrator_limit=float(integrator.limit))


def integrator_of(spec: PolicySpec) -> IntegratorSpec | None:
    """The integrator of a policy (None: stateless)."""
    if not spec.state_dim:
        return None
    return IntegratorSpec(tuple(int(i) for i in spec.integrator_index), float(spec.integrator_gain),
                          float(spec.integrator_limit))


def actor_from_spec(spec: PolicySpec) -> DeterministicActor:
    """The torch module of a policy (eval mode): THE builder. Its normalizer is the spec's
    (:class:`FrozenNorm`), so it computes what the ONNX graph and the C code compute."""
    actor = DeterministicActor(spec.obs_dim, spec.act_dim, list(spec.hidden), spec.activation,
                               obs_clip=spec.obs_clip, output_activation=spec.output_activation,
                               integrator=integrator_of(spec))
    actor.norm = FrozenNorm.of(spec)
    with torch.no_grad():
        for lin, w, b in zip(linear_layers(actor.net), spec.weights, spec.biases):
            lin.weight.copy_(torch.from_numpy(np.asarray(w, np.float32)))
            lin.bias.copy_(torch.from_numpy(np.asarray(b, np.float32)))
        actor.action_low.copy_(torch.from_numpy(np.asarray(spec.action_low, np.float32)))
        actor.action_high.copy_(torch.from_numpy(np.asarray(spec.action_high, np.float32)))
    return actor.eval()


def as_spec(policy: PolicySpec | dict, where: str = "policy") -> PolicySpec:
    """A spec as it is, or a ``policy.pt`` dict validated into one (ValueError, one line, if malformed)."""
    if isinstance(policy, PolicySpec):
        return policy
    try:
        return parse_policy(policy, where)
    except ExportError as e:
        raise ValueError(str(e)) from None


# ------------------------------------------------------------------ policy.pt dicts (compatibility)
def export_actor(norm: RunningNorm | FrozenNorm, net: nn.Sequential, activation: str,
                 action_low: torch.Tensor | float = -1.0, action_high: torch.Tensor | float = 1.0,
                 output_activation: str = "none", integrator: IntegratorSpec | None = None) -> dict:
    """The ``policy.pt`` dict of :func:`spec_from_actor` (``PolicySpec.to_dict``)."""
    return spec_from_actor(norm, net, activation, action_low, action_high, output_activation, integrator).to_dict()


def actor_from_export(policy: PolicySpec | dict) -> DeterministicActor:
    """:func:`actor_from_spec` of a spec or a ``policy.pt`` dict (ValueError, one line, if malformed)."""
    return actor_from_spec(as_spec(policy))

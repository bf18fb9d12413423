"""Actor and critic networks, and the deployable actor format (``policy.pt``).

``policy.pt`` is a plain ``dict`` loadable with ``torch.load(weights_only=True)``::

    format        "robolearn.actor/1"
    obs_dim       int                      act_dim  int
    hidden_sizes  int64 tensor (L,)        activation  "tanh" | "relu" | "elu" | "silu"
    obs_mean      float32 (obs_dim,)       obs_std  float32 (obs_dim,)   obs_clip float
    layers.{i}.weight / layers.{i}.bias    float32, i = 0..L (last one is the output layer)
    output_activation  "none" | "tanh"     applied to the output layer
    action_low / action_high               float32 (act_dim,): clip range of the output

The deterministic action is ``clip(out(mlp(clip((obs - mean) / std, -c, c))), low, high)``
where ``out`` is the output activation.

Format ``robolearn.actor/2`` adds an optional integrator state (``robolearn/integrator.py``)::

    integrator.index  int64 tensor (k,)   raw observation entries integrated
    integrator.gain   float               per-step gain
    integrator.limit  float               clamp |z| <= limit

``obs_dim`` stays the raw observation size; ``obs_mean`` / ``obs_std`` and the first layer
then have ``obs_dim + k`` entries: after a reset ``z = 0``, and at every step
``z = clip(z + gain * obs[index], -limit, limit)``, then the action of ``concat(obs, z)``.
Files of format 1 load as stateless actors.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch import nn

from .integrator import IntegratorSpec
from .normalizer import RunningNorm

ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "tanh": nn.Tanh,
    "relu": nn.ReLU,
    "elu": nn.ELU,
    "silu": nn.SiLU,
}
POLICY_FORMAT = "robolearn.actor/1"
POLICY_FORMAT_STATEFUL = "robolearn.actor/2"
POLICY_FORMATS = (POLICY_FORMAT, POLICY_FORMAT_STATEFUL)


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


class DeterministicActor(nn.Module):
    """Normalizer + MLP + clip: the network that runs on the robot.

    With an ``integrator`` the actor carries state across calls: ``forward`` takes one
    control step of a batch of (B, obs_dim) observations and updates a (B, k) integral;
    :meth:`reset_state` zeroes it (all rows, or those of a (B,) mask) at episode starts. A
    call with another batch size starts from zero.
    """

    action_low: torch.Tensor  # registered buffers
    action_high: torch.Tensor

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

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        y = self.net(self.norm(self.net_input(obs)))
        if self.output_activation == "tanh":
            y = torch.tanh(y)
        return torch.maximum(torch.minimum(y, self.action_high), self.action_low)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.net.parameters())


def export_actor(norm: RunningNorm, net: nn.Sequential, activation: str,
                 action_low: torch.Tensor | float = -1.0, action_high: torch.Tensor | float = 1.0,
                 output_activation: str = "none", integrator: IntegratorSpec | None = None) -> dict:
    """The ``policy.pt`` dict for a normalizer and an MLP built by :func:`mlp`.

    With an ``integrator`` the normalizer and the MLP take ``concat(obs, z)`` (format 2)."""
    lins = linear_layers(net)
    act_dim = lins[-1].out_features
    k = integrator.dim if integrator is not None else 0
    d: dict = {
        "format": POLICY_FORMAT if integrator is None else POLICY_FORMAT_STATEFUL,
        "obs_dim": int(norm.dim) - k,
        "act_dim": int(act_dim),
        "hidden_sizes": torch.tensor([l.out_features for l in lins[:-1]], dtype=torch.int64),
        "activation": activation,
        "output_activation": output_activation,
        "obs_mean": norm.mean.detach().float().cpu().clone(),
        "obs_std": norm.std.detach().cpu().clone(),
        "obs_clip": float(norm.clip),
        "action_low": torch.as_tensor(action_low, dtype=torch.float32).expand(act_dim).clone(),
        "action_high": torch.as_tensor(action_high, dtype=torch.float32).expand(act_dim).clone(),
    }
    for i, lin in enumerate(lins):
        d[f"layers.{i}.weight"] = lin.weight.detach().float().cpu().clone()
        d[f"layers.{i}.bias"] = lin.bias.detach().float().cpu().clone()
    if integrator is not None:
        d.update(integrator.to_policy_keys())
    return d


def with_integrator(d: dict, spec: IntegratorSpec | None) -> dict:
    """A trainer's export whose input ends with the integrator state, as a format-2 ``policy.pt`` dict.

    The trainer's actor saw ``concat(obs, z)`` as one observation; the deployable file
    names the raw size and how ``z`` is made from it. ``spec`` None returns ``d`` unchanged."""
    if spec is None:
        return d
    out = dict(d)
    out["format"] = POLICY_FORMAT_STATEFUL
    out["obs_dim"] = int(d["obs_dim"]) - spec.dim
    out.update(spec.to_policy_keys())
    return out


def actor_from_export(d: dict) -> DeterministicActor:
    """Rebuild a :class:`DeterministicActor` from a ``policy.pt`` dict (raises ValueError if malformed)."""
    try:
        if d.get("format") not in POLICY_FORMATS:
            raise ValueError(f"format is {d.get('format')!r}, expected one of {POLICY_FORMATS}")
        hidden = [int(h) for h in torch.as_tensor(d["hidden_sizes"]).tolist()]
        integ = IntegratorSpec.from_policy(d) if d["format"] == POLICY_FORMAT_STATEFUL else None
        actor = DeterministicActor(int(d["obs_dim"]), int(d["act_dim"]), hidden, str(d["activation"]),
                                   obs_clip=float(d["obs_clip"]),
                                   output_activation=str(d.get("output_activation", "none")),
                                   integrator=integ)
        with torch.no_grad():
            std = d["obs_std"].double()
            actor.norm.mean.copy_(d["obs_mean"].double())
            actor.norm.var.copy_(std.square() - actor.norm.eps)
            actor.norm.count.fill_(1.0)
            actor.norm._refresh()
            for i, lin in enumerate(linear_layers(actor.net)):
                lin.weight.copy_(d[f"layers.{i}.weight"])
                lin.bias.copy_(d[f"layers.{i}.bias"])
            actor.action_low.copy_(d["action_low"])
            actor.action_high.copy_(d["action_high"])
    except (KeyError, TypeError, RuntimeError, AttributeError, IndexError) as e:
        raise ValueError(f"malformed policy dict: {type(e).__name__}: {e}") from None
    return actor.eval()

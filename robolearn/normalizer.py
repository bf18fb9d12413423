"""Observation normalizers: the trainers' running statistics and the deployed, frozen one.

:class:`RunningNorm` (training): running mean / variance, batched parallel-variance update
(Chan, Golub & LeVeque, "Updating formulae and a pairwise algorithm for computing sample
variances" (1979): merging the moments of a batch into the running moments is exact, so the
statistics equal numpy's ``mean`` / ``var`` over everything seen so far), in float64.

:class:`FrozenNorm` (deployment): the policy format's normalizer, float32 ``mean`` / ``std``
and a clip (``firmware_export.policy_file``), computed as every export computes it. The
float64 statistics become that representation in one place, :func:`frozen_stats`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from firmware_export.policy_file import PolicySpec, inverse_std


def frozen_stats(mean: Any, var: Any, eps: float) -> tuple[np.ndarray, np.ndarray]:
    """float64 running statistics -> the policy format's float32 (mean (D,), std (D,)),
    ``std = float32(sqrt(var + eps))``: the one conversion (robolearn's normalizer, SB3's
    ``VecNormalize``, whose formula ``(x - mean) / sqrt(var + epsilon)`` is the same)."""
    m = np.asarray(torch.as_tensor(mean, dtype=torch.float64).cpu(), np.float64)
    v = np.asarray(torch.as_tensor(var, dtype=torch.float64).cpu(), np.float64)
    return m.astype(np.float32), np.sqrt(v + float(eps)).astype(np.float32)


class RunningNorm(nn.Module):
    """``(x - mean) / sqrt(var + eps)``, clipped to ``[-clip, clip]``.

    Statistics live in float64 buffers (exact over millions of samples) and are part of
    ``state_dict()``; ``update()`` is explicit so evaluation never changes them.
    """

    # registered buffers (declared for mypy: nn.Module's __getattr__ returns Tensor | Module)
    mean: torch.Tensor
    var: torch.Tensor
    count: torch.Tensor
    _mean32: torch.Tensor
    _inv_std32: torch.Tensor

    def __init__(self, dim: int, clip: float = 10.0, eps: float = 1e-8):
        super().__init__()
        self.dim = int(dim)
        self.clip = float(clip)
        self.eps = float(eps)
        self.register_buffer("mean", torch.zeros(dim, dtype=torch.float64))
        self.register_buffer("var", torch.ones(dim, dtype=torch.float64))
        self.register_buffer("count", torch.zeros((), dtype=torch.float64))
        # float32 copies used in the hot path, refreshed after each update
        self.register_buffer("_mean32", torch.zeros(dim), persistent=False)
        self.register_buffer("_inv_std32", torch.ones(dim), persistent=False)

    @torch.no_grad()
    def update(self, x: torch.Tensor) -> None:
        """Merge a batch ``x`` of shape (..., dim) into the running statistics."""
        x = x.reshape(-1, self.dim)
        n = x.shape[0]
        if n == 0:
            return
        # Float64 two-pass moments, converted block by block: one float64 copy of a whole
        # (16384, 75) rollout falls out of cache and cost ~20 % of a PPO update on 2 cores;
        # blocks of 2048 rows give the same statistics (to ~1e-14) at a fraction of it.
        blocks = x.split(2048)
        b_mean = sum(b.to(torch.float64).sum(0) for b in blocks) / n
        b_var = sum((b.to(torch.float64) - b_mean).square().sum(0) for b in blocks) / n
        if self.count.item() == 0:
            self.mean.copy_(b_mean)
            self.var.copy_(b_var)
            self.count.fill_(n)
        else:
            tot = self.count + n
            delta = b_mean - self.mean
            self.mean.add_(delta * (n / tot))
            m2 = self.var * self.count + b_var * n + delta.square() * (self.count * n / tot)
            self.var.copy_(m2 / tot)
            self.count.copy_(tot)
        self._refresh()

    def _refresh(self) -> None:
        self._mean32.copy_(self.mean.float())
        self._inv_std32.copy_(torch.rsqrt(self.var + self.eps).float())

    def frozen(self) -> tuple[np.ndarray, np.ndarray]:
        """The policy format's (mean, std), float32 (see :func:`frozen_stats`)."""
        return frozen_stats(self.mean.detach(), self.var.detach(), self.eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return ((x - self._mean32) * self._inv_std32).clamp_(-self.clip, self.clip)

    def _load_from_state_dict(self, *args: Any, **kwargs: Any) -> None:
        super()._load_from_state_dict(*args, **kwargs)
        self._refresh()


class FrozenNorm(nn.Module):
    """The deployed normalizer of a :class:`~firmware_export.policy_file.PolicySpec`:
    ``clip((x - mean) * inv_std, -clip, clip)`` with the spec's float32 ``mean`` and
    ``obs_inv_std``, the constants the ONNX graph and the C code use. No statistics to update."""

    mean: torch.Tensor  # registered buffers, float32 (D,)
    inv_std: torch.Tensor

    def __init__(self, mean: np.ndarray, std: np.ndarray, clip: float):
        super().__init__()
        self.dim, self.clip = int(np.asarray(mean).size), float(clip)
        self._std = np.array(std, np.float32)  # kept as given: the spec is written back from it unchanged
        self.register_buffer("mean", torch.tensor(np.asarray(mean, np.float32)))
        self.register_buffer("inv_std", torch.from_numpy(inverse_std(self._std)))

    @classmethod
    def of(cls, spec: PolicySpec) -> FrozenNorm:
        return cls(spec.obs_mean, spec.obs_std, spec.obs_clip)

    def frozen(self) -> tuple[np.ndarray, np.ndarray]:
        """(mean, std) float32, as loaded."""
        return self.mean.detach().cpu().numpy().copy(), self._std.copy()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return ((x - self.mean) * self.inv_std).clamp_(-self.clip, self.clip)

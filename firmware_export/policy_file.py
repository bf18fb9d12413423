"""Load and validate ``policy.pt`` (``robolearn.actor/1`` or ``/2``) without importing robolearn.

The file is a plain dict of tensors and Python scalars (keys below). It is read with
``torch.load(weights_only=True)`` so a pickle that carries code is refused, then checked
key by key; every problem is a one-line :class:`ExportError`. The result,
:class:`PolicySpec`, holds numpy float32 arrays and is THE policy format: robolearn's
trainers write one (``robolearn.networks.spec_from_actor``), its finishing stages (polish,
trim), evaluation and HIL read one, and the ONNX, C, quantization and verification code
consume one. ``PolicySpec.from_dict`` / ``to_dict`` are the only conversions from / to
the file's dict, :func:`load_policy` / :func:`save_policy` the only file reader / writer.

Keys of format 1 (``robolearn.actor/1``)::

    format        "robolearn.actor/1"
    obs_dim       int                      act_dim  int
    hidden_sizes  int64 tensor (L,)        activation  "tanh" | "relu" | "elu" | "silu"
    obs_mean      float32 (obs_dim,)       obs_std  float32 (obs_dim,)   obs_clip float
    layers.{i}.weight / layers.{i}.bias    float32, i = 0..L (last one is the output layer)
    output_activation  "none" | "tanh"     applied to the output layer
    action_low / action_high               float32 (act_dim,): clip range of the output

The normalizer has this one representation: float32 ``mean`` and ``std`` and the clip
``c``. Every backend computes ``clip((x - mean) * inv_std, -c, c)`` with the same
``inv_std = float32(1 / float64(std))`` (:attr:`PolicySpec.obs_inv_std`); the float C
kernel folds that ``inv_std`` into its first layer (and clips ``x - mean`` at ``c * std``),
the ONNX graph and the int8 C keep it as a separate multiply.

Format 2 (``robolearn.actor/2``) adds an OPTIONAL integrator of k raw observation
entries (keys ``integrator.index`` int64 (k,), ``integrator.gain``, ``integrator.limit``);
absent, or format 1, means k = 0 (stateless). Per episode::

    reset:  z = 0                                                  (k floats)
    step:   z = clip(z + gain * obs[index], -limit, limit)         (integrate first, then use)
            x = concat(obs, z)                                     (obs_dim + k)
            action = clip(out(mlp(clip((x - mean) * inv_std, -c, c))), low, high)

``obs_mean``/``obs_std`` and ``layers.0.weight`` then have ``obs_dim + k`` inputs.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import numpy.typing as npt

from .errors import ExportError

POLICY_FORMAT = "robolearn.actor/1"
POLICY_FORMAT_V2 = "robolearn.actor/2"
POLICY_FORMATS = (POLICY_FORMAT, POLICY_FORMAT_V2)
ACTIVATIONS = ("tanh", "relu", "elu", "silu")
OUTPUT_ACTIVATIONS = ("none", "tanh")


@dataclass
class PolicySpec:
    """A validated MLP actor. ``weights[i]`` is (out, in), ``biases[i]`` is (out,).

    ``obs_dim`` is the RAW observation size; the network input is ``obs_dim + state_dim``
    (the observation followed by the integrator state z); ``obs_mean``/``obs_std`` have
    that length. ``integrator_index`` (int64 (k,), k = 0: stateless), ``integrator_gain``
    (per control step) and ``integrator_limit`` (> 0, |z_j| <= limit) define z.
    """

    obs_dim: int
    act_dim: int
    hidden: list[int]
    activation: str
    output_activation: str
    obs_mean: np.ndarray
    obs_std: np.ndarray
    obs_clip: float
    weights: list[np.ndarray]
    biases: list[np.ndarray]
    action_low: np.ndarray
    action_high: np.ndarray
    path: Path | None = None
    sha256: str | None = None
    integrator_index: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    integrator_gain: float = 0.0
    integrator_limit: float = 1.0

    @property
    def state_dim(self) -> int:
        """k: floats of state carried between steps (0 for a stateless actor)."""
        return int(self.integrator_index.size)

    @property
    def net_in_dim(self) -> int:
        """Network input size: raw observation + integrator state."""
        return self.obs_dim + self.state_dim

    @property
    def format(self) -> str:
        return POLICY_FORMAT_V2 if self.state_dim else POLICY_FORMAT

    @classmethod
    def from_dict(cls, d: object, where: str = "policy") -> "PolicySpec":
        """Validate a ``policy.pt`` dict (format 1 or 2); one-line :class:`ExportError` if bad."""
        return parse_policy(d, where)

    def to_dict(self) -> dict:
        """The ``policy.pt`` dict of this actor (format 2 only when it carries state), so
        ``PolicySpec.from_dict(spec.to_dict())`` round-trips and robolearn can save it."""
        import torch

        t = lambda a: torch.from_numpy(np.array(a, np.float32))  # noqa: E731
        d: dict = {"format": self.format, "obs_dim": int(self.obs_dim), "act_dim": int(self.act_dim),
                   "hidden_sizes": torch.tensor(list(self.hidden), dtype=torch.int64),
                   "activation": self.activation, "output_activation": self.output_activation,
                   "obs_mean": t(self.obs_mean), "obs_std": t(self.obs_std), "obs_clip": float(self.obs_clip),
                   "action_low": t(self.action_low), "action_high": t(self.action_high)}
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            d[f"layers.{i}.weight"], d[f"layers.{i}.bias"] = t(w), t(b)
        if self.state_dim:
            d["integrator.index"] = torch.tensor(self.integrator_index.tolist(), dtype=torch.int64)
            d["integrator.gain"] = float(self.integrator_gain)
            d["integrator.limit"] = float(self.integrator_limit)
        return d

    def replace(self, **changes: object) -> "PolicySpec":
        """A copy with ``changes`` (field=value); not the file it was loaded from (``path`` and
        ``sha256`` cleared), and each array copied, so neither spec's arrays alias the other's."""
        new = dataclasses.replace(self, path=None, sha256=None, **changes)  # type: ignore[arg-type]
        for f in ("obs_mean", "obs_std", "action_low", "action_high", "integrator_index"):
            setattr(new, f, np.array(getattr(new, f)))
        new.weights, new.biases = [np.array(w) for w in new.weights], [np.array(b) for b in new.biases]
        return new

    def is_finite(self) -> bool:
        """Whether every weight, bias and normalizer value is finite (a diverged actor is not)."""
        arrays = [*self.weights, *self.biases, self.obs_mean, self.obs_std, self.action_low, self.action_high]
        return all(bool(np.all(np.isfinite(a))) for a in arrays)

    @property
    def content_sha256(self) -> str:
        """SHA-256 of what the actor computes: format, shapes, names, and every array's float32
        bytes in a fixed order; unlike :attr:`sha256` (the file's bytes) it does not depend on
        how torch serialized the file, so two files of the same actor have the same one."""
        h = hashlib.sha256()
        head = (f"{self.format}|{self.obs_dim}|{self.act_dim}|{list(self.hidden)}|{self.activation}|"
                f"{self.output_activation}|{np.float32(self.obs_clip)!r}|{list(map(int, self.integrator_index))}|"
                f"{np.float32(self.integrator_gain)!r}|{np.float32(self.integrator_limit)!r}")
        h.update(head.encode())
        for a in (self.obs_mean, self.obs_std, self.action_low, self.action_high, *self.weights, *self.biases):
            h.update(np.ascontiguousarray(a, np.float32).tobytes())
        return h.hexdigest()

    @property
    def obs_inv_std(self) -> np.ndarray:
        """:func:`inverse_std` of ``obs_std``: the constant every backend multiplies by."""
        return inverse_std(self.obs_std)

    @property
    def layer_sizes(self) -> list[int]:
        """Network widths, input first: [obs_dim + k, *hidden, act_dim]."""
        return [self.net_in_dim, *self.hidden, self.act_dim]

    @property
    def num_parameters(self) -> int:
        """Weights + biases of the MLP (the normalizer is not counted, as in robolearn)."""
        return int(sum(w.size + b.size for w, b in zip(self.weights, self.biases)))

    @property
    def macs(self) -> int:
        """Multiply-accumulates per inference (one per weight)."""
        return int(sum(w.size for w in self.weights))


def inverse_std(std: np.ndarray) -> np.ndarray:
    """float32(1 / float64(std)): the normalizer's multiplier, ``(x - mean) * inv_std``, the same
    constant in robolearn's torch actor, the numpy reference, the ONNX graph and the C code."""
    out: np.ndarray = (1.0 / np.asarray(std, np.float32).astype(np.float64)).astype(np.float32)
    return out


def _tensor(d: dict, key: str, shape: tuple[int, ...], where: str) -> np.ndarray:
    import torch

    if key not in d:
        raise ExportError(f"{where}: missing key {key!r}; re-export the policy with robolearn (robolearn.policy.save_policy)")
    t = d[key]
    if not isinstance(t, torch.Tensor):
        raise ExportError(f"{where}: {key} must be a tensor, got {type(t).__name__}")
    if not (t.is_floating_point() and t.dtype in (torch.float32, torch.float64)):
        raise ExportError(f"{where}: {key} must be float32, got {t.dtype}")
    a = t.detach().cpu().numpy().astype(np.float32)
    if tuple(a.shape) != tuple(shape):
        raise ExportError(f"{where}: {key} has shape {tuple(a.shape)}, expected {tuple(shape)}")
    if not np.all(np.isfinite(a)):
        raise ExportError(f"{where}: {key} contains NaN or infinity; the policy diverged, export an earlier one")
    return a


def _int(d: dict, key: str, where: str) -> int:
    v = d.get(key)
    if isinstance(v, bool) or not isinstance(v, int) or v < 1:
        raise ExportError(f"{where}: {key} must be a positive integer, got {v!r}")
    return v


def parse_policy(d: object, where: str = "policy.pt") -> PolicySpec:
    """Validate a ``policy.pt`` dict; raise :class:`ExportError` naming the first problem."""
    import torch

    if not isinstance(d, dict):
        raise ExportError(f"{where}: expected a dict (robolearn.actor/1 or /2), got {type(d).__name__}")
    fmt = d.get("format")
    if fmt not in POLICY_FORMATS:
        raise ExportError(f"{where}: format is {fmt!r}, expected {POLICY_FORMAT!r} or {POLICY_FORMAT_V2!r}; "
                          "export the actor with robolearn (policy.pt of a run directory)")
    obs_dim, act_dim = _int(d, "obs_dim", where), _int(d, "act_dim", where)
    index, gain, limit = _integrator(d, fmt, obs_dim, where)
    in_dim = obs_dim + index.size
    hs = d.get("hidden_sizes")
    if isinstance(hs, torch.Tensor):
        if hs.is_floating_point() or hs.dim() != 1:
            raise ExportError(f"{where}: hidden_sizes must be a 1-D integer tensor")
        hs = hs.tolist()
    if not isinstance(hs, (list, tuple)) or not all(isinstance(h, int) and h >= 1 for h in hs):
        raise ExportError(f"{where}: hidden_sizes must be a list of positive integers, got {hs!r}")
    hidden = [int(h) for h in hs]
    act = d.get("activation")
    if act not in ACTIVATIONS:
        raise ExportError(f"{where}: unsupported activation {act!r}; the exporter supports {', '.join(ACTIVATIONS)}")
    out_act = d.get("output_activation", "none")
    if out_act not in OUTPUT_ACTIVATIONS:
        raise ExportError(f"{where}: unsupported output_activation {out_act!r}; "
                          f"the exporter supports {', '.join(OUTPUT_ACTIVATIONS)}")
    sizes = [in_dim, *hidden, act_dim]
    # Any layer key beyond the declared ones is a layer this exporter would silently drop.
    known = {f"layers.{i}.{p}" for i in range(len(sizes) - 1) for p in ("weight", "bias")}
    extra = sorted(k for k in d if isinstance(k, str) and k.startswith("layers.") and k not in known)
    if extra:
        raise ExportError(f"{where}: unsupported layer(s) {', '.join(extra[:3])}: only an MLP of "
                          f"{len(sizes) - 1} linear layers matching hidden_sizes is supported")
    weights, biases = [], []
    for i in range(len(sizes) - 1):
        weights.append(_tensor(d, f"layers.{i}.weight", (sizes[i + 1], sizes[i]), where))
        biases.append(_tensor(d, f"layers.{i}.bias", (sizes[i + 1],), where))
    mean = _tensor(d, "obs_mean", (in_dim,), where)
    std = _tensor(d, "obs_std", (in_dim,), where)
    if np.any(std <= 0):
        raise ExportError(f"{where}: obs_std must be > 0 everywhere")
    clip = d.get("obs_clip")
    if isinstance(clip, bool) or not isinstance(clip, (int, float)) or not (np.isfinite(clip) and clip > 0):
        raise ExportError(f"{where}: obs_clip must be a positive number, got {clip!r}")
    low = _tensor(d, "action_low", (act_dim,), where)
    high = _tensor(d, "action_high", (act_dim,), where)
    if np.any(low > high):
        raise ExportError(f"{where}: action_low exceeds action_high")
    return PolicySpec(obs_dim, act_dim, hidden, act, out_act, mean, std, float(clip),
                      weights, biases, low, high, integrator_index=index, integrator_gain=gain,
                      integrator_limit=limit)


INTEGRATOR_KEYS = ("integrator.index", "integrator.gain", "integrator.limit")


def _integrator(d: dict, fmt: str, obs_dim: int, where: str) -> tuple[np.ndarray, float, float]:
    """(index int64 (k,), gain, limit) of the optional integrator; k = 0 when absent."""
    import torch

    present = [k for k in INTEGRATOR_KEYS if k in d]
    if not present:
        return np.zeros(0, np.int64), 0.0, 1.0
    if fmt != POLICY_FORMAT_V2:
        raise ExportError(f"{where}: {present[0]} needs format {POLICY_FORMAT_V2!r}, the file says {fmt!r}")
    missing = [k for k in INTEGRATOR_KEYS if k not in d]
    if missing:
        raise ExportError(f"{where}: integrator incomplete: {', '.join(missing)} missing (an integrator needs "
                          "integrator.index, integrator.gain and integrator.limit)")
    idx = d["integrator.index"]
    if not isinstance(idx, torch.Tensor) or idx.is_floating_point() or idx.dtype == torch.bool or idx.dim() != 1:
        raise ExportError(f"{where}: integrator.index must be a 1-D int64 tensor of observation indices")
    index = idx.detach().cpu().numpy().astype(np.int64)
    if index.size == 0:
        raise ExportError(f"{where}: integrator.index is empty; drop the integrator keys for a stateless actor")
    bad = index[(index < 0) | (index >= obs_dim)]
    if bad.size:
        raise ExportError(f"{where}: integrator.index {int(bad[0])} is outside the raw observation [0, {obs_dim})")
    gain, limit = d["integrator.gain"], d["integrator.limit"]
    for name, v in (("gain", gain), ("limit", limit)):
        if isinstance(v, torch.Tensor) and v.numel() == 1 and v.is_floating_point():
            v = float(v)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not np.isfinite(v):
            raise ExportError(f"{where}: integrator.{name} must be a finite number, got {v!r}")
        if name == "gain":
            gain = float(v)
        else:
            limit = float(v)
    if not limit > 0:
        raise ExportError(f"{where}: integrator.limit must be > 0 (the anti-windup clamp |z| <= limit), got {limit!r}")
    g32, l32 = np.float32(gain), np.float32(limit)
    if not (np.isfinite(g32) and np.isfinite(l32)):
        raise ExportError(f"{where}: integrator.gain and integrator.limit must fit a float32 (|v| < 3.4e38)")
    # Kept as written (a file round-trips unchanged); every backend applies them as float32.
    return index, float(gain), float(limit)


def policy_bytes(spec: PolicySpec) -> bytes:
    """The ``policy.pt`` file of ``spec``: ``torch.save`` of :meth:`PolicySpec.to_dict`."""
    import torch

    buf = io.BytesIO()
    torch.save(spec.to_dict(), buf)
    return buf.getvalue()


def save_policy(spec: PolicySpec, path: str | Path) -> Path:
    """Write ``spec`` as ``policy.pt`` at ``path`` (not atomic; robolearn writes through its
    atomic writer, ``robolearn.policy.save_policy``)."""
    path = Path(path)
    path.write_bytes(policy_bytes(spec))
    return path


def load_policy(path: str | Path) -> PolicySpec:
    """Read ``policy.pt`` safely (weights only) and validate it."""
    path = Path(path)
    if not path.is_file():
        raise ExportError(f"no policy at {path}; train one first (robolearn train) or pass the run directory holding policy.pt")
    raw = path.read_bytes()
    spec = parse_policy(read_policy_dict(raw, path), str(path))
    spec.path = path
    spec.sha256 = hashlib.sha256(raw).hexdigest()
    return spec


def read_policy_dict(raw: bytes, path: str | Path) -> object:
    """``torch.load(weights_only=True)`` of a file's bytes; a one-line :class:`ExportError` if
    it pickles code or is not a torch file."""
    import torch

    try:
        import warnings

        with warnings.catch_warnings():  # torch warns about pickle protocols before refusing them
            warnings.simplefilter("ignore")
            d = torch.load(io.BytesIO(raw), map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unpickling problem means "not a safe policy file"
        import re

        text = str(e)
        code = re.search(r"Unsupported global: (GLOBAL \S+)", text)
        if code:
            raise ExportError(f"{path} is not a weights-only file (it pickles code: {code.group(1)}); "
                              "export the actor with robolearn (robolearn.policy.save_policy)") from None
        why = re.search(r"WeightsUnpickler error:\s*([^\n]+)", text)
        first = why.group(1) if why else (text.strip().splitlines() or [type(e).__name__])[0]
        raise ExportError(f"{path} is corrupt or not a torch file ({type(e).__name__}: {first.strip()[:120]}); "
                          "re-export the policy from its run") from None
    return d


# ------------------------------------------------------------------ reference forwards
def _act_np(x: np.ndarray, name: str) -> np.ndarray:
    y: np.ndarray  # numpy's ufuncs return Any to mypy
    if name == "tanh":
        y = np.tanh(x)
    elif name == "relu":
        y = np.maximum(x, 0)
    elif name == "elu":
        y = np.where(x > 0, x, np.expm1(np.minimum(x, 0)))
    elif name == "silu":
        y = x / (1 + np.exp(-x))
    else:
        raise ExportError(f"unsupported activation {name!r}")
    return y


def integrate(spec: PolicySpec, state: np.ndarray, obs: np.ndarray) -> np.ndarray:
    """One integrator step in float32, as deployed: ``clip(z + gain * obs[..., index], -limit, limit)``.
    ``state`` (..., k), ``obs`` (..., obs_dim); returns the new state (..., k)."""
    g, lim = np.float32(spec.integrator_gain), np.float32(spec.integrator_limit)
    o = np.asarray(obs, np.float32)[..., spec.integrator_index]
    z: np.ndarray = np.clip(np.asarray(state, np.float32) + g * o, -lim, lim).astype(np.float32)
    return z


def network_numpy(spec: PolicySpec, x: np.ndarray, weights: list[np.ndarray] | None = None,
                  dtype: npt.DTypeLike = np.float64) -> np.ndarray:
    """Normalizer + MLP + output clip on the NETWORK input ``x`` (..., obs_dim + k)."""
    ws = spec.weights if weights is None else weights
    x = (np.asarray(x, dtype) - spec.obs_mean.astype(dtype)) * spec.obs_inv_std.astype(dtype)
    x = np.clip(x, -spec.obs_clip, spec.obs_clip)
    for i, (w, b) in enumerate(zip(ws, spec.biases)):
        x = x @ w.astype(dtype).T + b.astype(dtype)
        if i < len(ws) - 1:
            x = _act_np(x, spec.activation)
    if spec.output_activation == "tanh":
        x = np.tanh(x)
    out: np.ndarray = np.minimum(np.maximum(x, spec.action_low.astype(dtype)), spec.action_high.astype(dtype))
    return out


def step_numpy(spec: PolicySpec, obs: np.ndarray, state: np.ndarray | None = None,
               weights: list[np.ndarray] | None = None,
               dtype: npt.DTypeLike = np.float64) -> tuple[np.ndarray, np.ndarray]:
    """One control step: (action (..., act_dim), new state (..., k)). ``state`` None = just
    after a reset (zeros). The integrator runs in float32 (as deployed), the network in ``dtype``."""
    obs = np.asarray(obs, np.float32)
    if state is None:
        state = np.zeros((*obs.shape[:-1], spec.state_dim), np.float32)
    z = integrate(spec, state, obs) if spec.state_dim else np.asarray(state, np.float32)
    x = np.concatenate([obs, z], axis=-1) if spec.state_dim else obs
    return network_numpy(spec, x, weights, dtype), z


def forward_numpy(spec: PolicySpec, obs: np.ndarray, weights: list[np.ndarray] | None = None,
                  dtype: npt.DTypeLike = np.float64, state: np.ndarray | None = None) -> np.ndarray:
    """The action for ``obs`` (..., obs_dim) (default float64); ``weights`` replaces the layer
    weights (used to emulate int8-quantized weights). A stateful actor is evaluated with
    ``state`` (default: zeros, i.e. the first step after a reset); see :func:`step_numpy`."""
    return step_numpy(spec, obs, state, weights, dtype)[0]


def _episodes(spec: PolicySpec, obs: np.ndarray,
              step: Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """Whole episodes of (E, T, obs_dim) observations through ``step(obs_t, z) -> (action, z)``
    after a reset at t = 0: actions (E, T, act_dim) and the state after each step (E, T, k)."""
    obs = np.asarray(obs, np.float32)
    e, t = obs.shape[:2]
    acts = np.zeros((e, t, spec.act_dim), np.float64)
    states = np.zeros((e, t, spec.state_dim), np.float32)
    z = np.zeros((e, spec.state_dim), np.float32)
    for i in range(t):
        acts[:, i], z = step(obs[:, i], z)
        states[:, i] = z
    return acts, states


def episodes_numpy(spec: PolicySpec, obs: np.ndarray, weights: list[np.ndarray] | None = None,
                   dtype: npt.DTypeLike = np.float64) -> tuple[np.ndarray, np.ndarray]:
    """Whole episodes: ``obs`` (E, T, obs_dim) fed in order after a reset at t = 0.
    Returns actions (E, T, act_dim) and the state after each step (E, T, k)."""
    return _episodes(spec, obs, lambda o, z: step_numpy(spec, o, z, weights, dtype))


def forward_torch(spec: PolicySpec, obs: np.ndarray, state: np.ndarray | None = None) -> np.ndarray:
    """The actor in torch, written from the format definition (independent of the ONNX
    graph and the C code it is compared with), in float64: the exports are float32, and a
    float64 reference leaves their own rounding as the only error measured. (torch's float32
    tanh is also not a safe reference on the CPU: with oneMKL 2024.2 a multi-threaded first
    call can run a low-accuracy kernel on part of the rows, ~1e-4 off; pytorch/pytorch#188792.)"""
    import torch
    import torch.nn.functional as F

    acts: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {"tanh": torch.tanh, "relu": F.relu, "elu": F.elu, "silu": F.silu}
    f64 = lambda a: torch.from_numpy(np.asarray(a, np.float64))  # noqa: E731
    with torch.no_grad():
        for act in acts.values():  # one element first: the kernel choice settles on one thread
            act(torch.zeros(1, dtype=torch.float64))
        obs = np.asarray(obs, np.float32)
        if spec.state_dim:  # the integrator in float32, as deployed (bit-identical in every backend)
            z0 = np.zeros((*obs.shape[:-1], spec.state_dim), np.float32) if state is None else state
            obs = np.concatenate([obs, integrate(spec, z0, obs)], axis=-1)
        x = f64(obs)
        x = ((x - f64(spec.obs_mean)) * f64(spec.obs_inv_std)).clamp(-spec.obs_clip, spec.obs_clip)
        n = len(spec.weights)
        for i, (w, b) in enumerate(zip(spec.weights, spec.biases)):
            x = F.linear(x, f64(w), f64(b))
            if i < n - 1:
                x = acts[spec.activation](x)
        if spec.output_activation == "tanh":
            x = torch.tanh(x)
        x = torch.maximum(torch.minimum(x, f64(spec.action_high)), f64(spec.action_low))
        return x.numpy()


def episodes_torch(spec: PolicySpec, obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`episodes_numpy` with the torch float64 network (:func:`forward_torch`):
    actions (E, T, act_dim) and states (E, T, k) for observations (E, T, obs_dim)."""
    def step(o: np.ndarray, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return forward_torch(spec, o, z), (integrate(spec, z, o) if spec.state_dim else z)

    return _episodes(spec, obs, step)


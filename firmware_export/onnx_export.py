"""``policy.onnx``: the actor as an ONNX graph, built op by op with ``onnx.helper``.

Built directly (not with ``torch.onnx.export``) so the graph does not depend on the
torch exporter of the day (torch 2.13's default exporter needs onnxscript) and holds
exactly the ops the C code implements::

    obs [N, obs_dim] float32 (raw, unnormalized)
      -> Sub(mean) -> Mul(1/std) -> Clip(-c, c)                  observation normalization
      -> (Gemm(W_i, b_i, transB) -> activation) x hidden layers -> Gemm(W_out, b_out)
      -> [Tanh] -> Max(action_low) -> Min(action_high)            = output 0 "action" [N, act_dim], in [-1, 1]
      -> rpm_min + (action + 1) * (rpm_max - rpm_min) / 2           = output 1 "rpm"    [N, act_dim], RPM

A stateful actor (``robolearn.actor/2`` with an integrator of k entries) has a second
input ``state_in`` [N, k] and a third output ``state_out`` [N, k]; before the normalizer::

    state_out = Clip(state_in + gain * Gather(obs, index, axis=1), -limit, limit)
    x = Concat(obs, state_out)                                       [N, obs_dim + k]

The caller feeds ``state_out`` back as the next step's ``state_in`` (zeros after a reset).
A stateless actor's graph is unchanged (``obs`` -> ``action``, ``rpm``).

Output 0 is the normalized action the simulator consumes (and what hardware/hil.py's
``OnnxActor`` reads: it takes the first output); output 1 is the same command in the
robot's units (rotor speed in RPM, the simulator's own mapping).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from .errors import ExportError

if TYPE_CHECKING:
    import onnx
from .policy_file import PolicySpec

OPSET = 17  # Gemm/Clip/Elu/Sigmoid semantics stable since opset 13; onnxruntime >= 1.18 runs 17
IR_VERSION = 8  # the oldest IR for opset 17: loads in any onnxruntime the project allows
INPUT = "obs"
OUTPUTS = ("action", "rpm")
STATE_IN, STATE_OUT = "state_in", "state_out"


def build_onnx(spec: PolicySpec, rpm_min: float, rpm_max: float, doc: str = "") -> onnx.ModelProto:
    """The ``onnx.ModelProto`` of ``spec`` (checked with ``onnx.checker``)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    inits: list[onnx.TensorProto] = []
    nodes: list[onnx.NodeProto] = []

    def const(name: str, value: Any) -> str:
        inits.append(numpy_helper.from_array(np.asarray(value, np.float32), name))
        return name

    def node(op: str, inputs: list[str], out: str, **attrs: Any) -> str:
        nodes.append(helper.make_node(op, inputs, [out], name=out, **attrs))
        return out

    x = INPUT
    if spec.state_dim:
        inits.append(numpy_helper.from_array(np.asarray(spec.integrator_index, np.int64), "integrator_index"))
        o = node("Gather", [INPUT, "integrator_index"], "integrated_obs", axis=1)
        o = node("Mul", [o, const("integrator_gain", np.float32(spec.integrator_gain))], "integrator_increment")
        z = node("Add", [STATE_IN, o], "integrator_sum")
        z = node("Clip", [z, const("integrator_low", -spec.integrator_limit),
                          const("integrator_high", spec.integrator_limit)], STATE_OUT)
        x = node("Concat", [INPUT, z], "network_input", axis=1)
    x = node("Sub", [x, const("obs_mean", spec.obs_mean)], "obs_centered")
    x = node("Mul", [x, const("obs_inv_std", spec.obs_inv_std)], "obs_scaled")
    x = node("Clip", [x, const("obs_clip_low", -spec.obs_clip), const("obs_clip_high", spec.obs_clip)], "obs_normalized")
    n = len(spec.weights)
    for i, (w, b) in enumerate(zip(spec.weights, spec.biases)):
        x = node("Gemm", [x, const(f"layers.{i}.weight", w), const(f"layers.{i}.bias", b)], f"layers.{i}.linear", transB=1)
        if i < n - 1:
            x = _activation(node, x, spec.activation, f"layers.{i}")
    if spec.output_activation == "tanh":
        x = node("Tanh", [x], "out_tanh")
    x = node("Max", [x, const("action_low", spec.action_low)], "action_clip_low")
    act = node("Min", [x, const("action_high", spec.action_high)], OUTPUTS[0])
    half_span = np.full(spec.act_dim, 0.5 * (rpm_max - rpm_min), np.float32)
    y = node("Add", [act, const("one", np.float32(1.0))], "action_plus_one")
    y = node("Mul", [y, const("rpm_half_span", half_span)], "rpm_above_min")
    node("Add", [y, const("rpm_min", np.full(spec.act_dim, rpm_min, np.float32))], OUTPUTS[1])

    inp = [helper.make_tensor_value_info(INPUT, TensorProto.FLOAT, ["batch", spec.obs_dim])]
    outs = [helper.make_tensor_value_info(o, TensorProto.FLOAT, ["batch", spec.act_dim]) for o in OUTPUTS]
    if spec.state_dim:
        inp.append(helper.make_tensor_value_info(STATE_IN, TensorProto.FLOAT, ["batch", spec.state_dim]))
        outs.append(helper.make_tensor_value_info(STATE_OUT, TensorProto.FLOAT, ["batch", spec.state_dim]))
    graph = helper.make_graph(nodes, "robolearn_actor", inp, outs, initializer=inits)
    model = helper.make_model(graph, producer_name="robolearn.firmware_export",
                              opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = IR_VERSION
    model.doc_string = doc
    try:
        onnx.checker.check_model(model, full_check=True)
    except onnx.checker.ValidationError as e:  # a bug here, but say it in one line
        raise ExportError(f"the generated ONNX graph is invalid: {' '.join(str(e).split())[:200]}") from None
    return model


def _activation(node: Callable[..., str], x: str, name: str, prefix: str) -> str:
    if name == "tanh":
        return node("Tanh", [x], f"{prefix}.tanh")
    if name == "relu":
        return node("Relu", [x], f"{prefix}.relu")
    if name == "elu":
        return node("Elu", [x], f"{prefix}.elu", alpha=1.0)
    if name == "silu":  # x * sigmoid(x); ONNX has no SiLU op at this opset
        s = node("Sigmoid", [x], f"{prefix}.sigmoid")
        return node("Mul", [x, s], f"{prefix}.silu")
    raise ExportError(f"unsupported activation {name!r}")


def save_onnx(model: onnx.ModelProto, path: Path) -> int:
    """Write the model; returns its size in bytes."""
    data = model.SerializeToString()
    Path(path).write_bytes(data)
    return len(data)


def onnx_session(path_or_bytes: str | Path | bytes) -> Any:
    """A single-threaded onnxruntime CPU session (deterministic, as the HIL runner uses)."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    src = str(path_or_bytes) if isinstance(path_or_bytes, Path) else path_or_bytes
    return ort.InferenceSession(src, so, providers=["CPUExecutionProvider"])


def run_onnx(session: Any, obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(action, rpm) for a batch of raw observations (a stateful graph: the first step
    after a reset, state_in = 0)."""
    feeds = {INPUT: np.ascontiguousarray(obs, np.float32)}
    names = [i.name for i in session.get_inputs()]
    if STATE_IN in names:
        k = int(session.get_inputs()[names.index(STATE_IN)].shape[1])
        feeds[STATE_IN] = np.zeros((len(obs), k), np.float32)
    a, r = session.run(list(OUTPUTS), feeds)
    return a, r


def run_onnx_episodes(session: Any, obs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Whole episodes through the graph, step by step: ``obs`` (E, T, obs_dim) after a reset;
    returns action (E, T, act_dim), rpm (E, T, act_dim) and state_out (E, T, k)."""
    obs = np.ascontiguousarray(obs, np.float32)
    e, t = obs.shape[:2]
    names = [i.name for i in session.get_inputs()]
    k = int(session.get_inputs()[names.index(STATE_IN)].shape[1]) if STATE_IN in names else 0
    outs = list(OUTPUTS) + ([STATE_OUT] if k else [])
    z = np.zeros((e, k), np.float32)
    acts, rpms, states = [], [], []
    for i in range(t):
        feeds = {INPUT: obs[:, i]}
        if k:
            feeds[STATE_IN] = z
        res = session.run(outs, feeds)
        if k:
            z = res[2]
        acts.append(res[0])
        rpms.append(res[1])
        states.append(z.copy())
    return np.stack(acts, 1), np.stack(rpms, 1), np.stack(states, 1)

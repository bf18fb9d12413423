"""The exported actor (``policy.onnx``) under onnxruntime, stateless or stateful.

Shared by the HIL runner (the reference it compares the device with, and the pure
simulation it flies) and the Python device model (which runs it as the device would).

A stateful export (policy format ``robolearn.actor/2``) has a second graph input
``state_in`` ``(B, k)`` and an output ``state_out`` ``(B, k)`` beside ``obs`` ->
``action``: :class:`OnnxActor` keeps the state between calls, as the C code keeps its
static array, and :meth:`OnnxActor.reset` zeroes it (C: ``robolearn_policy_reset()``),
so a sequence of calls after a reset is one episode.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .errors import ExportError

STATE_IN, STATE_OUT = "state_in", "state_out"


class OnnxActor:
    """``policy.onnx``: float32 observation (obs_dim,) -> action (act_dim,); ``state_dim``
    floats of state carried from call to call (0: stateless), zeroed by :meth:`reset`."""

    def __init__(self, path: str | os.PathLike):
        import onnxruntime as ort

        path = Path(path)
        if not path.is_file():
            raise ExportError(f"ONNX actor not found: {path}")
        so = ort.SessionOptions()
        so.intra_op_num_threads = 1
        so.inter_op_num_threads = 1
        so.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        except Exception as e:  # noqa: BLE001  (onnxruntime raises its own types)
            raise ExportError(f"cannot load {path}: {' '.join(str(e).split())[:200]}") from None
        inputs = {i.name: i for i in self.session.get_inputs()}
        outputs = [o.name for o in self.session.get_outputs()]
        state = inputs.pop(STATE_IN, None)
        if len(inputs) != 1:
            raise ExportError(f"{path}: expected one observation input (and optionally {STATE_IN}), "
                              f"got {', '.join(i.name for i in self.session.get_inputs())}")
        inp = next(iter(inputs.values()))
        self.input_name = inp.name
        self.output_name = "action" if "action" in outputs else outputs[0]
        self.obs_dim = int(inp.shape[-1])
        self.state_dim = 0
        if state is not None:
            if STATE_OUT not in outputs or not isinstance(state.shape[-1], int):
                raise ExportError(f"{path}: input {STATE_IN} needs an output {STATE_OUT} and a fixed size")
            self.state_dim = int(state.shape[-1])
        self.state = np.zeros(self.state_dim, np.float32)
        # a symbolic output size (str) is learned from one evaluation
        last = self.session.get_outputs()[outputs.index(self.output_name)].shape[-1]
        if isinstance(last, int):
            self.act_dim = int(last)
        else:
            self.act_dim = int(self._run(np.zeros(self.obs_dim, np.float32))[0].shape[0])

    def reset(self) -> None:
        """Start an episode: the state is zero (a stateless actor has nothing to clear)."""
        self.state = np.zeros(self.state_dim, np.float32)

    def _run(self, obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        feed = {self.input_name: np.asarray(obs, np.float32).reshape(1, self.obs_dim)}
        names = [self.output_name]
        if self.state_dim:
            feed[STATE_IN] = self.state.reshape(1, self.state_dim)
            names.append(STATE_OUT)
        out = self.session.run(names, feed)
        act = np.asarray(out[0], np.float32).reshape(-1)
        state = np.asarray(out[1], np.float32).reshape(-1) if self.state_dim else self.state
        return act, state

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        """One control step: the action for ``obs``; the state advances."""
        act, self.state = self._run(obs)
        return act

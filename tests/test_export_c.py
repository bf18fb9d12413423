"""The generated C (float32 and int8) and the Crazyflie template, compiled with the host cc."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from firmware_export import export
from firmware_export.c_codegen import generate_header, generate_source, quantize_int8
from firmware_export.onnx_export import build_onnx, onnx_session, run_onnx
from firmware_export.policy_file import forward_numpy, parse_policy
from firmware_export.verify import ALLOWED_UNDEFINED, CFLAGS, c_actions
from test_export import TOL, make_policy, make_run, observations, robolearn_actions

ROOT = Path(__file__).resolve().parent.parent
CF = ROOT / "firmware_export" / "crazyflie"
pytestmark = pytest.mark.skipif(shutil.which("cc") is None, reason="needs a host C compiler (cc)")
SHA = "ab" * 32


def cc(*args, cwd=None):
    r = subprocess.run(["cc", *args], capture_output=True, text=True, cwd=cwd)
    assert r.returncode == 0, r.stderr
    return r


@pytest.fixture(scope="module")
def int8_export(tmp_path_factory):
    run = make_run(tmp_path_factory.mktemp("run8") / "run")
    return run, export(run, run / "export_int8", quantize="int8")


@pytest.mark.parametrize("activation,out_act", [("tanh", "none"), ("relu", "none"), ("elu", "tanh"), ("silu", "none")])
def test_c_matches_onnx_and_robolearn(tmp_path, activation, out_act):
    policy = make_policy(activation, hidden=(32, 32), output_activation=out_act, seed=5)
    spec = parse_policy(policy)
    (tmp_path / "policy.h").write_text(generate_header(spec, SHA, 0.0, 21702.0, 100.0, None))
    (tmp_path / "policy.c").write_text(generate_source(spec, SHA, None))
    obs = observations(policy)
    act, stdout, syms = c_actions(tmp_path, obs, 4)
    onnx_act, _ = run_onnx(onnx_session(build_onnx(spec, 0.0, 21702.0).SerializeToString()), obs)
    assert np.abs(act - onnx_act).max() <= TOL
    assert np.abs(act - robolearn_actions(policy, obs)).max() <= TOL
    assert syms <= ALLOWED_UNDEFINED  # no malloc, no memcpy, no printf: only <math.h>
    assert f"sha256 {SHA}" in stdout
    assert "rpm 3 0 10851 21702" in stdout  # robolearn_action_to_rpm(-1, 0, 1)


@pytest.mark.parametrize("quantize", [None, "int8"])
def test_c_pads_layers_that_are_not_whole_blocks(tmp_path, quantize):
    """dense() computes 4 rows per pass over weights stored [out/4][in][4]: widths that are
    not multiples of 4 (and odd input counts, the unrolled loop's tail) must still match."""
    from firmware_export.c_codegen import BLOCK, blocked, padded_rows

    w = np.arange(15, dtype=np.float32).reshape(5, 3)
    bw = blocked(w)
    assert bw.shape == (2, 3, BLOCK) and padded_rows(5) == 8
    assert bw[1, 2, 0] == w[4, 2] and np.all(bw[1, :, 1:] == 0)  # row 4 first in block 1, then zero padding
    policy = make_policy("tanh", hidden=(5, 7), act_dim=3, seed=9)
    spec = parse_policy(policy)
    (tmp_path / "policy.h").write_text(generate_header(spec, SHA, 0.0, 21702.0, 100.0, quantize))
    (tmp_path / "policy.c").write_text(generate_source(spec, SHA, quantize))
    obs = observations(policy)
    act, _, _ = c_actions(tmp_path, obs, 3)
    weights = None if quantize is None else [layer.dequantized() for layer in quantize_int8(spec)]
    want = forward_numpy(spec, obs, weights=weights)
    assert act.shape == (len(obs), 3) and np.abs(act - want).max() <= TOL


def test_c_is_plain_c99_without_heap(tmp_path):
    policy = make_policy()
    spec = parse_policy(policy)
    src = generate_source(spec, SHA, None)
    assert re.findall(r"#include\s*[<\"]([^>\"]+)", src) == ["policy.h", "math.h"]
    assert not re.search(r"\b(malloc|calloc|free|double)\b", src)
    assert "static const float w0[832]" in src
    (tmp_path / "policy.h").write_text(generate_header(spec, SHA, 0.0, 21702.0, 100.0, None))
    (tmp_path / "policy.c").write_text(src)
    cc(*CFLAGS, "-ffreestanding", "-c", "policy.c", "-o", "policy.o", cwd=tmp_path)


def test_float_export_compiles_for_cortex_m4(tmp_path):
    if shutil.which("arm-none-eabi-gcc") is None:
        pytest.skip("arm-none-eabi-gcc not installed")
    run = make_run(tmp_path / "run")
    report = export(run, formats=("c",))
    arm = report["sizes"]["arm_cortex_m4_policy_o"]
    # all constants in flash, only the two scratch buffers in RAM
    assert arm["rodata"] >= report["sizes"]["weight_bytes_float32"] and arm["bss"] == 2 * 4 * 32 and arm["data"] == 0
    assert arm["flash_bytes"] <= 16 * 1024


def test_int8_export(int8_export):
    run, report = int8_export
    v = report["verification"]
    assert v["c_int8_vs_numpy_emulation"]["max_abs"] <= TOL  # the C computes what the emulation flies
    q = v["int8_vs_float32"]
    assert 0 < q["mean_abs"] < 0.02 and q["max_abs_recorded"] < 0.05, q
    cl = v["int8_closed_loop"]
    for k in ("float32", "int8"):
        assert cl[k]["episodes"] == 32 and 0.0 <= cl[k]["survival_rate"] <= 1.0
    s = report["sizes"]
    assert s["weight_bytes_int8"] < s["weight_bytes_float32"] / 2
    src = (run / "export_int8" / "policy.c").read_text()
    assert "static const signed char w0[832]" in src and "static const float s0[32]" in src
    assert "#define ROBOLEARN_QUANTIZED_INT8 1" in (run / "export_int8" / "policy.h").read_text()


def test_int8_quantization_is_faithful():
    spec = parse_policy(make_policy())
    for w, layer in zip(spec.weights, quantize_int8(spec)):
        assert layer.q.dtype == np.int8 and np.abs(layer.q).max() == 127  # per-row scale uses the full range
        assert np.abs(layer.dequantized() - w).max() <= layer.scale.max() / 2 + 1e-7


def test_int8_closed_loop_on_a_flying_policy():
    """On a policy that actually hovers (a hand-made one: bias at the hover throttle, zero
    weights), float and int8 agree in closed loop: int8 of zero weights is exact."""
    from firmware_export.verify import closed_loop_int8
    from sims.quadrotor import QuadrotorConfig
    from sims.quadrotor import params as P

    policy = make_policy()
    spec = parse_policy(policy)
    for w in spec.weights:
        w[:] = 0
    hover = P.hover_action("l2f_paper")
    spec.biases[-1][:] = hover
    res = closed_loop_int8(spec, QuadrotorConfig(vehicle="l2f_paper"), [l.dequantized() for l in quantize_int8(spec)], episodes=8)
    assert res["float32"] == res["int8"]


# ----------------------------------------------------------------------- Crazyflie
HARNESS = r"""
#include <stdio.h>
#include "controller.h"
#include "policy.h"
#include "robolearn_obs.h"
int main(void) {
    control_t c; setpoint_t sp = {0}; sensorData_t s = {{0}}; state_t st = {{0}};
    float obs[18 + 8], p[3], q[4], v[3], r[3], h[8]; int i;
    FILE *f = fopen("in.txt", "r");
    for (i = 0; i < 3; ++i) if (fscanf(f, "%f", &p[i]) != 1) return 1;
    for (i = 0; i < 4; ++i) if (fscanf(f, "%f", &q[i]) != 1) return 1;
    for (i = 0; i < 3; ++i) if (fscanf(f, "%f", &v[i]) != 1) return 1;
    for (i = 0; i < 3; ++i) if (fscanf(f, "%f", &r[i]) != 1) return 1;
    for (i = 0; i < 8; ++i) if (fscanf(f, "%f", &h[i]) != 1) return 1;
    robolearn_obs_assemble(obs, p, q, v, r, h, 2);
    for (i = 0; i < 26; ++i) printf("%.9g\n", (double)obs[i]);
    controllerOutOfTreeInit();
    sp.mode.z = modeAbs; sp.position.z = 1.0f; st.position.z = 1.0f; st.attitudeQuaternion.w = 1.0f;
    controllerOutOfTree(&c, &sp, &s, &st, 0);
    for (i = 0; i < 4; ++i) printf("force %.9g\n", (double)c.normalizedForces[i]);
    sp.mode.z = modeDisable;
    controllerOutOfTree(&c, &sp, &s, &st, 1);
    printf("off %.9g mode %d\n", (double)c.normalizedForces[0], (int)c.controlMode);
    return 0;
}
"""


def test_crazyflie_template_compiles_and_assembles_the_simulators_observation(tmp_path):
    """Compiles the template against the stub headers with the exported policy, then checks
    the C observation assembly against the simulator's observation of the same state."""
    from sims.quadrotor import QuadrotorConfig, QuadrotorVecEnv

    run = make_run(tmp_path / "run")
    export(run, formats=("c",))
    exp = run / "export"
    flags = [*CFLAGS, "-I", str(CF / "stubs"), "-I", str(CF / "src"), "-I", str(exp)]
    (tmp_path / "main.c").write_text(HARNESS)
    cc(*flags, str(CF / "src" / "controller_robolearn.c"), str(CF / "src" / "robolearn_obs.c"),
       str(exp / "policy.c"), "-Wno-missing-field-initializers", str(tmp_path / "main.c"),
       "-o", str(tmp_path / "cf"), "-lm")

    env = QuadrotorVecEnv(1, QuadrotorConfig(sensor_noise=False, vehicle="l2f_paper"), seed=0)
    q = np.array([0.8, -0.2, 0.4, 0.1]); q /= np.linalg.norm(q)
    state = np.concatenate([[0.1, 0.4, 0.7], q, [-0.3, 0.2, 0.9], [2.0, 0.5, -1.0], [12000.0] * 4])[None]
    sim_obs = env.reset(seed=0, options={"state": state})[0]["policy"][0]
    hist = sim_obs[18:]
    vals = [*(state[0, :3] - env.targets[0]), *q, *state[0, 7:10], *state[0, 10:13], *hist]
    (tmp_path / "in.txt").write_text(" ".join(f"{x:.9g}" for x in vals))
    out = subprocess.run([str(tmp_path / "cf")], cwd=tmp_path, capture_output=True, text=True, check=True).stdout.split("\n")
    c_obs = np.array([float(x) for x in out[:26]])
    np.testing.assert_allclose(c_obs, sim_obs, atol=2e-6)
    forces = np.array([float(line.split()[1]) for line in out if line.startswith("force")])
    # at the setpoint, level, at rest, hover history: force = thrust fraction ((a + 1) / 2)^2
    from sims.quadrotor import params as P

    hover = P.hover_action("l2f_paper")
    o = np.concatenate([np.zeros(3), np.eye(3).reshape(-1), np.zeros(6), np.full(8, hover)]).astype(np.float32)
    a = robolearn_actions(torch.load(run / "policy.pt", weights_only=True), o[None])[0]
    np.testing.assert_allclose(forces, ((a + 1) / 2) ** 2, atol=1e-5)
    assert "off 0 mode 2" in out


def test_crazyflie_readme_documents_the_assembly():
    text = (ROOT / "firmware_export" / "README.md").read_text()
    for needed in ("controllerOutOfTree", "attitudeQuaternion", "deg/s", "normalizedForces", "manifest.json"):
        assert needed in text, needed

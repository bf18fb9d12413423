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
from firmware_export.c_codegen import generate_header, generate_source, int8_model, int8_network, quantize_int8
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
    if quantize is None:
        want = forward_numpy(spec, obs)
    else:  # the int8 C's own arithmetic (int8 weights, q15 activations), emulated in numpy
        want = int8_network(spec, int8_model(spec), obs)
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
    # 32 rows x 26 inputs (padded to 28) of int8, four to a word; one float scale per row
    assert "static const unsigned w0[224]" in src and "static const float rs0[32]" in src
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


# ----------------------------------------------------------------------- stateful (robolearn.actor/2)
def write_c(tmp_path, spec, quantize=None):
    (tmp_path / "policy.h").write_text(generate_header(spec, SHA, 0.0, 21702.0, 100.0, quantize))
    (tmp_path / "policy.c").write_text(generate_source(spec, SHA, quantize))
    return tmp_path


@pytest.mark.parametrize("k", [0, 3])
def test_c_whole_episodes_match_onnx_and_the_reference(tmp_path, k):
    """Whole episodes step by step after a reset through the C (state inside policy.c), the
    ONNX graph (state_in/state_out fed back) and the torch reference: <= 1e-5 at every step;
    the state itself bit-identical (float32 integrator, no fused multiply-add)."""
    from firmware_export.onnx_export import run_onnx_episodes
    from firmware_export.policy_file import episodes_torch
    from firmware_export.verify import c_episodes, random_episodes
    from test_export import make_v2_policy

    spec = parse_policy(make_v2_policy(k=k))
    eps = random_episodes(spec, 6, 250, seed=3)
    c_act, c_z = c_episodes(write_c(tmp_path, spec), eps, 4, k)
    o_act, _, o_z = run_onnx_episodes(onnx_session(build_onnx(spec, 0.0, 21702.0).SerializeToString()), eps)
    r_act, r_z = episodes_torch(spec, eps)
    assert c_z.shape == (6, 250, k) and np.array_equal(c_z, o_z) and np.array_equal(c_z, r_z)
    assert np.abs(c_act - o_act).max() <= TOL and np.abs(c_act - r_act).max() <= TOL
    if k:  # the episodes exercise the state: it moves, and it reaches the anti-windup clamp
        assert np.abs(c_z[:, -1]).max() > 0 and np.isclose(np.abs(c_z).max(), spec.integrator_limit)
        # and the state matters: the same observations from a zero state give other actions
        fresh, _ = c_episodes(tmp_path, eps[:, -1:], 4, k)
        assert np.abs(fresh[:, 0] - c_act[:, -1]).max() > 1e-3


def test_c_reset_restarts_the_episode(tmp_path):
    """robolearn_policy_reset() between two runs of the same sequence: identical actions;
    without it (one long episode) the second half differs."""
    from firmware_export.verify import c_episodes, random_episodes
    from test_export import make_v2_policy

    spec = parse_policy(make_v2_policy(k=3))
    ep = random_episodes(spec, 1, 100, seed=4)
    twice = np.concatenate([ep, ep], axis=1)
    act_reset, _ = c_episodes(write_c(tmp_path, spec), np.concatenate([ep, ep], axis=0), 4, 3)
    act_long, _ = c_episodes(tmp_path, twice, 4, 3)
    assert np.array_equal(act_reset[0], act_reset[1])
    assert np.abs(act_long[0, 100:] - act_reset[1]).max() > 1e-3
    src = (tmp_path / "policy.c").read_text()
    assert "static float state[3];" in src and not re.search(r"\b(malloc|calloc|free)\b", src)


def test_int8_whole_episodes_match_the_emulation(tmp_path):
    from firmware_export.c_codegen import int8_episodes
    from firmware_export.verify import c_episodes, random_episodes
    from test_export import make_v2_policy

    spec = parse_policy(make_v2_policy(k=3))
    eps = random_episodes(spec, 4, 200, seed=5)
    c_act, c_z = c_episodes(write_c(tmp_path, spec, "int8"), eps, 4, 3)
    e_act, e_z = int8_episodes(spec, int8_model(spec), eps)
    assert np.array_equal(c_z, e_z) and np.abs(c_act - e_act).max() <= TOL


# ----------------------------------------------------------------------- ARM build + QEMU count
ARM_STRICT = ("-O2", "-std=c99", "-pedantic", "-Wall", "-Wextra", "-Werror", "-Wdouble-promotion", "-Wshadow",
              "-Wconversion", "-mcpu=cortex-m4", "-mthumb", "-mfpu=fpv4-sp-d16", "-mfloat-abi=hard", "-ffp-contract=off")


@pytest.mark.parametrize("quantize,k,activation", [(None, 0, "tanh"), ("int8", 0, "tanh"), (None, 3, "elu"),
                                                   ("int8", 3, "relu")])
def test_generated_c_compiles_for_cortex_m4_with_the_dsp_kernel(tmp_path, quantize, k, activation):
    """arm-none-eabi-gcc, strict warnings: the int8 build uses the M4's SMLAD/SXTB16 (the
    portable fallback is what the host runs), the float build no double-precision code."""
    if shutil.which("arm-none-eabi-gcc") is None or shutil.which("arm-none-eabi-objdump") is None:
        pytest.skip("arm-none-eabi-gcc not installed (run .ci/system-deps.sh)")
    from test_export import make_v2_policy

    spec = parse_policy(make_v2_policy(k=k, activation=activation))
    write_c(tmp_path, spec, quantize)
    r = subprocess.run(["arm-none-eabi-gcc", *ARM_STRICT, "-c", "policy.c", "-o", "m4.o"], capture_output=True,
                       text=True, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    dis = subprocess.run(["arm-none-eabi-objdump", "-d", "m4.o"], capture_output=True, text=True, cwd=tmp_path).stdout
    assert ("smlad" in dis and "sxtb16" in dis) == (quantize == "int8")
    assert not re.search(r"\bvmul\.f64|__aeabi_d", dis)  # single precision only


def _count(tmp_path, spec, quantize):
    from firmware_export.qemu_count import count_instructions

    return count_instructions(write_c(tmp_path, spec, quantize))


def test_qemu_instruction_count_and_the_cost_model(tmp_path):
    """One policy step counted under QEMU for the default 50-28-24-4 shape: the kernels
    execute about 3.5 (float) / 1.7 (int8) instructions per MAC, int8 executes fewer
    instructions and is estimated faster than float, and the analytic estimate of cost.py
    agrees with the count (instructions within 5 %, cycles within 10 %)."""
    from firmware_export import cost, qemu_count

    if not qemu_count.tools_available():
        pytest.skip("needs arm-none-eabi-gcc and qemu-system-arm (run .ci/system-deps.sh)")
    from benchmarks.mcu import default_policy

    spec = default_policy()
    res = {}
    for q in (None, "int8"):
        (tmp_path / str(q)).mkdir()
        m = _count(tmp_path / str(q), spec, q)
        est = cost.estimate(spec, q)
        assert abs(est["instructions_estimate"] - m["instructions"]) <= 0.05 * m["instructions"], (q, est, m)
        assert abs(est["cycles_estimate"] - m["cycles_estimate"]) <= 0.10 * m["cycles_estimate"], (q, est, m)
        # the mix adds up, and every cycle is charged by a named class
        assert sum(c["count"] for c in m["by_class"].values()) == m["instructions"]
        assert sum(c["cycles"] for c in m["by_class"].values()) == m["cycles_estimate"]
        assert m["cycles_estimate"] >= m["instructions"]  # no instruction is charged < 1 cycle
        res[q] = m
    f, i8 = res[None], res["int8"]
    assert 3.0 * spec.macs < f["instructions"] < 5.5 * spec.macs
    assert i8["by_class"]["mac"]["count"] >= spec.macs // 2  # SMLAD: 2 MACs each
    assert i8["instructions"] < f["instructions"] and i8["cycles_estimate"] < f["cycles_estimate"]
    assert f["by_class"].get("vfma") is None  # -ffp-contract=off: VMUL + VADD, not 3-cycle VFMA


def test_cost_charges_follow_the_trm():
    from firmware_export.cost import classify, cycles_from_trace

    assert classify("vfma.f32") == ("vfma", 3) and classify("vdiv.f32") == ("vdiv", 14)
    assert classify("vmul.f32") == ("fpu", 1) and classify("smlad") == ("mac", 1)
    assert classify("ldr.w")[1] == 2 and classify("bne.n") == ("branch", 1)
    # two adjacent loads pipeline (2 + 1), a taken branch refills the pipeline (1 + 2)
    t = [(0, 4, "ldr.w", "r0, [r1]"), (4, 4, "ldr.w", "r2, [r1, #4]"), (8, 2, "bne.n", "0"), (0, 2, "vldmia", "r0!, {s8-s11}")]
    e = cycles_from_trace(t)
    assert e["cycles"] == 2 + 1 + 3 + 5 and e["cycles_no_pipelining"] == e["cycles"] + 1


@pytest.mark.parametrize("quantize,k", [(None, 0), ("int8", 0), (None, 3), ("int8", 3)])
def test_arm_build_under_qemu_computes_what_the_host_build_verified(tmp_path, quantize, k):
    """The Cortex-M4 build (int8: the SMLAD/SXTB16 path, which the host never runs) gives
    bit-identical actions to the host build over a short episode from a reset (-ffp-contract=off
    on both: every float operation rounds the same way)."""
    from firmware_export import qemu_count
    from firmware_export.verify import c_episodes
    from test_export import make_v2_policy

    if not qemu_count.tools_available():
        pytest.skip("needs arm-none-eabi-gcc and qemu-system-arm (run .ci/system-deps.sh)")
    spec = parse_policy(make_v2_policy(k=k, obs_dim=26))
    m = qemu_count.count_instructions(write_c(tmp_path, spec, quantize))
    arm = qemu_count.bench_actions(m["bench_stdout"], 4)
    obs = qemu_count.bench_observations(spec.obs_dim)
    host, _ = c_episodes(tmp_path, obs[None], 4, k)
    assert arm.shape == (len(obs), 4) and np.abs(arm).max() > 0
    assert np.array_equal(arm, host[0]), np.abs(arm - host[0]).max()

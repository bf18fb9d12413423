"""HIL runner (hardware/hil.py): against the Python device model (exact runs, every fault
the runner must survive, the report, process hygiene, the CLI), against the C device loop
compiled for the host on a pty (hardware/c/rl_device.c + host_platform.c), and against the
STM32F405 firmware under QEMU (hardware/firmware_image.py), with a fault-injecting proxy
between host and device."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from hardware import protocol as P
from hardware.cli_entry import hil_command
from hardware.device_model import DeviceModel, Faults, manifest_sha256, model_from_export, serve_fd
from hardware.devices import ModelDevice, SerialDevice, live_children
from hardware.errors import DeviceTimeout, ExportError, HandshakeError, ManifestMismatch
from hardware.hil import HilClient, OnnxActor, format_report, pty_model_device, resolve_export, run_hil
from hardware.testing import EASY_START, Integrator, make_test_export

ROOT = Path(__file__).resolve().parents[1]
STEPS = 120


@pytest.fixture(scope="module")
def hover_export(tmp_path_factory) -> Path:
    return make_test_export(tmp_path_factory.mktemp("hover_run"), hover=True, ranges=EASY_START)


@pytest.fixture(scope="module")
def random_export(tmp_path_factory) -> Path:
    return make_test_export(tmp_path_factory.mktemp("random_run"), seed=3)


@pytest.fixture(scope="module")
def stateful_export(tmp_path_factory) -> Path:
    """A stateful (robolearn.actor/2-style) policy: the hover controller with an
    integral of the altitude error (3 floats of integrator state)."""
    return make_test_export(tmp_path_factory.mktemp("stateful_run"), hover=True, ranges=EASY_START,
                            integrator=Integrator())


def model_dev(exp: Path, **faults) -> ModelDevice:
    return ModelDevice(model_from_export(exp, Faults(**faults)))


def fly(exp, device, **kw):
    kw.setdefault("steps", STEPS)
    kw.setdefault("episodes", 2)
    return run_hil(exp, device, **kw)


# --------------------------------------------------------------------------- exact
def test_exact_device_matches_onnx_and_simulation(hover_export, tmp_path):
    out = tmp_path / "r.json"
    r = fly(hover_export, "model", report_path=out)
    assert r["status"] == "ok" and r["error"] is None
    a = r["action_error"]
    assert a["n"] == 2 * STEPS and a["max_abs"] == 0.0 and a["exact"]
    cl = r["closed_loop"]
    assert cl["agree"] and cl["hil"]["survival_rate"] == 1.0 == cl["sim"]["survival_rate"]
    for ep in cl["episodes"]:
        assert ep["max_position_divergence_m"] == 0.0 and ep["position_error_diff_m"] == 0.0
        assert ep["hil"]["steps"] == STEPS and ep["hil"]["cut"]
    f = r["frames"]
    assert f["sent"] == f["received"] == 2 * STEPS + 2 + 1  # STEPs + RESETs + HELLO
    assert f["rejected"] == f["retried"] == f["timed_out"] == f["stale"] == 0
    assert r["latency_ms"]["n"] == 2 * STEPS and 0 < r["latency_ms"]["median"] <= r["latency_ms"]["p99"] <= r["latency_ms"]["max"]
    inf = r["inference"]
    assert inf["cycles"]["median"] == 10_000 and inf["us"]["median"] == pytest.approx(10_000 / 168e6 * 1e6)
    assert json.loads(out.read_text()) == {k: v for k, v in r.items() if k != "report_path"}
    assert r["report_path"] == str(out)
    assert live_children() == []


def test_report_contents_and_default_path(random_export):
    r = run_hil(random_export.parent, "model", episodes=2, steps=60, seed=5, replay_latency=True)
    path = random_export / "hil_report.json"
    assert r["report_path"] == str(path) and path.is_file()
    for key in ("schema", "status", "device", "latency_ms", "inference", "frames", "action_error",
                "closed_loop", "latency_replay", "config_source", "manifest_sha256", "steps_limit"):
        assert key in r, key
    assert r["schema"] == "robolearn.hil_report/1"
    assert r["config_source"].endswith("config.yaml")
    assert r["manifest_sha256"] == manifest_sha256(random_export).hex()
    assert r["device"]["cpu_hz"] == 168_000_000 and r["device"]["obs_dim"] == 26
    assert [e["seed"] for e in r["closed_loop"]["episodes"]] == [5, 6]
    lr = r["latency_replay"]
    assert lr["latency_steps"] == 1  # any non-zero RTT is one 10 ms step
    assert lr["sim_without_latency"] == r["closed_loop"]["sim"]


def test_latency_replay_uses_measured_rtt(hover_export):
    dev = model_dev(hover_export, delay_s=0.025)  # 25 ms replies: 3 control steps late
    r = fly(hover_export, dev, episodes=1, steps=40, timeout=0.2, replay_latency=True)
    med = r["latency_ms"]["median"]
    assert med >= 25.0
    assert r["fits_control_period"] is False
    # ceil(median RTT / 10 ms): 3 steps, 4 on a machine slow enough to add 5 ms per reply
    assert r["latency_replay"]["latency_steps"] == int(np.ceil(med / 10.0)) in (3, 4)
    assert r["closed_loop"]["agree"]  # lock-step HIL: latency does not change the trajectory


# --------------------------------------------------------------------------- faults
def test_corrupted_stream_is_survived(hover_export):
    dev = model_dev(hover_export, seed=1, corrupt_reply=0.1, garbage=0.1, corrupt_request=0.05)
    r = fly(hover_export, dev, timeout=0.05)
    f = r["frames"]
    assert r["status"] == "ok"
    assert f["rejected"] > 0 and f["retried"] > 0
    assert f["device_errors"].get("bad CRC", 0) > 0  # requests corrupted on the way in
    assert r["action_error"]["exact"] and r["closed_loop"]["agree"]


def test_dropped_frames_are_retried(hover_export):
    dev = model_dev(hover_export, seed=2, drop_request=0.05, drop_reply=0.05)
    r = fly(hover_export, dev, timeout=0.03)
    f = r["frames"]
    assert r["status"] == "ok" and f["timed_out"] > 0 and f["retried"] >= f["timed_out"] - f["rehandshakes"]
    assert r["action_error"]["exact"] and r["closed_loop"]["agree"]


def test_duplicate_replies_are_dropped_as_stale(hover_export):
    dev = model_dev(hover_export, seed=3, duplicate_reply=0.2)
    r = fly(hover_export, dev, episodes=1, timeout=0.05)
    assert r["status"] == "ok" and r["frames"]["stale"] > 0 and r["action_error"]["exact"]


def test_device_reset_mid_run_rehandshakes(hover_export):
    dev = model_dev(hover_export, reset_at_steps=(30, 150), boot_banner=b"\r\nboot v1\r\n\x00\x00")
    r = fly(hover_export, dev, timeout=0.03, hello_timeout=0.1)
    assert r["status"] == "ok"
    assert dev.model.count.resets == 2
    assert r["frames"]["rehandshakes"] >= 2 and r["frames"]["rejected"] >= 2  # the banners
    assert r["action_error"]["exact"] and r["closed_loop"]["agree"]


def test_device_that_never_answers_gives_clear_error(hover_export):
    dev = model_dev(hover_export, silent=True)
    t0 = time.monotonic()
    with pytest.raises(DeviceTimeout) as e:
        fly(hover_export, dev, timeout=0.02, hello_timeout=0.05)
    assert time.monotonic() - t0 < 2.0
    msg = str(e.value)
    assert "did not answer HELLO" in msg and "after 6 tries" in msg and "\n" not in msg
    assert not dev.is_open


def test_device_dying_mid_run_gives_partial_report(hover_export):
    dev = model_dev(hover_export, silent_after_steps=50)
    r = fly(hover_export, dev, timeout=0.02, hello_timeout=0.05, retries=2)
    assert r["status"] == "device_lost"
    assert "did not answer STEP" in r["error"]
    eps = r["closed_loop"]["episodes"]
    assert len(eps) == 1 and eps[0]["hil"]["steps"] == 50 and eps[0]["hil"]["error"]
    assert not r["closed_loop"]["agree"]
    assert Path(r["report_path"]).is_file()


def test_wrong_policy_on_device_is_refused(hover_export):
    model = model_from_export(hover_export)
    model.sha = bytes(32)
    with pytest.raises(ManifestMismatch) as e:
        fly(hover_export, ModelDevice(model))
    msg = str(e.value)
    assert "different policy" in msg and "manifest.json" in msg and "\n" not in msg


def test_wrong_dimensions_and_version_are_refused(hover_export):
    sha = manifest_sha256(hover_export)
    dev = ModelDevice(DeviceModel(lambda o: np.zeros(4), 30, 4, sha))
    with pytest.raises(HandshakeError, match="26 -> 4"):
        fly(hover_export, dev)
    dev = ModelDevice(DeviceModel(lambda o: np.zeros(4), 26, 4, sha, version=1))  # a v1 firmware
    with pytest.raises(HandshakeError, match="protocol version 1, the host 2; rebuild"):
        fly(hover_export, dev)
    dev = ModelDevice(DeviceModel(lambda o: np.zeros(4), 26, 4, sha, state_dim=3))
    with pytest.raises(HandshakeError, match="keeps 3 floats of state, policy.onnx 0"):
        fly(hover_export, dev)


def test_inexact_device_is_measured(hover_export):
    r = fly(hover_export, model_dev(hover_export, action_offset=0.01), episodes=1)
    a = r["action_error"]
    assert not a["exact"] and a["max_abs"] == pytest.approx(0.01, rel=1e-3)
    assert a["mean_abs"] == pytest.approx(0.01, rel=1e-3)


def test_error_reply_for_wrong_observation_size_is_fatal(hover_export):
    sha = manifest_sha256(hover_export)
    model = DeviceModel(OnnxActor(hover_export / "policy.onnx"), 26, 4, sha)
    model.obs_dim = 25  # device expects another size but announced 26
    orig = model._reply

    def reply(fr):
        if fr.type == P.HELLO:
            model.obs_dim = 26
            out = orig(fr)
            model.obs_dim = 25
            return out
        return orig(fr)

    model._reply = reply
    r = fly(hover_export, ModelDevice(model), episodes=1)
    assert r["status"] == "device_lost" and "wrong observation size" in r["error"]


def test_client_retries_with_same_sequence_number(hover_export):
    model = model_from_export(hover_export, Faults(drop_reply=1.0))
    seen = []
    orig = model._handle

    def spy(fr):
        seen.append((fr.type, fr.seq))
        return orig(fr)

    model._handle = spy
    dev = ModelDevice(model).open()
    c = HilClient(dev, timeout=0.01, retries=3, hello_timeout=0.01, hello_retries=1)
    with pytest.raises(DeviceTimeout):
        c.request(P.RESET)
    resets = [s for t, s in seen if t == P.RESET]
    assert len(resets) == 4 and len(set(resets)) == 1
    assert c.stats.retried == 3 and c.stats.timed_out >= 4


# --------------------------------------------------------------------------- stateful policy
def test_stateful_policy_compared_over_whole_episodes(stateful_export):
    r = fly(stateful_export, "model")
    assert r["status"] == "ok" and r["device"]["state_dim"] == 3
    assert r["action_error"]["exact"] and r["closed_loop"]["agree"]
    for ep in r["closed_loop"]["episodes"]:
        assert ep["steps_compared"] == STEPS and ep["action_max_abs_vs_sim"] == 0.0


class _NoReset:
    """A device policy that forgets to clear its state at episode start."""

    def __init__(self, actor):
        self.actor, self.state_dim = actor, actor.state_dim

    def __call__(self, obs):
        return self.actor(obs)

    def reset(self):
        pass


def test_device_that_keeps_state_across_episodes_is_caught(stateful_export):
    actor = OnnxActor(stateful_export / "policy.onnx")
    dev = ModelDevice(DeviceModel(_NoReset(actor), 26, 4, manifest_sha256(stateful_export)))
    r = fly(stateful_export, dev)
    e1, e2 = r["closed_loop"]["episodes"]
    assert e1["action_max_abs_vs_onnx"] == 0.0  # the first episode starts from zero state anyway
    assert e2["action_max_abs_vs_onnx"] > 1e-3 and not r["action_error"]["exact"]


def test_stateful_device_reboot_mid_episode_is_resynchronized(stateful_export):
    dev = model_dev(stateful_export, reset_at_steps=(30, 150))
    r = fly(stateful_export, dev, timeout=0.03, hello_timeout=0.1)
    f = r["frames"]
    assert r["status"] == "ok" and dev.model.count.resets == 2
    # the rebooted device refused the next STEP (ERROR 5); the host replayed the episode so far
    assert f["state_resyncs"] == 2 and dev.model.count.state_errors == 2
    assert f["device_errors"]["policy state lost (STEP out of sequence)"] == 2
    # the 30th STEP frame is step 29 of episode 1: its 29 predecessors are replayed first
    assert 29 < f["replayed_steps"] < 2 * STEPS
    assert r["action_error"]["exact"] and r["closed_loop"]["agree"]


def test_stateless_device_reboot_needs_no_replay(hover_export):
    r = fly(hover_export, model_dev(hover_export, reset_at_steps=(30,)), timeout=0.03, hello_timeout=0.1)
    assert r["status"] == "ok" and r["frames"]["state_resyncs"] == 0 and r["action_error"]["exact"]


# --------------------------------------------------------------------------- honest report
def test_report_names_the_counter_and_warns_when_not_real_time(hover_export):
    r = fly(hover_export, model_dev(hover_export, delay_s=0.012), episodes=1, steps=20, timeout=0.2)
    assert r["status"] == "ok" and r["fits_control_period"] is False
    assert any("exceeds the control period" in w for w in r["warnings"])
    text = format_report(r)
    assert not text.startswith("HIL ok") and text.startswith("HIL finished with warnings")
    assert "warning: round trip p99" in text
    inf = r["inference"]
    assert inf["instructions"] is None and inf["cycles"]["median"] == 10_000 and "not a measurement" in inf["counter"]
    r = fly(hover_export, "model", episodes=1, steps=20)
    assert r["warnings"] == [] and format_report(r).startswith("HIL ok")


@pytest.mark.parametrize("args, msg", [(["--retries", "-1"], "--retries must be an integer >= 0"),
                                       (["--timeout", "0"], "--timeout must be a number of seconds > 0"),
                                       (["--episodes", "0"], "--episodes must be an integer >= 1"),
                                       (["--steps", "0"], "--steps must be an integer >= 1")])
def test_cli_bad_options_are_one_line_usage_errors(hover_export, args, msg):
    p = subprocess.run([sys.executable, "-m", "hardware.cli_entry", str(hover_export), "--device", "model", *args],
                       capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert p.returncode == 2 and p.stdout == ""
    assert p.stderr.strip().startswith(f"error: {msg}") and len(p.stderr.strip().splitlines()) == 1


# --------------------------------------------------------------------------- export dir
def test_resolve_export_errors(tmp_path, hover_export):
    with pytest.raises(ExportError, match="no such run or export directory"):
        resolve_export(tmp_path / "missing")
    with pytest.raises(ExportError, match="neither manifest.json"):
        resolve_export(tmp_path)
    info = resolve_export(hover_export.parent)
    assert info.export_dir == hover_export and info.obs_dim == 26 and info.act_dim == 4
    assert info.config.ranges["task.start_tilt_rad"] == (0.3, 0.3)
    bad = make_test_export(tmp_path / "bad", action_history=3)
    (bad.parent / "config.yaml").write_text("env:\n  sim:\n    action_history: 2\n")
    with pytest.raises(ExportError, match="takes 30 observations"):
        resolve_export(bad)


# --------------------------------------------------------------------------- pty
def test_pty_process_device_end_to_end(hover_export):
    r = fly(hover_export, "pty-model", episodes=1)
    assert r["status"] == "ok" and r["action_error"]["exact"] and r["closed_loop"]["agree"]
    assert r["device"]["kind"] == "pty-model" and r["device"]["tty"].startswith("/dev/pts/")
    assert live_children() == []


def test_pty_process_device_with_faults(hover_export):
    dev = pty_model_device(hover_export, Faults(seed=4, corrupt_reply=0.05, drop_reply=0.05,
                                                reset_at_steps=(40,), garbage=0.05))
    r = fly(hover_export, dev, episodes=1, timeout=0.1, hello_timeout=0.3)
    f = r["frames"]
    assert r["status"] == "ok" and f["rehandshakes"] >= 1 and f["timed_out"] > 0 and f["rejected"] > 0
    assert r["action_error"]["exact"]
    assert dev.proc.returncode is not None  # stopped and reaped


def test_pty_wrong_policy_refused_and_process_stopped(hover_export):
    dev = pty_model_device(hover_export, sha=bytes(32))
    with pytest.raises(ManifestMismatch):
        fly(hover_export, dev)
    assert dev.proc.returncode is not None and live_children() == []


def test_serial_device_on_a_tty(hover_export):
    """SerialDevice (pyserial) against the model served on the other side of a pty."""
    master, slave = os.openpty()
    path = os.ttyname(slave)
    stop = threading.Event()
    th = threading.Thread(target=serve_fd, args=(model_from_export(hover_export), master, stop.is_set), daemon=True)
    th.start()
    try:
        r = fly(hover_export, path, episodes=1, steps=60, baud=115200)
    finally:
        stop.set()
        th.join(2)
        os.close(master)
        os.close(slave)
    assert r["status"] == "ok" and r["device"]["kind"] == "serial" and r["device"]["port"] == path
    assert r["action_error"]["exact"]


def test_missing_serial_port_is_a_clear_error(hover_export):
    with pytest.raises(Exception) as e:
        fly(hover_export, "/dev/ttyDOESNOTEXIST")
    assert "cannot open serial port /dev/ttyDOESNOTEXIST" in str(e.value)


def test_device_lost_when_process_exits(hover_export):
    from hardware.devices import PtyProcessDevice

    dev = PtyProcessDevice([sys.executable, "-c", "import sys, time; time.sleep(0.3); sys.exit(3)"])
    with pytest.raises(Exception) as e:
        fly(hover_export, dev, timeout=0.2, hello_timeout=0.2)
    assert "exited with code 3" in str(e.value) or "did not answer HELLO" in str(e.value)
    assert live_children() == []


# --------------------------------------------------------------------------- processes
# The runner as started from a terminal: Ctrl-C raises KeyboardInterrupt. A shell starts a
# background job (``cmd &``) with SIGINT ignored, the child inherits that, and Python then
# installs no handler of its own; the runner would rightly ignore the SIGINT sent here.
_CHILD_SCRIPT = textwrap.dedent("""
    import signal, sys, time
    signal.signal(signal.SIGINT, signal.default_int_handler)
    sys.path.insert(0, {root!r})
    from hardware.hil import pty_model_device
    dev = pty_model_device({exp!r})
    with dev:
        print(dev.proc.pid, flush=True)
        time.sleep(60)
""")


def _gone(pid: int, within: float = 5.0) -> bool:
    end = time.monotonic() + within
    while time.monotonic() < end:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError):
            return True
        if state in ("Z", "X"):  # dead; reaped by whoever owns it now
            return True
        time.sleep(0.05)
    return False


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL], ids=lambda s: s.name)
def test_child_process_never_outlives_the_runner(hover_export, sig):
    p = subprocess.Popen([sys.executable, "-c", _CHILD_SCRIPT.format(root=str(ROOT), exp=str(hover_export))],
                         stdout=subprocess.PIPE, text=True)
    try:
        pid = int(p.stdout.readline())
        assert not _gone(pid, 0.1)
        p.send_signal(sig)
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            masks = [ln for ln in Path(f"/proc/{p.pid}/status").read_text().splitlines() if ln.startswith("Sig")]
            pytest.fail(f"the runner did not stop within 10 s of {sig.name}; its signal masks: {masks}")
        assert _gone(pid), f"device process {pid} survived {sig.name} of its parent"
        if sig != signal.SIGKILL:  # the runner itself stopped and reaped it
            assert not Path(f"/proc/{pid}").exists()
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


# --------------------------------------------------------------------------- CLI
def test_cli_json_and_errors(hover_export, tmp_path):
    out, err = [], []
    code = hil_command(hover_export, "model", steps=30, episodes=1, json_output=True,
                       report=tmp_path / "r.json", echo=out.append, echo_err=err.append)
    assert code == 0 and not err
    r = json.loads(out[-1])
    assert r["status"] == "ok" and r["steps"] == 30
    out.clear()
    code = hil_command(hover_export, "model", steps=30, episodes=1, echo=out.append, echo_err=err.append)
    text = "\n".join(out)
    assert code == 0 and "round trip: median" in text and "agree: True" in text
    code = hil_command(tmp_path / "nope", "model", echo=out.append, echo_err=err.append)
    assert code == 2 and err[-1].startswith("error: no such run or export directory")


def test_cli_module_runs(hover_export, tmp_path):
    p = subprocess.run([sys.executable, "-m", "hardware.cli_entry", str(hover_export), "--device", "model",
                        "--steps", "20", "--json", "--report", str(tmp_path / "r.json")],
                       capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["status"] == "ok"


# =========================================================================== C device
# The device loop in C (hardware/c/rl_device.c) with the export's policy.c, on a pty
# (host cc) and as the STM32F405 firmware under QEMU. CI installs the toolchains
# (.ci/system-deps.sh): there a missing tool fails instead of skipping.
from hardware import firmware_image as fw  # noqa: E402
from hardware.devices import PtyProcessDevice, QemuDevice  # noqa: E402
from hardware.testing import FaultyLink, RebootingPty  # noqa: E402

C_TOL = 1e-5  # device actions vs onnxruntime (float32; tanhf of libm vs onnxruntime's tanh)


def _need(*tools: str) -> None:
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        msg = f"{', '.join(missing)} not installed (run .ci/system-deps.sh)"
        if os.environ.get("CI"):
            pytest.fail(msg + " - CI must have it")
        pytest.skip(msg)


@pytest.fixture(scope="module")
def c_exe(hover_export, tmp_path_factory) -> Path:
    _need("cc")
    return fw.build_host_device(hover_export, tmp_path_factory.mktemp("host_dev"))


@pytest.fixture(scope="module")
def c_exe_stateful(stateful_export, tmp_path_factory) -> Path:
    _need("cc")
    return fw.build_host_device(stateful_export, tmp_path_factory.mktemp("host_dev_stateful"))


@pytest.fixture(scope="module")
def fw_elf(hover_export) -> Path:
    _need("arm-none-eabi-gcc", "arm-none-eabi-size", "qemu-system-arm")
    return fw.build_firmware(hover_export)


def _assert_exact_run(r, n_steps, episodes, full=True):
    """Device actions equal onnxruntime's within C_TOL, and every episode flown with the
    device equals the pure-simulation one (same length, trajectories within 1 mm)."""
    assert r["status"] == "ok", r["error"]
    cl = r["closed_loop"]
    assert cl["agree"] and len(cl["episodes"]) == episodes
    flown = 0
    for ep in cl["episodes"]:
        assert ep["hil"]["steps"] == ep["sim"]["steps"] <= n_steps
        assert ep["hil"]["steps"] == n_steps or not full
        assert ep["max_position_divergence_m"] < 1e-3
        flown += ep["hil"]["steps"]
    a = r["action_error"]
    assert a["n"] == flown > 0 and a["max_abs"] <= C_TOL and a["nonfinite_actions"] == 0


def test_c_pty_device_matches_onnx_and_pure_simulation(hover_export, random_export):
    _need("cc")
    r = fly(hover_export, "pty", episodes=2)
    _assert_exact_run(r, STEPS, 2)
    assert r["closed_loop"]["hil"]["survival_rate"] == 1.0
    assert r["device"]["cpu_hz"] == 1_000_000_000 and r["inference"]["cycles_reported"]
    assert 0 < r["inference"]["us"]["median"] < 1000  # ns clock of the host process
    assert r["frames"]["retried"] == r["frames"]["rejected"] == 0
    # a random 26-32-32-4 tanh MLP: the C policy still agrees with onnxruntime
    # (it crashes the quadrotor early: the episodes end on termination, in both runs)
    r = fly(random_export, "pty", episodes=2, steps=60)
    _assert_exact_run(r, 60, 2, full=False)
    assert live_children() == []


@pytest.mark.parametrize("v", json.loads((ROOT / "hardware" / "test_vectors.json").read_text())["device"],
                         ids=lambda v: v["name"])
@pytest.mark.parametrize("stateful", [False, True], ids=["stateless", "stateful"])
def test_c_device_rule_vectors(c_exe, c_exe_stateful, v, stateful):
    """The device rules of the shared vectors (obs 26, act 4), answered by the C loop."""
    if v.get("state") and v["state"] != ("stateful" if stateful else "stateless"):
        pytest.skip(f"vector for a {v['state']} device")
    with PtyProcessDevice([c_exe_stateful if stateful else c_exe]) as dev:
        c = HilClient(dev, timeout=0.5)
        c.hello()
        dev.write(bytes.fromhex(v["request_hex"]))
        data, end = b"", time.monotonic() + 0.5
        while time.monotonic() < end and not data.endswith(b"\x00"):
            data += dev.read(0.05)
    frames, rejected = P.decode_stream(data)
    assert rejected == 0
    if not frames:
        assert v.get("no_reply_allowed")
        return
    assert len(frames) == 1
    f = frames[0]
    assert (f.type, f.seq) == (v["reply_type"], v["reply_seq"])
    if "reply_payload_hex" in v:
        assert f.payload == bytes.fromhex(v["reply_payload_hex"])
    if "reply_payload_len" in v:
        assert len(f.payload) == v["reply_payload_len"]


def _exchange(dev, wire: bytes, wait: float = 0.3) -> list[P.Frame]:
    dev.write(wire)
    d, out, end = P.StreamDecoder(), [], time.monotonic() + wait
    while time.monotonic() < end:
        out += d.feed(dev.read(0.02))
        if out and wait > 0.25:
            break
    return out


def test_c_device_handshake_rules_and_retransmission_cache(c_exe, hover_export):
    obs = np.linspace(-1, 1, 26).astype(np.float32)
    with PtyProcessDevice([c_exe]) as dev:
        # STEP before HELLO is ignored: a rebooted device must be re-checked first
        assert _exchange(dev, P.encode_frame(P.STEP, 5, P.pack_step(obs)), wait=0.2) == []
        (ack,) = _exchange(dev, P.encode_frame(P.HELLO, 6))
        a = P.unpack_hello_ack(ack.payload)
        assert (ack.type, ack.seq, a.obs_dim, a.act_dim) == (P.HELLO_ACK, 6, 26, 4)
        assert a.manifest_sha256 == manifest_sha256(hover_export) and a.version == P.VERSION
        (r1,) = _exchange(dev, P.encode_frame(P.STEP, 7, P.pack_step(obs)))
        (r2,) = _exchange(dev, P.encode_frame(P.STEP, 7, P.pack_step(obs)))  # retransmission
        (r3,) = _exchange(dev, P.encode_frame(P.STEP, 8, P.pack_step(obs)))
    act1, cyc1 = P.unpack_action(r1.payload, 4)
    act3, cyc3 = P.unpack_action(r3.payload, 4)
    assert r1 == r2  # cached: same bytes, so the same (ns) inference time: the policy did not run again
    assert r3.seq == 8 and np.array_equal(act1, act3)
    ref = OnnxActor(hover_export / "policy.onnx")(obs)
    assert np.max(np.abs(act1 - ref)) <= C_TOL


def test_c_pty_device_survives_corrupted_and_dropped_bytes(c_exe, hover_export):
    dev = FaultyLink(PtyProcessDevice([c_exe]), seed=11, drop=0.0005, corrupt=0.001)
    r = fly(hover_export, dev, episodes=2, timeout=0.05, retries=8)
    f = r["frames"]
    _assert_exact_run(r, STEPS, 2)
    assert dev.dropped > 0 and dev.corrupted > 0
    assert f["rejected"] > 0 and f["retried"] > 0
    assert f["device_errors"].get("bad CRC", 0) + f["device_errors"].get("bad length", 0) > 0
    assert live_children() == []


def test_c_pty_device_reboot_mid_run(c_exe, hover_export):
    dev = RebootingPty([c_exe], reboot_at_steps=(25, 170))
    r = fly(hover_export, dev, episodes=2, timeout=0.05, hello_timeout=0.2)
    _assert_exact_run(r, STEPS, 2)
    assert dev.reboots == 2 and r["frames"]["rehandshakes"] >= 2
    assert live_children() == []


def test_c_stateful_policy_whole_episodes_and_reboot(c_exe_stateful, stateful_export):
    """The C device loop with a stateful policy.c: reset at each episode start (step 0),
    state carried step to step, a power cycle mid-episode answered with ERROR 5 and
    repaired by the host's replay; every episode equals onnxruntime and pure simulation."""
    r = fly(stateful_export, "pty", episodes=2)
    _assert_exact_run(r, STEPS, 2)
    assert r["device"]["state_dim"] == 3 and r["frames"]["state_resyncs"] == 0
    dev = RebootingPty([c_exe_stateful], reboot_at_steps=(25, 170))
    r = fly(stateful_export, dev, episodes=2, timeout=0.05, hello_timeout=0.2)
    _assert_exact_run(r, STEPS, 2)
    assert dev.reboots == 2 and r["frames"]["state_resyncs"] == 2
    assert r["frames"]["device_errors"]["policy state lost (STEP out of sequence)"] == 2
    assert live_children() == []


def test_c_pty_silent_device_times_out(c_exe, hover_export):
    dev = FaultyLink(PtyProcessDevice([c_exe]), silent=True)
    t0 = time.monotonic()
    with pytest.raises(DeviceTimeout, match="did not answer HELLO"):
        fly(hover_export, dev, timeout=0.02, hello_timeout=0.05)
    assert time.monotonic() - t0 < 3.0
    assert live_children() == []


def test_c_pty_wrong_manifest_refused(hover_export, tmp_path):
    """The device's policy.c embeds the SHA-256 of another manifest.json: refused, the
    device process stopped, no report of a flight."""
    _need("cc")
    other = tmp_path / "export"
    shutil.copytree(hover_export, other, ignore=shutil.ignore_patterns("firmware", "hil_report.json"))
    (other / "manifest.json").write_text((other / "manifest.json").read_text().replace("{", '{"edited": 1, ', 1))
    with pytest.raises(ManifestMismatch, match="different policy"):
        fly(other, "pty")
    assert live_children() == []
    assert not (other / "hil_report.json").exists()


def test_cli_hil_pty_json(hover_export, tmp_path):
    """robolearn hil EXPORT --device pty --json through the robolearn CLI."""
    _need("cc")
    p = subprocess.run([sys.executable, "-c", "from robolearn.cli import app; app()", "hil", str(hover_export),
                        "--device", "pty", "--steps", "30", "--json", "--report", str(tmp_path / "r.json")],
                       capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert p.returncode == 0, p.stderr
    r = json.loads(p.stdout)
    assert r["status"] == "ok" and r["steps"] == 30 and r["action_error"]["max_abs"] <= C_TOL
    p = subprocess.run([sys.executable, "-c", "from robolearn.cli import app; app()", "hil", str(tmp_path / "nope"),
                        "--device", "pty"], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert p.returncode == 2 and p.stderr.strip().startswith("error: no such run or export directory")


# ----------------------------------------------------------------------- emulated board
def test_firmware_build_and_sizes(fw_elf):
    s = fw.firmware_size(fw_elf)
    assert fw_elf.is_file() and fw_elf.parent.name == "firmware"
    b = s["size_berkeley"]
    assert s["flash_bytes"] == b["text"] + b["data"] and s["ram_bytes"] == b["data"] + b["bss"]
    assert 0 < s["flash_bytes"] < s["flash_capacity_bytes"] and 0 < s["ram_bytes"] < s["ram_capacity_bytes"]
    assert s["sections"][".isr_vector"] == 4 * (16 + 82)  # ARMv7-M system vectors + 82 STM32F405 IRQs
    assert 0 < s["policy_o"]["flash_bytes"] < s["flash_bytes"]
    # the vector table is at the start of flash and its reset entry points into flash (Thumb bit set)
    raw = subprocess.run(["arm-none-eabi-objcopy", "-O", "binary", "-j", ".isr_vector", str(fw_elf), "/dev/stdout"],
                         capture_output=True).stdout
    sp, reset = np.frombuffer(raw[:8], "<u4")
    assert sp == 0x20000000 + 128 * 1024 and 0x08000000 <= reset < 0x08100000 and reset & 1


def test_emulated_qemu_end_to_end(fw_elf, hover_export):
    steps, episodes = 50, 3
    r = fly(hover_export, "emulated", episodes=episodes, steps=steps)
    _assert_exact_run(r, steps, episodes)
    assert r["device"]["kind"] == "emulated" and r["device"]["cpu_hz"] == 168_000_000
    inf = r["inference"]
    cyc = inf["ticks"]
    assert inf["cycles_reported"] and 0 < cyc["min"] <= cyc["max"] < 168_000  # < 1 ms
    # under QEMU the counter is an instruction count: no cycles, no microseconds are claimed
    assert inf["cycles"] is None and inf["us"] is None and "INSTRUCTION COUNT" in inf["counter"]
    ins = inf["instructions"]
    assert ins["median"] == pytest.approx(cyc["median"] / 0.168)
    assert r["latency_ms"]["max"] < 2000
    assert live_children() == []
    print(f"\nemulated: {r['steps']} steps, latency {r['latency_ms']}, cycles {cyc}, "
          f"instructions {ins['median']:.0f}, firmware {fw.firmware_size(fw_elf)['flash_bytes']} B flash")


def test_emulated_stateful_policy(stateful_export, tmp_path):
    """The STM32F405 firmware under QEMU with a stateful policy.c: whole episodes agree
    with onnxruntime (state reset at each episode start) and with pure simulation."""
    _need("arm-none-eabi-gcc", "arm-none-eabi-size", "qemu-system-arm")
    elf = fw.build_firmware(stateful_export, tmp_path / "fw")
    r = fly(stateful_export, QemuDevice(elf, fw.qemu_command), episodes=2, steps=40, timeout=2.0, hello_timeout=3.0)
    _assert_exact_run(r, 40, 2)
    assert r["device"]["state_dim"] == 3 and r["inference"]["instructions"]["median"] > 0
    assert live_children() == []


def test_emulated_with_fault_proxy_and_wrong_manifest(fw_elf, hover_export, tmp_path):
    dev = FaultyLink(QemuDevice(fw_elf, fw.qemu_command), seed=5, drop=0.0005, corrupt=0.001)
    r = fly(hover_export, dev, episodes=1, steps=60, timeout=0.3, retries=8, hello_timeout=1.0)
    _assert_exact_run(r, 60, 1)
    assert r["frames"]["rejected"] + r["frames"]["timed_out"] > 0 and r["frames"]["retried"] > 0
    assert dev.inner.proc.returncode is not None and live_children() == []
    # the same firmware against an export whose manifest differs: refused, QEMU stopped
    other = tmp_path / "export"
    shutil.copytree(hover_export, other, ignore=shutil.ignore_patterns("firmware", "hil_report.json"))
    (other / "manifest.json").write_text((other / "manifest.json").read_text() + "\n")
    q = QemuDevice(fw_elf, fw.qemu_command)
    with pytest.raises(ManifestMismatch):
        fly(other, q)
    assert q.proc.returncode is not None and live_children() == []


def test_emulated_board_dies_mid_run(fw_elf, hover_export):
    """QEMU killed in the middle of an episode: partial report, status device_lost, no hang."""
    q = QemuDevice(fw_elf, fw.qemu_command)
    n = {"steps": 0}
    orig = q._write

    def write(data):
        n["steps"] += 1
        if n["steps"] == 20:
            q.proc.kill()
        orig(data)

    q._write = write
    t0 = time.monotonic()
    r = fly(hover_export, q, episodes=2, steps=60, timeout=0.2, retries=1, hello_timeout=0.3)
    assert r["status"] == "device_lost" and r["error"] and time.monotonic() - t0 < 30
    assert 0 < r["closed_loop"]["episodes"][0]["hil"]["steps"] < 60
    assert live_children() == []


# ----------------------------------------------------------------- with the real exporter
def test_real_export_flies_on_pty_and_emulated_board(tmp_path):
    """policy.pt -> firmware_export.export (onnx, c, firmware) -> HIL on the host C device
    and on the STM32F405 firmware under QEMU: both agree with onnxruntime and with pure
    simulation."""
    _need("cc", "arm-none-eabi-gcc", "arm-none-eabi-size", "qemu-system-arm")
    import firmware_export
    from hardware.testing import hover_weights, write_policy_pt

    run = tmp_path / "run"
    make_test_export(run, hover=True, ranges=EASY_START)  # for config.yaml
    shutil.rmtree(run / "export")
    write_policy_pt(run / "policy.pt", hover_weights(26))
    with pytest.raises(firmware_export.ExportError, match="needs a firmware builder"):
        firmware_export.export(run, formats=("onnx", "c", "firmware"))  # firmware_export alone cannot build it
    rep = firmware_export.export(run, formats=("onnx", "c", "firmware"), n_random=500, record_envs=4,
                                 record_steps=50, closed_loop_episodes=2, firmware_builder=fw.build_firmware)
    assert any(f.startswith("firmware/") for f in rep["files"]) and rep["firmware"]["size"]["flash_bytes"] > 0
    exp = run / "export"
    elf = exp / "firmware" / fw.ELF_NAME
    assert elf.is_file() and fw.firmware_size(elf)["flash_bytes"] > 0
    assert rep["manifest_sha256"] == manifest_sha256(exp).hex()
    for device in ("pty", "emulated"):
        r = run_hil(run, device, episodes=1, steps=60)  # the run directory: export/ is found
        _assert_exact_run(r, 60, 1)
        assert r["closed_loop"]["hil"]["survival_rate"] == 1.0
    inf = r["inference"]
    assert inf["instructions"]["median"] > 0
    est = inf["cycles_estimate"]  # the exporter's estimate, beside the measured instruction count
    assert est["cycles"] > 0 and "estimate" in est["method"].lower() and est["source"].endswith(("(cost)", "(cost_measured)"))
    assert est["implied_cycles_per_instruction"] == pytest.approx(est["cycles"] / inf["instructions"]["median"])
    assert live_children() == []


def test_emulated_serial_on_a_qemu_pty(fw_elf, hover_export):
    """The board's USART on a QEMU pty (``-serial pty``), opened with pyserial."""
    q = QemuDevice(fw_elf, fw.qemu_command, serial="pty")
    r = fly(hover_export, q, episodes=1, steps=30)
    _assert_exact_run(r, 30, 1)
    assert r["device"]["serial"].startswith("/dev/pts/") and live_children() == []


def test_missing_toolchain_and_bad_export_are_one_line_errors(hover_export, tmp_path, monkeypatch):
    from hardware.errors import ExportError as FwExportError

    with pytest.raises(FwExportError, match="no policy.c/policy.h") as e:
        fw.build_firmware(tmp_path)
    broken = tmp_path / "broken"
    shutil.copytree(hover_export, broken, ignore=shutil.ignore_patterns("firmware"))
    (broken / "policy.c").write_text((broken / "policy.c").read_text() + "\nint oops(void) { return }\n")
    if shutil.which("cc"):
        with pytest.raises(FwExportError, match="compiling the host device failed") as e:
            fw.build_host_device(broken, tmp_path / "h")
        assert "\n" not in str(e.value) and "error" in str(e.value)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(FwExportError) as e:
        fw.build_firmware(hover_export, tmp_path / "fw")
    assert "arm-none-eabi-gcc not found" in str(e.value) and "gcc-arm-none-eabi" in str(e.value)
    with pytest.raises(FwExportError, match="install the Debian package.s. qemu-system-arm"):
        fw.qemu_command("x.elf", "pty")
    monkeypatch.setenv("CC", "no-such-cc")
    with pytest.raises(FwExportError, match="no-such-cc not found.*gcc"):
        fw.build_host_device(hover_export, tmp_path / "h2")
    # through the runner: refused before flying, one line, naming the package
    with pytest.raises(ExportError) as e:
        fly(hover_export, "emulated")
    assert "gcc-arm-none-eabi" in str(e.value) and "\n" not in str(e.value)
    assert not (tmp_path / "fw").exists() or not any((tmp_path / "fw").iterdir())


def test_emulated_board_reset_mid_run(fw_elf, hover_export, tmp_path):
    """``system_reset`` through QEMU's monitor in the middle of an episode: the rebooted
    firmware ignores STEP until a HELLO, the runner re-handshakes (same manifest) and
    the flight still equals pure simulation."""
    import socket

    mon = tmp_path / "monitor.sock"

    def command(elf, spec):
        c = fw.qemu_command(elf, spec)
        c[c.index("-monitor") + 1] = f"unix:{mon},server=on,wait=off"
        return c

    q = QemuDevice(fw_elf, command)
    writes = {"n": 0}
    orig = q._write

    def write(data):
        writes["n"] += 1
        if writes["n"] == 30:
            with socket.socket(socket.AF_UNIX) as s:
                s.connect(str(mon))
                s.sendall(b"system_reset\n")
                time.sleep(0.3)  # let the reset happen before this STEP goes out
        orig(data)

    q._write = write
    r = fly(hover_export, q, episodes=1, steps=60, timeout=0.3, hello_timeout=1.0, retries=6)  # reboot time under load
    _assert_exact_run(r, 60, 1)
    assert r["frames"]["rehandshakes"] >= 1 and r["frames"]["timed_out"] >= 1
    assert live_children() == []

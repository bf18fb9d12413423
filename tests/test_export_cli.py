"""``robolearn export``: end to end on a fake run directory, and one-line errors with exit code 2."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from test_export import make_run
from cli_helpers import assert_error, cli

ROOT = Path(__file__).resolve().parent.parent


def test_export_end_to_end_subprocess(tmp_path):
    run = make_run(tmp_path / "run")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    r = subprocess.run([sys.executable, "-m", "robolearn.cli", "export", str(run), "--quantize", "int8"],
                       capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)
    assert r.returncode == 0, r.stderr
    out = run / "export"
    assert sorted(p.name for p in out.iterdir()) == ["export_report.json", "manifest.json", "policy.c", "policy.h",
                                                     "policy.onnx"]
    report = json.loads((out / "export_report.json").read_text())
    assert report["quantize"] == "int8" and "int8 vs float32" in r.stdout and "C vs onnx" not in r.stdout
    assert report["manifest_sha256"] in r.stdout


def test_export_json_and_out(tmp_path, capsys):
    run = make_run(tmp_path / "run")
    code, out, err = cli("export", run, "--out", tmp_path / "x" / "exp", "--format", "onnx", "--json", capsys=capsys)
    assert code == 0, err
    report = json.loads(out)
    assert report["formats"] == ["onnx"] and report["out_dir"] == str(tmp_path / "x" / "exp")
    assert sorted(p.name for p in (tmp_path / "x" / "exp").iterdir()) == ["export_report.json", "manifest.json",
                                                                        "policy.onnx"]


def test_export_errors(tmp_path, capsys):
    assert_error(*cli("export", tmp_path / "nope", capsys=capsys)[::2], "no such run directory")
    (tmp_path / "empty").mkdir()
    assert_error(*cli("export", tmp_path / "empty", capsys=capsys)[::2], "no policy.pt", "robolearn train")
    run = make_run(tmp_path / "run")
    assert_error(*cli("export", run, "--format", "onnx,tflite", capsys=capsys)[::2], "tflite")
    assert_error(*cli("export", run, "--quantize", "int4", capsys=capsys)[::2], "int8")
    (run / "policy.pt").write_bytes(b"not a torch file")
    assert_error(*cli("export", run, capsys=capsys)[::2], "corrupt")
    assert not (run / "export").exists()


def test_non_weights_only_policy(tmp_path, capsys):
    run = make_run(tmp_path / "run")
    torch.save({"format": "robolearn.actor/1", "f": Path("x")}, run / "policy.pt")  # pathlib needs code to load
    assert_error(*cli("export", run, capsys=capsys)[::2], "not a weights-only file")

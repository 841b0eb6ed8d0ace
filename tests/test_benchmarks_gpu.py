"""`benchmarks/run_gpu.sh`: refuses without CUDA, and `--dry-run` runs every benchmark on CPU (tiny sizes)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "benchmarks" / "run_gpu.sh"


def run_script(*args, env=None, timeout=60):
    env = {**os.environ, "PYTHON": sys.executable, **(env or {})}
    return subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True, env=env, timeout=timeout)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without CUDA")
def test_run_gpu_refuses_clearly_without_cuda(tmp_path):
    result = run_script("--out", str(tmp_path / "out"))
    assert result.returncode == 2
    assert "CUDA is not available" in result.stderr and "--dry-run" in result.stderr
    assert not (tmp_path / "out").exists()
    bad = run_script("--fast")
    assert bad.returncode == 2 and "unknown argument '--fast'" in bad.stderr


@pytest.mark.slow
def test_run_gpu_dry_run_writes_every_report_and_the_tables(tmp_path, illustration_folder):
    out = tmp_path / "out"
    env = {"STABLEPAINT_DATA": str(illustration_folder), "STABLEPAINT_VGG16_WEIGHTS": str(tmp_path / "absent")}
    result = run_script("--dry-run", "--out", str(out), env=env, timeout=900)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    reports = {path.name: json.loads(path.read_text()) for path in out.glob("*.json")}
    gan = ["gan_gpu.json", "gan_gpu_bf16_channels_last.json", "gan_gpu_bf16_compile.json"]
    stablepaint = ["stablepaint_gpu_4steps.json", "stablepaint_gpu_20steps.json", "stablepaint_gpu_compile.json"]
    assert sorted(reports) == sorted(gan + stablepaint + ["synthesis_gpu.json"])
    for name in gan:
        report = reports[name]
        assert report["machine"]["device"] == "cpu" and report["args"]["config"] == "tiny"
        cells = {(r["pipeline"], r["size"], r["batch"]) for r in report["grid"]}
        assert cells == {("paintstorch", 32, 1), ("stenciltorch", 32, 1)}
        assert all(r["images_per_s"] > 0 and r["peak_mb"] >= 0 for r in report["grid"])
    assert {t["task"] for t in reports["gan_gpu.json"]["training"]} == {"paintstorch", "stenciltorch"}
    assert all(t["images_per_s"] > 0 for t in reports["gan_gpu.json"]["training"])
    assert reports["gan_gpu_bf16_compile.json"]["args"]["compile"] is True
    assert reports["gan_gpu_bf16_channels_last.json"]["args"]["channels_last"] is True
    for name, steps in zip(stablepaint, (2, 3, 2)):
        rows = reports[name]["results"]
        assert rows and all(r["steps"] == steps and r["step_ms"] > 0 and "peak_mb" in r for r in rows)
    assert {r["pipeline"] for r in reports["stablepaint_gpu_4steps.json"]["training"]} == {
        "StablePaint",
        "ControlNet",
        "Inpaint",
    }
    [compiled] = reports["stablepaint_gpu_compile.json"]["results"]
    assert compiled["pipeline"] == "StablePaint" and compiled["variant"] == "sdpa+channels_last+compile"
    [synthesis] = reports["synthesis_gpu.json"]["cache"]
    assert synthesis["identical"] is True and synthesis["cache_hits"] == synthesis["examples"]
    assert synthesis["cached_examples_per_s"] > 0 and synthesis["uncached_examples_per_s"] > 0
    tables = (out / "tables_gpu.md").read_text()
    assert tables.count("### ") == len(reports) and "| paintstorch | 32² | 1 |" in tables
    assert "StablePaint (sdpa+channels_last+compile)" in tables and "identical outputs" in tables

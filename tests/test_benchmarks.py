import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_synthesis_benchmark_runs_and_reports(tmp_path, illustration_folder):
    result = subprocess.run(
        [
            sys.executable,
            str(REPO / "benchmarks" / "bench_synthesis.py"),
            "--data",
            str(illustration_folder),
            "--n",
            "4",
            "--out",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    import json

    report = json.loads((tmp_path / "synthesis.json").read_text())
    assert {(r["resolution"], r["processes"]) for r in report["results"]} == {(256, 1), (256, 2), (512, 1), (512, 2)}
    assert all(r["examples_per_s"] > 0 and r["baseline_per_s"] > 0 for r in report["results"])


@pytest.mark.slow
def test_gan_benchmark_runs_and_reports(tmp_path, vgg16_weights):
    result = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "bench_gan.py"), "--tiny", "--sizes", "32", "--train_resolution"]
        + [
            "32",
            "--batch_size",
            "2",
            "--repeats",
            "1",
            "--train_repeats",
            "1",
            "--warmup",
            "0",
            "--out",
            str(tmp_path),
        ]
        + ["--vgg_weights", str(vgg16_weights)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    import json

    report = json.loads((tmp_path / "gan.json").read_text())
    assert [r["size"] for r in report["latency"]] == [32]
    assert all(r["generator_ms"] > 0 and r["ratio"] > 0 for r in report["latency"])
    assert {r["task"] for r in report["training"]} == {"paintstorch", "stenciltorch"}
    assert all(r["images_per_s"] > 0 and r["reference_images_per_s"] > 0 for r in report["training"])


@pytest.mark.slow
def test_stablepaint_benchmark_runs_and_reports(tmp_path):
    command = [sys.executable, str(REPO / "benchmarks" / "bench_stablepaint.py"), "--out", str(tmp_path)]
    command += ["--resolution", "32", "--repeats", "1", "--steps", "2", "--batch", "1"]
    command += ["--unet_channels", "8", "16", "--vae_channels", "8", "16", "--cross_attention_dim", "8"]
    command += ["--attention_head_dim", "2"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    import json

    report = json.loads((tmp_path / "stablepaint.json").read_text())
    rows = {(r["variant"], r["pipeline"]) for r in report["results"]}
    assert {("sdpa", name) for name in ("StablePaint", "ControlNet", "Inpaint")} <= rows
    assert all(r["step_ms"] >= 0 and r["unet_params"] > 0 for r in report["results"])
    assert "StablePaint" in result.stdout and "ControlNet" in result.stdout


@pytest.mark.slow
def test_art_workflow_benchmark_runs_and_reports(tmp_path, vgg16_weights):
    import json

    import torch
    from conftest import draw_illustration

    from stablepaint import (
        ArtWorkflowGenerationModel,
        ArtWorkflowInferenceModel,
        ArtWorkflowPipeline,
        ArtWorkflowRegularizer,
    )

    torch.manual_seed(0)
    generation = ArtWorkflowGenerationModel(
        latent_dim=4, base_channels=4, num_res_blocks=1, mlp_dim=8, encoder_channels=4, encoder_blocks=1
    )
    inference = ArtWorkflowInferenceModel(base_channels=4, num_downs=3)
    pipe = ArtWorkflowPipeline(
        artwork_generation=generation,
        workflow_inference=inference,
        regularizer=ArtWorkflowRegularizer(num_adain_params=generation.num_adain_params),
    )
    pipe.save_pretrained(tmp_path / "model")
    data = tmp_path / "data"
    data.mkdir()
    for i in (1, 2):
        draw_illustration(48, seed=i).save(data / f"dicebear_adventurer_{i}_color.png")
    command = [sys.executable, str(REPO / "benchmarks" / "bench_art_workflow.py"), "--model", str(tmp_path / "model")]
    command += ["--data", str(data), "--ids", "1", "2", "--resolution", "32", "--steps", "2"]
    command += ["--weight_decay", "0.1", "--vgg_weights", str(vgg16_weights), "--out", str(tmp_path)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads((tmp_path / "art_workflow.json").read_text())
    assert list(report["results"]) == ["none", "adain", "adain+wd0.1", "adain+learned"]
    assert report["results"]["none"]["mean_abs_increment"] == 0
    assert all(r["seconds_per_image"] > 0 and r["reconstruction_l1"] > 0 for r in report["results"].values())
    assert "| adain+learned |" in result.stdout

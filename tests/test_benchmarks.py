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


@pytest.mark.slow
def test_gan_benchmark_grid_reports_every_cell_and_skips_visibly(tmp_path):
    import json

    out = tmp_path / "report.json"
    command = [sys.executable, str(REPO / "benchmarks" / "bench_gan.py"), "--config", "tiny", "--sizes", "32", "64"]
    command += ["--batch-sizes", "1", "2", "--repeats", "1", "--warmup", "0", "--no-training", "--device", "auto"]
    command += ["--max-seconds", "1e-9", "--out", str(out)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(out.read_text())
    cells = {(r["pipeline"], r["size"], r["batch"]): r for r in report["grid"]}
    assert set(cells) == {(p, s, b) for p in ("paintstorch", "stenciltorch") for s in (32, 64) for b in (1, 2)}
    for pipeline in ("paintstorch", "stenciltorch"):
        measured = cells[(pipeline, 32, 1)]  # the first cell has no prediction: always measured
        assert measured["images_per_s"] > 0 and measured["ratio"] > 0 and measured["reference_ms_per_image"] > 0
        assert "peak_mb" in measured and measured["generator_params_m"] > 0
        assert "> --max-seconds" in cells[(pipeline, 64, 2)]["skipped"]  # predicted slower than 1e-9 s: skipped
    assert report["machine"]["cpu"] and report["memory_method"] and "skipped" in result.stdout
    tables = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "make_tables.py"), str(out)], capture_output=True, text=True
    )
    assert tables.returncode == 0, tables.stderr[-3000:]
    assert "| paintstorch | 32² | 1 |" in tables.stdout and "| stenciltorch | 64² | 2 | skipped (" in tables.stdout


@pytest.mark.slow
def test_stablepaint_benchmark_grid_and_training(tmp_path):
    import json

    out = tmp_path / "sp.json"
    command = [sys.executable, str(REPO / "benchmarks" / "bench_stablepaint.py"), "--out", str(out)]
    command += ["--sizes", "32", "--batch-sizes", "1", "2", "--variants", "sdpa", "--training", "--steps", "2"]
    command += ["--repeats", "1", "--unet_channels", "8", "16", "--vae_channels", "8", "16"]
    command += ["--cross_attention_dim", "8", "--attention_head_dim", "2", "--threads", "1"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(out.read_text())
    rows = {(r["pipeline"], r["size"], r["batch"]) for r in report["results"]}
    assert rows == {(p, 32, b) for p in ("StablePaint", "ControlNet", "Inpaint") for b in (1, 2)}
    assert all(r["images_per_s"] > 0 and r["call_ms_per_image"] > 0 for r in report["results"])
    assert {(r["pipeline"], r["batch"]) for r in report["training"]} == rows_without_size(rows)
    assert all(r["images_per_s"] > 0 for r in report["training"])


def rows_without_size(rows):
    return {(pipeline, batch) for pipeline, _, batch in rows}


@pytest.mark.slow
def test_art_workflow_benchmark_grid(tmp_path):
    import json

    import torch

    from stablepaint import ArtWorkflowGenerationModel, ArtWorkflowInferenceModel, ArtWorkflowPipeline

    torch.manual_seed(0)
    generation = ArtWorkflowGenerationModel(
        latent_dim=4, base_channels=4, num_res_blocks=1, mlp_dim=8, encoder_channels=4, encoder_blocks=1
    )
    pipe = ArtWorkflowPipeline(
        artwork_generation=generation, workflow_inference=ArtWorkflowInferenceModel(base_channels=4, num_downs=3)
    )
    pipe.save_pretrained(tmp_path / "model")
    out = tmp_path / "grid.json"
    command = [sys.executable, str(REPO / "benchmarks" / "bench_art_workflow.py"), "--grid", "--model"]
    command += [str(tmp_path / "model"), "--sizes", "32", "--batch-sizes", "1", "2", "--repeats", "1"]
    command += ["--train-resolution", "64", "--train-batch-size", "2", "--out", str(out)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(out.read_text())
    assert [(r["size"], r["batch"]) for r in report["grid"]] == [(32, 1), (32, 2)]
    assert all(r["images_per_s"] > 0 and r["ratio"] > 0 for r in report["grid"])
    assert report["training"]["images_per_s"] > 0 and report["training"]["reference_images_per_s"] > 0


def test_split_by_strokes_divides_multicolor_regions_only():
    import numpy as np

    sys.path.insert(0, str(REPO / "benchmarks"))
    from eval_flats_tradeoffs import split_by_strokes

    lineart = np.ones((16, 32), np.float32)
    lineart[:, 16] = 0  # two regions: columns 0-15 and 17-31
    hints = np.zeros((16, 32, 4), np.uint8)
    hints[8, 1:3] = (255, 0, 0, 255)  # region 1: a red and a blue stroke at its two ends
    hints[8, 13:15] = (0, 0, 255, 255)
    hints[2, 20:30] = (0, 255, 0, 255)  # region 2: one green stroke
    image = np.full((16, 32, 3), 0.5, np.float32)
    split = split_by_strokes(image, lineart, hints)
    np.testing.assert_array_equal(split[:, :7], np.broadcast_to([1.0, 0.0, 0.0], (16, 7, 3)))  # nearer the red
    np.testing.assert_array_equal(split[:, 9:16], np.broadcast_to([0.0, 0.0, 1.0], (16, 7, 3)))  # nearer the blue
    np.testing.assert_array_equal(split[:, 16:], image[:, 16:])  # the line and the one-color region are left alone
    np.testing.assert_array_equal(image, 0.5)  # the input is not modified


def test_clip_strokes_keeps_only_pixels_of_the_stroke_color():
    import torch

    sys.path.insert(0, str(REPO / "benchmarks"))
    from eval_flats_clean_strokes import clip_strokes

    targets = torch.zeros(1, 3, 4, 8)
    targets[:, 0, :, :4] = 1.0  # left half red, right half black
    hints = torch.zeros(1, 4, 4, 8)
    hints[:, 0, 1, 1:7] = 1.0  # one red stroke across both halves
    hints[:, 3, 1, 1:7] = 1.0
    clipped = clip_strokes(hints, targets)
    assert clipped[0, 3, 1].tolist() == [0, 1, 1, 1, 0, 0, 0, 0]  # only over the red half
    torch.testing.assert_close(clipped[:, :3], hints[:, :3])  # colors untouched
    assert hints[0, 3].sum() == 6  # the input is not modified


def test_eval_splits_candidate_calls_are_those_each_pipeline_takes():
    """`--choose-default` compares only calls a pipeline can make: `hint_regions` for in-painting networks,
    `flatten_regions` for the others, `flats` with a flats model; each on top of the raw network's options."""
    import torch
    from test_art_workflow import get_dummy_components as workflow_components
    from test_paintstorch_pipeline import get_dummy_components

    from stablepaint import ArtWorkflowPipeline, PaintsTorchPipeline, RegionColorizer, StencilTorchPipeline

    sys.path.insert(0, str(REPO / "benchmarks"))
    from eval_splits import candidate_calls, first

    torch.manual_seed(0)
    flats = RegionColorizer(hidden_size=16, num_layers=1, num_heads=2, mlp_ratio=2)
    stencil = StencilTorchPipeline(
        **get_dummy_components(StencilTorchPipeline, features=False), region_colorizer=flats
    )
    paints = PaintsTorchPipeline(**get_dummy_components(PaintsTorchPipeline, features=False))
    workflow = ArtWorkflowPipeline(**workflow_components(), region_colorizer=flats)
    raw = {"hint_regions": False, "flats": False, "flatten_regions": False}
    assert candidate_calls(stencil) == {
        "raw network": raw,
        "hint_regions": {**raw, "hint_regions": True},
        "flats, shaded by the raw network": {**raw, "flats": True},
        "flats, shaded by hint_regions": {**raw, "hint_regions": True, "flats": True},
    }
    assert candidate_calls(paints) == {
        "raw network": raw,
        "flatten_regions": {**raw, "flatten_regions": True},
    }
    workflow_raw = {"flats": False, "flatten_regions": False}
    assert candidate_calls(workflow) == {
        "raw network": workflow_raw,
        "flatten_regions": {**workflow_raw, "flatten_regions": True},
        "flats, shaded by the raw network": {**workflow_raw, "flats": True},
    }
    # `--raw-limit`: the first samples of a split and their flat-fill metrics, sliced alike
    data = {"samples": list("abcd"), "targets": torch.arange(4), "lines": torch.arange(4) * 2}
    data["hints"] = {"none": torch.zeros(4, 4), "hints": torch.arange(4)}
    flat = {"none": {"region": torch.arange(4) * 3}, "hints": {"region": torch.arange(4), "hint": torch.arange(4)}}
    part, part_flat = first(data, flat, 2)
    assert (
        part["samples"] == ["a", "b"]
        and part["lines"].tolist() == [0, 2]
        and part["hints"]["hints"].tolist() == [0, 1]
    )
    assert part_flat["none"]["region"].tolist() == [0, 3] and len(part_flat["hints"]["hint"]) == 2


def test_eval_shading_chooses_the_lowest_mean_fid_above_zero_and_refuses_pipelines_without_flats(tmp_path):
    sys.path.insert(0, str(REPO / "benchmarks"))
    from eval_shading import choose, main

    def rows(fids):
        return {label: {"fid": fid, "region": 1.0, "hint": 1.0, "lines": 1.0} for label, fid in fids.items()}

    # 0 (the flats alone) and the flat fill are never chosen, however low their FID; the mean over the datasets decides
    table = {
        "adventurer": rows({"flat fill": 10.0, "0": 50.0, "0.05": 150.0, "0.1": 120.0, "0.15": 190.0}),
        "openmoji": rows({"flat fill": 10.0, "0": 50.0, "0.05": 160.0, "0.1": 200.0, "0.15": 150.0}),
    }
    assert choose(table) == 0.05  # means 155, 160, 170
    table["openmoji"]["0.1"]["fid"] = 170.0
    assert choose(table) == 0.1  # means 155, 145, 170
    with pytest.raises(SystemExit):
        main(["--model", "flat-fill", "--limit", "1", "--out", str(tmp_path / "shading.json")])
    with pytest.raises(SystemExit):
        main(["--strengths", "0.1,2", "--limit", "1", "--out", str(tmp_path / "shading.json")])

"""Workflow training data and `train/train_art_workflow.py` smoke runs (2 CPU processes, checkpoints, resume)."""

from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import REPO, draw_illustration, load_script
from PIL import Image

from stablepaint import ArtWorkflowPipeline
from stablepaint.data import INDEX_COLUMN
from stablepaint.data.workflow import WorkflowStagesTransform, find_staged_images, load_workflow_dataset

SCRIPT = REPO / "train" / "train_art_workflow.py"
TINY = [
    "--resolution", "32", "--train_batch_size", "2", "--latent_dim", "4", "--base_channels", "4",
    "--num_res_blocks", "1", "--mlp_dim", "8", "--encoder_channels", "4", "--encoder_blocks", "1",
    "--inference_channels", "4", "--inference_downs", "3", "--discriminator_channels", "4",
    "--discriminator_layers", "2", "--report_to", "none", "--validation_steps", "0", "--seed", "0",
]  # fmt: skip


def test_synthesized_stages_from_pairs(pairs_folder):
    dataset = load_workflow_dataset(pairs_folder, exclude_ids=["item2"])
    assert len(dataset) == 2 and set(dataset.column_names) == {"image", "lineart", INDEX_COLUMN}
    transform = WorkflowStagesTransform(resolution=32, seed=0)
    rows = dataset.with_transform(transform)[:2]
    assert [tuple(rows[name][0].shape) for name in ("sketch", "flat", "final")] == [
        (1, 32, 32),
        (3, 32, 32),
        (3, 32, 32),
    ]
    for name in ("sketch", "flat", "final"):
        assert rows[name][0].min() >= -1 and rows[name][0].max() <= 1
    # The flat stage (SLIC medians + median filter) is a simplification of the final one, close but not equal
    flat, final = rows["flat"][0], rows["final"][0]
    assert 0 < (flat - final).abs().mean() < 0.5
    again = dataset.with_transform(WorkflowStagesTransform(resolution=32, seed=0))[:2]
    assert all(torch.equal(a, b) for a, b in zip(rows["flat"], again["flat"]))


def test_transform_is_deterministic_per_seed_and_epoch(illustration_folder):
    dataset = load_workflow_dataset(illustration_folder)
    a = dataset.with_transform(WorkflowStagesTransform(resolution=32, seed=3))[0]
    b = dataset.with_transform(WorkflowStagesTransform(resolution=32, seed=3))[0]
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert a["sketch"].shape == (1, 32, 32)


def test_real_staged_folder_with_four_stages(tmp_path):
    names = ("sketch", "normal", "coloring", "lighting")
    for i in range(3):
        base = draw_illustration(40, seed=i)
        for name in names:
            image = base.convert("L") if name == "sketch" else base
            image.save(tmp_path / f"chair{i}_{name}.png")
    Image.new("RGB", (40, 40)).save(tmp_path / "chair9_sketch.png")  # incomplete group: ignored
    assert len(find_staged_images(tmp_path, names)) == 3
    dataset = load_workflow_dataset(tmp_path, stage_names=names, exclude_ids=["chair1_"])
    assert len(dataset) == 2
    transform = WorkflowStagesTransform(stage_names=names, stage_channels=(1, 3, 3, 3), resolution=32, train=False)
    row = dataset.with_transform(transform)[0]
    assert [tuple(row[n].shape) for n in names] == [(1, 32, 32)] + [(3, 32, 32)] * 3
    with pytest.raises(ValueError, match="stage"):
        load_workflow_dataset(tmp_path, stage_names=("a", "b"))


def test_transform_rejects_bad_config():
    with pytest.raises(ValueError, match="stage_channels"):
        WorkflowStagesTransform(stage_channels=(1, 3))
    with pytest.raises(ValueError, match="stage_channels"):
        WorkflowStagesTransform(stage_channels=(1, 4, 3))


@pytest.fixture
def train_folder(tmp_path) -> Path:
    folder = tmp_path / "data"
    folder.mkdir()
    for i in range(4):
        color = draw_illustration(48, seed=20 + i)
        color.save(folder / f"img{i}_color.png")
        Image.fromarray(np.asarray(color.convert("L")) // 128 * 255).save(folder / f"img{i}_line.png")
    return folder


def _check(result):
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-6000:]
    return result.stdout + result.stderr


def _run_phase(run_accelerate, folder, output, phase, steps, extra=(), resume=False):
    args = ["--train_data_dir", folder, "--output_dir", output, "--phase", phase, "--max_train_steps", steps]
    args += ["--checkpointing_steps", "2", "--checkpoints_total_limit", "2", "--separate_steps", "2", *TINY, *extra]
    if resume:
        args += ["--resume_from_checkpoint", "latest"]
    return _check(run_accelerate(SCRIPT, args, num_processes=2))


@pytest.mark.slow
def test_training_all_phase_two_processes_with_resume(run_accelerate, train_folder, tmp_path):
    output = tmp_path / "all"
    _run_phase(run_accelerate, train_folder, output, "all", 2, ["--exclude_ids", "img3_"])
    assert sorted(p.name for p in output.glob("checkpoint-*")) == ["checkpoint-2"]
    log = _run_phase(run_accelerate, train_folder, output, "all", 4, ["--exclude_ids", "img3_"], resume=True)
    assert "Resuming from" in log and "checkpoint-2" in log
    assert sorted(p.name for p in output.glob("checkpoint-*")) == ["checkpoint-2", "checkpoint-4"]
    pipe = ArtWorkflowPipeline.from_pretrained(output)
    assert pipe.regularizer is None and pipe.num_stages == 3
    assert pipe.artwork_generation.config.sample_size == 32  # --resolution: the pipeline's default working scale
    assert (output / "discriminators" / "config.json").is_file()
    card = (output / "README.md").read_text()
    assert "library_name: diffusers" in card and "CC BY 4.0" in card
    # the last checkpoint read back as a pipeline (checkpoint selection and export) is the exported one
    from stablepaint.training.workflow import art_workflow_from_checkpoint

    loaded = art_workflow_from_checkpoint(output / "checkpoint-4")
    for name in ("artwork_generation", "workflow_inference"):
        reference = getattr(pipe, name).state_dict()
        assert all(torch.equal(value, reference[key]) for key, value in getattr(loaded, name).state_dict().items())
    assert not loaded.artwork_generation.training


@pytest.mark.slow
def test_eval_splits_scores_workflow_checkpoints_and_chooses_their_default(run_accelerate, train_folder, tmp_path):
    """`benchmarks/eval_splits.py --family art_workflow`: a workflow run's checkpoints scored on the validation split
    (raw network: hints steer it through the AdaIN optimization), and the default call chosen among those it takes."""
    import json
    import subprocess
    import sys

    if not (REPO.parent / "shared" / "data" / "openmoji").is_dir():
        pytest.skip("../shared/data is not beside the checkout")
    from stablepaint import FlatsPipeline, RegionColorizer

    output = tmp_path / "all"
    _run_phase(run_accelerate, train_folder, output, "all", 2)
    torch.manual_seed(0)
    FlatsPipeline(RegionColorizer(hidden_size=16, num_layers=1, num_heads=2, mlp_ratio=2)).save_pretrained(
        tmp_path / "flats"
    )
    command = [sys.executable, str(REPO / "benchmarks" / "eval_splits.py"), "--run", str(output), "--family"]
    command += ["art_workflow", "--split", "validation", "--limit", "1", "--threads", "1", "--out", str(tmp_path)]
    _check(subprocess.run([*command, "--name", "chosen.json"], capture_output=True, text=True, timeout=900, cwd=REPO))
    report = json.loads((tmp_path / "chosen.json").read_text())
    assert sorted(report["checkpoints"]) == ["checkpoint-2"] and report["chosen"] == "checkpoint-2"
    default = [*command, "--name", "default.json", "--checkpoint", "checkpoint-2", "--choose-default"]
    _check(subprocess.run([*default, "--flats-model", str(tmp_path / "flats")], capture_output=True, text=True,
                          timeout=900, cwd=REPO))  # fmt: skip
    report = json.loads((tmp_path / "default.json").read_text())
    calls = ["raw network", "flatten_regions", "flats, shaded by the raw network"]  # no in-painting: no hint_regions
    for name in ("adventurer", "openmoji"):
        assert sorted(report[name]["hints"]) == sorted(["flat fill", *calls])
        assert report[name]["hints"]["flats, shaded by the raw network"]["lines"] >= 0.99  # the flats' lines
    assert report["chosen_default"] in calls


def _tiny_pipeline(folder):
    """A tiny random pipeline saved with `save_pretrained`, with the sizes of `TINY` (the generation and
    regularization phases start from a trained pipeline; here any saved one will do)."""
    from stablepaint import ArtWorkflowGenerationModel, ArtWorkflowInferenceModel

    torch.manual_seed(0)
    generation = ArtWorkflowGenerationModel(
        latent_dim=4, base_channels=4, num_res_blocks=1, mlp_dim=8, encoder_channels=4, encoder_blocks=1
    )
    inference = ArtWorkflowInferenceModel(base_channels=4, num_downs=3)
    ArtWorkflowPipeline(artwork_generation=generation, workflow_inference=inference).save_pretrained(folder)
    return folder


@pytest.mark.slow
def test_training_inference_phase_two_processes_with_resume(run_accelerate, train_folder, tmp_path):
    output = tmp_path / "inference"
    _run_phase(run_accelerate, train_folder, output, "inference", 2)
    before = ArtWorkflowPipeline.from_pretrained(output)
    log = _run_phase(run_accelerate, train_folder, output, "inference", 3, resume=True)
    assert "Resuming from" in log
    after = ArtWorkflowPipeline.from_pretrained(output)
    # Eq. 5 trains the inference nets only; the generators keep their initialization
    assert any(
        not torch.equal(a, b)
        for a, b in zip(after.workflow_inference.parameters(), before.workflow_inference.parameters())
    )
    for a, b in zip(after.artwork_generation.parameters(), before.artwork_generation.parameters()):
        assert torch.equal(a, b)


@pytest.mark.slow
def test_training_generation_phase_two_processes_with_resume(run_accelerate, train_folder, tmp_path):
    base = _tiny_pipeline(tmp_path / "base")
    output = tmp_path / "generation"
    pretrained = ["--pretrained_model_name_or_path", base]
    _run_phase(run_accelerate, train_folder, output, "generation", 2, pretrained)
    log = _run_phase(run_accelerate, train_folder, output, "generation", 3, pretrained, resume=True)
    assert "Resuming from" in log
    trained, before = ArtWorkflowPipeline.from_pretrained(output), ArtWorkflowPipeline.from_pretrained(base)
    # The inference nets are frozen in the generation phase (they only carry the cycle loss); the generators train
    from stablepaint.training.workflow import art_workflow_from_checkpoint

    checkpoint = art_workflow_from_checkpoint(output / "checkpoint-2")  # its model.safetensors: the generators
    for pipe in (trained, checkpoint):
        for a, b in zip(pipe.workflow_inference.parameters(), before.workflow_inference.parameters()):
            assert torch.equal(a, b)
        assert any(
            not torch.equal(a, b)
            for a, b in zip(pipe.artwork_generation.parameters(), before.artwork_generation.parameters())
        )


@pytest.mark.slow
def test_training_regularization_phase_two_processes_with_resume(
    run_accelerate, train_folder, tmp_path, vgg16_weights
):
    base = _tiny_pipeline(tmp_path / "base")
    output = tmp_path / "reg"
    reg = [
        "--pretrained_model_name_or_path", base, "--reg_inner_steps", "2",
        "--vgg_weights", vgg16_weights, "--reg_lambda_vgg", "1.0",
    ]  # fmt: skip
    _run_phase(run_accelerate, train_folder, output, "regularization", 2, reg)
    log = _run_phase(run_accelerate, train_folder, output, "regularization", 3, reg, resume=True)
    assert "Resuming from" in log
    pipe = ArtWorkflowPipeline.from_pretrained(output)
    assert pipe.regularizer is not None
    init = torch.full_like(pipe.regularizer.hyperparameters[0], 0.1)
    assert not torch.equal(pipe.regularizer.hyperparameters[0], init)  # Algorithm 2 moved the hyper-parameters
    pipe.set_progress_bar_config(disable=True)
    state = pipe.invert(draw_illustration(32), optimize_steps=2, perceptual_weight=0)
    assert len(state.stages) == 3


def test_bad_flags_raise(train_folder):
    module = load_script(SCRIPT)
    with pytest.raises(ValueError, match="pretrained_model_name_or_path"):
        module.parse_args(["--train_data_dir", str(train_folder), "--phase", "generation"])
    with pytest.raises(ValueError, match="stage_names"):
        module.parse_args(["--train_data_dir", str(train_folder), "--stage_channels", "1", "3"])
    with pytest.raises(ValueError, match="train_batch_size"):
        module.parse_args(["--train_data_dir", str(train_folder), "--train_batch_size", "1"])
    # Shared flags the script does not implement are refused, not silently ignored (accumulation would have divided
    # every loss by N while still stepping on every batch, and shifted the batches a resumed run skips).
    with pytest.raises(ValueError, match="gradient_accumulation_steps"):
        module.parse_args(["--train_data_dir", str(train_folder), "--gradient_accumulation_steps", "2"])
    with pytest.raises(ValueError, match="use_ema"):
        module.parse_args(["--train_data_dir", str(train_folder), "--use_ema"])

import argparse
from pathlib import Path

import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from stablepaint.data import SynthesisConfig
from stablepaint.training.records import save_model_card
from stablepaint.training.utils import (
    _to_pil_list,
    add_training_args,
    batch_to_pipeline_inputs,
    check_training_args,
    list_checkpoints,
    load_training_dataset,
    resume_from_checkpoint,
    validation_grid,
)

SCRIPT = Path(__file__).resolve().parent / "scripts" / "train_tiny.py"
STALL = Path(__file__).resolve().parent / "scripts" / "stall_before_second_checkpoint.py"


def kill_after_first_checkpoint(run_accelerate, script, args, num_processes=2, timeout=600):
    """Run a training `script` with `args` until it has saved its first checkpoint and trained on, up to its second
    one; SIGKILL its processes from here before they save it, and return the launcher's `CompletedProcess`."""
    import os
    import signal
    import tempfile
    import threading
    import time

    with tempfile.TemporaryDirectory() as stall_dir:
        result = {}

        def launch():
            env = {"STALL_DIR": stall_dir}
            result["run"] = run_accelerate(STALL, [script, *args], num_processes=num_processes, env=env)

        thread = threading.Thread(target=launch)
        thread.start()
        deadline = time.monotonic() + timeout
        while len(stalled := list(Path(stall_dir).glob("stalled-*"))) < num_processes:
            if not thread.is_alive():
                run = result["run"]
                pytest.fail(f"the run ended before its second checkpoint:\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}")
            if time.monotonic() > deadline:
                pytest.fail("the run did not reach its second checkpoint in time")
            time.sleep(0.2)
        for marker in stalled:
            os.kill(int(marker.name.split("-")[1]), signal.SIGKILL)
        thread.join(timeout)
    return result["run"]


def parse(*flags):
    args = add_training_args(argparse.ArgumentParser()).parse_args(list(flags))
    check_training_args(args)
    return args


def test_defaults_follow_the_thesis_optimizer():
    args = parse("--train_data_dir", "x")
    assert (args.learning_rate, args.adam_beta1, args.adam_beta2) == (1e-4, 0.5, 0.9)
    assert args.resolution == 512


@pytest.mark.parametrize(
    "flags, message",
    [
        ((), "--train_data_dir"),
        (("--train_data_dir", "a", "--dataset_name", "b"), "only one"),
        (("--train_data_dir", "a", "--train_batch_size", "0"), "--train_batch_size"),
        (("--train_data_dir", "a", "--checkpoints_total_limit", "0"), "--checkpoints_total_limit"),
        (("--train_data_dir", "a", "--max_train_steps", "0"), "--max_train_steps"),
    ],
)
def test_bad_flags_are_named(flags, message):
    with pytest.raises(ValueError, match=message):
        parse(*flags)


def test_list_checkpoints_sorts_numerically_and_ignores_partial_saves(tmp_path):
    for name in ("checkpoint-10", "checkpoint-9", ".checkpoint-11.tmp", "checkpoint-x", "logs"):
        (tmp_path / name).mkdir()
    assert [p.name for p in list_checkpoints(tmp_path)] == ["checkpoint-9", "checkpoint-10"]
    assert list_checkpoints(tmp_path / "missing") == []


def test_resume_without_checkpoint_starts_fresh(tmp_path):
    class FakeAccelerator:
        def print(self, *args):
            pass

    args = parse("--train_data_dir", "x", "--output_dir", str(tmp_path), "--resume_from_checkpoint", "latest")
    assert resume_from_checkpoint(FakeAccelerator(), args, 10) == (0, 0, 0)
    args.resume_from_checkpoint = str(tmp_path / "not-a-checkpoint")
    with pytest.raises(ValueError, match="resume_from_checkpoint"):
        resume_from_checkpoint(FakeAccelerator(), args, 10)


def test_exclude_ids_drops_held_out_files(illustration_folder):
    args = parse("--train_data_dir", str(illustration_folder), "--exclude_ids", "drawing_1")
    dataset, _ = load_training_dataset(args, SynthesisConfig(resolution=32, segmentation="slic"))
    assert len(dataset) == 2
    args = parse("--train_data_dir", str(illustration_folder), "--exclude_ids", "drawing_")
    with pytest.raises(ValueError, match="no training illustration"):
        load_training_dataset(args, SynthesisConfig(resolution=32))


def _named_pairs(folder: Path, ids) -> Path:
    from conftest import draw_illustration

    folder.mkdir()
    for index, sample_id in enumerate(ids):
        color = draw_illustration(32, seed=index)
        color.save(folder / f"{sample_id}_color.png")
        color.convert("L").save(folder / f"{sample_id}_line.png")
    return folder


def test_several_folders_train_together_and_split_keeps_the_documented_split_only(tmp_path):
    from stablepaint.data.selection import row_names
    from stablepaint.training.records import data_attribution, data_source_name

    adventurer = _named_pairs(tmp_path / "adventurer", [f"dicebear_adventurer_{n}" for n in (5, 2350, 2450, 7)])
    openmoji = _named_pairs(tmp_path / "openmoji", ["openmoji_1F005", "openmoji_1F004", "openmoji_1F600"])
    (openmoji / "ATTRIBUTION.txt").write_text("OpenMoji, CC BY-SA 4.0")
    both = ("--train_data_dir", str(adventurer), str(openmoji))
    dataset, _ = load_training_dataset(parse(*both), SynthesisConfig(resolution=32))
    assert len(dataset) == 7  # every pair of both folders
    dataset, _ = load_training_dataset(parse(*both, "--split", "train"), SynthesisConfig(resolution=32))
    names = sorted(row_names(dataset.with_format(None)))  # without the transform that makes the training rows
    # 2350 is validation, 2450 test; 1F004 is in OpenMoji's validation bucket and 1F600 a README example (test)
    assert names == ["dicebear_adventurer_5_color.png", "dicebear_adventurer_7_color.png", "openmoji_1F005_color.png"]
    assert dataset[0]["image"].shape[-2:] == (32, 32)  # rows are still made by the transform
    dataset, _ = load_training_dataset(parse(*both, "--split", "test"), SynthesisConfig(resolution=32))
    assert sorted(row_names(dataset.with_format(None))) == [
        "dicebear_adventurer_2450_color.png",
        "openmoji_1F600_color.png",
    ]
    args = parse(*both, "--split", "validation", "--exclude_ids", "2350", "1F004")
    with pytest.raises(ValueError, match="no training illustration left"):
        load_training_dataset(args, SynthesisConfig(resolution=32))
    assert data_source_name(args) == f"{adventurer}, {openmoji}"
    assert data_attribution(args, missing="none found") == "OpenMoji, CC BY-SA 4.0"  # the folder that has one
    with pytest.raises(SystemExit):
        parse(*both, "--split", "holdout")


def test_validation_grid_lays_out_tensors_and_images():
    hints = torch.zeros(2, 4, 8, 8)
    hints[:, 0, :4], hints[:, 1:3, :4] = 1.0, -1.0  # a red stroke on the top half (RGB in [-1, 1])
    hints[:, 3, :4] = 1.0
    tiles = _to_pil_list(hints)
    assert tiles[0].getpixel((0, 0)) == (255, 0, 0) and tiles[0].getpixel((0, 7)) == (255, 255, 255)
    lineart = -torch.ones(2, 1, 32, 32)
    grid = validation_grid(
        {"lineart": lineart, "hints": hints, "target": [Image.new("RGB", (32, 32), "blue")] * 2}, cell=32
    )
    assert grid.size == (3 * 32 + 4 * 2, 14 + 2 * 32 + 3 * 2)
    assert grid.getpixel((2 + 16, 14 + 2 + 16)) == (0, 0, 0)  # black lineart tile


def test_model_card_renders_front_matter_and_fields(tmp_path):
    template = tmp_path / "card.md"
    template.write_text("---\n{{ card_data }}\n---\n# {{ title }}\nversion {{ stablepaint_version }}\n")
    card = save_model_card(tmp_path, str(template), {"license": "apache-2.0", "tags": ["lineart"]}, title="Tiny")
    text = (tmp_path / "README.md").read_text()
    assert "library_name: diffusers" in text and "license: apache-2.0" in text and "# Tiny" in text
    assert card.data.tags == ["lineart"]


@pytest.mark.slow
def test_two_process_run_killed_after_a_checkpoint_resumes_to_identical_weights(
    tmp_path, illustration_folder, run_accelerate
):
    common = ["--train_data_dir", illustration_folder, "--resolution", "32", "--train_batch_size", "1"]
    common += ["--max_train_steps", "4", "--checkpointing_steps", "2", "--report_to", "none", "--segmentation", "slic"]

    straight = run_accelerate(
        SCRIPT, common + ["--output_dir", tmp_path / "straight", "--checkpoints_total_limit", "1"]
    )
    assert straight.returncode == 0, straight.stderr[-3000:]
    assert [p.name for p in list_checkpoints(tmp_path / "straight")] == ["checkpoint-4"]  # rotation kept the newest

    killed = kill_after_first_checkpoint(run_accelerate, SCRIPT, common + ["--output_dir", tmp_path / "resumed"])
    assert killed.returncode != 0
    assert [p.name for p in list_checkpoints(tmp_path / "resumed")] == ["checkpoint-2"]
    assert not (tmp_path / "resumed" / "final.safetensors").exists()

    resumed = run_accelerate(
        SCRIPT, common + ["--output_dir", tmp_path / "resumed", "--resume_from_checkpoint", "latest"]
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "step 2" in resumed.stdout + resumed.stderr

    a = load_file(tmp_path / "straight" / "final.safetensors")
    b = load_file(tmp_path / "resumed" / "final.safetensors")
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0)


def test_batch_to_pipeline_inputs_undoes_the_training_normalization():
    hints = torch.zeros(3, 4, 4, 4)
    hints[:, 0, :2], hints[:, 1:3, :2], hints[:, 3, :2] = 1.0, -1.0, 1.0  # red strokes on the top half
    batch = {"lineart": -torch.ones(3, 1, 8, 8), "hints": hints, "mask": torch.ones(3, 1, 8, 8)}
    inputs = batch_to_pipeline_inputs(batch, ("lineart", "hints", "mask"), count=2)
    assert [tuple(v.shape[:2]) for v in inputs.values()] == [(2, 1), (2, 4), (2, 1)]
    assert inputs["lineart"].eq(0).all() and inputs["mask"].eq(1).all()
    assert inputs["hints"][0, :, 0, 0].tolist() == [1.0, 0.0, 0.0, 1.0]  # red, opaque
    assert inputs["hints"][0, :, 3, 0].tolist() == [0.0, 0.0, 0.0, 0.0]  # no stroke: transparent

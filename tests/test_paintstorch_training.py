"""train/train_paintstorch.py and train/train_stenciltorch.py: 2 CPU processes (gloo), checkpoints, exact resume,
validation grids, the exported pipeline and its model card."""

import argparse
import json
from pathlib import Path

import numpy as np
import pytest
from conftest import load_script
from safetensors.torch import load_file

from stablepaint.training.gan import GANTask, add_gan_args, load_json_arg
from stablepaint.training.records import write_gan_model_card as write_model_card

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = {name: REPO / "train" / f"train_{name}.py" for name in ("paintstorch", "stenciltorch")}
TINY = json.dumps(
    {
        "block_out_channels": [4, 8, 8, 16, 16],
        "mid_block_layers": 1,
        "mid_cardinality": 2,
        "up_block_dilations": [[1, 2], [1], [2]],
        "up_block_cardinality": [2, 2, 2],
    }
)
TINY_CRITIC = json.dumps(
    {"block_out_channels": [4, 8, 8], "head_channels": 8, "head_downsamples": 1, "cardinality": 2}
)
TINY_VIT = json.dumps(
    {
        "model_type": "vit",
        "hidden_size": 8,
        "num_hidden_layers": 1,
        "num_attention_heads": 2,
        "intermediate_size": 16,
        "image_size": 32,
        "patch_size": 8,
    }
)
# StencilTorch also runs bf16 autocast with gradient accumulation; PaintsTorch fp32 with F1 and EMA.
EXTRA = {
    "paintstorch": ["--feature_extractor_config", TINY_VIT, "--use_ema"],
    "stenciltorch": ["--mixed_precision", "bf16", "--gradient_accumulation_steps", "2"],
}


def flags(name, data, output_dir, *more):
    return [
        "--train_data_dir",
        data,
        "--output_dir",
        output_dir,
        "--resolution",
        "32",
        "--train_batch_size",
        "1",
        "--segmentation",
        "slic",
        "--colorizer_config",
        TINY,
        "--critic_config",
        TINY_CRITIC,
        "--vgg_weights",
        str(REPO.parent / "shared" / "weights" / "vgg16_features.safetensors"),
        "--seed",
        "3",
        *EXTRA[name],
        *more,
    ]


def check(result):
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-6000:]
    return result


def weights(folder):
    return load_file(str(Path(folder) / "colorizer" / "diffusion_pytorch_model.safetensors"))


@pytest.mark.slow
@pytest.mark.parametrize("name", ["paintstorch", "stenciltorch"])
def test_two_processes_checkpoint_then_resume_identically(name, run_accelerate, pairs_folder, vgg16_weights, tmp_path):
    import shutil

    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    # 4 steps with a checkpoint every step, keeping the last 2; validation grid at step 2.
    check(
        run_accelerate(
            SCRIPTS[name],
            flags(name, pairs_folder, straight, "--max_train_steps", "4", "--checkpointing_steps", "1")
            + ["--checkpoints_total_limit", "2", "--validation_steps", "2"],
        )
    )
    assert sorted(p.name for p in straight.glob("checkpoint-*")) == ["checkpoint-3", "checkpoint-4"]
    # Weights only as safetensors: the EMA too (accelerate's RNG states are the only pickles).
    assert (straight / "checkpoint-4" / "ema.safetensors").is_file() == ("--use_ema" in EXTRA[name])
    assert [p.name for p in straight.rglob("*.pkl") if not p.name.startswith("random_states")] == []
    events = list((straight / "logs").rglob("events.out.tfevents.*"))
    assert events and any(b"validation" in p.read_bytes() for p in events)

    # A run killed right after its step-3 checkpoint (mid-epoch) leaves exactly that folder: resume from `latest`.
    resumed.mkdir()
    shutil.copytree(straight / "checkpoint-3", resumed / "checkpoint-3")
    result = check(
        run_accelerate(
            SCRIPTS[name],
            flags(name, pairs_folder, resumed, "--max_train_steps", "4", "--resume_from_checkpoint", "latest")
            + ["--report_to", "none", "--validation_steps", "0", "--checkpointing_steps", "2"],
        )
    )
    assert "Resuming from" in result.stdout + result.stderr and "step 3" in result.stdout + result.stderr
    assert sorted(p.name for p in resumed.glob("checkpoint-*")) == ["checkpoint-3", "checkpoint-4"]  # same counter
    final_straight, final_resumed = weights(straight), weights(resumed)
    assert final_straight.keys() == final_resumed.keys()
    for key in final_straight:
        assert (final_straight[key] == final_resumed[key]).all(), key
    for index in (1, 2):  # critic and auxiliary network, from the checkpoints
        a = load_file(str(straight / "checkpoint-4" / f"model_{index}.safetensors"))
        b = load_file(str(resumed / "checkpoint-4" / f"model_{index}.safetensors"))
        assert all((a[k] == b[k]).all() for k in a)

    # The exported pipeline loads and colors; the card is written.
    from stablepaint import PaintsTorchPipeline, StencilTorchPipeline

    pipeline_class = PaintsTorchPipeline if name == "paintstorch" else StencilTorchPipeline
    pipe = pipeline_class.from_pretrained(straight)
    lineart = np.full((32, 32), 255, np.uint8)
    assert np.asarray(pipe(lineart).images[0]).shape == (32, 32, 3)
    card = (straight / "README.md").read_text()
    assert "library_name: diffusers" in card and f"train_{name}.py" in card


def test_defaults_follow_the_thesis(tmp_path):
    parser = add_gan_args(argparse.ArgumentParser())
    args = parser.parse_args(["--train_data_dir", str(tmp_path)])
    assert (args.learning_rate, args.adam_beta1, args.adam_beta2) == (1e-4, 0.5, 0.9)
    assert (args.lambda_adv, args.lambda_gp, args.drift) == (1e-4, 10.0, 1e-3)
    assert args.lambda_l1 == args.lambda_hint == 0.0  # the pixel and stroke L1 terms are opt-in, not the thesis'
    assert args.resolution == 512
    with pytest.raises(ValueError, match="--colorizer_config"):
        load_json_arg("[1, 2]", "colorizer_config")
    with pytest.raises(ValueError, match="--critic_config"):
        load_json_arg("{not json", "critic_config")


def test_stenciltorch_guide_weight_is_exposed_and_lower_by_default():
    module = load_script(SCRIPTS["stenciltorch"])
    assert module.parse_args(["--train_data_dir", "x"]).auxiliary_weight == 0.1
    assert module.parse_args(["--train_data_dir", "x", "--auxiliary_weight", "0.5"]).auxiliary_weight == 0.5


def test_model_card_and_push_to_hub_send_the_rendered_card(tmp_path, monkeypatch):
    import huggingface_hub
    import torch

    from stablepaint import PaintsTorchGenerator, StencilTorchPipeline
    from stablepaint.training.utils import push_to_hub

    torch.manual_seed(0)
    colorizer = PaintsTorchGenerator(in_channels=5, feature_channels=0, **json.loads(TINY))
    StencilTorchPipeline(colorizer=colorizer).save_pretrained(tmp_path)
    (tmp_path / "checkpoint-12").mkdir()
    (tmp_path / "checkpoint-12" / "optimizer.bin").write_bytes(b"training state, not for the Hub")
    args = add_gan_args(argparse.ArgumentParser()).parse_args(
        ["--dataset_name", "someone/illustrations", "--output_dir", str(tmp_path), "--push_to_hub"]
        + ["--hub_model_id", "someone/stenciltorch-tiny", "--attribution", "Drawings by A. Artist, CC BY 4.0."]
    )
    task = GANTask("stenciltorch", StencilTorchPipeline, {"in_channels": 5}, "paintstorch_card.md", "guide_decoder")
    write_model_card(args, task, global_step=12)

    sent = {}

    def fake_create_repo(repo_id, **kwargs):
        return type("RepoUrl", (), {"repo_id": repo_id})()

    def fake_upload_folder(repo_id, folder_path, **kwargs):
        folder = Path(folder_path)
        sent.update(
            repo_id=repo_id, files=sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
        )
        sent["card"] = (folder / "README.md").read_text()

    monkeypatch.setattr(huggingface_hub, "create_repo", fake_create_repo)
    monkeypatch.setattr(huggingface_hub, "upload_folder", fake_upload_folder)
    push_to_hub(args, tmp_path)
    assert sent["repo_id"] == "someone/stenciltorch-tiny"
    expected_files = {"model_index.json", "pipeline.py", "README.md", "colorizer/config.json"}
    assert expected_files | {"stablepaint_standalone.py", "colorizer/modeling_stablepaint.py"} <= set(sent["files"])
    assert not any(name.startswith("checkpoint-") for name in sent["files"])
    card = sent["card"]
    for expected in (
        "library_name: diffusers",
        "license: apache-2.0",
        "- someone/illustrations",
        "stenciltorch",
        'StencilTorchPipeline.from_pretrained("someone/stenciltorch-tiny", trust_remote_code=True)',
        "Drawings by A. Artist, CC BY 4.0.",
        "L_guided",
        "## Limitations",
        "## Ethical considerations",
        "12 steps",
    ):
        assert expected in card, expected


def _saved_tiny_pipeline(folder, in_channels):
    import torch

    from stablepaint import PaintsTorchGenerator, PaintsTorchPipeline, StencilTorchPipeline

    torch.manual_seed(11)
    colorizer = PaintsTorchGenerator(in_channels=in_channels, feature_channels=0, **json.loads(TINY))
    pipeline_class = StencilTorchPipeline if in_channels == 5 else PaintsTorchPipeline
    pipeline_class(colorizer=colorizer).save_pretrained(folder)
    return folder


def test_pretrained_colorizer_is_loaded_and_wrong_families_are_named(tmp_path):
    import torch

    from stablepaint import PaintsTorchPipeline, StencilTorchPipeline
    from stablepaint.training.gan_weights import load_pretrained_colorizer

    stencil = GANTask("stenciltorch", StencilTorchPipeline, {"in_channels": 5}, "paintstorch_card.md", "guide_decoder")
    paints = GANTask(
        "paintstorch", PaintsTorchPipeline, {"in_channels": 1}, "paintstorch_card.md", "lineart_generator"
    )
    folder = _saved_tiny_pipeline(tmp_path / "stencil", in_channels=5)
    parse = add_gan_args(argparse.ArgumentParser()).parse_args

    colorizer, encoder = load_pretrained_colorizer(parse(["--pretrained_model_name_or_path", str(folder)]), stencil)
    assert encoder is None and colorizer.training
    assert all(p.requires_grad and p.dtype == torch.float32 for p in colorizer.parameters())
    saved = weights(folder)
    assert all(torch.equal(colorizer.state_dict()[k], saved[k]) for k in saved)

    with pytest.raises(ValueError, match="only one of `--pretrained_model_name_or_path`"):
        load_pretrained_colorizer(
            parse(["--pretrained_model_name_or_path", str(folder), "--colorizer_config", TINY]), stencil
        )
    with pytest.raises(ValueError, match="pretrained_model_name_or_path.*in_channels=1, got 5"):
        load_pretrained_colorizer(parse(["--pretrained_model_name_or_path", str(folder)]), paints)
    with pytest.raises(ValueError, match="pretrained_model_name_or_path"):
        load_pretrained_colorizer(parse(["--pretrained_model_name_or_path", str(tmp_path / "missing")]), stencil)


def test_paintstorch_training_accepts_a_stenciltorch_pipeline_converted(tmp_path):
    import torch

    from stablepaint.models import paintstorch_from_stenciltorch
    from stablepaint.training.gan_weights import load_pretrained_colorizer

    module = load_script(SCRIPTS["paintstorch"])
    folder = _saved_tiny_pipeline(tmp_path / "stencil", in_channels=5)
    args = add_gan_args(argparse.ArgumentParser()).parse_args(["--pretrained_model_name_or_path", str(folder)])
    colorizer, _ = load_pretrained_colorizer(args, module.TASK)
    assert colorizer.config.in_channels == 1 and colorizer.training
    assert all(p.requires_grad and p.dtype == torch.float32 for p in colorizer.parameters())
    from stablepaint import StencilTorchPipeline

    expected = paintstorch_from_stenciltorch(StencilTorchPipeline.from_pretrained(folder).colorizer).state_dict()
    assert all(torch.equal(colorizer.state_dict()[k], expected[k]) for k in expected)
    # the checkpoints of such a run are read back with the converted colorizer's config (it is not in the flags)
    from stablepaint.models import PaintsTorchGenerator
    from stablepaint.training.gan import checkpoint_colorizer_config

    config = checkpoint_colorizer_config(args, module.TASK)
    assert PaintsTorchGenerator(**config).state_dict().keys() == expected.keys()
    assert config["in_channels"] == 1 and config == {k: v for k, v in colorizer.config.items() if k[0] != "_"}


@pytest.mark.slow
def test_fine_tuning_starts_from_the_pretrained_colorizer(run_accelerate, pairs_folder, vgg16_weights, tmp_path):
    import torch

    folder = _saved_tiny_pipeline(tmp_path / "base", in_channels=5)
    base = weights(folder)
    runs = {}
    for learning_rate in ("0", "1e-3"):
        out = tmp_path / f"lr{learning_rate}"
        args = flags("stenciltorch", pairs_folder, out, "--max_train_steps", "2", "--report_to", "none")
        args = [a for a in args if a not in ("--colorizer_config", TINY)]  # the config comes from the base
        args += ["--pretrained_model_name_or_path", str(folder), "--learning_rate", learning_rate]
        if learning_rate != "0":
            # opt-in terms: they train and the card says so
            args += ["--lambda_l1", "2.5", "--lambda_hint", "4", "--lambda_region", "3"]
        check(run_accelerate(SCRIPTS["stenciltorch"], args, num_processes=1))
        runs[learning_rate] = weights(out)
        card = (out / "README.md").read_text()
        assert (
            ("λ_L1 = 2.5" in card) == ("λ_hint = 4.0" in card) == ("λ_region = 3.0" in card) == (learning_rate != "0")
        )
    assert runs["0"].keys() == base.keys()
    assert all(torch.equal(runs["0"][k], base[k]) for k in base)  # lr 0: exactly the pretrained weights
    assert any(not torch.equal(runs["1e-3"][k], base[k]) for k in base)  # and they do train


def test_stroke_l1_measures_the_output_against_the_stroke_colors_under_the_strokes_only():
    import torch

    from stablepaint.losses import stroke_l1

    hints = torch.zeros(2, 4, 4, 4)
    hints[0, :3, 1, 2] = torch.tensor([0.5, -0.5, 1.0])  # one stroke pixel = a 4x4 block of the 16x16 output
    hints[0, 3, 1, 2] = 1
    images = torch.zeros(2, 3, 16, 16)
    images[0, :, 4:8, 8:12] = torch.tensor([0.5, -0.5, 1.0])[:, None, None]
    assert stroke_l1(images, hints).item() == 0.0  # the stroke's color where it was painted
    images[0, :, 0:4] = 0.9  # pixels outside the strokes do not count
    images[1] = 0.7  # nor does an image without strokes
    assert stroke_l1(images, hints).item() == 0.0
    images[0, 0, 4:8, 8:12] = 0.0  # red off by 0.5 under the stroke: mean over 3 channels = 0.5 / 3
    assert abs(stroke_l1(images, hints).item() - 0.5 / 3) < 1e-6
    assert stroke_l1(images, torch.zeros(2, 4, 4, 4)).item() == 0.0  # no strokes at all: 0, not NaN


@pytest.mark.slow
def test_checkpoint_selection_scores_every_checkpoint_on_the_validation_split(
    run_accelerate, pairs_folder, vgg16_weights, tmp_path
):
    import subprocess
    import sys

    if not (REPO.parent / "shared" / "data" / "openmoji").is_dir():
        pytest.skip("../shared/data is not beside the checkout")
    run = tmp_path / "run"
    args = flags("stenciltorch", pairs_folder, run, "--max_train_steps", "2", "--checkpointing_steps", "1")
    check(run_accelerate(SCRIPTS["stenciltorch"], [*args, "--use_ema", "--report_to", "none"], num_processes=1))
    command = [sys.executable, str(REPO / "benchmarks" / "eval_splits.py"), "--run", str(run), "--split"]
    command += ["validation", "--limit", "2", "--threads", "1", "--out", str(tmp_path), "--name", "chosen.json"]
    check(subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=REPO))
    report = json.loads((tmp_path / "chosen.json").read_text())
    assert report["split"] == "validation" and report["samples"] == {"adventurer": 2, "openmoji": 2}
    scores = report["checkpoints"]
    assert sorted(scores) == ["checkpoint-1", "checkpoint-2"]
    for score in scores.values():  # the mean over the datasets of the raw network's region ΔE00 / the flat fill's
        rows = [score[name]["hints"] for name in ("adventurer", "openmoji")]
        ratios = [row["raw network"]["region"] / row["flat fill"]["region"] for row in rows]
        assert score["score"] == pytest.approx(float(np.mean(ratios)), abs=2e-3)
        assert all(0 <= row["raw network"]["lines"] <= 1 for row in rows)
    assert report["chosen"] == min(scores, key=lambda name: scores[name]["score"])
    # a resumed run: only the new checkpoints are scored, the earlier report's scores join them
    again = [*command[:-1], "again.json", "--checkpoint", "checkpoint-2", "--previous", str(tmp_path / "chosen.json")]
    check(subprocess.run(again, capture_output=True, text=True, timeout=600, cwd=REPO))
    merged = json.loads((tmp_path / "again.json").read_text())
    assert merged["checkpoints"] == scores and merged["chosen"] == report["chosen"]

    # the default call of one checkpoint, chosen on the validation split with a learned flats model attached
    import torch

    from stablepaint import FlatsPipeline, RegionColorizer

    torch.manual_seed(0)
    FlatsPipeline(RegionColorizer(hidden_size=16, num_layers=1, num_heads=2, mlp_ratio=2)).save_pretrained(
        tmp_path / "flats"
    )
    command = [*command[:-1], "default.json", "--checkpoint", "checkpoint-2", "--choose-default"]
    command += ["--flats-model", str(tmp_path / "flats")]
    check(subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=REPO))
    report = json.loads((tmp_path / "default.json").read_text())
    rows = {name: report[name]["hints"] for name in ("adventurer", "openmoji")}
    calls = ["raw network", "hint_regions", "flats, shaded by the raw network", "flats, shaded by hint_regions"]
    assert all(sorted(row) == sorted(["flat fill", *calls]) for row in rows.values())
    for name in ("flats, shaded by the raw network", "flats, shaded by hint_regions"):
        assert all(row[name]["lines"] >= 0.99 for row in rows.values())  # the flats' lines
    keeping = [call for call in calls if all(row[call]["lines"] >= 0.95 for row in rows.values())]
    mean_region = {call: np.mean([row[call]["region_ratio"] for row in rows.values()]) for call in keeping}
    assert report["chosen_default"] in keeping
    assert mean_region[report["chosen_default"]] == pytest.approx(min(mean_region.values()))
    refused = subprocess.run([*command, "--split", "test"], capture_output=True, text=True, timeout=600, cwd=REPO)
    assert refused.returncode == 2 and "validation split only" in refused.stderr

    # the held-out evaluation of the trained pipeline: raw network and default call, the keep_lines row on request
    held_out = [sys.executable, str(REPO / "benchmarks" / "eval_splits.py"), "--model", str(run), "--split", "test"]
    held_out += ["--limit", "2", "--threads", "1", "--datasets", "openmoji", "--out", str(tmp_path)]
    for flag, name in (([], "all.json"), (["--without-keep-lines"], "without.json")):
        check(
            subprocess.run([*held_out, "--name", name, *flag], capture_output=True, text=True, timeout=600, cwd=REPO)
        )
    rows = {
        name: json.loads((tmp_path / name).read_text())["openmoji"]["hints"] for name in ("all.json", "without.json")
    }
    assert sorted(rows["without.json"]) == ["default call", "flat fill", "raw network"]
    assert sorted(rows["all.json"]) == sorted([*rows["without.json"], "default call, keep_lines=True"])
    assert rows["without.json"]["default call"] == rows["all.json"]["default call"]  # the same call, seeded
    refused = subprocess.run([*command, "--without-keep-lines"], capture_output=True, text=True, timeout=600, cwd=REPO)
    assert refused.returncode == 2 and "--without-keep-lines goes with --model" in refused.stderr

"""train/train_stablepaint.py: every stage as 2 CPU processes for a few steps, killed after a checkpoint and resumed."""

from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import load_script
from diffusers import PNDMScheduler, UNet2DConditionModel
from safetensors.torch import load_file
from test_training_utils import kill_after_first_checkpoint

from stablepaint import StablePaintPipeline
from stablepaint.training.utils import list_checkpoints

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "train" / "train_stablepaint.py"
TINY = [
    "--resolution", "32",
    "--train_batch_size", "1",
    "--report_to", "none",
    "--segmentation", "slic",
    "--vae_block_out_channels", "8", "16",
    "--unet_block_out_channels", "8", "16",
    "--norm_num_groups", "8",
    "--layers_per_block", "1",
    "--cross_attention_dim", "8",
    "--attention_head_dim", "2",
    "--num_validation_images", "1",
    "--validation_inference_steps", "2",
]  # fmt: skip


@pytest.fixture
def sd_checkpoint(tmp_path):
    """A tiny Stable-Diffusion-layout folder: a 4-channel UNet2DConditionModel, an AutoencoderKL, a PNDM scheduler."""
    from test_stablepaint import get_dummy_components, tiny_unet

    components = get_dummy_components(context_encoder=False)
    torch.manual_seed(0)
    unet = tiny_unet(4)
    folder = tmp_path / "tiny-sd"
    components["vae"].save_pretrained(folder / "vae")
    unet.save_pretrained(folder / "unet")
    PNDMScheduler(skip_prk_steps=True).save_pretrained(folder / "scheduler")
    return folder


def launch(run_accelerate, data, output_dir, *flags):
    result = run_accelerate(SCRIPT, ["--train_data_dir", data, "--output_dir", output_dir, *TINY, *flags])
    return result


def kill_and_resume(run_accelerate, data, output_dir, flags):
    """Train 4 steps with a checkpoint every 2, killed after step 4 before its checkpoint, then resumed from the
    latest checkpoint."""
    flags = [*flags, "--max_train_steps", "4", "--checkpointing_steps", "2", "--validation_steps", "4"]
    killed = kill_after_first_checkpoint(
        run_accelerate, SCRIPT, ["--train_data_dir", data, "--output_dir", output_dir, *TINY, *flags]
    )
    assert killed.returncode != 0
    assert [p.name for p in list_checkpoints(output_dir)] == ["checkpoint-2"]
    resumed = launch(run_accelerate, data, output_dir, *flags, "--resume_from_checkpoint", "latest")
    assert resumed.returncode == 0, resumed.stderr[-4000:]
    assert "step 2" in resumed.stdout + resumed.stderr
    assert [p.name for p in list_checkpoints(output_dir)] == ["checkpoint-2", "checkpoint-4"]
    card = (output_dir / "README.md").read_text()
    assert "library_name: diffusers" in card and "stablepaint" in card
    return resumed


@pytest.mark.slow
def test_vae_stage_two_processes_resume(tmp_path, illustration_folder, run_accelerate):
    out = tmp_path / "vae"
    kill_and_resume(run_accelerate, illustration_folder, out, ["--stage", "vae"])
    assert (out / "vae" / "diffusion_pytorch_model.safetensors").is_file()
    assert (out / "validation_vae.png").is_file()
    from stablepaint.training.diffusion import stablepaint_from_checkpoint

    with pytest.raises(ValueError, match="only full `--stage unet` runs load here"):
        stablepaint_from_checkpoint(out / "checkpoint-2")


@pytest.mark.slow
def test_context_stage_two_processes_resume(tmp_path, illustration_folder, run_accelerate, sd_checkpoint):
    out = tmp_path / "context"
    kill_and_resume(
        run_accelerate,
        illustration_folder,
        out,
        [
            "--stage",
            "context",
            "--pretrained_vae_model_name_or_path",
            sd_checkpoint / "vae",
            "--hint_loss_weight",
            "2",
        ],
    )
    from stablepaint.models import StablePaintContextEncoder

    encoder = StablePaintContextEncoder.from_pretrained(out / "context_encoder")
    latents = encoder(torch.zeros(1, 1, 32, 32), torch.zeros(1, 4, 8, 8)).latents
    assert latents.shape == (1, 4, 16, 16)


@pytest.mark.slow
def test_unet_stage_resume_gives_the_uninterrupted_weights(tmp_path, illustration_folder, run_accelerate):
    flags = ["--stage", "unet", "--use_ema", "--snr_gamma", "5", "--prediction_type", "v_prediction"]
    flags += ["--pretrained_vae_model_name_or_path", str(tmp_path / "vae")]
    from test_stablepaint import get_dummy_components

    get_dummy_components(context_encoder=False)["vae"].save_pretrained(tmp_path / "vae")

    straight = launch(
        run_accelerate,
        illustration_folder,
        tmp_path / "straight",
        *flags,
        "--max_train_steps", "4",
        "--checkpointing_steps", "2",
        "--checkpoints_total_limit", "1",
        "--validation_steps", "4",
    )  # fmt: skip
    assert straight.returncode == 0, straight.stderr[-4000:]
    assert [p.name for p in list_checkpoints(tmp_path / "straight")] == ["checkpoint-4"]

    kill_and_resume(run_accelerate, illustration_folder, tmp_path / "resumed", flags)
    a = load_file(tmp_path / "straight" / "unet" / "diffusion_pytorch_model.safetensors")
    b = load_file(tmp_path / "resumed" / "unet" / "diffusion_pytorch_model.safetensors")
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0)

    pipe = StablePaintPipeline.from_pretrained(tmp_path / "resumed")
    pipe.set_progress_bar_config(disable=True)
    assert pipe.scheduler.config.prediction_type == "v_prediction"
    assert not pipe.scheduler.config.clip_sample  # latents are not bounded to [-1, 1]
    images = pipe(np.full((32, 32), 255, np.uint8), num_inference_steps=2, output_type="np").images
    assert images.shape == (1, 32, 32, 3) and np.isfinite(images).all()

    # a checkpoint as a pipeline (checkpoint selection): the EMA UNet the run exported, DDIM without clipping
    from stablepaint.training.diffusion import stablepaint_from_checkpoint

    restored = stablepaint_from_checkpoint(tmp_path / "straight" / "checkpoint-4")
    for key, value in restored.unet.state_dict().items():
        torch.testing.assert_close(value, a[key], rtol=0, atol=0)
    assert restored.scheduler.config.prediction_type == "v_prediction" and not restored.scheduler.config.clip_sample
    raw = stablepaint_from_checkpoint(tmp_path / "straight" / "checkpoint-4", ema=False).unet.state_dict()
    assert any(not torch.equal(raw[key], a[key]) for key in a)  # the EMA is not the raw weights


@pytest.mark.slow
def test_lora_from_an_sd_checkpoint_widens_conv_in(tmp_path, illustration_folder, run_accelerate, sd_checkpoint):
    out = tmp_path / "lora"
    result = launch(
        run_accelerate,
        illustration_folder,
        out,
        "--stage", "unet",
        "--pretrained_model_name_or_path", sd_checkpoint,
        "--lora_rank", "2",
        "--max_train_steps", "2",
        "--checkpointing_steps", "2",
        "--validation_steps", "2",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-4000:]
    pipe = StablePaintPipeline.from_pretrained(out)
    pipe.set_progress_bar_config(disable=True)
    assert pipe.unet.config.in_channels == 17  # 4 latent + 2*2 lineart + 4 hints + 1 mask + 4 masked latents
    # The widened base is the SD UNet exactly: pretrained filters kept, new channels zero.
    base = UNet2DConditionModel.from_pretrained(sd_checkpoint / "unet")
    torch.testing.assert_close(pipe.unet.conv_in.weight[:, :4], base.conv_in.weight, rtol=0, atol=0)
    assert pipe.unet.conv_in.weight[:, 4:].abs().max() == 0

    def sample():
        generator = torch.Generator().manual_seed(0)
        return pipe(np.full((32, 32), 255, np.uint8), num_inference_steps=2, generator=generator, output_type="np")

    plain = sample().images
    pipe.load_lora_weights(out)
    assert np.abs(sample().images - plain).max() > 0
    assert "lora" in (out / "README.md").read_text()


@pytest.mark.slow
def test_resuming_a_finished_run_trains_no_further_step(tmp_path, illustration_folder, run_accelerate):
    # One process, 3 images of batch 1: 3 steps per epoch, so `--max_train_steps 2` ends inside epoch 0 and a resume
    # from its last checkpoint (step 2) starts in an epoch the schedule still counts. It must not train a third step.
    out = tmp_path / "vae"
    flags = ["--train_data_dir", illustration_folder, "--output_dir", out, *TINY, "--stage", "vae"]
    flags += ["--max_train_steps", "2", "--checkpointing_steps", "2"]
    first = run_accelerate(SCRIPT, flags, num_processes=1)
    assert first.returncode == 0, first.stderr[-4000:]
    weights = out / "vae" / "diffusion_pytorch_model.safetensors"
    finished = load_file(weights)
    again = run_accelerate(SCRIPT, [*flags, "--resume_from_checkpoint", "latest"], num_processes=1)
    assert again.returncode == 0, again.stderr[-4000:]
    for key, value in load_file(weights).items():
        torch.testing.assert_close(value, finished[key], rtol=0, atol=0)


def stablepaint_script():
    return load_script(SCRIPT)


def test_context_hint_loss_adds_the_stroke_l1_of_the_decoded_image(tmp_path):
    from test_stablepaint import get_dummy_components

    from stablepaint.losses import stroke_l1
    from stablepaint.models import StablePaintContextEncoder

    script = stablepaint_script()
    vae = get_dummy_components(context_encoder=False)["vae"]
    encoder = StablePaintContextEncoder.from_vae(vae)
    generator = torch.Generator().manual_seed(0)
    hints = torch.zeros(2, 4, 8, 8)
    hints[:, :3, 2:4, 1:6] = torch.tensor([0.8, -0.6, -0.6]).view(3, 1, 1)
    hints[:, 3:, 2:4, 1:6] = 1
    batch = {
        "image": torch.rand(2, 3, 32, 32, generator=generator) * 2 - 1,
        "lineart": torch.ones(2, 1, 32, 32),
        "hints": hints,
    }
    args = script.parse_args(
        ["--stage", "context", "--pretrained_vae_model_name_or_path", str(tmp_path), "--output_dir", str(tmp_path)]
        + ["--train_data_dir", str(tmp_path)]
    )
    base = script.context_loss(args, encoder, vae, batch)
    args.hint_loss_weight = 2.5
    with_hints = script.context_loss(args, encoder, vae, batch)
    with torch.no_grad():
        decoded = vae.decode(encoder(batch["lineart"], batch["hints"]).latents).sample
    expected = base + 2.5 * stroke_l1(decoded.float(), hints)
    torch.testing.assert_close(with_hints, expected)
    assert with_hints > base
    with pytest.raises(ValueError, match="--hint_loss_weight"):
        script.parse_args(
            ["--stage", "context", "--pretrained_vae_model_name_or_path", str(tmp_path), "--output_dir", str(tmp_path)]
            + ["--train_data_dir", str(tmp_path)]
            + ["--hint_loss_weight", "1", "--decoder_loss_weight", "0"]
        )


@pytest.mark.slow
def test_checkpoint_selection_of_an_x0_prediction_run(tmp_path, illustration_folder, run_accelerate):
    """`--prediction_type sample` trains, and `benchmarks/eval_splits.py --family stablepaint` scores each checkpoint's
    EMA UNet on the validation split of both datasets (the raw network against the flat fill)."""
    import json
    import subprocess
    import sys

    if not (REPO.parent / "shared" / "data" / "openmoji").is_dir():
        pytest.skip("../shared/data is not beside the checkout")
    from test_stablepaint import get_dummy_components

    get_dummy_components(context_encoder=False)["vae"].save_pretrained(tmp_path / "vae")
    flags = ["--stage", "unet", "--use_ema", "--prediction_type", "sample", "--snr_gamma", "5"]
    flags += ["--pretrained_vae_model_name_or_path", str(tmp_path / "vae"), "--max_train_steps", "2"]
    run = launch(run_accelerate, illustration_folder, tmp_path / "run", *flags, "--checkpointing_steps", "1")
    assert run.returncode == 0, run.stderr[-4000:]
    assert StablePaintPipeline.from_pretrained(tmp_path / "run").scheduler.config.prediction_type == "sample"
    command = [sys.executable, str(REPO / "benchmarks" / "eval_splits.py"), "--run", str(tmp_path / "run")]
    command += ["--family", "stablepaint", "--steps", "2", "--split", "validation", "--limit", "2", "--threads", "1"]
    command += ["--out", str(tmp_path), "--name", "chosen.json"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=REPO)
    assert result.returncode == 0, result.stderr[-4000:]
    report = json.loads((tmp_path / "chosen.json").read_text())
    assert report["steps"] == 2 and report["samples"] == {"adventurer": 2, "openmoji": 2}
    scores = report["checkpoints"]
    assert sorted(scores) == ["checkpoint-1", "checkpoint-2"]
    for score in scores.values():
        rows = [score[name]["hints"] for name in ("adventurer", "openmoji")]
        ratios = [row["raw network"]["region"] / row["flat fill"]["region"] for row in rows]
        assert score["score"] == pytest.approx(float(np.mean(ratios)), abs=2e-3)
    assert report["chosen"] == min(scores, key=lambda name: scores[name]["score"])

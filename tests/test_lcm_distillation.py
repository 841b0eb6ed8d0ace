"""LCM-LoRA distillation of StablePaint (train/train_stablepaint_lcm.py, stablepaint.training.consistency) on a tiny
random StablePaint (32 px)."""

from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import load_script
from diffusers import DDIMScheduler, LCMScheduler
from safetensors.torch import load_file

from stablepaint import StablePaintPipeline
from stablepaint.training.consistency import (
    DDIMSolver,
    consistency_loss,
    consistency_output,
    predicted_noise,
    predicted_original_sample,
    scalings_for_boundary_conditions,
)
from stablepaint.training.utils import list_checkpoints

REPO = Path(__file__).resolve().parents[1]


def lcm_script():
    return load_script(REPO / "train" / "train_stablepaint_lcm.py")


@pytest.fixture
def teacher(tmp_path):
    """A tiny random StablePaint pipeline folder (DDIM, ε-prediction), the distillation's teacher."""
    from test_stablepaint import get_dummy_components

    pipe = StablePaintPipeline(**get_dummy_components(context_encoder=False))
    folder = tmp_path / "teacher"
    pipe.save_pretrained(folder)
    return folder


def test_boundary_condition_scalings():
    c_skip, c_out = scalings_for_boundary_conditions(torch.tensor([0, 1, 999]))
    assert c_skip[0] == pytest.approx(1.0) and c_out[0] == pytest.approx(0.0)
    assert c_skip[2] < 1e-6 and c_out[2] == pytest.approx(1.0, abs=1e-6)
    assert torch.all(c_skip[1:] < c_skip[:-1]) and torch.all(c_out[1:] > c_out[:-1])
    # At t = 0 the consistency function returns its input whatever the UNet says.
    sample, output = torch.randn(2, 4, 3, 3), torch.randn(2, 4, 3, 3)
    alphas = DDIMScheduler().alphas_cumprod
    result = consistency_output(output, torch.zeros(2, dtype=torch.long), sample, "epsilon", alphas)
    torch.testing.assert_close(result, sample)


@pytest.mark.parametrize("index", [0, 7, 49])
def test_ddim_solver_step_equals_scheduler_step(index):
    scheduler = DDIMScheduler(timestep_spacing="trailing", set_alpha_to_one=False, clip_sample=False)
    scheduler.set_timesteps(50)
    solver = DDIMSolver(scheduler.alphas_cumprod, 1000, 50)
    assert sorted(scheduler.timesteps.tolist()) == solver.ddim_timesteps.tolist()
    torch.manual_seed(index)
    sample, eps = torch.randn(2, 4, 8, 8), torch.randn(2, 4, 8, 8)
    t = solver.ddim_timesteps[index]
    timesteps = torch.full((2,), int(t))
    x0 = predicted_original_sample(eps, timesteps, sample, "epsilon", scheduler.alphas_cumprod)
    noise = predicted_noise(eps, timesteps, sample, "epsilon", scheduler.alphas_cumprod)
    ours = solver.ddim_step(x0, noise, torch.full((2,), index))
    expected = scheduler.step(eps, t, sample, eta=0.0).prev_sample
    torch.testing.assert_close(ours, expected, rtol=1e-4, atol=1e-4)


def test_prediction_conversions_and_losses():
    alphas = DDIMScheduler().alphas_cumprod
    x0, eps, t = torch.randn(1, 4, 4, 4), torch.randn(1, 4, 4, 4), torch.tensor([500])
    a, s = alphas[500].sqrt(), (1 - alphas[500]).sqrt()
    noisy = a * x0 + s * eps
    v = a * eps - s * x0
    torch.testing.assert_close(predicted_original_sample(v, t, noisy, "v_prediction", alphas), x0, atol=1e-4, rtol=0)
    torch.testing.assert_close(predicted_noise(v, t, noisy, "v_prediction", alphas), eps, atol=1e-4, rtol=0)
    assert consistency_loss(x0, x0, "huber").item() == pytest.approx(0.0, abs=1e-7)
    assert consistency_loss(x0, x0 + 1, "l2").item() == pytest.approx(1.0)
    with pytest.raises(ValueError, match="loss_type"):
        consistency_loss(x0, x0, "l1")


def test_pipeline_with_lcm_scheduler_guidance_one_runs_unet_once_per_step(teacher):
    from test_stablepaint import get_dummy_inputs

    pipe = StablePaintPipeline.from_pretrained(teacher)
    pipe.scheduler = LCMScheduler.from_config(pipe.scheduler.config)
    pipe.set_progress_bar_config(disable=True)
    batches = []
    pipe.unet.register_forward_pre_hook(lambda module, args: batches.append(args[0].shape[0]))
    inputs = get_dummy_inputs()
    images = pipe(inputs["lineart"], hints=inputs["hints"], num_inference_steps=4, guidance_scale=1.0).images
    assert batches == [1, 1, 1, 1]
    assert images[0].size == (32, 32)


def test_distill_load_and_resume(tmp_path, teacher, illustration_folder, capsys):
    from test_stablepaint import get_dummy_inputs

    script = lcm_script()
    out = tmp_path / "lcm"
    flags = [
        "--pretrained_model_name_or_path", str(teacher),
        "--train_data_dir", str(illustration_folder),
        "--exclude_ids", "drawing_2",
        "--output_dir", str(out),
        "--resolution", "32",
        "--train_batch_size", "1",
        "--segmentation", "slic",
        "--report_to", "none",
        "--lora_rank", "4",
        "--num_ddim_timesteps", "10",
        "--learning_rate", "1e-2",
        "--checkpointing_steps", "1",
        "--validation_steps", "2",
        "--num_validation_images", "1",
        "--validation_inference_steps", "2",
    ]  # fmt: skip
    script.main([*flags, "--max_train_steps", "2"])
    assert [p.name for p in list_checkpoints(out)] == ["checkpoint-1", "checkpoint-2"]
    weights = load_file(out / "pytorch_lora_weights.safetensors")
    assert weights and all(key.startswith("unet.") for key in weights)
    assert any("conv1" in key for key in weights) and any("to_q" in key for key in weights)
    assert (out / "validation_lcm.png").is_file()
    card = (out / "README.md").read_text()
    assert "LCMScheduler" in card and "num_inference_steps=4" in card and "guidance_scale=1" in card
    assert "2 optimizer steps" in card and str(teacher) in card and "hours" in card

    inputs = get_dummy_inputs()

    def sample(pipe):
        pipe.set_progress_bar_config(disable=True)
        generator = torch.Generator().manual_seed(0)
        return pipe(
            inputs["lineart"], hints=inputs["hints"], num_inference_steps=4, guidance_scale=1,
            generator=generator, output_type="np",
        ).images  # fmt: skip

    pipe = StablePaintPipeline.from_pretrained(teacher)
    pipe.scheduler = LCMScheduler.from_config(pipe.scheduler.config)
    before = sample(pipe)
    pipe.load_lora_weights(out)
    after = sample(pipe)
    assert after.shape == before.shape == (1, 32, 32, 3)
    assert np.isfinite(after).all()
    assert np.abs(after - before).max() > 1e-3

    capsys.readouterr()
    script.main([*flags, "--max_train_steps", "3", "--resume_from_checkpoint", "latest"])
    assert "step 2" in capsys.readouterr().out
    assert [p.name for p in list_checkpoints(out)] == ["checkpoint-1", "checkpoint-2", "checkpoint-3"]
    assert "3 optimizer steps" in (out / "README.md").read_text()


def test_bad_flags(teacher, illustration_folder):
    script = lcm_script()
    base = ["--pretrained_model_name_or_path", str(teacher), "--train_data_dir", str(illustration_folder)]
    with pytest.raises(ValueError, match="lora_rank"):
        script.parse_args([*base, "--lora_rank", "0"])
    with pytest.raises(ValueError, match="num_ddim_timesteps"):
        script.parse_args([*base, "--num_ddim_timesteps", "0"])

"""AutoencoderTAEF2: the released TAEF2 weights load and reconstruct; the class is a diffusers model and a StablePaint
`vae` (pipeline call, save/load, the UNet training stage)."""

from pathlib import Path

import numpy as np
import PIL.Image
import pytest
import torch

from stablepaint import StablePaintPipeline
from stablepaint.models.autoencoder_taef2 import AutoencoderTAEF2, latent_statistics
from stablepaint.utils.diffusion_utils import encode_latents, unet_in_channels

REPO = Path(__file__).resolve().parents[1]
WEIGHTS = REPO.parent / "shared" / "weights"
TINY = {"channels": 8, "latent_channels": 4, "encoder_blocks": (1, 1, 1), "decoder_blocks": (1, 1, 1)}


def tiny_taef2(**config):
    torch.manual_seed(0)
    return AutoencoderTAEF2(**{**TINY, **config}).eval()


def test_shapes_ranges_and_scale_factor():
    vae = tiny_taef2()
    assert vae.scale_factor == 4 and list(vae.config.block_out_channels) == [8, 8, 8]
    x = torch.rand(2, 3, 32, 48) * 2 - 1
    latents = vae.encode(x).latents
    assert latents.shape == (2, 4, 8, 12)
    sample = vae.decode(latents).sample
    assert sample.shape == x.shape and sample.min() >= -1 and sample.max() <= 1
    vae.enable_slicing()  # one image at a time: the same numbers
    torch.testing.assert_close(vae.encode(x).latents, latents)
    torch.testing.assert_close(vae(x).sample, sample)


def test_bad_inputs_name_the_argument():
    vae = tiny_taef2()
    with pytest.raises(ValueError, match=r"`x` must be a \(batch, 3, height, width\)"):
        vae.encode(torch.zeros(1, 4, 32, 32))
    with pytest.raises(ValueError, match="`x`'s height and width must be multiples of 4"):
        vae.encode(torch.zeros(1, 3, 30, 32))
    with pytest.raises(ValueError, match=r"`z` must be a \(batch, 4,"):
        vae.decode(torch.zeros(1, 3, 8, 8))
    with pytest.raises(ValueError, match="`encoder_blocks` and `decoder_blocks`"):
        AutoencoderTAEF2(encoder_blocks=(1, 3), decoder_blocks=(3,))
    with pytest.raises(NotImplementedError, match="enable_slicing"):
        vae.enable_tiling()


def test_save_and_load_round_trip_in_safetensors(tmp_path):
    vae = tiny_taef2(scaling_factor=0.5, shift_factor=0.1)
    vae.save_pretrained(tmp_path)
    assert (tmp_path / "diffusion_pytorch_model.safetensors").is_file()
    assert not list(tmp_path.glob("*.bin"))
    loaded = AutoencoderTAEF2.from_pretrained(tmp_path)
    assert loaded.config.scaling_factor == 0.5 and loaded.config.shift_factor == 0.1
    x = torch.rand(1, 3, 16, 16) * 2 - 1
    torch.testing.assert_close(loaded(x).sample, vae(x).sample, rtol=0, atol=0)


def test_released_weights_reconstruct_held_out_drawings():
    encoder, decoder = WEIGHTS / "taef2_encoder.safetensors", WEIGHTS / "taef2_decoder.safetensors"
    if not encoder.is_file():
        pytest.skip("../shared/weights/taef2_*.safetensors is not beside the checkout")
    vae = AutoencoderTAEF2.from_taef2_weights(encoder, decoder)
    assert vae.config.latent_channels == 32 and vae.scale_factor == 8
    image = PIL.Image.open(REPO / "examples" / "pairs" / "dicebear_adventurer_2494_color.png").convert("RGB")
    x = torch.from_numpy(np.array(image)).permute(2, 0, 1)[None].float() / 127.5 - 1
    with torch.no_grad():
        latents = vae.encode(x).latents
        y = vae.decode(latents).sample
    assert latents.shape == (1, 32, x.shape[-2] // 8, x.shape[-1] // 8)
    psnr = 10 * torch.log10(4 / (y - x).pow(2).mean())
    assert psnr > 28, psnr  # 33.7 dB on this drawing; a scrambled key or a wrong range gives < 15 dB
    mean, scale = latent_statistics(vae, x)
    assert abs(mean) < 0.5 and 0.5 < scale < 3
    with pytest.raises(ValueError, match="`encoder_path` .* is not a TAEF2 encoder"):
        AutoencoderTAEF2.from_taef2_weights(decoder, decoder)
    with pytest.raises(FileNotFoundError, match="`decoder_path`"):
        AutoencoderTAEF2.from_taef2_weights(encoder, WEIGHTS / "missing.safetensors")


def stablepaint_with_taef2():
    from diffusers import DDIMScheduler
    from test_stablepaint import tiny_unet

    vae = tiny_taef2(scaling_factor=2.0)
    torch.manual_seed(0)
    unet = tiny_unet(unet_in_channels(4, vae.scale_factor))
    pipe = StablePaintPipeline(vae=vae, unet=unet, scheduler=DDIMScheduler(), context_encoder=None)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def test_stablepaint_pipeline_runs_and_round_trips_with_a_taef2_vae(tmp_path):
    pipe = stablepaint_with_taef2()
    assert pipe.vae_scale_factor == 4
    x = torch.rand(1, 3, 16, 16) * 2 - 1
    torch.testing.assert_close(encode_latents(pipe.vae, x), pipe.vae.encode(x).latents * 2.0)  # scaling_factor
    lineart = np.full((32, 32), 255, np.uint8)
    lineart[10, :] = 0
    run = {"num_inference_steps": 2, "output_type": "np", "generator": torch.Generator().manual_seed(0)}
    images = pipe(lineart, **run).images
    assert images.shape == (1, 32, 32, 3) and np.isfinite(images).all()
    pipe.save_pretrained(tmp_path)
    import json

    index = json.loads((tmp_path / "model_index.json").read_text())
    assert index["vae"] == ["stablepaint.models.autoencoder_taef2", "AutoencoderTAEF2"]
    loaded = StablePaintPipeline.from_pretrained(tmp_path)
    assert isinstance(loaded.vae, AutoencoderTAEF2)
    loaded.set_progress_bar_config(disable=True)
    run["generator"] = torch.Generator().manual_seed(0)
    np.testing.assert_array_equal(loaded(lineart, **run).images, images)


@pytest.mark.slow
def test_the_unet_stage_trains_in_a_taef2_latent_space(tmp_path, illustration_folder, run_accelerate):
    from test_stablepaint_training import launch

    tiny_taef2().save_pretrained(tmp_path / "vae")
    flags = ["--stage", "unet", "--pretrained_vae_model_name_or_path", str(tmp_path / "vae")]
    result = launch(run_accelerate, illustration_folder, tmp_path / "out", *flags, "--max_train_steps", "2")
    assert result.returncode == 0, result.stderr[-4000:]
    pipe = StablePaintPipeline.from_pretrained(tmp_path / "out")
    assert isinstance(pipe.vae, AutoencoderTAEF2) and pipe.unet.config.out_channels == 4
    refused = launch(run_accelerate, illustration_folder, tmp_path / "vae-stage", "--stage", "vae", *flags[2:])
    assert refused.returncode != 0 and "a pretrained, frozen latent space" in refused.stderr


def test_the_card_of_a_pipeline_shipping_taef2_carries_its_attribution():
    from stablepaint.hub.cards import pipeline_card

    card = str(pipeline_card(stablepaint_with_taef2(), "me/sp", attribution="DiceBear Adventurer, CC BY 4.0"))
    assert "DiceBear Adventurer, CC BY 4.0" in card
    assert "TAEF2 by Ollin Boer Bohan (madebyollin/taesd), MIT License, Copyright (c) 2023 Ollin Boer Bohan" in card
    from test_stablepaint import get_dummy_components

    other = StablePaintPipeline(**get_dummy_components(context_encoder=False))
    assert "TAEF2" not in str(pipeline_card(other, "me/sp", attribution="x"))

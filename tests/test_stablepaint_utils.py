"""stablepaint.utils.diffusion_utils: the UNet's conditioning input and the training objective shared with the pipeline."""

import pytest
import torch
from diffusers import DDPMScheduler
from diffusers.training_utils import compute_snr

from stablepaint.losses import diffusion_loss, diffusion_target
from stablepaint.training.utils import drop_hints
from stablepaint.utils.diffusion_utils import (
    conditioning_channels,
    masked_image,
    resize_hints,
    unet_conditioning,
    unet_in_channels,
)


def test_channel_counts_for_stable_diffusion_shapes():
    # SD: 4 latent channels at 1/8: 4 noisy + 64 lineart + 4 hints + 1 mask + 4 masked latents.
    assert conditioning_channels(4, 8) == 73
    assert unet_in_channels(4, 8) == 77


def test_resize_hints_keeps_thin_strokes_and_their_color():
    hints = torch.zeros(1, 4, 16, 16)
    hints[0, :3, 5, 2:9] = torch.tensor([0.5, -0.25, 1.0])[:, None]  # a 1-px stroke
    hints[0, 3, 5, 2:9] = 1
    small = resize_hints(hints, (4, 4))
    assert small[0, 3].sum() == 3  # every cell the stroke crosses (columns 2-8: cells 0, 1, 2)
    torch.testing.assert_close(small[0, :3, 1, 0], torch.tensor([0.5, -0.25, 1.0]))
    assert small[0, :3][:, small[0, 3] == 0].abs().max() == 0
    big = resize_hints(hints, (32, 32))
    assert big[0, 3].sum() == 4 * hints[0, 3].sum()


def test_unet_conditioning_layout():
    lineart = torch.rand(2, 1, 32, 32) * 2 - 1
    hints = torch.zeros(2, 4, 8, 8)
    mask = torch.zeros(2, 1, 32, 32)
    mask[:, :, :3, :3] = 1
    latents = torch.randn(2, 4, 4, 4)
    conditioning = unet_conditioning(lineart, hints, mask, latents, vae_scale_factor=8)
    assert conditioning.shape == (2, conditioning_channels(4, 8), 4, 4)
    # Lossless lineart: pixel-unshuffle is inverted exactly.
    torch.testing.assert_close(torch.nn.functional.pixel_shuffle(conditioning[:, :64], 8), lineart)
    assert conditioning[:, 68, 0, 0].eq(1).all() and conditioning[:, 68].sum() == 2  # mask: any pixel to color
    torch.testing.assert_close(conditioning[:, 69:], latents)
    with pytest.raises(ValueError, match="lineart"):
        unet_conditioning(lineart, hints, mask, torch.randn(2, 4, 8, 8), vae_scale_factor=8)


def test_masked_image_blanks_the_area_to_color():
    image = torch.ones(1, 3, 4, 4)
    mask = torch.zeros(1, 1, 4, 4)
    mask[..., :2] = 1
    out = masked_image(image, mask)
    assert out[..., :2].eq(0).all() and out[..., 2:].eq(1).all()
    assert masked_image(None, mask).eq(0).all()


def test_drop_hints_drops_whole_examples_with_the_given_probability():
    hints = torch.ones(2000, 4, 2, 2)
    torch.manual_seed(0)
    dropped = drop_hints(hints, 0.25)
    kept = dropped.flatten(1).eq(1).all(1)
    assert (dropped.flatten(1).eq(0).all(1) | kept).all()
    assert abs(1 - kept.float().mean().item() - 0.25) < 0.03
    assert drop_hints(hints, 0.0) is hints


@pytest.mark.parametrize("prediction_type", ["epsilon", "v_prediction"])
def test_min_snr_weighting_matches_the_formula(prediction_type):
    scheduler = DDPMScheduler(prediction_type=prediction_type)
    torch.manual_seed(0)
    latents, noise = torch.randn(3, 4, 2, 2), torch.randn(3, 4, 2, 2)
    timesteps = torch.tensor([10, 500, 990])
    target = diffusion_target(scheduler, latents, noise, timesteps)
    output = target + torch.randn_like(target)
    snr = compute_snr(scheduler, timesteps)
    weights = torch.clamp(snr, max=5.0) / (snr + 1 if prediction_type == "v_prediction" else snr)
    expected = (((output - target) ** 2).mean(dim=(1, 2, 3)) * weights).mean()
    torch.testing.assert_close(diffusion_loss(scheduler, output, target, timesteps, snr_gamma=5.0), expected)
    plain = diffusion_loss(scheduler, output, target, timesteps)
    torch.testing.assert_close(plain, ((output - target) ** 2).mean())
    if prediction_type == "epsilon":
        assert torch.equal(target, noise)


def test_x0_prediction_loss_is_the_min_snr_loss_of_the_implied_noise():
    """`prediction_type="sample"`: the UNet predicts the clean latents; its min-SNR-weighted loss equals the
    ε-prediction loss of the noise those latents imply (the same objective, another parametrization)."""
    sample = DDPMScheduler(prediction_type="sample")
    epsilon = DDPMScheduler(prediction_type="epsilon")
    torch.manual_seed(0)
    latents, noise = torch.randn(4, 4, 2, 2), torch.randn(4, 4, 2, 2)
    timesteps = torch.tensor([5, 200, 600, 990])
    assert torch.equal(diffusion_target(sample, latents, noise, timesteps), latents)
    predicted = latents + 0.3 * torch.randn_like(latents)
    noisy = sample.add_noise(latents, noise, timesteps)
    alpha = sample.alphas_cumprod[timesteps].view(-1, 1, 1, 1)
    implied_noise = (noisy - alpha.sqrt() * predicted) / (1 - alpha).sqrt()
    torch.testing.assert_close(
        diffusion_loss(sample, predicted, latents, timesteps, snr_gamma=5.0),
        diffusion_loss(epsilon, implied_noise, noise, timesteps, snr_gamma=5.0),
        rtol=1e-4,
        atol=1e-6,
    )
    with pytest.raises(ValueError, match="'epsilon', 'v_prediction' or 'sample'"):
        diffusion_target(DDPMScheduler.from_config(sample.config, prediction_type="flow"), latents, noise, timesteps)

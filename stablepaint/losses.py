"""Losses of the stablepaint models, written as the papers write them.

- WGAN-GP with the drift term of Karras et al. (2018), as PaintsTorch uses it (thesis §IV.2.2.3, Eq. pt_critic_loss):
  L_C = E[C(ŷ)] - E[C(y)] + λ_gp E[(||∇_x̂ C(x̂)||₂ - 1)²] + ε_drift E[C(y)²], x̂ on lines between y and ŷ.
- The generator's adversarial term L_adv = -E[C(ŷ)] and the VGG16 content loss L_cont = 1/(chw) ||F2(ŷ) - F2(y)||².
- Hinge GAN losses (Lim & Ye 2017; the workflow paper's Eq. 5 and 9) and the Gaussian KL term of BicycleGAN.

A `critic_fn` is any callable mapping a batch of images to one score per image (close over the conditioning, e.g.
`lambda x: critic(x, features)`), so the same code serves every critic.
"""

from __future__ import annotations

from typing import Callable, Dict, Optional

import torch
import torch.nn.functional as F
from diffusers.training_utils import compute_snr

CriticFn = Callable[[torch.Tensor], torch.Tensor]


def gradient_penalty(
    critic_fn: CriticFn,
    real: torch.Tensor,
    fake: torch.Tensor,
    generator: Optional[torch.Generator] = None,
    grad_scale: float = 1.0,
) -> torch.Tensor:
    """E[(||∇_x̂ C(x̂)||₂ - 1)²] at random points x̂ = α·real + (1 - α)·fake (Gulrajani et al., 2017, Algorithm 1).

    The norm is taken per example over all of its pixels. The returned value keeps its graph (`create_graph=True`)
    so that it can be back-propagated into the critic. Under fp16 mixed precision pass the gradient scaler's current
    scale as `grad_scale` (`accelerator.scaler.get_scale()`): the scores are scaled before `autograd.grad` and the
    gradients unscaled after it, as PyTorch's AMP recipe for gradient penalties does, so that they do not underflow.
    """
    if real.shape != fake.shape:
        raise ValueError(
            f"`real` and `fake` must have the same shape, got {tuple(real.shape)} and {tuple(fake.shape)}."
        )
    alpha = torch.rand((real.shape[0],) + (1,) * (real.ndim - 1), generator=generator, device="cpu")
    alpha = alpha.to(device=real.device, dtype=real.dtype)
    interpolates = (alpha * real.detach() + (1 - alpha) * fake.detach()).requires_grad_(True)
    scores = critic_fn(interpolates)
    (gradients,) = torch.autograd.grad(scores.sum() * grad_scale, interpolates, create_graph=True)
    norms = (gradients.flatten(1).float() / grad_scale).norm(2, dim=1)
    return ((norms - 1) ** 2).mean()


def wgan_gp_critic_loss(
    critic_fn: CriticFn,
    real: torch.Tensor,
    fake: torch.Tensor,
    lambda_gp: float = 10.0,
    drift: float = 1e-3,
    generator: Optional[torch.Generator] = None,
    grad_scale: float = 1.0,
) -> Dict[str, torch.Tensor]:
    """The critic loss L_C = L_w + L_gp of PaintsTorch (thesis §IV.2.2.3), with λ_gp = 10 and ε_drift = 1e-3.

    Returns a dict with the total `loss` and its terms `wasserstein` (E[C(fake)] - E[C(real)]), `gradient_penalty`
    (unweighted) and `drift` (E[C(real)²], unweighted). `fake` is detached: this step trains the critic only.
    `grad_scale`: see [`gradient_penalty`].
    """
    real_scores = critic_fn(real).float()
    fake_scores = critic_fn(fake.detach()).float()
    wasserstein = fake_scores.mean() - real_scores.mean()
    penalty = gradient_penalty(critic_fn, real, fake, generator=generator, grad_scale=grad_scale)
    drift_term = (real_scores**2).mean()
    loss = wasserstein + lambda_gp * penalty + drift * drift_term
    return {"loss": loss, "wasserstein": wasserstein, "gradient_penalty": penalty, "drift": drift_term}


def wgan_generator_loss(fake_scores: torch.Tensor) -> torch.Tensor:
    """L_adv = -E[C(ŷ)] (thesis Eq. pt_generator_loss_adv)."""
    return -fake_scores.float().mean()


def content_loss(vgg: torch.nn.Module, fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """L_cont = 1/(chw) ||F2(ŷ) - F2(y)||², averaged over the batch and over the layers `vgg` returns.

    `vgg` is a `stablepaint.models.VGG16Features` (frozen); the target's features carry no gradient. The images are cast
    to the VGG's dtype (a VGG kept in half precision under mixed precision, float32 images, or the reverse).
    """
    fake, real = _to_dtype_of(vgg, fake, real)
    fake_features = vgg(fake)
    with torch.no_grad():
        real_features = vgg(real)
    losses = [F.mse_loss(f.float(), r.float()) for f, r in zip(fake_features, real_features)]
    return torch.stack(losses).mean()


def _to_dtype_of(module: torch.nn.Module, *tensors: torch.Tensor):
    """`tensors` cast to the floating dtype of `module`'s weights (unchanged when it has none)."""
    dtype = getattr(module, "dtype", None)
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        return tensors
    return tuple(tensor.to(dtype) for tensor in tensors)


def hinge_discriminator_loss(real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
    """E[max(0, 1 - D(y))] + E[max(0, 1 + D(ŷ))]."""
    return F.relu(1.0 - real_scores.float()).mean() + F.relu(1.0 + fake_scores.float()).mean()


def hinge_generator_loss(fake_scores: torch.Tensor) -> torch.Tensor:
    """-E[D(ŷ)]."""
    return -fake_scores.float().mean()


def kl_divergence(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(μ, σ²) || N(0, 1)), summed over latent dimensions and averaged over the batch (BicycleGAN's L_KL)."""
    mu, logvar = mu.float(), logvar.float()
    return (-0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).flatten(1).sum(dim=1)).mean()


def masked_l1(fake: torch.Tensor, real: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean |fake − real| over the pixels where `mask` is 1 (and over the channels), per example: a `(B,)` tensor,
    0 for an example with an empty mask. `mask` is `(B, 1, H, W)` (or broadcastable to it) in {0, 1}; the partial
    reconstruction loss of hint-guided AdaIN optimization (the reference is defined under the strokes only)."""
    mask = mask.float().expand(fake.shape[0], 1, *fake.shape[-2:])
    error = ((fake.float() - real.float()).abs() * mask).flatten(1).sum(dim=1)
    return error / (mask.flatten(1).sum(dim=1) * fake.shape[1]).clamp(min=1.0)


def stroke_l1(images: torch.Tensor, hints: torch.Tensor) -> torch.Tensor:
    """Mean |image − stroke color| over the stroke pixels (0 without strokes): keeps the user's colors where they
    painted them (not in the thesis; `--lambda_hint` of the GAN scripts, `--hint_loss_weight` of StablePaint's context
    stage).

    `images` are (B, 3, H, W) in [-1, 1]; `hints` the (B, 4, h, w) stroke colors + mask of the conditioning contract,
    brought to (H, W) by nearest-neighbour upsampling (each hint pixel covers a block of the output).
    """
    hints = F.interpolate(hints, size=images.shape[-2:], mode="nearest")
    colors, mask = hints[:, :3], hints[:, 3:4]
    covered = mask.sum() * images.shape[1]
    return ((images - colors).abs() * mask).sum() / covered.clamp(min=1.0)


def region_color_l1(fake: torch.Tensor, real: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """|mean color of a region in `fake` − in `real`| (L1 over the channels), averaged over the labelled pixels: each
    region counts by its area, so a region painted the wrong color weighs what it weighs in a pixel error, but the
    term ignores how the color varies inside it (shading). The region-averaged color loss of the GAN scripts
    (`--lambda_region`; not in the thesis).

    Args:
        fake, real (`torch.Tensor`): `(B, C, H, W)`.
        labels (`torch.Tensor`): `(B, H, W)` integer region labels per image (`stablepaint.regions.label_regions`),
            0 for pixels that belong to no region (lines, outside the mask).

    Returns:
        `torch.Tensor`: a scalar; 0 when no pixel is labelled.
    """
    if fake.shape != real.shape:
        raise ValueError(f"`real` must have the shape of `fake` {tuple(fake.shape)}, got {tuple(real.shape)}.")
    if labels.shape != (fake.shape[0], *fake.shape[-2:]):
        raise ValueError(
            f"`labels` must be (B, H, W) = {(fake.shape[0], *fake.shape[-2:])}, got {tuple(labels.shape)}."
        )
    labels = labels.to(fake.device, torch.long)
    counts = labels.flatten(1).amax(dim=1) + 1  # label 0 included
    offsets = torch.cumsum(counts, 0) - counts
    ids = (labels + offsets[:, None, None]).flatten()
    total = int(counts.sum())
    area = torch.zeros(total, device=fake.device).index_add_(0, ids, torch.ones_like(ids, dtype=torch.float32))

    def region_means(images: torch.Tensor) -> torch.Tensor:
        pixels = images.float().permute(0, 2, 3, 1).reshape(-1, images.shape[1])
        sums = torch.zeros(total, images.shape[1], device=fake.device).index_add_(0, ids, pixels)
        return sums / area.clamp(min=1.0)[:, None]

    error = (region_means(fake) - region_means(real)).abs().mean(dim=1)
    weight = area.index_fill(0, offsets, 0.0)  # label 0: no region
    return (error * weight).sum() / weight.sum().clamp(min=1.0)


def workflow_reconstruction_loss(
    fake: torch.Tensor,
    real: torch.Tensor,
    vgg: Optional[torch.nn.Module] = None,
    lambda_vgg: float = 10.0,
    real_features: Optional[tuple] = None,
) -> torch.Tensor:
    """Appearance distance of the AdaIN optimization, per example (workflow paper, Eq. 6):
    L = ||ŷ - y||₁ + λ_VGG Σ_l ||F_l(ŷ) - F_l(y)||₁, each term a mean over its elements, returned as a `(B,)` tensor
    (sum it: every example's increment then gets its own gradient, whatever the batch size). `real_features` are
    `vgg(real)` when already computed (an optimization loop with a fixed reference computes them once).

    `vgg` is a frozen `stablepaint.models.VGG16Features` (all the layers it returns are used); 1-channel stages are
    repeated to RGB for it. `vgg=None` or `lambda_vgg=0` leaves the L1 term only.
    """
    loss = (fake.float() - real.float()).abs().flatten(1).mean(dim=1)
    if vgg is not None and lambda_vgg > 0:
        if fake.shape[1] == 1:
            fake, real = fake.expand(-1, 3, -1, -1), real.expand(-1, 3, -1, -1)
        fake, real = _to_dtype_of(vgg, fake, real)
        if real_features is None:
            with torch.no_grad():
                real_features = vgg(real)
        for f, r in zip(vgg(fake), real_features):
            loss = loss + lambda_vgg * (f.float() - r.float()).abs().flatten(1).mean(dim=1)
    return loss


def diffusion_target(scheduler, latents: torch.Tensor, noise: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
    """What the UNet learns to predict: the noise (ε-prediction), the velocity (v-prediction) or the clean latents
    (x0-prediction, `prediction_type="sample"`)."""
    prediction_type = scheduler.config.prediction_type
    if prediction_type == "epsilon":
        return noise
    if prediction_type == "v_prediction":
        return scheduler.get_velocity(latents, noise, timesteps)
    if prediction_type == "sample":
        return latents
    raise ValueError(
        f"unsupported `prediction_type` {prediction_type!r}; expected 'epsilon', 'v_prediction' or 'sample'."
    )


def diffusion_loss(
    scheduler,
    model_output: torch.Tensor,
    target: torch.Tensor,
    timesteps: torch.Tensor,
    snr_gamma: Optional[float] = None,
) -> torch.Tensor:
    """
    The MSE of the denoising objective (Ho et al., 2020, eq. 14 — thesis §III.3.4), optionally weighted per sample by
    min-SNR-γ (Hang et al., 2023, as diffusers' `train_text_to_image.py`): `min(SNR, γ) / SNR` for ε-prediction,
    `min(SNR, γ) / (SNR + 1)` for v-prediction and `min(SNR, γ)` for x0-prediction (the same weighting of the
    ε-error: the x0 error is the ε error divided by SNR).
    """
    if snr_gamma is None:
        return F.mse_loss(model_output.float(), target.float(), reduction="mean")
    snr = compute_snr(scheduler, timesteps)
    weights = torch.clamp(snr, max=snr_gamma)
    prediction_type = scheduler.config.prediction_type
    if prediction_type == "v_prediction":
        weights = weights / (snr + 1)
    elif prediction_type != "sample":
        weights = weights / snr
    loss = F.mse_loss(model_output.float(), target.float(), reduction="none")
    loss = loss.mean(dim=list(range(1, loss.ndim))) * weights
    return loss.mean()

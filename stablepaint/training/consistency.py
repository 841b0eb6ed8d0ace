"""Latent consistency distillation (LCM, Luo et al. 2023; LCM-LoRA) math, shared by `train/train_stablepaint_lcm.py`
and its tests. Follows diffusers' `examples/consistency_distillation/train_lcm_distill_lora_sd_wds.py`.

A consistency model maps a noisy latent at any timestep of the teacher's probability-flow ODE to its clean end:
`f(x_t, t) = c_skip(t) * x_t + c_out(t) * x0_pred(x_t, t)`, with `c_skip(0) = 1` and `c_out(0) = 0` (the boundary
condition `f(x_0, 0) = x_0`). Training pulls `f(x_{t_{n+k}}, t_{n+k})` (the student) towards `f(x_{t_n}, t_n)` (the
target, no gradient) where `x_{t_n}` is one DDIM step of the guided teacher from `x_{t_{n+k}}` (`DDIMSolver`).
"""

from __future__ import annotations

from typing import Tuple

import torch
import torch.nn.functional as F

LOSS_TYPES = ("l2", "huber")


def scalings_for_boundary_conditions(
    timestep: torch.Tensor, sigma_data: float = 0.5, timestep_scaling: float = 10.0
) -> Tuple[torch.Tensor, torch.Tensor]:
    """
    `(c_skip, c_out)` of the consistency function at `timestep` (LCM's, as diffusers' `LCMScheduler` uses them).

    Args:
        timestep (`torch.Tensor`): integer timesteps of the 1000-step training schedule.
        sigma_data (`float`, *optional*, defaults to 0.5): the data's standard deviation in the formula.
        timestep_scaling (`float`, *optional*, defaults to 10.0): LCM's scaling of the timestep; the larger, the
            closer `c_skip` is to 0 (and `c_out` to 1) away from `t = 0`.
    """
    scaled = timestep_scaling * timestep.float()
    c_skip = sigma_data**2 / (scaled**2 + sigma_data**2)
    c_out = scaled / (scaled**2 + sigma_data**2) ** 0.5
    return c_skip, c_out


def _append_dims(values: torch.Tensor, ndim: int) -> torch.Tensor:
    return values.reshape(values.shape + (1,) * (ndim - values.ndim))


def _at(table: torch.Tensor, timesteps: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return _append_dims(table.to(like.device)[timesteps.to(like.device)], like.ndim).to(like.dtype)


def _alpha_sigma(alphas_cumprod, timesteps: torch.Tensor, like: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """`(sqrt(ᾱ_t), sqrt(1 - ᾱ_t))` at `timesteps`, shaped to broadcast over `like`."""
    alpha_bar = _at(alphas_cumprod, timesteps, like)
    return alpha_bar.sqrt(), (1 - alpha_bar).sqrt()


def predicted_original_sample(
    model_output: torch.Tensor, timesteps: torch.Tensor, sample: torch.Tensor, prediction_type: str, alphas_cumprod
) -> torch.Tensor:
    """x0 predicted from the UNet's `model_output` at `timesteps` for the noisy `sample` (ε, v or x0 prediction)."""
    alpha, sigma = _alpha_sigma(alphas_cumprod, timesteps, sample)
    if prediction_type == "epsilon":
        return (sample - sigma * model_output) / alpha
    if prediction_type == "v_prediction":
        return alpha * sample - sigma * model_output
    if prediction_type == "sample":
        return model_output
    raise ValueError(f"`prediction_type` must be 'epsilon', 'v_prediction' or 'sample', got {prediction_type!r}.")


def predicted_noise(
    model_output: torch.Tensor, timesteps: torch.Tensor, sample: torch.Tensor, prediction_type: str, alphas_cumprod
) -> torch.Tensor:
    """ε predicted from the UNet's `model_output` at `timesteps` for the noisy `sample`."""
    alpha, sigma = _alpha_sigma(alphas_cumprod, timesteps, sample)
    if prediction_type == "epsilon":
        return model_output
    if prediction_type == "v_prediction":
        return alpha * model_output + sigma * sample
    if prediction_type == "sample":
        return (sample - alpha * model_output) / sigma
    raise ValueError(f"`prediction_type` must be 'epsilon', 'v_prediction' or 'sample', got {prediction_type!r}.")


def consistency_output(
    model_output: torch.Tensor,
    timesteps: torch.Tensor,
    sample: torch.Tensor,
    prediction_type: str,
    alphas_cumprod: torch.Tensor,
    timestep_scaling: float = 10.0,
) -> torch.Tensor:
    """The consistency function `c_skip(t) * sample + c_out(t) * x0_pred` of a UNet output at `timesteps`."""
    c_skip, c_out = scalings_for_boundary_conditions(timesteps, timestep_scaling=timestep_scaling)
    x0 = predicted_original_sample(model_output, timesteps, sample, prediction_type, alphas_cumprod)
    return _append_dims(c_skip.to(sample), sample.ndim) * sample + _append_dims(c_out.to(sample), sample.ndim) * x0


def consistency_loss(prediction: torch.Tensor, target: torch.Tensor, loss_type: str = "l2", huber_c: float = 0.001):
    """Mean L2, or pseudo-Huber `sqrt(d² + c²) - c` (LCM-LoRA's choice), between the student and the target."""
    if loss_type == "l2":
        return F.mse_loss(prediction.float(), target.float())
    if loss_type == "huber":
        diff = prediction.float() - target.float()
        return (torch.sqrt(diff**2 + huber_c**2) - huber_c).mean()
    raise ValueError(f"`loss_type` must be one of {LOSS_TYPES}, got {loss_type!r}.")


class DDIMSolver:
    """
    The deterministic DDIM (η = 0) step between the `num_ddim_timesteps` skipping timesteps of a
    `num_train_timesteps` schedule: `t_n = (n + 1) * k - 1` with `k = num_train_timesteps // num_ddim_timesteps`
    (the timesteps `LCMScheduler` samples from with `original_inference_steps = num_ddim_timesteps`). The step from
    index `n` goes to `t_n - k` (to `alphas_cumprod[0]` from `n = 0`).

    Args:
        alphas_cumprod (`torch.Tensor` or array): the noise scheduler's `alphas_cumprod`.
        timesteps (`int`, *optional*, defaults to 1000): `num_train_timesteps`.
        ddim_timesteps (`int`, *optional*, defaults to 50): the number of solver timesteps.
    """

    def __init__(self, alphas_cumprod, timesteps: int = 1000, ddim_timesteps: int = 50):
        if not 1 <= ddim_timesteps <= timesteps:
            raise ValueError(f"`ddim_timesteps` must lie in [1, {timesteps}], got {ddim_timesteps!r}.")
        alphas_cumprod = torch.as_tensor(alphas_cumprod, dtype=torch.float32)
        self.step_ratio = timesteps // ddim_timesteps
        self.ddim_timesteps = (torch.arange(1, ddim_timesteps + 1) * self.step_ratio).round().long() - 1
        self.ddim_alphas_cumprod = alphas_cumprod[self.ddim_timesteps]
        self.ddim_alphas_cumprod_prev = torch.cat([alphas_cumprod[:1], alphas_cumprod[self.ddim_timesteps[:-1]]])

    def to(self, device) -> "DDIMSolver":
        self.ddim_timesteps = self.ddim_timesteps.to(device)
        self.ddim_alphas_cumprod = self.ddim_alphas_cumprod.to(device)
        self.ddim_alphas_cumprod_prev = self.ddim_alphas_cumprod_prev.to(device)
        return self

    def ddim_step(self, pred_x0: torch.Tensor, pred_noise: torch.Tensor, timestep_index: torch.Tensor):
        """x at the previous solver timestep from the predicted x0 and ε at solver index `timestep_index`."""
        alpha_prev = _append_dims(self.ddim_alphas_cumprod_prev.to(pred_x0.device)[timestep_index], pred_x0.ndim)
        alpha_prev = alpha_prev.to(pred_x0.dtype)
        return alpha_prev.sqrt() * pred_x0 + (1 - alpha_prev).sqrt() * pred_noise

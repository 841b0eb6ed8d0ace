"""The AdaIN optimization of the artistic-workflow model (Tseng et al., "Modeling Artistic Workflows for Image
Generation and Editing", ECCV 2020, §3.2), as pure functions on the networks of `stablepaint.models.workflow`.

- `adain_update` (with `init_adam_state`): one Adam step on the increment `Δp` of the AdaIN parameters with the weight
  decay `λ ⊙ Δp` added to the gradient (Algorithm 1, line 6), differentiable with respect to `λ` so that the learned
  regularization (Algorithm 2) can back-propagate through it;
- `optimize_adain_increment`: Algorithm 1 for one transition, against a full reference (L1 + λ_VGG·VGG, Eq. 6) or a
  partial one (the L1 under the user's strokes only);
- `generate_stages` and `fit_stages`: the sweeps along the workflow, first transition to last, of
  `ArtWorkflowPipeline.generate` (each color stage steered toward the user's strokes) and `invert` (each stage fitted to
  its reference);
- `check_adain_arguments` and `adain_weight_decay`: the checks of the optimization's arguments and the weight decay
  `λ` they select (fixed, learned, or none).

`train/train_art_workflow.py` unrolls `adain_update` to train the regularizer.
"""

from __future__ import annotations

from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

import torch
from torch import nn

from stablepaint.losses import masked_l1, workflow_reconstruction_loss

#: A weight decay per transition: `(transition, adain_params) -> λ` (a float, or a tensor like the parameters).
WeightDecay = Callable[[int, torch.Tensor], Union[float, torch.Tensor]]


def init_adam_state(delta: torch.Tensor) -> Dict[str, Union[torch.Tensor, int]]:
    """A fresh Adam state for the incremental term `delta`."""
    return {"step": 0, "exp_avg": torch.zeros_like(delta), "exp_avg_sq": torch.zeros_like(delta)}


def adain_update(
    delta: torch.Tensor,
    grad: torch.Tensor,
    state: Dict[str, Union[torch.Tensor, int]],
    learning_rate: float,
    weight_decay: Union[float, torch.Tensor, None] = None,
    betas: Tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
) -> torch.Tensor:
    """One Adam step on the AdaIN increment `Δp` with weight decay `λ ⊙ Δp` added to the gradient (Algorithm 1).

    When `weight_decay` is a tensor that requires grad (the learned regularization), the returned `Δp'` is
    differentiable with respect to it, through the first moment (as in the paper's reference code the second moment
    is detached), which is what Algorithm 2 back-propagates through. `state` is updated in place (detached).
    """
    delta = delta.detach()
    if weight_decay is not None:
        grad = grad + weight_decay * delta
    step = state["step"] + 1
    beta1, beta2 = betas
    exp_avg = beta1 * state["exp_avg"] + (1 - beta1) * grad
    exp_avg_sq = beta2 * state["exp_avg_sq"] + (1 - beta2) * grad.detach() ** 2
    denom = (exp_avg_sq / (1 - beta2**step)).sqrt() + eps
    new_delta = delta - learning_rate / (1 - beta1**step) * exp_avg / denom
    state["step"] = step
    state["exp_avg"] = exp_avg.detach()
    state["exp_avg_sq"] = exp_avg_sq.detach()
    return new_delta


def optimize_adain_increment(
    generator: nn.Module,
    image: torch.Tensor,
    reference: torch.Tensor,
    adain_params: torch.Tensor,
    optimize_steps: int,
    learning_rate: float = 0.1,
    weight_decay: Union[float, torch.Tensor, None] = None,
    perceptual: Optional[nn.Module] = None,
    perceptual_weight: float = 10.0,
    reference_mask: Optional[torch.Tensor] = None,
    progress=None,
) -> torch.Tensor:
    r"""Algorithm 1 for one transition: optimize the increment `Δp` of the AdaIN parameters so that
    `generator(image, adain_params=p + Δp)` matches `reference`, with Adam and weight decay `λ ⊙ Δp` added to the
    gradient. Only `Δp` changes: the networks and `p` are fixed.

    Args:
        generator ([`WorkflowStageGenerator`]): The generator `G_k` of the transition.
        image (`torch.Tensor`): The input stage `(B, C_k, H, W)` in [-1, 1] (fixed: its content is encoded once).
        reference (`torch.Tensor`): What the output stage should match, `(B, C_{k+1}, H, W)` in [-1, 1].
        adain_params (`torch.Tensor`): The AdaIN parameters `p = MLP(z)`, `(B, P)`.
        optimize_steps (`int`): Adam steps; 0 returns `Δp = 0`.
        learning_rate (`float`, *optional*, defaults to 0.1): Adam step size α.
        weight_decay (`float` or `torch.Tensor`, *optional*): The weight decay `λ`, one for every parameter or one
            per parameter `(P,)` (the learned regularization, detached here).
        perceptual ([`VGG16Features`], *optional*): The VGG16 of the perceptual term of Eq. 6; without it the loss
            is L1 only.
        perceptual_weight (`float`, *optional*, defaults to 10.0): λ_VGG of Eq. 6.
        reference_mask (`torch.Tensor`, *optional*): `(B, 1, H, W)`, 1 where the reference is defined (a partial
            reference, e.g. under the user's strokes): the loss is then the L1 over those pixels only, and
            `perceptual` must be `None`; an example without any such pixel keeps `Δp = 0`.
        progress (*optional*): A progress bar, updated once per step.

    Returns:
        `torch.Tensor`: `Δp`, `(B, P)`, detached.
    """
    if reference_mask is not None and perceptual is not None:
        raise ValueError("`reference_mask` takes the masked L1 only: pass `perceptual=None`.")
    adain_params = adain_params.detach()
    delta = torch.zeros_like(adain_params)
    if optimize_steps == 0:
        return delta
    state = init_adam_state(delta)
    with torch.no_grad():
        content = generator.encode_content(image)  # the input stage is fixed: encode it once
        reference_features = None
        if perceptual is not None and perceptual_weight > 0:
            rgb = reference.expand(-1, 3, -1, -1) if reference.shape[1] == 1 else reference
            # the reference is fixed: its features are computed once (in the VGG's dtype, which a lazily loaded VGG
            # keeps at float32 whatever the pipeline's)
            reference_features = perceptual(rgb.to(perceptual.dtype))
    if isinstance(weight_decay, torch.Tensor):
        weight_decay = weight_decay.detach()
    for _ in range(optimize_steps):
        delta.requires_grad_(True)
        with torch.enable_grad():
            output = generator.decode(content, adain_params + delta)
            if reference_mask is None:
                loss = workflow_reconstruction_loss(
                    output, reference, perceptual, perceptual_weight, real_features=reference_features
                ).sum()
            else:
                loss = masked_l1(output, reference, reference_mask).sum()
            (grad,) = torch.autograd.grad(loss, delta)
        delta = adain_update(delta, grad, state, learning_rate, weight_decay)
        if progress is not None:
            progress.update()
    return delta.detach()


def generate_stages(
    generation: nn.Module,
    first_stage: torch.Tensor,
    latents: Sequence[torch.Tensor],
    strokes: Optional[Tuple[torch.Tensor, torch.Tensor]] = None,
    optimize_steps: int = 100,
    learning_rate: float = 0.1,
    weight_decay: Optional[WeightDecay] = None,
    progress=None,
    given: Optional[Dict[int, torch.Tensor]] = None,
) -> Tuple[List[torch.Tensor], List[torch.Tensor]]:
    r"""Generate every stage from the first one, stage after stage (§3.1, Eq. 1). With `strokes`, the AdaIN
    parameters `p = MLP(z)` of each 3-channel stage first get the increment Algorithm 1 finds against the partial
    reference the strokes define (`optimize_adain_increment` with `reference_mask`), and the next stage is generated
    from the steered one.

    Args:
        generation ([`ArtWorkflowGenerationModel`]): The generators of the workflow.
        first_stage (`torch.Tensor`): `(B, C_0, H, W)` in [-1, 1].
        latents (`Sequence[torch.Tensor]`): One latent `(B, latent_dim)` per transition.
        strokes (`Tuple[torch.Tensor, torch.Tensor]`, *optional*): The stroke colors `(B, 3, H, W)` in [-1, 1] and the
            stroke mask `(B, 1, H, W)` in {0, 1}, on the stages' device and dtype.
        optimize_steps (`int`, *optional*, defaults to 100), learning_rate (`float`, *optional*, defaults to 0.1):
            Of the optimization of each color stage.
        weight_decay (`Callable`, *optional*): `(transition, adain_params) -> λ` (see `adain_weight_decay`).
        progress (*optional*): A progress bar, updated once per optimization step.
        given (`Dict[int, torch.Tensor]`, *optional*): Stages that are not generated but taken as they are (stage
            index → `(B, C_k, H, W)` in [-1, 1], e.g. the learned flats as the flat stage); the later stages are
            generated from them. Their AdaIN parameters are `MLP(z)`, not optimized.

    Returns:
        `Tuple[List[torch.Tensor], List[torch.Tensor]]`: the `S` stages and the AdaIN parameters each transition
        used (detached).
    """
    stages, used_params = [first_stage], []
    channels = generation.config.stage_channels
    given = given or {}
    for k, generator_k in enumerate(generation.generators):
        params = generator_k.adain_params(latents[k])
        if k + 1 in given:
            stages.append(given[k + 1])
            used_params.append(params.detach())
            continue
        if strokes is not None and channels[k + 1] == 3:
            target, stroke = strokes
            delta = optimize_adain_increment(
                generator_k,
                stages[k],
                target,
                params,
                optimize_steps,
                learning_rate=learning_rate,
                weight_decay=None if weight_decay is None else weight_decay(k, params),
                reference_mask=stroke,
                progress=progress,
            )
            params = params + delta
        stages.append(generator_k(stages[k], adain_params=params))
        used_params.append(params.detach())
    return stages, used_params


def fit_stages(
    generation: nn.Module,
    references: Sequence[torch.Tensor],
    optimize_steps: int,
    learning_rate: float = 0.1,
    weight_decay: Optional[WeightDecay] = None,
    perceptual: Optional[nn.Module] = None,
    perceptual_weight: float = 10.0,
    progress=None,
) -> Tuple[List[torch.Tensor], List[torch.Tensor], List[torch.Tensor], List[torch.Tensor]]:
    r"""Algorithm 1 along the workflow (§3.2): first transition to last, the latent encoder `E_k` reads the stage
    latent `z_k` from its reference, and the increment `Δp` of the AdaIN parameters `p = MLP(z_k)` is optimized so that
    the generator, fed with the previous *regenerated* stage, reproduces the reference; each transition's parameters
    are fixed before the next one is optimized.

    Args:
        generation ([`ArtWorkflowGenerationModel`]): The generators and latent encoders of the workflow.
        references (`Sequence[torch.Tensor]`): The `S` stages to reproduce (the inferred stages and the artwork), in
            [-1, 1]; the first one is taken as is.
        optimize_steps (`int`), learning_rate (`float`, *optional*, defaults to 0.1), perceptual (*optional*),
            perceptual_weight (`float`, *optional*, defaults to 10.0), progress (*optional*): See
            `optimize_adain_increment`.
        weight_decay (`Callable`, *optional*): `(transition, adain_params) -> λ` (see `adain_weight_decay`).

    Returns:
        `Tuple[List[torch.Tensor], ...]`: the `S` regenerated stages, and per transition the latent, the AdaIN
        parameters `p + Δp` and the increment `Δp`.
    """
    stages = [references[0]]
    latents, params, increments = [], [], []
    for k, generator_k in enumerate(generation.generators):
        latent, _ = generation.encoders[k](references[k + 1])
        base = generator_k.adain_params(latent)
        delta = optimize_adain_increment(
            generator_k,
            stages[k],
            references[k + 1],
            base,
            optimize_steps,
            learning_rate=learning_rate,
            weight_decay=None if weight_decay is None else weight_decay(k, base),
            perceptual=perceptual,
            perceptual_weight=perceptual_weight,
            progress=progress,
        )
        stages.append(generator_k(stages[k], adain_params=base + delta))
        latents.append(latent)
        params.append(base + delta)
        increments.append(delta)
    return stages, latents, params, increments


def check_hint_arguments(hint_steps: int, hint_learning_rate: float) -> None:
    """Raise a clear error on the hint-steering arguments of `ArtWorkflowPipeline.generate` that do not fit."""
    if isinstance(hint_steps, bool) or not isinstance(hint_steps, int) or hint_steps < 0:
        raise ValueError(f"`hint_steps` must be an int >= 0, got {hint_steps!r}.")
    if isinstance(hint_learning_rate, bool) or not isinstance(hint_learning_rate, (int, float)):
        raise TypeError(f"`hint_learning_rate` must be a number, got {hint_learning_rate!r}.")
    if not hint_learning_rate > 0:
        raise ValueError(f"`hint_learning_rate` must be positive, got {hint_learning_rate!r}.")


def check_latents(latents, batch_size: int, num: int, dim: int) -> list:
    """`latents` of a `generate` call as a list of `num` entries (one per transition), each `None` or a
    `(batch_size, dim)` tensor; raises a clear error otherwise."""
    if latents is None:
        return [None] * num
    if not isinstance(latents, (list, tuple)) or len(latents) != num:
        raise ValueError(f"`latents` must be a list of {num} tensors (or None entries), one per transition.")
    for k, latent in enumerate(latents):
        if latent is not None and (not isinstance(latent, torch.Tensor) or tuple(latent.shape) != (batch_size, dim)):
            shape = tuple(latent.shape) if isinstance(latent, torch.Tensor) else type(latent).__name__
            raise ValueError(f"`latents[{k}]` must be a tensor of shape ({batch_size}, {dim}), got {shape}.")
    return list(latents)


def check_adain_arguments(
    optimize_steps: int,
    learning_rate: float,
    weight_decay: Optional[float],
    use_learned_regularization: bool,
    regularizer: Optional[nn.Module],
) -> None:
    """Raise a clear error on arguments of the AdaIN optimization of `ArtWorkflowPipeline.invert` that do not fit."""
    if isinstance(optimize_steps, bool) or not isinstance(optimize_steps, int) or optimize_steps < 0:
        raise ValueError(f"`optimize_steps` must be an int >= 0, got {optimize_steps!r}.")
    if weight_decay is not None and use_learned_regularization:
        raise ValueError("`weight_decay` is a fixed regularization: pass `use_learned_regularization=False` with it.")
    for name, value in (("weight_decay", weight_decay), ("learning_rate", learning_rate)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise TypeError(f"`{name}` must be a number, got {type(value).__name__} {value!r}.")
    if weight_decay is not None and not weight_decay >= 0:
        raise ValueError(f"`weight_decay` must be >= 0, got {weight_decay!r}.")
    if use_learned_regularization and optimize_steps > 0 and regularizer is None:
        raise ValueError(
            "`use_learned_regularization=True` needs the pipeline's `regularizer` component (trained with "
            "`train/train_art_workflow.py --phase regularization`); pass `use_learned_regularization=False`."
        )
    if not learning_rate > 0:
        raise ValueError(f"`learning_rate` must be positive, got {learning_rate!r}.")


def adain_weight_decay(
    regularizer: Optional[nn.Module],
    use_learned_regularization: Optional[bool] = None,
    weight_decay: Optional[float] = None,
) -> Optional[WeightDecay]:
    """The weight decay of the AdaIN optimization, as a function `(transition, adain_params) -> λ`, or `None` for no
    weight decay.

    Args:
        regularizer ([`ArtWorkflowRegularizer`], *optional*): The learned per-parameter weight decay (Eq. 7–8).
        use_learned_regularization (`bool`, *optional*): Apply `regularizer`; defaults to `True` when there is one,
            and `True` without one raises.
        weight_decay (`float`, *optional*): A fixed `λ` for every parameter instead (only with
            `use_learned_regularization` `False` or unset).
    """
    if weight_decay is not None:
        if use_learned_regularization:
            raise ValueError(
                "`weight_decay` is a fixed regularization: pass `use_learned_regularization=False` with it."
            )
        if isinstance(weight_decay, bool) or not isinstance(weight_decay, (int, float)) or not weight_decay >= 0:
            raise ValueError(f"`weight_decay` must be a number >= 0, got {weight_decay!r}.")
        return lambda k, params: float(weight_decay)
    if use_learned_regularization is None:
        use_learned_regularization = regularizer is not None
    if not use_learned_regularization:
        return None
    if regularizer is None:
        raise ValueError(
            "`use_learned_regularization=True` needs the pipeline's `regularizer` component (trained with "
            "`train/train_art_workflow.py --phase regularization`); pass `use_learned_regularization=False`."
        )
    return lambda k, params: regularizer.weight_decay(k).to(device=params.device, dtype=params.dtype)


__all__ = [
    "adain_update",
    "adain_weight_decay",
    "check_adain_arguments",
    "fit_stages",
    "generate_stages",
    "init_adam_state",
    "optimize_adain_increment",
]

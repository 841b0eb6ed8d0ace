#!/usr/bin/env python
"""Train StablePaint (thesis §IV.4), latent diffusion colorization, in three stages:

1. `--stage vae`: the illustration autoencoder, a diffusers `AutoencoderKL` (L1 + KL, optional VGG content loss), from
   scratch or fine-tuned from a pretrained VAE (or skip this stage and reuse a pretrained VAE as it is).
2. `--stage context`: the context encoder (lineart + hints → the illustration's latent), trained against the frozen
   VAE: MSE to the illustration latent + L1 of the image the shared (frozen) decoder makes of it.
3. `--stage unet`: the noise model, a `UNet2DConditionModel` whose `conv_in` takes the noisy latent concatenated with
   the lineart, hints, mask and masked-image latents (`stablepaint.utils.diffusion_utils`). ε- or v-prediction, min-SNR
   weighting, EMA, conditioning dropout over the hints (for classifier-free guidance), mixed precision, gradient
   checkpointing, SDPA / xformers, 8-bit Adam, LoRA (`--lora_rank`).

`--pretrained_model_name_or_path` is any Stable-Diffusion-style folder or Hub id (`vae/`, `unet/`, `scheduler/`
sub-folders) or the output of an earlier stage / run of this script; an SD UNet gets its `conv_in` widened with
zero-initialized extra channels.

    accelerate launch train/train_stablepaint.py --stage vae --train_data_dir ../shared/data/adventurer \\
        --output_dir sp-vae --resolution 256
    accelerate launch train/train_stablepaint.py --stage context --pretrained_model_name_or_path sp-vae ...
    accelerate launch train/train_stablepaint.py --stage unet --pretrained_model_name_or_path sp-context ...
"""

import argparse
import logging
import os
import shlex
import sys

import torch
import torch.nn.functional as F
from diffusers import AutoencoderKL, UNet2DConditionModel
from diffusers.models.autoencoders.vae import DiagonalGaussianDistribution
from diffusers.optimization import get_scheduler
from diffusers.training_utils import EMAModel, cast_training_params
from diffusers.utils.import_utils import is_xformers_available
from tqdm.auto import tqdm

from stablepaint import StablePaintPipeline
from stablepaint.losses import diffusion_loss, diffusion_target, stroke_l1
from stablepaint.models.stablepaint import StablePaintContextEncoder, vae_scale_factor
from stablepaint.training.diffusion import (
    load_context_encoder,
    load_noise_scheduler,
    load_unet,
    load_vae,
    sampling_scheduler,
)
from stablepaint.training.ema import register_ema_checkpointing
from stablepaint.training.records import (
    data_attribution,
    data_source_name,
    record_training_args,
    save_model_card,
    tracker_config,
)
from stablepaint.training.utils import (
    add_training_args,
    batch_to_pipeline_inputs,
    build_train_dataloader,
    check_training_args,
    drop_hints,
    epoch_batches,
    log_images,
    make_accelerator,
    push_to_hub,
    resume_from_checkpoint,
    save_checkpoint,
    training_schedule,
    validation_grid,
    weight_dtype,
)
from stablepaint.utils.diffusion_utils import (
    encode_latents,
    encoder_hidden_states,
    masked_image,
    unet_conditioning,
)

logger = logging.getLogger(__name__)

STAGES = ("vae", "context", "unet")
LORA_TARGET_MODULES = ["to_q", "to_k", "to_v", "to_out.0"]


def parse_args(input_args=None):
    parser = add_training_args(argparse.ArgumentParser(description=__doc__), resolution=256, learning_rate=1e-4)
    # Diffusion models train with the usual AdamW settings, not the GAN ones (0.5, 0.9) the shared defaults follow.
    parser.set_defaults(adam_beta1=0.9, adam_beta2=0.999, adam_weight_decay=1e-2)
    group = parser.add_argument_group("StablePaint")
    group.add_argument("--stage", type=str, required=True, choices=STAGES, help="What to train (see above).")
    group.add_argument(
        "--pretrained_model_name_or_path",
        type=str,
        default=None,
        help="SD-style checkpoint folder or Hub id (vae/, unet/, scheduler/), or an earlier stage's output folder.",
    )
    group.add_argument(
        "--pretrained_vae_model_name_or_path", type=str, default=None, help="A VAE folder or Hub id (overrides)."
    )
    group.add_argument("--revision", type=str, default=None)
    group.add_argument("--variant", type=str, default=None, help="Weights variant, e.g. 'fp16'.")
    group.add_argument("--vae_block_out_channels", type=int, nargs="+", default=[64, 128, 256, 256])
    group.add_argument("--latent_channels", type=int, default=4)
    group.add_argument("--unet_block_out_channels", type=int, nargs="+", default=[128, 256, 512, 512])
    group.add_argument("--layers_per_block", type=int, default=2)
    group.add_argument("--cross_attention_dim", type=int, default=256)
    group.add_argument("--attention_head_dim", type=int, default=8)
    group.add_argument("--norm_num_groups", type=int, default=32)
    group.add_argument("--kl_weight", type=float, default=1e-6, help="vae stage: weight of the KL term.")
    group.add_argument(
        "--perceptual_weight", type=float, default=0.0, help="vae stage: weight of the VGG16 relu4_3 content loss."
    )
    group.add_argument(
        "--decoder_loss_weight",
        type=float,
        default=1.0,
        help="context stage: weight of the L1 between the shared decoder's image of the predicted latent and the "
        "illustration (the latent MSE has weight 1).",
    )
    group.add_argument(
        "--full_mask_probability",
        type=float,
        default=None,
        help="Probability of a full mask (no previous image: the `pipe(lineart, hints)` case) among the in-painting "
        "masks of the data; default: 5%% (`random_mask`).",
    )
    group.add_argument(
        "--hint_loss_weight",
        type=float,
        default=0.0,
        help="context stage: weight of an L1 between the decoded image and the stroke colors under the strokes (not in "
        "the thesis; the GAN scripts' --lambda_hint). Needs --decoder_loss_weight > 0.",
    )
    group.add_argument("--prediction_type", type=str, default=None, choices=("epsilon", "v_prediction", "sample"))
    group.add_argument("--num_train_timesteps", type=int, default=1000)
    group.add_argument("--snr_gamma", type=float, default=None, help="min-SNR-γ loss weighting (5.0 recommended).")
    group.add_argument(
        "--conditioning_dropout_prob",
        type=float,
        default=0.1,
        help="Probability of dropping an example's hints (classifier-free guidance over the hints).",
    )
    group.add_argument("--lora_rank", type=int, default=None, help="Train a LoRA of this rank instead of the UNet.")
    group.add_argument("--lora_alpha", type=float, default=None, help="LoRA alpha (defaults to the rank).")
    group.add_argument("--gradient_checkpointing", action="store_true")
    group.add_argument("--enable_xformers_memory_efficient_attention", action="store_true")
    group.add_argument("--use_8bit_adam", action="store_true", help="bitsandbytes' 8-bit AdamW (CUDA).")
    group.add_argument("--lr_scheduler", type=str, default="constant")
    group.add_argument("--lr_warmup_steps", type=int, default=0)
    group.add_argument("--max_grad_norm", type=float, default=1.0)
    group.add_argument("--validation_inference_steps", type=int, default=20)
    group.add_argument("--validation_guidance_scale", type=float, default=3.0)
    args = parser.parse_args(input_args)
    check_training_args(args)
    if args.lora_rank is not None:
        if args.stage != "unet":
            raise ValueError("`--lora_rank` trains a LoRA of the UNet: use it with `--stage unet`.")
        if args.lora_rank < 1:
            raise ValueError(f"`--lora_rank` must be at least 1, got {args.lora_rank}.")
        if args.use_ema:
            raise ValueError("`--use_ema` is not supported with `--lora_rank`.")
        if args.pretrained_model_name_or_path is None:
            raise ValueError("`--lora_rank` adapts a pretrained UNet: give `--pretrained_model_name_or_path`.")
    if args.hint_loss_weight < 0 or (args.hint_loss_weight > 0 and args.decoder_loss_weight <= 0):
        raise ValueError(
            "`--hint_loss_weight` must be >= 0 and needs `--decoder_loss_weight` > 0 (it is on the decoded image)."
        )
    if not 0 <= args.conditioning_dropout_prob < 1:
        raise ValueError(f"`--conditioning_dropout_prob` must lie in [0, 1), got {args.conditioning_dropout_prob}.")
    if args.stage == "context" and args.pretrained_model_name_or_path is None:
        if args.pretrained_vae_model_name_or_path is None:
            raise ValueError("`--stage context` needs a trained VAE: `--pretrained_model_name_or_path` or a VAE path.")
    return args


# ----------------------------------------------------------------------------------------------------------------
# Components
# ----------------------------------------------------------------------------------------------------------------


def make_optimizer(args, parameters):
    if args.use_8bit_adam:
        try:
            import bitsandbytes as bnb
        except ImportError:
            raise ImportError("`--use_8bit_adam` needs bitsandbytes: `pip install bitsandbytes`.") from None
        optimizer_class = bnb.optim.AdamW8bit
    else:
        optimizer_class = torch.optim.AdamW
    return optimizer_class(
        parameters,
        lr=args.learning_rate,
        betas=(args.adam_beta1, args.adam_beta2),
        weight_decay=args.adam_weight_decay,
    )


# ----------------------------------------------------------------------------------------------------------------
# Losses of the three stages
# ----------------------------------------------------------------------------------------------------------------


def vae_loss(args, vae, unwrapped_vae, batch, vgg=None):
    """L1 + KL (+ VGG content) of the illustration autoencoder. The forward goes through the (DDP-wrapped) `vae` so
    that gradients are synchronized; the posterior's moments are read with a hook on the encoder's last layer."""
    image = batch["image"]
    captured = {}
    last = unwrapped_vae.quant_conv if unwrapped_vae.quant_conv is not None else unwrapped_vae.encoder
    handle = last.register_forward_hook(lambda module, inputs, output: captured.update(moments=output))
    try:
        reconstruction = vae(image, sample_posterior=True).sample
    finally:
        handle.remove()
    kl = DiagonalGaussianDistribution(captured["moments"]).kl().mean()
    loss = F.l1_loss(reconstruction.float(), image.float()) + args.kl_weight * kl
    if vgg is not None:
        from stablepaint.losses import content_loss

        loss = loss + args.perceptual_weight * content_loss(vgg, reconstruction, image)
    return loss


def context_loss(args, context_encoder, vae, batch):
    with torch.no_grad():
        target = vae.encode(batch["image"].to(vae.dtype)).latent_dist.mode()
    latents = context_encoder(batch["lineart"], batch["hints"]).latents
    loss = F.mse_loss(latents.float(), target.float())
    if args.decoder_loss_weight > 0:
        # Through the shared decoder (frozen, but differentiable): the latent must decode to the illustration.
        decoded = vae.decode(latents.to(vae.dtype)).sample
        loss = loss + args.decoder_loss_weight * F.l1_loss(decoded.float(), batch["image"].float())
        if args.hint_loss_weight > 0:
            # ... and to the stroke colors under the strokes (a regression otherwise settles on mean colors first).
            loss = loss + args.hint_loss_weight * stroke_l1(decoded.float(), batch["hints"].float())
    return loss


def unet_loss(args, unet, unwrapped_unet, vae, noise_scheduler, batch):
    image, lineart, mask = batch["image"], batch["lineart"], batch["mask"]
    with torch.no_grad():
        latents = encode_latents(vae, image, sample=True).float()
        masked_latents = encode_latents(vae, masked_image(image, mask)).float()
    noise = torch.randn_like(latents)
    timesteps = torch.randint(
        0, noise_scheduler.config.num_train_timesteps, (latents.shape[0],), device=latents.device
    )
    noisy = noise_scheduler.add_noise(latents, noise, timesteps)
    hints = drop_hints(batch["hints"], args.conditioning_dropout_prob)
    conditioning = unet_conditioning(lineart, hints, mask, masked_latents, vae_scale_factor(vae))
    hidden_states = encoder_hidden_states(unwrapped_unet, hints, dtype=noisy.dtype)
    model_input = torch.cat([noisy, conditioning], dim=1)
    prediction = unet(model_input, timesteps, encoder_hidden_states=hidden_states, return_dict=False)[0]
    target = diffusion_target(noise_scheduler, latents, noise, timesteps)
    return diffusion_loss(noise_scheduler, prediction, target, timesteps, args.snr_gamma)


# ----------------------------------------------------------------------------------------------------------------
# Validation
# ----------------------------------------------------------------------------------------------------------------


@torch.no_grad()
def log_validation(args, accelerator, batch, step, vae, unet=None, context_encoder=None, scheduler_config=None):
    count = min(args.num_validation_images, batch["image"].shape[0])
    columns = {"lineart": batch["lineart"][:count], "hints": batch["hints"][:count]}
    if args.stage == "vae":
        columns["reconstruction"] = vae(batch["image"][:count].to(vae.dtype)).sample
    elif args.stage == "context":
        latents = context_encoder(batch["lineart"][:count], batch["hints"][:count]).latents
        columns["context decoded"] = vae.decode(latents.to(vae.dtype)).sample
    else:
        pipeline = StablePaintPipeline(
            vae=vae,
            unet=unet,
            scheduler=sampling_scheduler(scheduler_config),
            context_encoder=context_encoder,
        )
        pipeline.set_progress_bar_config(disable=True)
        inputs = batch_to_pipeline_inputs(batch, count=count)
        generator = torch.Generator(device="cpu").manual_seed(args.seed)
        columns["StablePaint"] = pipeline(
            inputs["lineart"],
            hints=inputs["hints"],
            num_inference_steps=args.validation_inference_steps,
            guidance_scale=args.validation_guidance_scale,
            generator=generator,
        ).images
    columns["illustration"] = batch["image"][:count]
    grid = validation_grid(columns)
    log_images(accelerator, "validation", grid, step)
    grid.save(os.path.join(args.output_dir, f"validation_{args.stage}.png"))
    return grid


# ----------------------------------------------------------------------------------------------------------------
# Training
# ----------------------------------------------------------------------------------------------------------------


def main(args):
    accelerator = make_accelerator(args)
    frozen_dtype = weight_dtype(accelerator)

    vae = load_vae(args)
    context_encoder, unet, noise_scheduler, vgg = None, None, None, None
    widened = False
    if args.stage == "vae":
        model, model_cls = vae, AutoencoderKL
        if args.perceptual_weight > 0:
            from stablepaint.models import VGG16Features

            vgg = _to(VGG16Features.from_weights(layers=("relu4_3",)), accelerator.device, frozen_dtype)
    else:
        vae.requires_grad_(False)
        vae.eval()
        _to(vae, accelerator.device, frozen_dtype)
        if args.stage == "context":
            context_encoder = load_context_encoder(args, vae, create=True)
            model, model_cls = context_encoder, StablePaintContextEncoder
        else:
            context_encoder = load_context_encoder(args, vae, create=False)
            if context_encoder is not None:
                _to(context_encoder.requires_grad_(False), accelerator.device, frozen_dtype)
            unet, widened = load_unet(args, vae)
            noise_scheduler = load_noise_scheduler(args)
            model, model_cls = unet, UNet2DConditionModel
            if args.enable_xformers_memory_efficient_attention:
                if not is_xformers_available():
                    raise ValueError("`--enable_xformers_memory_efficient_attention` needs xformers installed.")
                unet.enable_xformers_memory_efficient_attention()

    if args.lora_rank is not None:
        from peft import LoraConfig

        unet.requires_grad_(False)
        # A UNet whose conv_in was widened in this run has not yet learnt to read the conditioning: adapt conv_in too.
        target_modules = LORA_TARGET_MODULES + (["conv_in"] if widened else [])
        unet.add_adapter(
            LoraConfig(
                r=args.lora_rank,
                lora_alpha=args.lora_alpha or args.lora_rank,
                init_lora_weights="gaussian",
                target_modules=target_modules,
            )
        )
        _to(unet, accelerator.device, frozen_dtype)
        cast_training_params(unet, dtype=torch.float32)  # trainable LoRA weights stay in float32
    else:
        # Weights loaded in half precision (the shipped fp16 pipelines) are trained, and kept by Adam, in float32.
        cast_training_params(model, dtype=torch.float32)
        model.train()
    if args.gradient_checkpointing:
        model.enable_gradient_checkpointing()

    ema = None
    if args.use_ema:
        ema = EMAModel(model.parameters(), decay=args.ema_decay, model_cls=model_cls, model_config=model.config)
        ema.to(accelerator.device)
        register_ema_checkpointing(accelerator, ema)

    parameters = [p for p in model.parameters() if p.requires_grad]
    optimizer = make_optimizer(args, parameters)
    dataloader, transform = build_train_dataloader(args, accelerator)
    model, optimizer, dataloader = accelerator.prepare(model, optimizer, dataloader)
    steps_per_epoch, num_epochs = training_schedule(args, dataloader, accelerator)
    lr_scheduler = get_scheduler(
        args.lr_scheduler,
        optimizer=optimizer,
        num_warmup_steps=args.lr_warmup_steps * accelerator.num_processes,
        num_training_steps=args.max_train_steps * accelerator.num_processes,
    )
    lr_scheduler = accelerator.prepare(lr_scheduler)
    record_training_args(accelerator, args)
    if accelerator.is_main_process:
        accelerator.init_trackers("stablepaint", config=tracker_config(args))

    global_step, first_epoch, skip = resume_from_checkpoint(accelerator, args, steps_per_epoch)
    unwrapped = accelerator.unwrap_model(model)
    total = args.train_batch_size * accelerator.num_processes * args.gradient_accumulation_steps
    logger.info(f"***** StablePaint stage {args.stage}: {args.max_train_steps} steps, total batch {total} *****")
    progress = tqdm(
        range(args.max_train_steps), initial=global_step, desc="Steps", disable=not accelerator.is_local_main_process
    )
    validation_batch = None
    for epoch in range(first_epoch, num_epochs):
        if global_step >= args.max_train_steps:
            break  # resumed from a checkpoint at (or past) the last step: nothing left to train
        for batch in epoch_batches(accelerator, dataloader, transform, epoch, skip if epoch == first_epoch else 0):
            if validation_batch is None:
                validation_batch = {k: v[: args.num_validation_images].clone() for k, v in batch.items() if _is_t(v)}
            with accelerator.accumulate(model):
                if args.stage == "vae":
                    loss = vae_loss(args, model, unwrapped, batch, vgg)
                elif args.stage == "context":
                    loss = context_loss(args, model, vae, batch)
                else:
                    loss = unet_loss(args, model, unwrapped, vae, noise_scheduler, batch)
                accelerator.backward(loss)
                if accelerator.sync_gradients and args.max_grad_norm > 0:
                    accelerator.clip_grad_norm_(parameters, args.max_grad_norm)
                optimizer.step()
                lr_scheduler.step()
                optimizer.zero_grad(set_to_none=True)

            if accelerator.sync_gradients:
                global_step += 1
                progress.update(1)
                if ema is not None:
                    ema.step(unwrapped.parameters())
                logs = {
                    "loss": accelerator.gather(loss.detach()[None]).mean().item(),
                    "lr": lr_scheduler.get_last_lr()[0],
                }
                progress.set_postfix(**logs)
                accelerator.log(logs, step=global_step)
                if global_step % args.checkpointing_steps == 0:
                    save_checkpoint(accelerator, args.output_dir, global_step, args.checkpoints_total_limit)
                if args.validation_steps and global_step % args.validation_steps == 0 and accelerator.is_main_process:
                    with _ema_weights(ema, unwrapped):
                        log_validation(
                            args,
                            accelerator,
                            validation_batch,
                            global_step,
                            vae=unwrapped if args.stage == "vae" else vae,
                            unet=unwrapped if args.stage == "unet" else None,
                            context_encoder=unwrapped if args.stage == "context" else context_encoder,
                            scheduler_config=noise_scheduler.config if noise_scheduler is not None else None,
                        )
                if global_step >= args.max_train_steps:
                    break
        if global_step >= args.max_train_steps:
            break

    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        if ema is not None:
            ema.copy_to(unwrapped.parameters())
        export(args, unwrapped, vae, context_encoder, noise_scheduler, global_step, widened)
        if args.push_to_hub:
            push_to_hub(args, args.output_dir, commit_message=f"StablePaint {args.stage} stage, step {global_step}")
    accelerator.end_training()


def export(args, model, vae, context_encoder, noise_scheduler, global_step, widened=False):
    """Write what the stage made as `save_pretrained` folders, and the model card."""
    output_dir = args.output_dir
    if args.stage == "vae":
        model.save_pretrained(os.path.join(output_dir, "vae"))
        what = "the illustration autoencoder (`vae/`)"
    elif args.stage == "context":
        vae.save_pretrained(os.path.join(output_dir, "vae"))
        model.save_pretrained(os.path.join(output_dir, "context_encoder"))
        what = "the context encoder (`context_encoder/`) and the VAE it was trained against (`vae/`)"
    elif args.lora_rank is not None:
        from peft.utils import get_peft_model_state_dict

        lora_layers = {k: v.detach().to("cpu", torch.float32) for k, v in get_peft_model_state_dict(model).items()}
        what = f"a rank-{args.lora_rank} LoRA of the UNet (`pytorch_lora_weights.safetensors`)"
        if widened:
            # The base was an SD UNet widened in this run: save the widened base (its new conv_in channels are still
            # zero) beside the LoRA, which only loads into a UNet of that width.
            model.unload_lora()
            _save_pipeline(output_dir, vae, _to(model, "cpu", torch.float32), context_encoder, noise_scheduler)
            what += " and its base pipeline, the pretrained UNet with `conv_in` widened"
        StablePaintPipeline.save_lora_weights(output_dir, unet_lora_layers=lora_layers)
    else:
        _save_pipeline(output_dir, vae, model, context_encoder, noise_scheduler)
        what = "the whole `StablePaintPipeline`"
    write_model_card(args, what, global_step, widened)


def _save_pipeline(output_dir, vae, unet, context_encoder, noise_scheduler):
    pipeline = StablePaintPipeline(
        vae=_to(vae, "cpu", torch.float32),
        unet=unet,
        scheduler=sampling_scheduler(noise_scheduler.config),
        context_encoder=None if context_encoder is None else _to(context_encoder, "cpu", torch.float32),
    )
    pipeline.save_pretrained(output_dir)


def write_model_card(args, what, global_step, widened=False):
    base_model = args.pretrained_model_name_or_path or args.pretrained_vae_model_name_or_path
    card_data = {
        "license": "apache-2.0",
        "tags": ["stablepaint", "lineart", "colorization", "diffusers", "latent-diffusion", f"stage-{args.stage}"],
        "datasets": [args.dataset_name] if args.dataset_name else None,
        "base_model": base_model if base_model and not os.path.isdir(base_model) else None,
    }
    if args.lora_rank is not None:
        card_data["tags"].append("lora")
    validation = f"validation_{args.stage}.png"
    save_model_card(
        args.output_dir,
        "stablepaint_card.md",
        {k: v for k, v in card_data.items() if v is not None},
        model_name=os.path.basename(os.path.abspath(args.output_dir)),
        lora_base=os.path.basename(os.path.abspath(args.output_dir)) if widened else base_model,
        stage=args.stage,
        what=what,
        base_model=base_model or "none (trained from scratch)",
        source=data_source_name(args),
        attribution=data_attribution(args, missing="See the source's license and attribution requirements."),
        command="accelerate launch train/train_stablepaint.py " + shlex.join(sys.argv[1:]),
        resolution=args.resolution,
        steps=global_step,
        batch_size=args.train_batch_size,
        learning_rate=args.learning_rate,
        mixed_precision=args.mixed_precision or "no",
        lora_rank=args.lora_rank,
        validation_image=validation if os.path.isfile(os.path.join(args.output_dir, validation)) else None,
    )


class _ema_weights:
    """Run a block with the EMA weights in `model` (diffusers' store / copy_to / restore)."""

    def __init__(self, ema, model):
        self.ema, self.model = ema, model

    def __enter__(self):
        if self.ema is not None:
            self.ema.store(self.model.parameters())
            self.ema.copy_to(self.model.parameters())

    def __exit__(self, *exc):
        if self.ema is not None:
            self.ema.restore(self.model.parameters())


def _to(module, device, dtype):
    """Move `module`; cast it only when its dtype changes (diffusers warns on every dtype cast)."""
    module.to(device)
    return module if module.dtype == dtype else module.to(dtype=dtype)


def _is_t(value) -> bool:
    return isinstance(value, torch.Tensor)


if __name__ == "__main__":
    main(parse_args())

#!/usr/bin/env python
"""Few-step StablePaint: latent consistency distillation of a trained StablePaint into a LoRA (LCM-LoRA, Luo et al.
2023), after diffusers' `examples/consistency_distillation/train_lcm_distill_lora_sd_wds.py`.

The teacher is the pretrained UNet (LoRA adapters disabled, frozen) with classifier-free guidance over the hints at
`--guidance_scale` (default: the pipeline's `default_guidance_scale`); the student is the same UNet with a peft LoRA.
Each step noises a latent to a solver timestep `t_{n+k}`, runs one DDIM step of the guided teacher to `t_n`
(`--num_ddim_timesteps` skipping timesteps), and pulls the student's consistency output at `t_{n+k}` towards its own
output at `t_n` (no gradient): `stablepaint.training.consistency`. The result, `pytorch_lora_weights.safetensors`, is
sampled with diffusers' `LCMScheduler` in 1-4 steps at guidance 1:

    accelerate launch train/train_stablepaint_lcm.py --pretrained_model_name_or_path \\
        stablepaint/hub/shipped/stablepaint-adventurer --train_data_dir ../shared/data/adventurer \\
        --exclude_ids 2480 ... 2499 --resolution 128 --output_dir sp-lcm-lora

    pipe = StablePaintPipeline.from_pretrained("stablepaint-adventurer")
    pipe.load_lora_weights("sp-lcm-lora")
    pipe.scheduler = LCMScheduler.from_config(pipe.scheduler.config)
    images = pipe(lineart, hints=hints, num_inference_steps=4, guidance_scale=1).images
"""

import argparse
import logging
import os
import shlex
import sys
import time

import torch
from diffusers import DDPMScheduler, LCMScheduler
from diffusers.optimization import get_scheduler
from diffusers.training_utils import cast_training_params
from tqdm.auto import tqdm

from stablepaint import StablePaintPipeline
from stablepaint.models.stablepaint import vae_scale_factor
from stablepaint.training.consistency import (
    LOSS_TYPES,
    DDIMSolver,
    consistency_loss,
    consistency_output,
    predicted_noise,
    predicted_original_sample,
)
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
from stablepaint.utils.diffusion_utils import encode_latents, encoder_hidden_states, masked_image, unet_conditioning

logger = logging.getLogger(__name__)

# LCM-LoRA's target modules for a Stable Diffusion UNet (diffusers' train_lcm_distill_lora_sd_wds.py): attention,
# feed-forward, and the ResNet / resampling convolutions and time projections. StablePaint's UNets are small and
# most of their weights are in the ResNets (the shipped one has attention at two of three levels only), so an
# attention-only LoRA would leave most of the network unchanged.
LCM_LORA_TARGET_MODULES = [
    "to_q",
    "to_k",
    "to_v",
    "to_out.0",
    "proj_in",
    "proj_out",
    "ff.net.0.proj",
    "ff.net.2",
    "conv1",
    "conv2",
    "conv_shortcut",
    "downsamplers.0.conv",
    "upsamplers.0.conv",
    "time_emb_proj",
]


def parse_args(input_args=None):
    parser = add_training_args(argparse.ArgumentParser(description=__doc__), resolution=128, learning_rate=1e-4)
    parser.set_defaults(adam_beta1=0.9, adam_beta2=0.999, adam_weight_decay=1e-2, validation_steps=0)
    group = parser.add_argument_group("LCM distillation")
    group.add_argument(
        "--pretrained_model_name_or_path",
        type=str,
        required=True,
        help="The teacher: a saved StablePaintPipeline folder (e.g. stablepaint/hub/shipped/stablepaint-adventurer).",
    )
    group.add_argument("--lora_rank", type=int, default=16, help="Rank of the student's LoRA.")
    group.add_argument("--lora_alpha", type=float, default=None, help="LoRA alpha (defaults to the rank).")
    group.add_argument(
        "--guidance_scale",
        type=float,
        default=None,
        help="The teacher's classifier-free guidance over the hints (default: the pipeline's default_guidance_scale).",
    )
    group.add_argument("--num_ddim_timesteps", type=int, default=50, help="Timesteps of the teacher's DDIM solver.")
    group.add_argument("--timestep_scaling", type=float, default=10.0, help="LCM's c_skip / c_out timestep scaling.")
    group.add_argument("--loss_type", type=str, default="huber", choices=LOSS_TYPES)
    group.add_argument("--huber_c", type=float, default=0.001, help="The pseudo-Huber loss' c.")
    group.add_argument("--lr_scheduler", type=str, default="constant")
    group.add_argument("--lr_warmup_steps", type=int, default=0)
    group.add_argument("--max_grad_norm", type=float, default=1.0)
    group.add_argument("--validation_inference_steps", type=int, default=4)
    args = parser.parse_args(input_args)
    check_training_args(args)
    if args.lora_rank < 1:
        raise ValueError(f"`--lora_rank` must be at least 1, got {args.lora_rank}.")
    if args.use_ema:
        raise ValueError("`--use_ema` is not supported: the LCM target is the student itself, without gradient.")
    if not 1 <= args.num_ddim_timesteps <= 1000:
        raise ValueError(f"`--num_ddim_timesteps` must lie in [1, 1000], got {args.num_ddim_timesteps}.")
    if args.guidance_scale is not None and args.guidance_scale < 0:
        raise ValueError(f"`--guidance_scale` must be >= 0, got {args.guidance_scale}.")
    if args.huber_c <= 0:
        raise ValueError(f"`--huber_c` must be > 0, got {args.huber_c}.")
    return args


class Distiller:
    """The frozen pieces of the distillation and one step's loss: the VAE, the noise schedule, the DDIM solver, the
    teacher's guidance. `unet` is the (possibly DDP-wrapped) student; `unwrapped` the peft-adapted UNet itself."""

    def __init__(self, args, vae, scheduler_config, guidance_scale, device):
        self.args, self.vae, self.guidance_scale = args, vae, guidance_scale
        noise_scheduler = DDPMScheduler.from_config(scheduler_config)
        self.noise_scheduler = noise_scheduler
        self.prediction_type = noise_scheduler.config.prediction_type
        self.alphas_cumprod = noise_scheduler.alphas_cumprod.to(device)
        num_train_timesteps = noise_scheduler.config.num_train_timesteps
        self.solver = DDIMSolver(noise_scheduler.alphas_cumprod, num_train_timesteps, args.num_ddim_timesteps)
        self.solver.to(device)

    def _predict(self, unet, sample, timesteps, conditioning, hidden_states):
        model_input = torch.cat([sample, conditioning], dim=1).to(sample.dtype)
        return unet(model_input, timesteps, encoder_hidden_states=hidden_states, return_dict=False)[0].float()

    def loss(self, unet, unwrapped, batch):
        """The consistency distillation loss of one batch."""
        image, lineart, mask, hints = batch["image"], batch["lineart"], batch["mask"], batch["hints"]
        vae, solver, alphas = self.vae, self.solver, self.alphas_cumprod
        with torch.no_grad():
            latents = encode_latents(vae, image, sample=True).float()
            masked_latents = encode_latents(vae, masked_image(image, mask)).float()
        factor = vae_scale_factor(vae)
        conditioning = unet_conditioning(lineart, hints, mask, masked_latents, factor)
        hidden_states = encoder_hidden_states(unwrapped, hints, dtype=latents.dtype)
        bsz = latents.shape[0]
        # Solver timestep t_{n+k} of the student, and t_n one DDIM step below it (0 at the bottom).
        index = torch.randint(0, self.args.num_ddim_timesteps, (bsz,), device=latents.device)
        start_timesteps = solver.ddim_timesteps[index]
        timesteps = (start_timesteps - solver.step_ratio).clamp_min(0)
        noise = torch.randn_like(latents)
        noisy = self.noise_scheduler.add_noise(latents, noise, start_timesteps)

        # Student: the consistency function at t_{n+k}.
        student = self._predict(unet, noisy, start_timesteps, conditioning, hidden_states)
        scaling = self.args.timestep_scaling
        prediction = consistency_output(student, start_timesteps, noisy, self.prediction_type, alphas, scaling)

        with torch.no_grad():
            # Teacher (adapters off): guided x0 and ε at t_{n+k}, then one DDIM step to t_n.
            unwrapped.disable_adapters()
            try:
                no_hints = torch.zeros_like(hints)
                uncond_conditioning = unet_conditioning(lineart, no_hints, mask, masked_latents, factor)
                both = self._predict(
                    unwrapped,
                    torch.cat([noisy, noisy]),
                    torch.cat([start_timesteps, start_timesteps]),
                    torch.cat([uncond_conditioning, conditioning]),
                    torch.cat([encoder_hidden_states(unwrapped, no_hints, dtype=latents.dtype), hidden_states]),
                )
            finally:
                unwrapped.enable_adapters()
            uncond, cond = both.chunk(2)
            guided = uncond + self.guidance_scale * (cond - uncond)
            x0 = predicted_original_sample(guided, start_timesteps, noisy, self.prediction_type, alphas)
            eps = predicted_noise(guided, start_timesteps, noisy, self.prediction_type, alphas)
            previous = solver.ddim_step(x0, eps, index)
            # Target: the student itself (no gradient) at t_n.
            target_output = self._predict(unwrapped, previous, timesteps, conditioning, hidden_states)
            target = consistency_output(target_output, timesteps, previous, self.prediction_type, alphas, scaling)
        return consistency_loss(prediction, target, self.args.loss_type, self.args.huber_c)


def add_lora(args, unet):
    """Freeze `unet` and add the student's LoRA (`LCM_LORA_TARGET_MODULES` present in it)."""
    from peft import LoraConfig

    unet.requires_grad_(False)
    names = {name for name, _ in unet.named_modules()}
    targets = [t for t in LCM_LORA_TARGET_MODULES if any(n == t or n.endswith("." + t) for n in names)]
    unet.add_adapter(
        LoraConfig(
            r=args.lora_rank,
            lora_alpha=args.lora_alpha or args.lora_rank,
            init_lora_weights="gaussian",
            target_modules=targets,
        )
    )
    return targets


@torch.no_grad()
def log_validation(args, accelerator, pipeline, unet, batch, step):
    """A grid of the student's 4-step (`--validation_inference_steps`) LCM samples at guidance 1."""
    count = min(args.num_validation_images, batch["image"].shape[0])
    student = StablePaintPipeline(
        vae=pipeline.vae, unet=unet, scheduler=LCMScheduler.from_config(pipeline.scheduler.config)
    )
    student.set_progress_bar_config(disable=True)
    inputs = batch_to_pipeline_inputs(batch, count=count)
    generator = torch.Generator(device="cpu").manual_seed(args.seed)
    images = student(
        inputs["lineart"],
        hints=inputs["hints"],
        num_inference_steps=args.validation_inference_steps,
        guidance_scale=1.0,
        generator=generator,
    ).images
    columns = {"lineart": batch["lineart"][:count], "hints": batch["hints"][:count], "LCM-LoRA": images}
    columns["illustration"] = batch["image"][:count]
    grid = validation_grid(columns)
    log_images(accelerator, "validation", grid, step)
    grid.save(os.path.join(args.output_dir, "validation_lcm.png"))


def main(args=None):
    """Distill; `args` is a parsed namespace or a list of command-line flags (`None`: `sys.argv`)."""
    if args is None or isinstance(args, (list, tuple)):
        args = parse_args(args)
    accelerator = make_accelerator(args)
    frozen_dtype = weight_dtype(accelerator)

    pipeline = StablePaintPipeline.from_pretrained(args.pretrained_model_name_or_path)
    if pipeline.image_encoder is not None:
        raise ValueError("pipelines with an `image_encoder` are not supported by the LCM distillation yet.")
    guidance_scale = args.guidance_scale
    if guidance_scale is None:
        guidance_scale = float(pipeline.config.default_guidance_scale)
    vae, unet = pipeline.vae, pipeline.unet
    vae.requires_grad_(False).eval().to(accelerator.device, dtype=frozen_dtype)
    targets = add_lora(args, unet)
    unet.to(accelerator.device, dtype=frozen_dtype)
    cast_training_params(unet, dtype=torch.float32)  # the trainable LoRA weights stay in float32
    distiller = Distiller(args, vae, pipeline.scheduler.config, guidance_scale, accelerator.device)
    logger.info(f"LoRA rank {args.lora_rank} on {targets}; teacher guidance {guidance_scale}")

    parameters = [p for p in unet.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(
        parameters,
        lr=args.learning_rate,
        betas=(args.adam_beta1, args.adam_beta2),
        weight_decay=args.adam_weight_decay,
    )
    dataloader, transform = build_train_dataloader(args, accelerator)
    model, optimizer, dataloader = accelerator.prepare(unet, optimizer, dataloader)
    steps_per_epoch, num_epochs = training_schedule(args, dataloader, accelerator)
    lr_scheduler = accelerator.prepare(
        get_scheduler(
            args.lr_scheduler,
            optimizer=optimizer,
            num_warmup_steps=args.lr_warmup_steps * accelerator.num_processes,
            num_training_steps=args.max_train_steps * accelerator.num_processes,
        )
    )
    record_training_args(accelerator, args)
    if accelerator.is_main_process:
        accelerator.init_trackers("stablepaint-lcm", config=tracker_config(args))

    global_step, first_epoch, skip = resume_from_checkpoint(accelerator, args, steps_per_epoch)
    unwrapped = accelerator.unwrap_model(model)
    logger.info(
        f"***** LCM distillation: {args.max_train_steps} steps, batch {args.train_batch_size} per process *****"
    )
    progress = tqdm(
        range(args.max_train_steps), initial=global_step, desc="Steps", disable=not accelerator.is_local_main_process
    )
    started, first_step = time.perf_counter(), global_step
    for epoch in range(first_epoch, num_epochs):
        if global_step >= args.max_train_steps:
            break
        for batch in epoch_batches(accelerator, dataloader, transform, epoch, skip if epoch == first_epoch else 0):
            with accelerator.accumulate(model), accelerator.autocast():
                loss = distiller.loss(model, unwrapped, batch)
                accelerator.backward(loss)
                if accelerator.sync_gradients and args.max_grad_norm > 0:
                    accelerator.clip_grad_norm_(parameters, args.max_grad_norm)
                optimizer.step()
                lr_scheduler.step()
                optimizer.zero_grad(set_to_none=True)
            if accelerator.sync_gradients:
                global_step += 1
                progress.update(1)
                logs = {
                    "loss": accelerator.gather(loss.detach()[None]).mean().item(),
                    "lr": lr_scheduler.get_last_lr()[0],
                }
                progress.set_postfix(**logs)
                accelerator.log(logs, step=global_step)
                if global_step % args.checkpointing_steps == 0:
                    save_checkpoint(accelerator, args.output_dir, global_step, args.checkpoints_total_limit)
                if args.validation_steps and global_step % args.validation_steps == 0 and accelerator.is_main_process:
                    log_validation(args, accelerator, pipeline, unwrapped, batch, global_step)
                if global_step >= args.max_train_steps:
                    break
    seconds = time.perf_counter() - started
    if global_step > first_step:
        accelerator.print(f"{(seconds / (global_step - first_step)):.2f} s/step over {global_step - first_step} steps")

    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        export(args, unwrapped, global_step, guidance_scale, targets, seconds)
        if args.push_to_hub:
            push_to_hub(args, args.output_dir, commit_message=f"StablePaint LCM-LoRA, step {global_step}")
    accelerator.end_training()
    return args.output_dir


def export(args, unet, global_step, guidance_scale, targets, seconds):
    """Write `pytorch_lora_weights.safetensors` and the model card into `--output_dir`."""
    from peft.utils import get_peft_model_state_dict

    lora_layers = {k: v.detach().to("cpu", torch.float32) for k, v in get_peft_model_state_dict(unet).items()}
    StablePaintPipeline.save_lora_weights(args.output_dir, unet_lora_layers=lora_layers)
    base_model = args.pretrained_model_name_or_path
    card_data = {
        "license": "apache-2.0",
        "tags": ["stablepaint", "lineart", "colorization", "diffusers", "lora", "lcm", "lcm-lora"],
        "base_model": None if os.path.isdir(base_model) else base_model,
        "datasets": [args.dataset_name] if args.dataset_name else None,
    }
    save_model_card(
        args.output_dir,
        "stablepaint_lcm_card.md",
        {k: v for k, v in card_data.items() if v is not None},
        model_name=os.path.basename(os.path.abspath(args.output_dir)),
        base_model=base_model,
        source=data_source_name(args),
        attribution=data_attribution(args, missing="See the source's license and attribution requirements."),
        command="accelerate launch train/train_stablepaint_lcm.py " + shlex.join(sys.argv[1:]),
        resolution=args.resolution,
        steps=global_step,
        hours=f"{seconds / 3600:.2f}",
        batch_size=args.train_batch_size,
        learning_rate=args.learning_rate,
        mixed_precision=args.mixed_precision or "no",
        lora_rank=args.lora_rank,
        targets=", ".join(f"`{t}`" for t in targets),
        guidance_scale=guidance_scale,
        num_ddim_timesteps=args.num_ddim_timesteps,
        loss_type=args.loss_type,
        exclude_ids=" ".join(args.exclude_ids) or "none",
    )


if __name__ == "__main__":
    main(parse_args())

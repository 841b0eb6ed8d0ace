#!/usr/bin/env python
"""Train the artistic-workflow model (Tseng et al., "Modeling Artistic Workflows for Image Generation and Editing",
ECCV 2020) with accelerate.

Phases (`--phase`), following the paper and its reference code:

- `inference`: the workflow-inference nets `I_k` (pix2pix), hinge GAN + λ_L1·L1 (Eq. 5);
- `generation`: the artwork-generation nets (generator `G_k` + latent encoder `E_k`) with the BicycleGAN objective
  (hinge GAN on encoded and on random latents, λ_L1·L1, λ_latent·latent regression, λ_KL·KL; Eq. 9) plus λ_c·cycle
  consistency through the (frozen) inference net (Eq. 2–3); the inference nets come from
  `--pretrained_model_name_or_path` (a pipeline from a previous `inference` run);
- `all`: both modules in the same steps (the reference code's "all" mode; the cycle loss then goes through the
  inference nets being trained, without updating them);
- `regularization`: the learned weight-decay hyper-parameters of the AdaIN optimization (Algorithm 2, Eq. 7–8),
  for a trained pipeline (`--pretrained_model_name_or_path`).

In the first three phases each network is first trained separately (every network reads ground-truth stages) for
`--separate_steps` steps, then jointly (each network reads the previous network's outputs), as in the paper's
schedule. Every phase ends with the pipeline's `save_pretrained` in `--output_dir` (and the discriminators in
`--output_dir/discriminators`, which the regularization phase reuses).

    accelerate launch train/train_art_workflow.py --train_data_dir ../shared/data/adventurer \
        --exclude_ids _2494_ _2495_ _2496_ _2497_ _2498_ _2499_ --resolution 128 --output_dir art-workflow
    accelerate launch train/train_art_workflow.py --phase regularization --pretrained_model_name_or_path \
        art-workflow --train_data_dir ../shared/data/adventurer --vgg_weights vgg16_features.safetensors \
        --output_dir art-workflow-reg
"""

from __future__ import annotations

import argparse
import functools
import logging
import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.func import functional_call

from stablepaint import ArtWorkflowPipeline
from stablepaint.data.workflow import WorkflowStagesTransform, load_workflow_source
from stablepaint.losses import (
    hinge_discriminator_loss,
    hinge_generator_loss,
    kl_divergence,
    workflow_reconstruction_loss,
)
from stablepaint.models.perceptual import VGG16Features
from stablepaint.models.workflow import (
    ArtWorkflowDiscriminators,
    ArtWorkflowRegularizer,
    adain_update,
    init_adam_state,
)
from stablepaint.synthesis.stages import STAGE_NAMES
from stablepaint.training.records import (
    data_attribution,
    data_source_name,
    record_training_args,
    save_model_card,
    tracker_config,
)
from stablepaint.training.utils import (
    add_training_args,
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
)
from stablepaint.training.workflow import build_art_workflow

logger = logging.getLogger(__name__)

PHASES = ("all", "inference", "generation", "regularization")
PERCEPTUAL_LAYERS = ("relu1_2", "relu2_2", "relu3_3", "relu4_3")
#: The flags `hub_cards/art_workflow_card.md` states.
CARD_ARGS = (
    "resolution",
    "train_batch_size",
    "learning_rate",
    "adam_beta1",
    "adam_beta2",
    "lambda_l1_inference",
    "lambda_l1",
    "lambda_latent",
    "lambda_kl",
    "lambda_cycle",
    "reg_learning_rate",
    "reg_inner_learning_rate",
    "reg_lambda_vgg",
)


def parse_args(input_args=None):
    parser = argparse.ArgumentParser(description="Train the artistic-workflow model (paper 004).")
    add_training_args(parser, resolution=128, learning_rate=2e-4)
    # The paper's optimizer: Adam, lr 2e-4, betas (0.5, 0.999), batch size 8.
    parser.set_defaults(adam_beta1=0.5, adam_beta2=0.999, train_batch_size=8, output_dir="art-workflow")
    group = parser.add_argument_group("artistic workflow")
    group.add_argument("--phase", type=str, default="all", choices=PHASES, help="What to train (see the docstring).")
    group.add_argument(
        "--separate_steps",
        type=int,
        default=None,
        help="Steps of separate training before joint training (default: 2/3 of the steps, the paper's 40 + 20 "
        "epochs).",
    )
    group.add_argument("--pretrained_model_name_or_path", type=str, default=None, help="A saved ArtWorkflowPipeline.")
    group.add_argument("--stage_names", type=str, nargs="+", default=list(STAGE_NAMES), help="Stages, first to last.")
    group.add_argument("--stage_channels", type=int, nargs="+", default=[1, 3, 3], help="Channels of each stage.")
    group.add_argument("--latent_dim", type=int, default=8)
    group.add_argument("--base_channels", type=int, default=64, help="Generator width (MUNIT `dim`).")
    group.add_argument("--num_downsample", type=int, default=2)
    group.add_argument("--num_res_blocks", type=int, default=4)
    group.add_argument("--mlp_dim", type=int, default=256)
    group.add_argument("--encoder_channels", type=int, default=64)
    group.add_argument("--encoder_blocks", type=int, default=4)
    group.add_argument("--inference_channels", type=int, default=64, help="Inference U-Net width (`ngf`).")
    group.add_argument(
        "--inference_downs", type=int, default=None, help="U-Net depth (default: log2(resolution), at most 8)."
    )
    group.add_argument("--discriminator_channels", type=int, default=64)
    group.add_argument("--discriminator_layers", type=int, default=3)
    group.add_argument("--discriminator_scales", type=int, default=2)
    group.add_argument("--lambda_l1_inference", type=float, default=10.0, help="λ_L1 of Eq. 5.")
    group.add_argument("--lambda_l1", type=float, default=10.0, help="λ_L1 of Eq. 9 (BicycleGAN).")
    group.add_argument("--lambda_latent", type=float, default=0.5, help="λ_latent of Eq. 9 (BicycleGAN).")
    group.add_argument("--lambda_kl", type=float, default=0.01, help="λ_KL of Eq. 9 (BicycleGAN).")
    group.add_argument("--lambda_cycle", type=float, default=1.0, help="λ_c of Eq. 3.")
    reg = parser.add_argument_group("learned regularization (Algorithm 2)")
    reg.add_argument("--reg_learning_rate", type=float, default=1e-3, help="η: Adam step of the hyper-parameters.")
    reg.add_argument("--reg_inner_steps", type=int, default=80, help="AdaIN-optimization steps per training image.")
    reg.add_argument("--reg_inner_learning_rate", type=float, default=0.1, help="α: the AdaIN-optimization step.")
    reg.add_argument("--reg_lambda_vgg", type=float, default=10.0, help="λ_VGG of the reconstruction loss (Eq. 6).")
    reg.add_argument("--reg_lambda_reconstruction", type=float, default=1.0, help="Weight of L_rec in Eq. 7.")
    reg.add_argument(
        "--vgg_weights", type=str, default=None, help="VGG16 safetensors (else $STABLEPAINT_VGG16_WEIGHTS)."
    )
    reg.add_argument("--num_threads", type=int, default=None, help="torch.set_num_threads for CPU runs.")
    args = parser.parse_args(input_args)
    check_training_args(args)
    if len(args.stage_names) != len(args.stage_channels) or len(args.stage_channels) < 2:
        raise ValueError("`--stage_names` and `--stage_channels` must give the same number (>= 2) of stages.")
    if args.phase in ("generation", "regularization") and args.pretrained_model_name_or_path is None:
        raise ValueError(f"`--phase {args.phase}` needs `--pretrained_model_name_or_path` (a trained pipeline).")
    if args.phase != "regularization" and args.train_batch_size < 2:
        raise ValueError("`--train_batch_size` must be >= 2: BicycleGAN splits each batch into encoded/random halves.")
    if args.phase == "regularization" and args.train_batch_size < 2:
        raise ValueError("`--train_batch_size` must be >= 2: the edited inputs of Eq. 7 are the batch's other images.")
    # Every batch is one optimizer step of each network (the networks are stepped in turn, not accumulated), and the
    # generators are exported as trained: refuse the shared flags this script does not implement rather than ignore them.
    if args.gradient_accumulation_steps != 1:
        raise ValueError("`--gradient_accumulation_steps` is not supported by this script: use 1 (the default).")
    if args.use_ema:
        raise ValueError("`--use_ema` is not supported by this script.")
    return args


# ----------------------------------------------------------------------------------------------------------------
# Helpers
# ----------------------------------------------------------------------------------------------------------------


def sync_gradients(accelerator, modules) -> None:
    """Average the gradients of `modules` over the processes.

    The networks are called through their submodules (one per transition), not through the DDP wrapper's `forward`,
    so DDP's own gradient hooks are inactive: the averaging is done here, once per optimizer step.
    """
    if accelerator.num_processes == 1:
        return
    grads = [p.grad for m in modules for p in m.parameters() if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    torch.distributed.all_reduce(flat)
    flat /= accelerator.num_processes
    offset = 0
    for g in grads:
        g.copy_(flat[offset : offset + g.numel()].view_as(g))
        offset += g.numel()


def frozen_call(module, *inputs):
    """Call `module` with its parameters detached: gradients reach the inputs only (BicycleGAN's latent regression
    trains G, not E; the cycle loss of Eq. 2 trains G, not the inference net)."""
    params = {name: p.detach() for name, p in module.named_parameters()}
    return functional_call(module, params, inputs)


def frozen(module):
    """`module` as a callable whose parameters are detached (see `frozen_call`)."""
    return functools.partial(frozen_call, module)


def gan_scores(discriminator, images):
    """The patch scores of every scale of a multi-scale discriminator, flattened into one `(B, N)` tensor."""
    return torch.cat([s.flatten(1) for s in discriminator(images)], dim=1)


#: The data credit of a card when the source has no attribution file and no `--attribution` is given.
DEFAULT_ATTRIBUTION = (
    'DiceBear "Adventurer" by Lisa Wischofsky, licensed CC BY 4.0 (https://www.dicebear.com/styles/adventurer/), '
    "generated with `@dicebear/collection@9` (code MIT)."
)


def build_discriminators(args) -> ArtWorkflowDiscriminators:
    if args.pretrained_model_name_or_path is not None:
        path = Path(args.pretrained_model_name_or_path) / "discriminators"
        if path.is_dir():
            return ArtWorkflowDiscriminators.from_pretrained(str(path))
    return ArtWorkflowDiscriminators(
        stage_channels=tuple(args.stage_channels),
        base_channels=args.discriminator_channels,
        num_layers=args.discriminator_layers,
        num_scales=args.discriminator_scales,
    )


def build_dataloader(args, accelerator):
    """The shared training data path (`build_train_dataloader`) over the workflow stages of the source."""
    transform = WorkflowStagesTransform(
        stage_names=args.stage_names,
        stage_channels=args.stage_channels,
        resolution=args.resolution,
        seed=args.seed,
        train=True,
    )
    load_source = functools.partial(
        load_workflow_source,
        stage_names=args.stage_names,
        image_column=args.image_column,
        lineart_column=args.lineart_column,
    )
    return build_train_dataloader(args, accelerator, transform=transform, load_source=load_source)


# ----------------------------------------------------------------------------------------------------------------
# One training step of each module
# ----------------------------------------------------------------------------------------------------------------


def inference_step(args, accelerator, inference, discriminators, optimizers, stages, joint):
    """Eq. 5 for every inference net: hinge GAN on (stage k+1, stage k) pairs + λ_L1·L1. Returns logs and outputs."""
    optimizer_i, optimizer_d = optimizers
    num = len(stages) - 1
    inputs, fakes = [None] * num, [None] * num
    with accelerator.autocast():
        for k in reversed(range(num)):
            source = stages[k + 1] if (not joint or k == num - 1) else fakes[k + 1].detach()
            inputs[k], fakes[k] = source, inference.nets[k](source)
    # Discriminators
    optimizer_d.zero_grad(set_to_none=True)
    loss_d = 0.0
    with accelerator.autocast():
        for k in range(num):
            d = discriminators.inference[k]
            real = gan_scores(d, torch.cat([inputs[k], stages[k]], 1))
            fake = gan_scores(d, torch.cat([inputs[k], fakes[k].detach()], 1))
            loss_d = loss_d + 0.5 * hinge_discriminator_loss(real, fake)
    accelerator.backward(loss_d)
    sync_gradients(accelerator, [discriminators.inference])
    optimizer_d.step()
    # Inference nets
    optimizer_i.zero_grad(set_to_none=True)
    loss_i, l1_total = 0.0, 0.0
    with accelerator.autocast():
        for k in range(num):
            scores = gan_scores(frozen(discriminators.inference[k]), torch.cat([inputs[k], fakes[k]], 1))
            l1 = F.l1_loss(fakes[k].float(), stages[k].float())
            loss_i = loss_i + hinge_generator_loss(scores) + args.lambda_l1_inference * l1
            l1_total = l1_total + l1.detach()
    accelerator.backward(loss_i)
    sync_gradients(accelerator, [inference])
    optimizer_i.step()
    logs = {"inference/loss_d": loss_d.item(), "inference/loss": loss_i.item(), "inference/l1": float(l1_total) / num}
    return logs, fakes


def generation_step(args, accelerator, generation, inference, discriminators, optimizers, stages, inferred, joint):
    """Eq. 3 / Eq. 9 for every transition: BicycleGAN (cVAE-GAN on the first half of the batch, cLR-GAN on the
    second) + λ_c·cycle consistency through the inference net."""
    optimizer_g, optimizer_d = optimizers
    num = len(stages) - 1
    half = stages[0].shape[0] // 2
    cache = []
    previous = None
    with accelerator.autocast():
        for k in range(num):
            if not joint:
                content = stages[k][:half]
            elif k == 0:
                content = inferred[0][:half].detach() if inferred is not None else stages[0][:half]
            else:
                content = previous.detach()
            target = stages[k + 1][:half]
            real_random = stages[k + 1][half : 2 * half]
            generator_k, encoder_k = generation.generators[k], generation.encoders[k]
            mu, logvar = encoder_k(target)
            z_encoded = mu + torch.randn_like(mu) * (0.5 * logvar).exp()
            z_random = torch.randn_like(mu)
            fake_encoded = generator_k(content, latent=z_encoded)
            fake_random = generator_k(content, latent=z_random)
            cache.append((content, target, real_random, mu, logvar, z_random, fake_encoded, fake_random))
            previous = fake_encoded
    # Discriminators (one on encoded-latent outputs, one on random-latent outputs)
    optimizer_d.zero_grad(set_to_none=True)
    loss_d = 0.0
    with accelerator.autocast():
        for k, (_, target, real_random, _, _, _, fake_encoded, fake_random) in enumerate(cache):
            loss_d = loss_d + hinge_discriminator_loss(
                gan_scores(discriminators.encoded[k], target),
                gan_scores(discriminators.encoded[k], fake_encoded.detach()),
            )
            loss_d = loss_d + hinge_discriminator_loss(
                gan_scores(discriminators.random[k], real_random),
                gan_scores(discriminators.random[k], fake_random.detach()),
            )
    accelerator.backward(loss_d)
    sync_gradients(accelerator, [discriminators.encoded, discriminators.random])
    optimizer_d.step()
    # Generators and encoders
    optimizer_g.zero_grad(set_to_none=True)
    loss_g, logs = 0.0, {"generation/l1": 0.0, "generation/latent": 0.0, "generation/kl": 0.0, "generation/cycle": 0.0}
    with accelerator.autocast():
        for k, (content, target, _, mu, logvar, z_random, fake_encoded, fake_random) in enumerate(cache):
            gan = hinge_generator_loss(gan_scores(frozen(discriminators.encoded[k]), fake_encoded))
            gan = gan + hinge_generator_loss(gan_scores(frozen(discriminators.random[k]), fake_random))
            l1 = F.l1_loss(fake_encoded.float(), target.float())
            kl = kl_divergence(mu, logvar)
            mu_random, _ = frozen_call(generation.encoders[k], fake_random)  # trains G only, as in BicycleGAN
            latent = (mu_random.float() - z_random.float()).abs().mean()
            cycle = F.l1_loss(frozen_call(inference.nets[k], fake_random).float(), content.float())  # Eq. 2
            loss_g = (
                loss_g
                + gan
                + args.lambda_l1 * l1
                + args.lambda_kl * kl
                + args.lambda_latent * latent
                + args.lambda_cycle * cycle
            )
            for name, value in (("l1", l1), ("latent", latent), ("kl", kl), ("cycle", cycle)):
                logs[f"generation/{name}"] += value.item() / num
    accelerator.backward(loss_g)
    sync_gradients(accelerator, [generation])
    optimizer_g.step()
    logs.update({"generation/loss_d": loss_d.item(), "generation/loss": loss_g.item()})
    return logs


def regularization_step(args, accelerator, generation, regularizer, discriminators, optimizers, stages, vgg):
    """Algorithm 2 for every transition: `--reg_inner_steps` steps of the AdaIN optimization of this batch; after
    each one, the hyper-parameters are updated so that the regularized step improves the reconstruction (L_rec of
    the updated increment) while the same AdaIN parameters applied to other inputs (the batch rolled by one: the
    "edited" images) stay realistic for the discriminator (Eq. 7–8)."""
    optimizer_r, optimizer_d = optimizers
    num = len(stages) - 1
    logs = {"regularization/reconstruction": 0.0, "regularization/gan": 0.0, "regularization/weight_decay": 0.0}
    for k in range(num):
        generator_k = generation.generators[k]
        image, reference = stages[k], stages[k + 1]
        other_image, other_reference = stages[k].roll(1, 0), stages[k + 1].roll(1, 0)
        with torch.no_grad():
            base = generator_k.adain_params(generation.encoders[k](reference)[0])
            content = generator_k.encode_content(image)
            other_content = generator_k.encode_content(other_image)
        delta = torch.zeros_like(base)
        state = init_adam_state(delta)
        for _ in range(args.reg_inner_steps):
            delta.requires_grad_(True)
            with accelerator.autocast():
                output = generator_k.decode(content, base + delta)
                loss = workflow_reconstruction_loss(output, reference, vgg, args.reg_lambda_vgg).sum()
            (grad,) = torch.autograd.grad(loss, delta)
            decay = regularizer.weight_decay(k)
            new_delta = adain_update(delta, grad, state, args.reg_inner_learning_rate, decay)  # Algorithm 2, line 5
            with accelerator.autocast():
                reconstruction = workflow_reconstruction_loss(
                    generator_k.decode(content, base + new_delta), reference, vgg, args.reg_lambda_vgg
                ).mean()
                edited = generator_k.decode(other_content, base + new_delta)
                gan = hinge_generator_loss(gan_scores(frozen(discriminators.encoded[k]), edited))
                loss_r = args.reg_lambda_reconstruction * reconstruction + gan  # Eq. 7
            optimizer_r.zero_grad(set_to_none=True)
            accelerator.backward(loss_r)  # Eq. 8: gradient of the hyper-parameters through the update
            sync_gradients(accelerator, [regularizer])
            optimizer_r.step()
            # Keep the discriminator up to date with the regularized edits (as the reference code does)
            optimizer_d.zero_grad(set_to_none=True)
            with accelerator.autocast():
                loss_d = hinge_discriminator_loss(
                    gan_scores(discriminators.encoded[k], other_reference),
                    gan_scores(discriminators.encoded[k], edited.detach()),
                )
            accelerator.backward(loss_d)
            sync_gradients(accelerator, [discriminators.encoded])
            optimizer_d.step()
            delta = new_delta.detach()
        logs["regularization/reconstruction"] += reconstruction.item() / num
        logs["regularization/gan"] += gan.item() / num
        logs["regularization/weight_decay"] += regularizer.weight_decay(k).mean().item() / num
    return logs


# ----------------------------------------------------------------------------------------------------------------
# Main
# ----------------------------------------------------------------------------------------------------------------


def log_validation(accelerator, pipe_modules, batch_stages, step, args):
    generation, inference, regularizer = pipe_modules
    pipe = ArtWorkflowPipeline(artwork_generation=generation, workflow_inference=inference, regularizer=regularizer)
    pipe.set_progress_bar_config(disable=True)
    count = min(args.num_validation_images, batch_stages[0].shape[0])
    with torch.no_grad():
        inferred = inference(batch_stages[-1][:count])
        generated = generation(
            batch_stages[0][:count], [torch.randn(count, generation.config.latent_dim) for _ in generation.generators]
        )
    columns = {f"{name}": batch_stages[i][:count] for i, name in enumerate(args.stage_names)}
    columns.update({f"inferred {name}": inferred[i] for i, name in enumerate(args.stage_names[:-1])})
    columns.update({f"generated {name}": generated[i] for i, name in enumerate(args.stage_names[1:], start=1)})
    log_images(accelerator, "validation", validation_grid(columns, cell=96), step)
    del pipe


def main(args):
    if args.num_threads:
        torch.set_num_threads(args.num_threads)
    accelerator = make_accelerator(args)
    pipe = build_art_workflow(args)
    generation, inference = pipe.artwork_generation, pipe.workflow_inference
    discriminators = build_discriminators(args)
    phase = args.phase
    train_inference = phase in ("all", "inference")
    train_generation = phase in ("all", "generation")

    betas = (args.adam_beta1, args.adam_beta2)
    to_prepare, optimizers = [], {}
    vgg, regularizer = None, None
    if phase == "regularization":
        regularizer = pipe.regularizer or ArtWorkflowRegularizer(num_adain_params=generation.num_adain_params)
        generation.requires_grad_(False).eval()
        inference.requires_grad_(False).eval()
        if args.reg_lambda_vgg > 0:
            vgg = VGG16Features.from_weights(args.vgg_weights, layers=PERCEPTUAL_LAYERS)
        optimizers["regularizer"] = torch.optim.Adam(
            regularizer.parameters(), lr=args.reg_learning_rate, weight_decay=1e-8
        )
        optimizers["discriminator"] = torch.optim.Adam(
            discriminators.encoded.parameters(), lr=2e-4, betas=(0.5, 0.999)
        )
        to_prepare = [regularizer, discriminators]
    else:
        if train_inference:
            optimizers["inference"] = torch.optim.Adam(
                inference.parameters(), lr=args.learning_rate, betas=betas, weight_decay=args.adam_weight_decay
            )
            optimizers["inference_discriminator"] = torch.optim.Adam(
                discriminators.inference.parameters(), lr=args.learning_rate, betas=betas
            )
            to_prepare.append(inference)
        else:
            inference.requires_grad_(False).eval()
        if train_generation:
            optimizers["generation"] = torch.optim.Adam(
                generation.parameters(), lr=args.learning_rate, betas=betas, weight_decay=args.adam_weight_decay
            )
            optimizers["generation_discriminator"] = torch.optim.Adam(
                list(discriminators.encoded.parameters()) + list(discriminators.random.parameters()),
                lr=args.learning_rate,
                betas=betas,
            )
            to_prepare.append(generation)
        to_prepare.append(discriminators)

    dataloader, transform = build_dataloader(args, accelerator)
    names = list(optimizers)
    prepared = accelerator.prepare(*to_prepare, *optimizers.values(), dataloader)
    dataloader = prepared[-1]
    optimizers = dict(zip(names, prepared[len(to_prepare) : -1]))
    device = accelerator.device
    for module in (generation, inference, discriminators):
        module.to(device)
    if regularizer is not None:
        regularizer.to(device)
    if vgg is not None:
        vgg.to(device)

    steps_per_epoch, num_epochs = training_schedule(args, dataloader, accelerator)
    separate_steps = args.separate_steps
    if separate_steps is None:
        separate_steps = (2 * args.max_train_steps) // 3
    global_step, first_epoch, skip = resume_from_checkpoint(accelerator, args, steps_per_epoch)
    record_training_args(accelerator, args)
    if accelerator.is_main_process:
        accelerator.init_trackers("train_art_workflow", config=tracker_config(args))
    logger.info(
        f"phase={phase} steps={args.max_train_steps} (separate {separate_steps}) epochs={num_epochs} "
        f"examples={len(dataloader.dataset)} processes={accelerator.num_processes}"
    )

    from tqdm.auto import tqdm

    progress = tqdm(range(args.max_train_steps), initial=global_step, disable=not accelerator.is_local_main_process)
    done = global_step >= args.max_train_steps
    for epoch in range(first_epoch, num_epochs):
        if done:
            break
        for batch in epoch_batches(accelerator, dataloader, transform, epoch, skip if epoch == first_epoch else 0):
            stages = [batch[name].to(device) for name in args.stage_names]
            joint = global_step >= separate_steps
            logs = {}
            if phase == "regularization":
                logs.update(
                    regularization_step(
                        args,
                        accelerator,
                        generation,
                        regularizer,
                        discriminators,
                        (optimizers["regularizer"], optimizers["discriminator"]),
                        stages,
                        vgg,
                    )
                )
            else:
                inferred = None
                if train_inference:
                    step_logs, fakes = inference_step(
                        args,
                        accelerator,
                        inference,
                        discriminators,
                        (optimizers["inference"], optimizers["inference_discriminator"]),
                        stages,
                        joint,
                    )
                    logs.update(step_logs)
                    inferred = fakes
                elif joint:
                    with torch.no_grad():
                        inferred = inference(stages[-1])
                if train_generation:
                    logs.update(
                        generation_step(
                            args,
                            accelerator,
                            generation,
                            inference,
                            discriminators,
                            (optimizers["generation"], optimizers["generation_discriminator"]),
                            stages,
                            inferred,
                            joint,
                        )
                    )
            global_step += 1
            progress.update(1)
            progress.set_postfix({k.split("/")[-1]: round(v, 3) for k, v in logs.items() if "loss" in k or "l1" in k})
            accelerator.log({**logs, "joint": float(joint)}, step=global_step)
            if global_step % args.checkpointing_steps == 0:
                save_checkpoint(accelerator, args.output_dir, global_step, args.checkpoints_total_limit)
            if accelerator.is_main_process and args.validation_steps and global_step % args.validation_steps == 0:
                log_validation(accelerator, (generation, inference, regularizer), stages, global_step, args)
            if global_step >= args.max_train_steps:
                done = True
                break

    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        final = ArtWorkflowPipeline(
            artwork_generation=generation.to("cpu"),
            workflow_inference=inference.to("cpu"),
            regularizer=(regularizer.to("cpu") if regularizer is not None else pipe.regularizer),
        )
        final.save_pretrained(args.output_dir)
        discriminators.to("cpu").save_pretrained(os.path.join(args.output_dir, "discriminators"))
        save_model_card(
            args.output_dir,
            "art_workflow_card.md",
            card_data={
                "license": "cc-by-4.0",
                "pipeline_tag": "image-to-image",
                "tags": ["stablepaint", "art-workflow", "image-to-image", "gan", "lineart-colorization"],
                **({"datasets": [args.dataset_name]} if args.dataset_name else {}),
            },
            data=data_source_name(args),
            attribution=data_attribution(args, missing=DEFAULT_ATTRIBUTION),
            phase=phase,
            steps=global_step,
            **{name: getattr(args, name) for name in CARD_ARGS},
        )
        if args.push_to_hub:
            push_to_hub(args, args.output_dir, commit_message=f"ArtWorkflow, phase {phase}, step {global_step}")
    accelerator.end_training()


if __name__ == "__main__":
    main(parse_args())

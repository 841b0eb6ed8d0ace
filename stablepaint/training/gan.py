"""The training loop of the conditional WGAN-GP colorizers, PaintsTorch (thesis §IV.2.2.3–4) and StencilTorch
(§IV.3.2.3–4), shared by `train/train_paintstorch.py` and `train/train_stenciltorch.py`.

Each optimization step follows the thesis: one step of the critic C (L_C = L_w + L_gp, λ_gp = 10, drift 1e-3), then
one step of the generator G1 (L_G = λ_adv·L_adv + L_cont + auxiliary term, λ_adv = 1e-4), then one step of the
auxiliary network (PaintsTorch: the lineart generator G2, L_recon; StencilTorch: the guide decoder, w·L_guided).
Adam, lr 1e-4, β = (0.5, 0.9). A `GANTask` says what differs between the two models.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import logging
import os
from dataclasses import dataclass
from typing import Any, Callable, Dict, Optional, Tuple

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from stablepaint.losses import content_loss, region_color_l1, stroke_l1, wgan_generator_loss, wgan_gp_critic_loss
from stablepaint.models import paintstorch_from_stenciltorch
from stablepaint.models.features import SemanticFeatureExtractor
from stablepaint.models.paintstorch import PaintsTorchCritic, PaintsTorchGenerator
from stablepaint.models.perceptual import VGG16Features
from stablepaint.pipelines import PaintsTorchPipeline, StencilTorchPipeline
from stablepaint.regions import label_stack
from stablepaint.training.ema import register_ema_checkpointing
from stablepaint.training.gan_weights import load_pretrained_colorizer
from stablepaint.training.records import record_training_args, tracker_config, write_gan_model_card
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
)

logger = logging.getLogger(__name__)


# ----------------------------------------------------------------------------------------------------------------
# Flags and model construction
# ----------------------------------------------------------------------------------------------------------------


def add_gan_args(parser: argparse.ArgumentParser, auxiliary_weight: float = 1.0) -> argparse.ArgumentParser:
    """The common training flags (`stablepaint.training.utils.add_training_args`) plus the GAN's own."""
    add_training_args(parser, resolution=512, learning_rate=1e-4)
    gan = parser.add_argument_group("model and losses")
    gan.add_argument(
        "--colorizer_config",
        type=str,
        default=None,
        help="JSON (or a .json file) of PaintsTorchGenerator arguments; defaults to the thesis' sizes.",
    )
    gan.add_argument(
        "--pretrained_model_name_or_path",
        type=str,
        default=None,
        help="Start the colorizer (and F1, if the pipeline has one) from a saved pipeline: a folder, a shipped name or "
        "a Hub id (fine-tuning). The critic and the auxiliary network start fresh. Excludes --colorizer_config.",
    )
    gan.add_argument("--critic_config", type=str, default=None, help="JSON (or file) of PaintsTorchCritic arguments.")
    gan.add_argument(
        "--auxiliary_config",
        type=str,
        default=None,
        help="JSON (or file) of the auxiliary network's arguments (G2 or the guide decoder); defaults to the colorizer's.",
    )
    gan.add_argument(
        "--feature_extractor",
        type=str,
        default=None,
        help="F1: a transformers vision model (Hub id or folder) wrapped by SemanticFeatureExtractor. Default: none.",
    )
    gan.add_argument(
        "--feature_extractor_config",
        type=str,
        default=None,
        help="F1 from a transformers config (JSON with `model_type`), randomly initialized: for tests and ablations.",
    )
    gan.add_argument("--feature_image_size", type=int, default=None, help="Input side of F1 (default: its own).")
    gan.add_argument(
        "--vgg_weights",
        type=str,
        default=None,
        help="VGG16 safetensors for the content loss (else $STABLEPAINT_VGG16_WEIGHTS, else torchvision).",
    )
    gan.add_argument("--lambda_adv", type=float, default=1e-4, help="Weight of the adversarial term (λ_adv).")
    gan.add_argument("--lambda_gp", type=float, default=10.0, help="Weight of the gradient penalty (λ_gp).")
    gan.add_argument("--drift", type=float, default=1e-3, help="Weight of the drift term (ε_drift).")
    gan.add_argument(
        "--lambda_hint",
        type=float,
        default=0.0,
        help="Weight of an L1 term between the output and the stroke colors under the strokes (not in the thesis; "
        "0 by default): teaches the colorizer to keep the user's colors where they painted them.",
    )
    gan.add_argument(
        "--lambda_l1",
        type=float,
        default=0.0,
        help="Weight of a pixel L1 term between the output and the illustration. 0 (default) is the thesis' "
        "objective; a positive weight (not in the thesis) makes colors converge faster in short runs.",
    )
    gan.add_argument(
        "--lambda_region",
        type=float,
        default=0.0,
        help="Weight of a region-averaged color term (not in the thesis; 0 by default): L1 between the area-weighted "
        "mean colors of each line-bounded region (inside the mask) of the output and of the illustration.",
    )
    gan.add_argument("--auxiliary_weight", type=float, default=auxiliary_weight, help="Weight of L_recon / L_guided.")
    return parser


def load_json_arg(value: Optional[str], name: str) -> Dict[str, Any]:
    """A JSON object given inline or as a path to a .json file (`None` → `{}`)."""
    if value is None:
        return {}
    text = value
    if os.path.isfile(value):
        with open(value, encoding="utf-8") as file:
            text = file.read()
    try:
        loaded = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"`--{name}` must be a JSON object or a path to a .json file: {error}") from None
    if not isinstance(loaded, dict):
        raise ValueError(f"`--{name}` must be a JSON object, got {type(loaded).__name__}.")
    return loaded


def build_semantic_encoder(args: argparse.Namespace) -> Optional[SemanticFeatureExtractor]:
    """F1 from `--feature_extractor` (pretrained) or `--feature_extractor_config` (random), else `None`."""
    if args.feature_extractor and args.feature_extractor_config:
        raise ValueError("Give only one of `--feature_extractor` and `--feature_extractor_config`.")
    kwargs = {} if args.feature_image_size is None else {"image_size": args.feature_image_size}
    if args.feature_extractor:
        return SemanticFeatureExtractor.from_backbone(args.feature_extractor, **kwargs)
    if args.feature_extractor_config:
        return SemanticFeatureExtractor(
            load_json_arg(args.feature_extractor_config, "feature_extractor_config"), **kwargs
        )
    return None


@contextlib.contextmanager
def frozen(module: torch.nn.Module):
    """Turn off the gradients of `module`'s parameters inside the block (the other network's step)."""
    flags = [p.requires_grad for p in module.parameters()]
    module.requires_grad_(False)
    try:
        yield module
    finally:
        for parameter, flag in zip(module.parameters(), flags):
            parameter.requires_grad_(flag)


@dataclass
class GANTask:
    """What differs between PaintsTorch and StencilTorch.

    Attributes:
        name: `"paintstorch"` or `"stenciltorch"`.
        pipeline_class: The pipeline saved at the end.
        colorizer_defaults: `PaintsTorchGenerator` arguments of this model (e.g. `in_channels=5`).
        card_template: Model card template in `hub_cards/`.
        auxiliary_name: Name of the auxiliary network in logs and checkpoints (`lineart_generator`, `guide_decoder`).
        convert_from: `(pipeline class, converter)`: another family's saved pipeline that `--pretrained_model_name_or_path`
            also accepts, its colorizer passed through `converter` (PaintsTorch: StencilTorch's, with
            `paintstorch_from_stenciltorch`).
    """

    name: str
    pipeline_class: type
    colorizer_defaults: Dict[str, Any]
    card_template: str
    auxiliary_name: str
    convert_from: Optional[Tuple[type, Callable[[PaintsTorchGenerator], PaintsTorchGenerator]]] = None

    def colorizer_input(self, batch: Dict[str, torch.Tensor]) -> torch.Tensor:
        if self.name == "stenciltorch":
            return torch.cat([batch["lineart"], batch["composite"], batch["mask"]], dim=1)
        return batch["lineart"]

    def build_auxiliary(self, colorizer: PaintsTorchGenerator, config: Dict[str, Any]) -> torch.nn.Module:
        if self.name == "stenciltorch":
            from stablepaint.models.stenciltorch import StencilTorchGuideDecoder

            return StencilTorchGuideDecoder(**config) if config else StencilTorchGuideDecoder.from_colorizer(colorizer)
        # G2 (thesis §IV.2.2.2): the same architecture as G1, colored illustration -> lineart.
        config = config or {**dict(colorizer.config), "in_channels": 3, "out_channels": 1}
        config = {k: v for k, v in config.items() if not k.startswith("_")}
        return PaintsTorchGenerator(**config)

    def pipeline_inputs(self, batch: Dict[str, torch.Tensor]) -> Dict[str, Any]:
        """The validation batch as pipeline inputs (tensors in [0, 1]; hints as RGBA)."""
        names = ("lineart", "hints", "mask", "image") if self.name == "stenciltorch" else ("lineart", "hints")
        return batch_to_pipeline_inputs(batch, names)


#: The two families, trained by `train/train_paintstorch.py` and `train/train_stenciltorch.py` and shipped by
#: `scripts/ship_model.py`. `--pretrained_model_name_or_path` of PaintsTorch also takes a StencilTorch pipeline: its
#: colorizer, asked to paint everything, becomes a PaintsTorch G1 (a warm start; see `paintstorch_from_stenciltorch`).
GAN_TASKS = {
    "paintstorch": GANTask(
        name="paintstorch",
        pipeline_class=PaintsTorchPipeline,
        colorizer_defaults={"in_channels": 1},
        card_template="paintstorch_card.md",
        auxiliary_name="lineart_generator",
        convert_from=(StencilTorchPipeline, paintstorch_from_stenciltorch),
    ),
    "stenciltorch": GANTask(
        name="stenciltorch",
        pipeline_class=StencilTorchPipeline,
        colorizer_defaults={"in_channels": 5},
        card_template="paintstorch_card.md",
        auxiliary_name="guide_decoder",
    ),
}


def colorizer_config(args: argparse.Namespace, task: GANTask, feature_channels: int = 0) -> Dict[str, Any]:
    """The `PaintsTorchGenerator` arguments of a run trained from scratch: the task's, then `--colorizer_config`;
    `feature_channels` (F1's) and `sample_size` (`--resolution`, the pipeline's default working scale) unless given."""
    config = {**task.colorizer_defaults, **load_json_arg(args.colorizer_config, "colorizer_config")}
    config.setdefault("feature_channels", feature_channels)
    config.setdefault("sample_size", args.resolution)
    return config


def checkpoint_colorizer_config(record: argparse.Namespace, task: "GANTask") -> dict:
    """The generator arguments of a run's checkpoints, from its recorded flags: those of
    `--pretrained_model_name_or_path`'s colorizer (converted as the run converted it) for a run that started from a
    saved pipeline, else those built from `--colorizer_config` and `--resolution`."""
    if not record.pretrained_model_name_or_path:
        return colorizer_config(record, task)
    colorizer, _ = load_pretrained_colorizer(record, task)
    return {key: value for key, value in colorizer.config.items() if not key.startswith("_")}


# ----------------------------------------------------------------------------------------------------------------
# Training
# ----------------------------------------------------------------------------------------------------------------


def train(args: argparse.Namespace, task: GANTask) -> None:
    """Train the colorizer of `task` with the flags of `add_gan_args`."""
    from diffusers.training_utils import EMAModel

    check_training_args(args)
    accelerator = make_accelerator(args)

    # 1. Models. F1 and VGG16 are frozen; VGG16 weights are required (never a silent random VGG).
    vgg = VGG16Features.from_weights(args.vgg_weights, layers=("relu4_3",))
    semantic_encoder = build_semantic_encoder(args)
    if args.pretrained_model_name_or_path:
        colorizer, pretrained_encoder = load_pretrained_colorizer(args, task)
        semantic_encoder = semantic_encoder if semantic_encoder is not None else pretrained_encoder
    feature_channels = 0 if semantic_encoder is None else semantic_encoder.config.out_channels
    if not args.pretrained_model_name_or_path:
        colorizer = PaintsTorchGenerator(**colorizer_config(args, task, feature_channels))
    critic_config = {"feature_channels": colorizer.config.feature_channels}
    critic_config.update(load_json_arg(args.critic_config, "critic_config"))
    critic = PaintsTorchCritic(**critic_config)
    auxiliary = task.build_auxiliary(colorizer, load_json_arg(args.auxiliary_config, "auxiliary_config"))
    if colorizer.config.feature_channels != feature_channels:
        raise ValueError(
            f"the colorizer reads {colorizer.config.feature_channels} feature channels but F1 gives {feature_channels}."
        )
    vgg.to(accelerator.device)
    if semantic_encoder is not None:
        semantic_encoder.requires_grad_(False).eval().to(accelerator.device)
    ema = EMAModel(colorizer.parameters(), decay=args.ema_decay) if args.use_ema else None

    # 2. Optimizers (thesis: Adam, lr 1e-4, β = (0.5, 0.9)) and data.
    def adam(module):
        return torch.optim.Adam(
            module.parameters(),
            lr=args.learning_rate,
            betas=(args.adam_beta1, args.adam_beta2),
            weight_decay=args.adam_weight_decay,
        )

    optimizer_c, optimizer_g, optimizer_a = adam(critic), adam(colorizer), adam(auxiliary)
    dataloader, transform = build_train_dataloader(args, accelerator)
    colorizer, critic, auxiliary, optimizer_g, optimizer_c, optimizer_a, dataloader = accelerator.prepare(
        colorizer, critic, auxiliary, optimizer_g, optimizer_c, optimizer_a, dataloader
    )
    if ema is not None:
        ema.to(accelerator.device)
        register_ema_checkpointing(accelerator, ema)
    steps_per_epoch, num_epochs = training_schedule(args, dataloader, accelerator)
    record_training_args(accelerator, args)
    if accelerator.is_main_process:
        accelerator.init_trackers(f"train_{task.name}", config=tracker_config(args))

    global_step, first_epoch, skip = resume_from_checkpoint(accelerator, args, steps_per_epoch)
    validation_batch = None
    logger.info(
        f"{task.name}: {sum(p.numel() for p in colorizer.parameters()) / 1e6:.2f}M generator parameters, "
        f"{args.max_train_steps} steps, {accelerator.num_processes} processes"
    )

    # 3. Loop: critic, then G1, then the auxiliary network, on every batch.
    done = global_step >= args.max_train_steps
    progress = tqdm(
        total=args.max_train_steps, initial=global_step, desc=task.name, disable=not accelerator.is_local_main_process
    )
    for epoch in range(first_epoch, num_epochs):
        if done:
            break
        colorizer.train(), critic.train(), auxiliary.train()
        for batch in epoch_batches(accelerator, dataloader, transform, epoch, skip if epoch == first_epoch else 0):
            if validation_batch is None:
                validation_batch = {k: v[: args.num_validation_images] for k, v in batch.items()}
            with accelerator.accumulate(colorizer, critic, auxiliary):
                logs = gan_step(
                    args,
                    task,
                    batch,
                    (colorizer, critic, auxiliary),
                    (optimizer_c, optimizer_g, optimizer_a),
                    semantic_encoder,
                    vgg,
                    accelerator,
                )

            if not accelerator.sync_gradients:
                continue
            global_step += 1
            progress.update(1)
            progress.set_postfix(generator=f"{logs['loss_generator']:.3f}", critic=f"{logs['loss_critic']:.3f}")
            if ema is not None:
                ema.step(accelerator.unwrap_model(colorizer).parameters())
            accelerator.log({k: float(v) for k, v in logs.items()}, step=global_step)
            if global_step % args.checkpointing_steps == 0:
                save_checkpoint(accelerator, args.output_dir, global_step, args.checkpoints_total_limit)
            if args.validation_steps and global_step % args.validation_steps == 0 and accelerator.is_main_process:
                pipe = _pipeline(task, accelerator.unwrap_model(colorizer), semantic_encoder, ema)
                log_validation(pipe, task, validation_batch, accelerator, global_step)
            if global_step >= args.max_train_steps:
                done = True
                break

    progress.close()
    # 4. Export the pipeline (EMA weights when kept), its model card, and upload.
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        pipe = _pipeline(task, accelerator.unwrap_model(colorizer), semantic_encoder, ema)
        pipe.save_pretrained(args.output_dir)
        write_gan_model_card(args, task, global_step)
        if args.push_to_hub:
            push_to_hub(args, args.output_dir, commit_message=f"{task.name}: step {global_step}")
    accelerator.end_training()


def gan_step(args, task: GANTask, batch, networks, optimizers, semantic_encoder, vgg, accelerator) -> Dict[str, float]:
    """One step of the critic, then of G1, then of the auxiliary network, on one batch. Returns the loss terms.

    G1 runs once: the critic trains on its detached output, then G1 is updated against the *updated* critic (held
    frozen, outside DDP, so that its gradients neither accumulate nor synchronize during the generator's step).
    """
    (colorizer, critic, auxiliary), (optimizer_c, optimizer_g, optimizer_a) = networks, optimizers
    real, lineart, hints = batch["image"], batch["lineart"], batch["hints"]
    stencil = task.name == "stenciltorch"
    with torch.no_grad():
        features = None if semantic_encoder is None else semantic_encoder(lineart)
    hints = hints if accelerator.unwrap_model(colorizer).config.hint_channels else None

    with accelerator.autocast():
        output = colorizer(task.colorizer_input(batch), hints, features, return_latent=stencil)
        fake = output.sample

        # Critic: L_C = L_w + λ_gp L_gp (+ drift), on the generator's detached output. Under fp16 the penalty's own
        # gradients are taken at the gradient scaler's scale (PyTorch's AMP recipe), so that they do not underflow.
        scaler = getattr(accelerator, "scaler", None)
        grad_scale = scaler.get_scale() if scaler is not None else 1.0
        critic_terms = wgan_gp_critic_loss(
            lambda images: critic(images, features),
            real,
            fake.detach(),
            lambda_gp=args.lambda_gp,
            drift=args.drift,
            grad_scale=grad_scale,
        )
    accelerator.backward(critic_terms["loss"])
    optimizer_c.step()
    optimizer_c.zero_grad(set_to_none=True)

    # G1: L_G = λ_adv L_adv + L_cont + w L_aux.
    with frozen(accelerator.unwrap_model(critic)) as plain_critic, accelerator.autocast():
        adversarial = wgan_generator_loss(plain_critic(fake, features))
        content = content_loss(vgg, fake, real)
        if stencil:
            # L_guided = 1/(chw) ||ŝ - s||²: the guide decoder reconstructs the flat colors from G1's latent code; it
            # is trained by the same backward pass.
            auxiliary_term = F.mse_loss(auxiliary(output.latent, output.skips).float(), batch["simplified"].float())
        else:
            # L_recon = 1/(hw) ||G2(G1(x, h, F1(x)), h, F1(x)) - x||², through a frozen G2.
            with frozen(accelerator.unwrap_model(auxiliary)) as plain_g2:
                auxiliary_term = F.mse_loss(plain_g2(fake, hints, features).sample.float(), lineart.float())
        generator_loss = args.lambda_adv * adversarial + content + args.auxiliary_weight * auxiliary_term
        if args.lambda_l1:
            pixel_l1 = F.l1_loss(fake.float(), real.float())
            generator_loss = generator_loss + args.lambda_l1 * pixel_l1
        if args.lambda_hint:
            hint_l1 = stroke_l1(fake.float(), batch["hints"].float())
            generator_loss = generator_loss + args.lambda_hint * hint_l1
        if args.lambda_region:
            inside = batch["mask"][:, 0].detach().cpu().numpy() > 0.5 if stencil else None  # what G1 paints
            labels = label_stack(lineart[:, 0].detach().float().cpu().numpy(), threshold=0.0, inside=inside)
            region_l1 = region_color_l1(fake, real, torch.from_numpy(labels))
            generator_loss = generator_loss + args.lambda_region * region_l1
    accelerator.backward(generator_loss)
    optimizer_g.step()
    optimizer_g.zero_grad(set_to_none=True)

    # Auxiliary network: the guide decoder already has its gradients; G2 learns lineart from the detached output.
    if not stencil:
        with accelerator.autocast():
            g2_loss = F.mse_loss(auxiliary(fake.detach(), hints, features).sample.float(), lineart.float())
        accelerator.backward(g2_loss)
    optimizer_a.step()
    optimizer_a.zero_grad(set_to_none=True)

    logs = {
        "loss_critic": critic_terms["loss"],
        "wasserstein": critic_terms["wasserstein"],
        "gradient_penalty": critic_terms["gradient_penalty"],
        "loss_generator": generator_loss,
        "loss_adv": adversarial,
        "loss_content": content,
        ("loss_guided" if stencil else "loss_recon"): auxiliary_term,
    }
    if not stencil:
        logs["loss_g2"] = g2_loss
    if args.lambda_l1:
        logs["loss_l1"] = pixel_l1
    if args.lambda_hint:
        logs["loss_hint"] = hint_l1
    if args.lambda_region:
        logs["loss_region"] = region_l1
    return {name: float(value.detach()) for name, value in logs.items()}


def _pipeline(task: GANTask, colorizer, semantic_encoder, ema):
    """The task's pipeline around a copy of the colorizer (with the EMA weights when kept), in float32 on the CPU."""
    colorizer = copy.deepcopy(colorizer).to("cpu").eval()
    if ema is not None:
        ema.copy_to(colorizer.parameters())
    encoder = None if semantic_encoder is None else copy.deepcopy(semantic_encoder).to("cpu")
    return task.pipeline_class(colorizer=colorizer, semantic_encoder=encoder)


def log_validation(pipe, task: GANTask, batch, accelerator, step: int):
    """Run the real pipeline on the first training batch and log a lineart | hints | output | target grid."""
    inputs = task.pipeline_inputs(batch)
    outputs = pipe(**inputs, output_type="pil").images
    columns = {"lineart": batch["lineart"], "hints": batch["hints"]}
    if task.name == "stenciltorch":
        columns["mask"] = batch["mask"] * 2 - 1
    columns.update(output=outputs, target=batch["image"])
    grid = validation_grid(columns)
    log_images(accelerator, "validation", grid, step)
    return grid

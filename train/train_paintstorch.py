#!/usr/bin/env python
"""Train PaintsTorch (thesis §IV.2): conditional WGAN-GP, generator G1, critic C, lineart generator G2.

    accelerate launch train/train_paintstorch.py --train_data_dir ../shared/data/adventurer --output_dir paintstorch \\
        --vgg_weights ../shared/weights/vgg16_features.safetensors --resolution 512 --mixed_precision bf16

Every step: one critic step (L_C = L_w + L_gp), one G1 step (L_G = λ_adv L_adv + L_cont + L_recon), one G2 step. The
loop lives in `stablepaint.training.gan`, shared with `train_stenciltorch.py`.
"""

import argparse

from stablepaint.models import paintstorch_from_stenciltorch
from stablepaint.pipelines import PaintsTorchPipeline, StencilTorchPipeline
from stablepaint.training.gan import GANTask, add_gan_args, train

TASK = GANTask(
    name="paintstorch",
    pipeline_class=PaintsTorchPipeline,
    colorizer_defaults={"in_channels": 1},
    card_template="paintstorch_card.md",
    auxiliary_name="lineart_generator",
    # `--pretrained_model_name_or_path` also takes a StencilTorch pipeline: its colorizer, asked to paint everything,
    # becomes a PaintsTorch G1 (a warm start; see `paintstorch_from_stenciltorch`).
    convert_from=(StencilTorchPipeline, paintstorch_from_stenciltorch),
)


def parse_args(input_args=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_gan_args(parser, auxiliary_weight=1.0)
    return parser.parse_args(input_args)


def main(args):
    train(args, TASK)


if __name__ == "__main__":
    main(parse_args())

#!/usr/bin/env python
"""Train PaintsTorch (thesis §IV.2): conditional WGAN-GP, generator G1, critic C, lineart generator G2.

    accelerate launch train/train_paintstorch.py --train_data_dir ../shared/data/adventurer --output_dir paintstorch \\
        --vgg_weights ../shared/weights/vgg16_features.safetensors --resolution 512 --mixed_precision bf16

Every step: one critic step (L_C = L_w + L_gp), one G1 step (L_G = λ_adv L_adv + L_cont + L_recon), one G2 step. The
loop lives in `stablepaint.training.gan`, shared with `train_stenciltorch.py`.
"""

import argparse

from stablepaint.training.gan import GAN_TASKS, add_gan_args, train

# `--pretrained_model_name_or_path` also takes a StencilTorch pipeline, converted (see `GAN_TASKS`).
TASK = GAN_TASKS["paintstorch"]


def parse_args(input_args=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_gan_args(parser, auxiliary_weight=1.0)
    return parser.parse_args(input_args)


def main(args):
    train(args, TASK)


if __name__ == "__main__":
    main(parse_args())

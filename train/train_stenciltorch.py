#!/usr/bin/env python
"""Train StencilTorch (thesis §IV.3): in-painting conditional WGAN-GP with a guide decoder.

    accelerate launch train/train_stenciltorch.py --train_data_dir ../shared/data/adventurer --output_dir stenciltorch \\
        --vgg_weights ../shared/weights/vgg16_features.safetensors --resolution 512 --auxiliary_weight 0.1

The generator reads the lineart, the composite (illustration outside the mask, lineart inside) and the mask; the guide
decoder reconstructs the flat-color illustration from the generator's latent code. The thesis found that L_guided
"should be weighted down": `--auxiliary_weight` (w in L_G = λ_adv L_adv + L_cont + w L_guided) defaults to 0.1.
"""

import argparse

from stablepaint.training.gan import GAN_TASKS, add_gan_args, train

TASK = GAN_TASKS["stenciltorch"]


def parse_args(input_args=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_gan_args(parser, auxiliary_weight=0.1)
    return parser.parse_args(input_args)


def main(args):
    train(args, TASK)


if __name__ == "__main__":
    main(parse_args())

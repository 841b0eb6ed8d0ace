"""What the `train/` scripts share: `utils` (accelerate set-up, data loaders, atomic checkpoints, resume, EMA),
`records` (the flags record `training_args.json` and the model cards) and `gan` (the PaintsTorch/StencilTorch WGAN-GP
loop behind `train_paintstorch.py` and `train_stenciltorch.py`)."""

"""What the `train/` scripts share: `utils` (accelerate set-up, data loaders, atomic checkpoints, resume, EMA, cards)
and `gan` (the PaintsTorch/StencilTorch WGAN-GP loop behind `train_paintstorch.py` and `train_stenciltorch.py`)."""

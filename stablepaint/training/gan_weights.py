"""Where a GAN run's generator comes from: a saved pipeline (`--pretrained_model_name_or_path`, fine-tuning) or an
accelerate checkpoint of a run (its EMA weights by default), for shipping (`scripts/ship_model.py`) and for choosing
a checkpoint on a validation split (`benchmarks/eval_splits.py`)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from safetensors.torch import load_file

from stablepaint.models.paintstorch import PaintsTorchGenerator
from stablepaint.training.ema import load_ema_weights

if TYPE_CHECKING:
    from stablepaint.training.gan import GANTask

logger = logging.getLogger(__name__)


def load_pretrained_colorizer(args: argparse.Namespace, task: "GANTask"):
    """The colorizer (float32, trainable) and F1 (or `None`) of `--pretrained_model_name_or_path`: a saved pipeline of
    this family, or of the family `task.convert_from` names (its colorizer converted, e.g. StencilTorch → PaintsTorch)."""
    if args.colorizer_config:
        raise ValueError(
            "Give only one of `--pretrained_model_name_or_path` (its colorizer's config is used) and `--colorizer_config`."
        )
    source = args.pretrained_model_name_or_path
    candidates = [(task.pipeline_class, None)] + ([task.convert_from] if task.convert_from else [])
    pipe, convert, first_error = None, None, None
    for pipeline_class, converter in candidates:
        try:
            pipe, convert = pipeline_class.from_pretrained(source), converter
            break
        except (ValueError, OSError) as error:
            first_error = first_error or error
    if pipe is None:
        raise ValueError(f"`--pretrained_model_name_or_path` {source!r}: {first_error}") from None
    colorizer = getattr(pipe, "colorizer", None)
    if not isinstance(colorizer, PaintsTorchGenerator):
        raise ValueError(
            f"`--pretrained_model_name_or_path` {source!r} is a {type(pipe).__name__} "
            f"without a PaintsTorchGenerator colorizer; expected a saved {task.pipeline_class.__name__}."
        )
    if convert is not None:
        logger.info(f"Converting the colorizer of the {type(pipe).__name__} {source!r} with {convert.__name__}.")
        colorizer = convert(colorizer)
    expected = task.colorizer_defaults.get("in_channels", 1)
    if colorizer.config.in_channels != expected:
        raise ValueError(
            f"`--pretrained_model_name_or_path`: its colorizer reads {colorizer.config.in_channels} channels, "
            f"{task.name} needs {expected} (a {task.pipeline_class.__name__} folder, not another family's)."
        )
    if colorizer.dtype != torch.float32:
        colorizer = colorizer.to(torch.float32)
    return colorizer.train().requires_grad_(True), getattr(pipe, "semantic_encoder", None)


def colorizer_from_checkpoint(config: dict, checkpoint: Path, ema: bool) -> PaintsTorchGenerator:
    """The generator of an accelerate checkpoint: `model.safetensors` (the first prepared model is the generator),
    with its parameters replaced by the EMA shadow parameters (`ema.safetensors`) when `ema`."""
    colorizer = PaintsTorchGenerator(**config)
    colorizer.load_state_dict(load_file(str(checkpoint / "model.safetensors")), strict=True)
    if ema:
        load_ema_weights(colorizer, checkpoint)
    return colorizer.eval()

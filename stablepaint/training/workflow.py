"""The artistic-workflow model of a training run: built from the run's flags (`train/train_art_workflow.py`) and read
back from an accelerate checkpoint, for checkpoint selection and export."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from safetensors.torch import load_file


def build_art_workflow(args: argparse.Namespace):
    """The [`ArtWorkflowPipeline`] a run trains: `--pretrained_model_name_or_path`'s (its `stage_channels` must be the
    flags'), else new generation and inference nets from the flags."""
    from stablepaint.models.workflow import ArtWorkflowGenerationModel, ArtWorkflowInferenceModel
    from stablepaint.pipelines.pipeline_art_workflow import ArtWorkflowPipeline

    if args.pretrained_model_name_or_path is not None:
        pipe = ArtWorkflowPipeline.from_pretrained(args.pretrained_model_name_or_path)
        if list(pipe.artwork_generation.config.stage_channels) != list(args.stage_channels):
            raise ValueError(
                f"the pretrained pipeline has stage_channels {pipe.artwork_generation.config.stage_channels}, the flags "
                f"{args.stage_channels}."
            )
        return pipe
    downs = args.inference_downs or min(8, int(math.log2(args.resolution)))
    generation = ArtWorkflowGenerationModel(
        stage_channels=tuple(args.stage_channels),
        stage_names=tuple(args.stage_names),
        latent_dim=args.latent_dim,
        base_channels=args.base_channels,
        num_downsample=args.num_downsample,
        num_res_blocks=args.num_res_blocks,
        mlp_dim=args.mlp_dim,
        encoder_channels=args.encoder_channels,
        encoder_blocks=args.encoder_blocks,
        sample_size=args.resolution,
    )
    inference = ArtWorkflowInferenceModel(
        stage_channels=tuple(args.stage_channels), base_channels=args.inference_channels, num_downs=downs
    )
    return ArtWorkflowPipeline(artwork_generation=generation, workflow_inference=inference)


def art_workflow_from_checkpoint(checkpoint):
    """The [`ArtWorkflowPipeline`] of an accelerate checkpoint of an `all`, `inference` or `generation` run, float32,
    in eval mode: the models the run prepared are saved in order (`model.safetensors`, `model_1.safetensors`, ...),
    the inference nets first when the phase trains them, then the generation nets."""
    from stablepaint.training.records import load_training_args

    checkpoint = Path(checkpoint)
    args = load_training_args(checkpoint)
    if args.phase == "regularization":
        raise ValueError(f"{checkpoint} is a `--phase regularization` checkpoint; it holds the regularizer only")
    pipe = build_art_workflow(args)
    trained = {"all": ["workflow_inference", "artwork_generation"], "inference": ["workflow_inference"]}
    trained = trained.get(args.phase, ["artwork_generation"])
    for index, name in enumerate(trained):
        weights = checkpoint / ("model.safetensors" if index == 0 else f"model_{index}.safetensors")
        getattr(pipe, name).load_state_dict(load_file(str(weights)), strict=True)
    for name in ("artwork_generation", "workflow_inference"):
        getattr(pipe, name).float().eval()
    return pipe


__all__ = ["art_workflow_from_checkpoint", "build_art_workflow"]

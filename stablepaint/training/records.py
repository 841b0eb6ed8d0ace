"""What a training run writes about itself beside its weights: its flags and its model card.

The flags are `training_args.json` (`vars(args)` as JSON, the secrets left out), written into `--output_dir` when
training starts and into every checkpoint, so that the flags that made a checkpoint travel with it. Model cards are
rendered from them: by the training scripts at the end of a run, and by `scripts/ship_model.py`, which reads the
record back (`load_training_args`) instead of re-stating the training defaults.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, Optional, Union

from stablepaint.training.utils import data_sources

if TYPE_CHECKING:
    from stablepaint.training.gan import GANTask

TRAINING_ARGS_NAME = "training_args.json"
#: Flags never written to disk.
SECRET_ARGS = ("hub_token",)


# ----------------------------------------------------------------------------------------------------------------
# The flags of a run
# ----------------------------------------------------------------------------------------------------------------


def training_args_dict(args: argparse.Namespace) -> Dict[str, Any]:
    """The flags of a run as JSON values (tuples as lists, paths as strings), without `SECRET_ARGS`."""

    def plain(value):
        if isinstance(value, (list, tuple)):
            return [plain(item) for item in value]
        return os.fspath(value) if isinstance(value, os.PathLike) else value

    return {key: plain(value) for key, value in sorted(vars(args).items()) if key not in SECRET_ARGS}


def save_training_args(args: argparse.Namespace, folder: Union[str, os.PathLike]) -> Path:
    """Write the flags of a run to `folder/training_args.json`."""
    path = Path(folder) / TRAINING_ARGS_NAME
    path.write_text(json.dumps(training_args_dict(args), indent=2) + "\n", encoding="utf-8")
    return path


def load_training_args(folder: Union[str, os.PathLike]) -> argparse.Namespace:
    """The flags a training script recorded in `folder` (its output folder or one of its checkpoints)."""
    path = Path(folder) / TRAINING_ARGS_NAME
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} not found: {folder} holds no record of its training flags (the training scripts write "
            f"{TRAINING_ARGS_NAME} into --output_dir and into every checkpoint)."
        )
    return argparse.Namespace(**json.loads(path.read_text(encoding="utf-8")))


def tracker_config(args: argparse.Namespace) -> Dict[str, Any]:
    """The flags as the trackers' hyper-parameters (`accelerator.init_trackers(config=...)`; tensorboard's hparams
    take scalars and strings only): lists joined by spaces, unset flags and `SECRET_ARGS` left out."""
    config = {}
    for key, value in training_args_dict(args).items():
        if isinstance(value, list):
            value = " ".join(map(str, value))
        if value is not None:
            config[key] = value
    return config


def record_training_args(accelerator, args: argparse.Namespace) -> None:
    """Write `training_args.json` into `--output_dir` now, and into every checkpoint `accelerator.save_state` writes
    from now on. Call it on every process once the flags are final (after `training_schedule`, which sets
    `--max_train_steps`), before the first checkpoint."""

    def save_hook(models, weights, output_dir):
        if accelerator.is_main_process:
            save_training_args(args, output_dir)

    if accelerator.is_main_process:
        save_training_args(args, args.output_dir)
    accelerator.register_save_state_pre_hook(save_hook)


# ----------------------------------------------------------------------------------------------------------------
# Model cards
# ----------------------------------------------------------------------------------------------------------------


def save_model_card(output_dir: Union[str, os.PathLike], template_name: str, card_data: Dict[str, Any], **fields):
    """Render the model card template `hub_cards/<template_name>` (or a template file path) into `output_dir/README.md`.

    `card_data` becomes the YAML front matter (`huggingface_hub.ModelCardData`: license, tags, datasets,
    base_model, ...); `fields` fill the template's Jinja variables.
    """
    from huggingface_hub import ModelCard, ModelCardData

    from stablepaint import __version__
    from stablepaint.hub_cards import template_path

    card = ModelCard.from_template(
        ModelCardData(library_name="diffusers", **card_data),
        template_path=str(template_name if os.path.isfile(template_name) else template_path(template_name)),
        stablepaint_version=__version__,
        **fields,
    )
    card.save(os.path.join(output_dir, "README.md"))
    return card


def data_source_name(args: argparse.Namespace) -> str:
    """The run's data sources as one line (model cards, logs)."""
    return ", ".join(data_sources(args))


def data_attribution(args: argparse.Namespace, missing: str) -> str:
    """The data credit of a run's card: `--attribution`, else the attribution or license file of `--train_data_dir`
    (`stablepaint.hub.cards.find_attribution`), else `missing`."""
    from stablepaint.hub.cards import find_attribution

    found = [find_attribution(folder) for folder in data_sources(args)] if args.train_data_dir else []
    found = "\n\n".join(dict.fromkeys(text for text in found if text))
    return getattr(args, "attribution", None) or found or missing


def write_gan_model_card(
    args: argparse.Namespace,
    task: "GANTask",
    global_step: int,
    output_dir: Optional[Union[str, os.PathLike]] = None,
    card_data: Optional[Dict[str, Any]] = None,
    **fields,
):
    """Render `hub_cards/<task.card_template>` into `output_dir/README.md` (default: `--output_dir`).

    Every training fact comes from `args`: the flags of the run as parsed, or as `load_training_args` reads them back.
    `card_data` and `fields` add to them or override them (what a shipped model's card adds: the hardware, the final
    losses, the evaluation).
    """
    # The Hub id this model starts from: the fine-tuned pipeline (not a folder or a shipped name), else F1's backbone.
    pretrained = getattr(args, "pretrained_model_name_or_path", None)
    base_model = pretrained if pretrained and "/" in pretrained and not os.path.isdir(pretrained) else None
    if base_model is None and args.feature_extractor and not os.path.isdir(args.feature_extractor):
        base_model = args.feature_extractor
    data = {
        "license": "apache-2.0",
        "tags": ["stablepaint", task.name, "lineart-colorization", "gan", "image-to-image"],
        "pipeline_tag": "image-to-image",
    }
    if not args.train_data_dir:
        data["datasets"] = [args.dataset_name]
    if base_model:
        data["base_model"] = base_model
    values = {
        "model_name": task.pipeline_class.__name__.replace("Pipeline", ""),
        "pipeline_class": task.pipeline_class.__name__,
        "repo_id": args.hub_model_id or os.path.basename(os.path.abspath(args.output_dir)),
        "source": data_source_name(args),
        "attribution": data_attribution(
            args, missing="No attribution file was found in the training source: add the data's own."
        ),
        "global_step": global_step,
        "resolution": args.resolution,
        "batch_size": args.train_batch_size * args.gradient_accumulation_steps,
        "learning_rate": args.learning_rate,
        "adam_beta1": args.adam_beta1,
        "adam_beta2": args.adam_beta2,
        "mixed_precision": args.mixed_precision or "no",
        "lambda_adv": args.lambda_adv,
        "lambda_l1": args.lambda_l1,
        "lambda_hint": args.lambda_hint,
        "lambda_region": getattr(args, "lambda_region", 0.0),
        "lambda_gp": args.lambda_gp,
        "drift": args.drift,
        "auxiliary_weight": args.auxiliary_weight,
        "auxiliary_name": task.auxiliary_name,
        "feature_extractor": args.feature_extractor
        or ("random " + "transformers config" if args.feature_extractor_config else "none"),
        "use_ema": bool(args.use_ema),
    }
    values.update(fields)
    return save_model_card(output_dir or args.output_dir, task.card_template, {**data, **(card_data or {})}, **values)

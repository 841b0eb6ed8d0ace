"""Pieces every training script in `train/` shares: flags, the `Accelerator`, data, atomic checkpoints and resume,
image logging and Hub upload (the flags record and the model cards: `stablepaint.training.records`).

The scripts follow the diffusers examples skeleton (`parse_args(input_args=None)` → `main(args)`, one
`Accelerator`). What they would otherwise copy word for word lives here, so a fix reaches all of them.

Checkpoints are `accelerator.save_state` folders named `checkpoint-<global step>`. They are written to
`.checkpoint-<step>.tmp` first and renamed once complete, so a run killed while saving leaves the previous checkpoint
intact and never a half-written one that `--resume_from_checkpoint latest` would pick.
"""

from __future__ import annotations

import argparse
import functools
import logging
import math
import os
import re
import shutil
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import torch

from stablepaint.data import INDEX_COLUMN, ColorizationTransform, SynthesisConfig, load_illustrations
from stablepaint.data.selection import select_rows
from stablepaint.data.splits import SPLITS

logger = logging.getLogger(__name__)

CHECKPOINT_PATTERN = re.compile(r"^checkpoint-(\d+)$")


# ----------------------------------------------------------------------------------------------------------------
# Flags
# ----------------------------------------------------------------------------------------------------------------


def add_training_args(parser: argparse.ArgumentParser, resolution: int = 512, learning_rate: float = 1e-4):
    """Add the flags every training script shares to `parser` and return it."""
    data = parser.add_argument_group("data")
    data.add_argument(
        "--train_data_dir",
        type=str,
        nargs="+",
        default=None,
        help="Folder(s) of illustrations or of *_line/*_color pairs; several folders are trained on together.",
    )
    data.add_argument(
        "--split",
        choices=SPLITS,
        default=None,
        help="Keep only this split of the documented splits (`stablepaint.data.splits`): `train` leaves the validation "
        "and test drawings out. Default: every row.",
    )
    data.add_argument("--dataset_name", type=str, default=None, help="Hub dataset id or local dataset repository.")
    data.add_argument("--image_column", type=str, default="image", help="Column of the colored illustrations.")
    data.add_argument("--lineart_column", type=str, default=None, help="Column of real linearts (else xDoG).")
    data.add_argument("--max_train_samples", type=int, default=None, help="Keep only the first N illustrations.")
    data.add_argument(
        "--exclude_ids",
        type=str,
        nargs="*",
        default=(),
        help="Leave out illustrations whose file name contains any of these strings (held-out evaluation examples).",
    )
    data.add_argument("--resolution", type=int, default=resolution, help="Side of the square training crops.")
    data.add_argument(
        "--segmentation",
        type=str,
        default="felzenszwalb",
        choices=("felzenszwalb", "slic"),
        help="Region segmentation of the flat-color simplification (slic is about 2x faster).",
    )
    data.add_argument("--dataloader_num_workers", type=int, default=0, help="DataLoader worker processes.")
    data.add_argument(
        "--segmentation_cache_dir",
        type=str,
        default=None,
        help="Folder keeping each illustration's segmentation for later epochs, shared by DataLoader workers (without "
        "it: in each process' memory, lost between epochs when --dataloader_num_workers > 0).",
    )

    optim = parser.add_argument_group("optimization")
    optim.add_argument("--seed", type=int, default=0, help="Seed of the data synthesis, initialization and sampling.")
    optim.add_argument("--train_batch_size", type=int, default=4, help="Batch size per process.")
    optim.add_argument("--num_train_epochs", type=int, default=100)
    optim.add_argument(
        "--max_train_steps", type=int, default=None, help="Total optimizer steps; overrides --num_train_epochs."
    )
    optim.add_argument("--gradient_accumulation_steps", type=int, default=1)
    optim.add_argument("--learning_rate", type=float, default=learning_rate)
    optim.add_argument("--adam_beta1", type=float, default=0.5)
    optim.add_argument("--adam_beta2", type=float, default=0.9)
    optim.add_argument("--adam_weight_decay", type=float, default=0.0)
    optim.add_argument(
        "--mixed_precision",
        type=str,
        default=None,
        choices=("no", "fp16", "bf16"),
        help="Defaults to the `accelerate config` value. fp16 uses gradient scaling (CUDA only).",
    )
    optim.add_argument("--allow_tf32", action="store_true", help="Allow TF32 matmuls on Ampere+ GPUs.")
    optim.add_argument("--use_ema", action="store_true", help="Keep an EMA of the generator weights for export.")
    optim.add_argument("--ema_decay", type=float, default=0.999)

    io = parser.add_argument_group("checkpoints, logging and export")
    io.add_argument("--output_dir", type=str, default="stablepaint-model", help="Checkpoints, logs and the pipeline.")
    io.add_argument("--checkpointing_steps", type=int, default=500, help="Save a resumable checkpoint every N steps.")
    io.add_argument("--checkpoints_total_limit", type=int, default=None, help="Keep at most N checkpoints.")
    io.add_argument(
        "--resume_from_checkpoint",
        type=str,
        default=None,
        help="A checkpoint folder, or 'latest' for the newest one in --output_dir (nothing happens when none exists).",
    )
    io.add_argument(
        "--validation_steps", type=int, default=500, help="Log a validation grid every N steps (0: never)."
    )
    io.add_argument("--num_validation_images", type=int, default=4)
    io.add_argument("--report_to", type=str, default="tensorboard", help="'tensorboard', 'wandb', 'all' or 'none'.")
    io.add_argument("--logging_dir", type=str, default="logs", help="Log folder, relative to --output_dir.")
    io.add_argument("--push_to_hub", action="store_true", help="Upload the final pipeline and its model card.")
    io.add_argument(
        "--hub_model_id", type=str, default=None, help="Repository id (defaults to the output folder name)."
    )
    io.add_argument("--hub_token", type=str, default=None)
    io.add_argument(
        "--attribution",
        type=str,
        default=None,
        help="Attribution/license lines of the training data for the model card (else the source's ATTRIBUTION or "
        "LICENSE file).",
    )
    return parser


def check_training_args(args: argparse.Namespace) -> None:
    """Raise a clear error for flag combinations that cannot work."""
    if args.train_data_dir is None and args.dataset_name is None:
        raise ValueError("Give the training data: `--train_data_dir FOLDER` or `--dataset_name ID_OR_PATH`.")
    if args.train_data_dir is not None and args.dataset_name is not None:
        raise ValueError("Give only one of `--train_data_dir` and `--dataset_name`.")
    for name in ("train_batch_size", "gradient_accumulation_steps", "checkpointing_steps", "resolution"):
        if getattr(args, name) < 1:
            raise ValueError(f"`--{name}` must be at least 1, got {getattr(args, name)}.")
    if args.max_train_steps is not None and args.max_train_steps < 1:
        raise ValueError(f"`--max_train_steps` must be at least 1, got {args.max_train_steps}.")
    if args.checkpoints_total_limit is not None and args.checkpoints_total_limit < 1:
        raise ValueError(f"`--checkpoints_total_limit` must be at least 1, got {args.checkpoints_total_limit}.")
    if args.push_to_hub and args.hub_token is not None and args.report_to == "wandb":
        raise ValueError("Do not pass `--hub_token` with `--report_to wandb`: the token would be logged.")


# ----------------------------------------------------------------------------------------------------------------
# Accelerator and data
# ----------------------------------------------------------------------------------------------------------------


def make_accelerator(args: argparse.Namespace):
    """One `Accelerator` for the run: mixed precision, gradient accumulation, logging under `output_dir/logging_dir`.

    The DataLoader sampler is seedable (`use_seedable_sampler`), so the shuffling of epoch `e` depends only on
    `--seed` and `e`, and a resumed run sees the same batches as an uninterrupted one.
    """
    from accelerate import Accelerator
    from accelerate.utils import DataLoaderConfiguration, ProjectConfiguration, set_seed

    project_config = ProjectConfiguration(
        project_dir=args.output_dir, logging_dir=os.path.join(args.output_dir, args.logging_dir)
    )
    report_to = None if args.report_to in (None, "none") else args.report_to
    accelerator = Accelerator(
        mixed_precision=args.mixed_precision,
        gradient_accumulation_steps=args.gradient_accumulation_steps,
        log_with=report_to,
        project_config=project_config,
        dataloader_config=DataLoaderConfiguration(use_seedable_sampler=True),
    )
    logging.basicConfig(
        format="%(asctime)s - %(levelname)s - %(name)s - %(message)s", datefmt="%H:%M:%S", level=logging.INFO
    )
    if not accelerator.is_main_process:
        logging.getLogger().setLevel(logging.WARNING)
    if args.allow_tf32 and torch.cuda.is_available():
        torch.backends.cuda.matmul.allow_tf32 = True
    set_seed(args.seed)
    if accelerator.is_main_process:
        os.makedirs(args.output_dir, exist_ok=True)
    return accelerator


def weight_dtype(accelerator) -> torch.dtype:
    """The dtype frozen modules (VGG, feature backbones, a frozen VAE) can be kept in under the mixed precision."""
    return {"fp16": torch.float16, "bf16": torch.bfloat16}.get(accelerator.mixed_precision, torch.float32)


def load_training_dataset(
    args: argparse.Namespace,
    config: Optional[SynthesisConfig] = None,
    transform=None,
    load_source: Optional[Callable[[str], "datasets.Dataset"]] = None,  # noqa: F821
):
    """The training `datasets.Dataset` of the run and its transform: the source named by the flags, minus
    `--exclude_ids`, cut to `--max_train_samples` (`stablepaint.data.selection.select_rows`), its rows made on the fly
    by `transform`.

    `load_source(source)` loads every row of the source (default: `stablepaint.data.load_illustrations` with
    `--image_column` and `--lineart_column`; the workflow script gives `stablepaint.data.workflow.load_workflow_source`).
    `transform` defaults to a `ColorizationTransform` of `config` (default: from `--resolution` and `--segmentation`).
    """
    import datasets

    load_source = load_source or functools.partial(
        load_illustrations, image_column=args.image_column, lineart_column=args.lineart_column
    )
    dataset = datasets.concatenate_datasets([load_source(source) for source in data_sources(args)])
    dataset = select_rows(dataset, args.exclude_ids, args.max_train_samples, split=getattr(args, "split", None))
    if len(dataset) == 0:
        raise ValueError(f"no training illustration left in {data_sources(args)} (after `--split`, `--exclude_ids`).")
    if transform is None:
        config = config or SynthesisConfig(
            resolution=args.resolution,
            segmentation=args.segmentation,
            full_mask_probability=getattr(args, "full_mask_probability", None),
        )
        cache_dir = getattr(args, "segmentation_cache_dir", None)
        transform = ColorizationTransform(config, seed=args.seed, train=True, cache_dir=cache_dir)
    dataset = dataset.add_column(INDEX_COLUMN, list(range(len(dataset))))
    return dataset.with_transform(transform), transform


def data_sources(args: argparse.Namespace) -> List[str]:
    """The run's data sources: the `--train_data_dir` folders (one or several), else `[--dataset_name]`."""
    folders = args.train_data_dir
    if not folders:
        return [args.dataset_name]
    return [str(folders)] if isinstance(folders, (str, os.PathLike)) else [str(folder) for folder in folders]


def build_train_dataloader(
    args: argparse.Namespace, accelerator, config: Optional[SynthesisConfig] = None, transform=None, load_source=None
) -> Tuple[torch.utils.data.DataLoader, Any]:
    """A shuffled `DataLoader` of the training examples of `load_training_dataset` (dicts of tensors, see
    `stablepaint.data`), loaded by the main process first.

    Returns the *unprepared* loader and its transform: pass the loader to `accelerator.prepare`, and call
    `transform.set_epoch(epoch)` and `dataloader.set_epoch(epoch)` at the start of every epoch (see
    `epoch_batches`). `transform` may be any `set_epoch`-able callable that makes the dataset's rows (e.g. the
    workflow stages, with `load_source` reading them); it defaults to a `ColorizationTransform` built from `config`.
    """
    with accelerator.main_process_first():
        dataset, transform = load_training_dataset(args, config, transform, load_source)
    generator = torch.Generator().manual_seed(args.seed)
    dataloader = torch.utils.data.DataLoader(
        dataset,
        batch_size=args.train_batch_size,
        shuffle=True,
        drop_last=len(dataset) >= args.train_batch_size * accelerator.num_processes,
        num_workers=args.dataloader_num_workers,
        generator=generator,
        persistent_workers=False,
    )
    return dataloader, transform


def training_schedule(args: argparse.Namespace, dataloader, accelerator) -> Tuple[int, int]:
    """(`num_update_steps_per_epoch`, `num_train_epochs`) of a prepared dataloader; sets `args.max_train_steps`."""
    steps_per_epoch = max(1, math.ceil(len(dataloader) / args.gradient_accumulation_steps))
    if args.max_train_steps is None:
        args.max_train_steps = args.num_train_epochs * steps_per_epoch
    return steps_per_epoch, math.ceil(args.max_train_steps / steps_per_epoch)


def epoch_batches(accelerator, dataloader, transform, epoch: int, skip_batches: int = 0):
    """The batches of `epoch`: sets the epoch of the transform and sampler, and skips the first `skip_batches` (the
    ones a resumed run already trained on)."""
    transform.set_epoch(epoch)
    if hasattr(dataloader, "set_epoch"):
        dataloader.set_epoch(epoch)
    if skip_batches:
        return accelerator.skip_first_batches(dataloader, skip_batches)
    return dataloader


# ----------------------------------------------------------------------------------------------------------------
# Checkpoints
# ----------------------------------------------------------------------------------------------------------------


def list_checkpoints(output_dir: Union[str, os.PathLike]) -> List[Path]:
    """Complete checkpoints in `output_dir`, oldest first (temporary folders of interrupted saves are ignored)."""
    folder = Path(output_dir)
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if p.is_dir() and (m := CHECKPOINT_PATTERN.match(p.name))]
    return [p for _, p in sorted(found)]


def save_checkpoint(
    accelerator, output_dir: Union[str, os.PathLike], global_step: int, total_limit: Optional[int] = None
) -> Path:
    """Save a resumable checkpoint `output_dir/checkpoint-<global_step>`, atomically. Call on every process.

    With `total_limit`, the oldest checkpoints are removed so that at most `total_limit` remain, the new one included.
    """
    output_dir = Path(output_dir)
    final = output_dir / f"checkpoint-{global_step}"
    tmp = output_dir / f".checkpoint-{global_step}.tmp"
    if accelerator.is_main_process:
        shutil.rmtree(tmp, ignore_errors=True)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(tmp))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
        if total_limit is not None:
            for old in list_checkpoints(output_dir)[:-total_limit]:
                logger.info(f"Removing old checkpoint {old.name}")
                shutil.rmtree(old)
        logger.info(f"Saved checkpoint {final}")
    accelerator.wait_for_everyone()
    return final


def resume_from_checkpoint(
    accelerator, args: argparse.Namespace, num_update_steps_per_epoch: int
) -> Tuple[int, int, int]:
    """Load the checkpoint named by `--resume_from_checkpoint` into the prepared objects.

    Returns `(global_step, first_epoch, batches_to_skip)`: the step counter to continue from, the epoch it falls in,
    and how many batches of that epoch were already trained on. `(0, 0, 0)` when there is nothing to resume.
    """
    if not args.resume_from_checkpoint:
        return 0, 0, 0
    if args.resume_from_checkpoint == "latest":
        checkpoints = list_checkpoints(args.output_dir)
        if not checkpoints:
            accelerator.print(f"No checkpoint in {args.output_dir!r}: starting a new training run.")
            return 0, 0, 0
        path = checkpoints[-1]
    else:
        path = Path(args.resume_from_checkpoint)
        if not path.is_absolute() and not path.exists():
            path = Path(args.output_dir) / path
        match = CHECKPOINT_PATTERN.match(path.name)
        if not path.is_dir() or match is None:
            raise ValueError(
                f"`--resume_from_checkpoint` must be 'latest' or a checkpoint-<step> folder, got {str(path)!r}."
            )
    global_step = int(CHECKPOINT_PATTERN.match(path.name).group(1))
    accelerator.print(f"Resuming from {path} (step {global_step})")
    accelerator.load_state(str(path))
    first_epoch = global_step // num_update_steps_per_epoch
    skip = (global_step % num_update_steps_per_epoch) * args.gradient_accumulation_steps
    return global_step, first_epoch, skip


# ----------------------------------------------------------------------------------------------------------------
# Logging, cards and upload
# ----------------------------------------------------------------------------------------------------------------


def log_images(accelerator, tag: str, image, step: int) -> None:
    """Log a PIL image (e.g. a `stablepaint.utils.visualize.make_grid` grid) to the trackers that take images."""
    import numpy as np

    array = np.asarray(image.convert("RGB"))
    for tracker in accelerator.trackers:
        if tracker.name == "tensorboard":
            tracker.writer.add_image(tag, array, step, dataformats="HWC")
        elif tracker.name == "wandb":
            import wandb

            tracker.log({tag: [wandb.Image(image)]}, step=step)


def validation_grid(columns: Dict[str, Sequence[Any]], cell: int = 128):
    """A grid with one row per example and one column per entry of `columns` (e.g. lineart | hints | output |
    target). Values are lists of PIL images, or tensors in [-1, 1] (hints: 4 channels, shown as strokes on white)."""
    from stablepaint.utils.visualize import make_grid

    labels = list(columns)
    as_images = [_to_pil_list(values) for values in columns.values()]
    rows = [list(row) for row in zip(*as_images)]
    return make_grid(rows, labels=labels, cell=cell)


def batch_to_pipeline_inputs(
    batch: Dict[str, torch.Tensor], names: Sequence[str] = ("lineart", "hints"), count: Optional[int] = None
) -> Dict[str, torch.Tensor]:
    """The first `count` examples of a training batch as the caller-side images the pipelines take, for validation:
    float CPU tensors in [0, 1]; the hints (RGB in [-1, 1] times the stroke mask, and the mask) as RGBA; the mask as
    it is."""
    inputs = {}
    for name in names:
        value = batch[name][:count]
        if name == "hints":
            stroke = value[:, 3:]
            value = torch.cat([(value[:, :3] + 1) / 2 * stroke, stroke], dim=1)
        elif name != "mask":
            value = (value + 1) / 2
        inputs[name] = value.float().cpu().clamp(0, 1)
    return inputs


def _to_pil_list(values) -> list:
    import numpy as np
    from PIL import Image

    if not isinstance(values, torch.Tensor):
        return list(values)
    values = values.detach().float().cpu()
    images = []
    for item in values:
        if item.shape[0] == 4:  # hints: RGB in [-1, 1] times the stroke mask, and the mask
            rgb = ((item[:3] + 1) / 2).clamp(0, 1)
            alpha = item[3:4].clamp(0, 1)
            item = rgb * alpha + (1 - alpha)
        else:
            item = ((item + 1) / 2).clamp(0, 1)
        array = (item.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        images.append(Image.fromarray(array[..., 0] if array.shape[-1] == 1 else array))
    return images


def push_to_hub(
    args: argparse.Namespace, output_dir: Union[str, os.PathLike], commit_message: str = "Upload pipeline"
):
    """Create the repository `--hub_model_id` (or the output folder's name) and upload the pipeline folder to it with
    its model card and the standalone code (`stablepaint.hub.remote_code.prepare_hub_folder`), without the checkpoints and
    logs, so that `DiffusionPipeline.from_pretrained(repo_id, trust_remote_code=True)` works without stablepaint."""
    import tempfile

    from huggingface_hub import create_repo, upload_folder

    from stablepaint.hub.remote_code import prepare_hub_folder

    repo_id = args.hub_model_id or Path(output_dir).resolve().name
    repo_id = create_repo(repo_id, exist_ok=True, token=args.hub_token).repo_id
    with tempfile.TemporaryDirectory() as tmp:
        folder = prepare_hub_folder(output_dir, Path(tmp) / "hub", ignore=[args.logging_dir])
        return upload_folder(
            repo_id=repo_id, folder_path=str(folder), commit_message=commit_message, token=args.hub_token
        )


def drop_hints(hints: torch.Tensor, probability: float, generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """
    Conditioning dropout for classifier-free guidance over the hints (InstructPix2Pix trains the same way): each
    item's hints are zeroed — "no hints", as the image processor encodes `hints=None` — with `probability`.
    """
    if probability <= 0:
        return hints
    keep = torch.rand(hints.shape[0], 1, 1, 1, generator=generator, device="cpu") >= probability
    return hints * keep.to(device=hints.device, dtype=hints.dtype)

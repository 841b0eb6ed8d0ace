"""Turn a training run into a pipeline shipped inside the package (`stablepaint/hub/shipped/<name>/`).

GAN runs (PaintsTorch, StencilTorch) ship from a checkpoint:

    python scripts/ship_model.py --run /work/artifacts/stenciltorch-small --family stenciltorch \
        --name stenciltorch-adventurer --command "$(cat train_command.sh)" --hardware "2-core CPU (1 thread)" \
        [--checkpoint checkpoint-2000] [--evaluation results.md] [--out stablepaint/hub/shipped/stenciltorch-adventurer] \
        [--prior_steps 1800 --prior_hours 2.1]   # a run that fine-tuned an earlier one: the card gives the totals

It takes the EMA generator weights of the run's latest (or given) checkpoint (the raw weights with `--no_ema`),
stores them as fp16 safetensors, and renders the model card (`hub_cards/paintstorch_card.md`) with the run's
hyper-parameters as the checkpoint records them (`training_args.json`, written by the training script into every
checkpoint: resolution, batch size, learning rate, loss weights, ...), the exact training command, the steps, the
hardware, the wall time and the final losses read from the run's tensorboard logs, and the evaluation table written
by `stablepaint evaluate`. A checkpoint without that record is refused (nothing is filled in from defaults).

Runs that end with a `save_pretrained` pipeline (StablePaint's `unet` stage, ArtWorkflow) ship from that folder:

    python scripts/ship_model.py --pipeline /work/artifacts/stablepaint-unet --name stablepaint-adventurer \
        --command "$(cat train_command.sh)" --hardware "2-core CPU" [--evaluation results.md] [--logs RUN ...]

The pipeline's weights are stored as fp16, and its model card (written by the training script, with the command,
steps and settings) gets the hardware, the wall time and final losses read from the tensorboard logs of `--logs`
(default: the folder itself; give several for a pipeline trained in stages), and the evaluation table in place of its
"## Evaluation" section.
"""

import argparse
import glob
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Dict, Optional, Tuple

import torch

from stablepaint.training.gan import GAN_TASKS, checkpoint_colorizer_config, colorizer_config
from stablepaint.training.gan_weights import colorizer_from_checkpoint
from stablepaint.training.records import TRAINING_ARGS_NAME, load_training_args, write_gan_model_card
from stablepaint.training.utils import list_checkpoints
from stablepaint.utils.atomic import commit_folder

ADVENTURER_ATTRIBUTION = (
    "DiceBear Adventurer by Lisa Wischofsky (https://www.dicebear.com/styles/adventurer/), CC BY 4.0. Remixed: lineart, "
    "strokes and masks were derived from the illustrations."
)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--run", help="a GAN training --output_dir (holds checkpoint-N/ and logs/)")
    source.add_argument("--pipeline", help="a saved pipeline folder with its training card (StablePaint, ArtWorkflow)")
    parser.add_argument("--family", choices=sorted(GAN_TASKS), help="with --run: the GAN family")
    parser.add_argument("--name", required=True, help="the shipped name, e.g. stenciltorch-adventurer")
    parser.add_argument(
        "--colorizer_config",
        help="with --run: the colorizer's arguments (JSON) (default: from the --colorizer_config and --resolution "
        f"recorded in the checkpoint's {TRAINING_ARGS_NAME}, or the config of the recorded "
        "--pretrained_model_name_or_path's colorizer)",
    )
    parser.add_argument(
        "--logs", nargs="+", default=None, help="with --pipeline: training folders whose logs/ the card sums"
    )
    parser.add_argument(
        "--without",
        nargs="+",
        default=[],
        metavar="COMPONENT",
        help="with --pipeline: optional components to leave out (e.g. an ArtWorkflow's workflow_inference)",
    )
    parser.add_argument(
        "--checkpoint",
        default=None,
        help="a checkpoint folder name; default: the latest. With --pipeline: the checkpoint the folder was exported "
        "from (the card's steps, hours and final losses stop at its step)",
    )
    parser.add_argument("--no_ema", action="store_true", help="ship the raw generator weights, not the EMA ones")
    parser.add_argument("--command", required=True, help="the exact training command, for the card")
    parser.add_argument("--hardware", required=True, help="what it was trained on, for the card")
    parser.add_argument("--source", default="../shared/data/adventurer (DiceBear Adventurer, 2,500 pairs)")
    parser.add_argument("--held_out", default="adventurer ids 2480-2499 (never seen in training)")
    parser.add_argument(
        "--attribution",
        default=None,
        help="the card's data attribution (default for --run: DiceBear Adventurer's; for --pipeline: the training "
        "card's own)",
    )
    parser.add_argument(
        "--license",
        default=None,
        help="the card's license: the training data's (OpenMoji: cc-by-sa-4.0); default for --run: cc-by-4.0 "
        "(DiceBear Adventurer), for --pipeline: the training card's own",
    )
    parser.add_argument(
        "--prior_steps",
        type=int,
        default=0,
        help="steps trained before this run (the run it fine-tunes, e.g. with --pretrained_model_name_or_path); "
        "added to the steps in the card",
    )
    parser.add_argument(
        "--prior_hours", type=float, default=0.0, help="wall time of those earlier runs, added to the card's"
    )
    parser.add_argument("--evaluation", default=None, help="results.md written by `stablepaint evaluate`")
    parser.add_argument(
        "--context_encoder",
        default=None,
        help="with --pipeline: a StablePaint context-stage output folder (or its context_encoder/ folder) whose "
        "context encoder joins the pipeline (stages trained in separate runs)",
    )
    parser.add_argument(
        "--context_strength",
        type=float,
        default=None,
        help="with --pipeline: StablePaint's `context_strength` (the corruption of the context latent a call without "
        "`strength` or `image` starts from), chosen on a validation split",
    )
    parser.add_argument(
        "--hint_regions",
        action="store_true",
        help="StablePaint and StencilTorch calls default to `hint_regions=True` (the stroked regions are filled with "
        "the stroke colors and the model in-paints the rest)",
    )
    parser.add_argument(
        "--flats_model",
        default=None,
        help="a FlatsPipeline (shipped name or folder) whose `region_colorizer` joins the pipeline (a GAN colorizer or a "
        "StablePaint) as its learned flats stage, on by default (`flats=True`: it decides the colors, the network "
        "shades)",
    )
    parser.add_argument(
        "--keep_stroke_colors",
        action="store_true",
        help="with --flats_model: under the flats stage a stroked region keeps its stroke color",
    )
    parser.add_argument(
        "--guidance_scale",
        type=float,
        default=None,
        help="with --pipeline: the guidance scale a call without one uses (StablePaint's `default_guidance_scale`), "
        "chosen on a validation split, e.g. with `stablepaint evaluate --guidance-scale`",
    )
    parser.add_argument("--description", default=None, help="one line for `stablepaint models`")
    parser.add_argument(
        "--title",
        default=None,
        help="with --pipeline: the card's heading (default: the training card's, the run folder's name replaced by "
        "--name)",
    )
    parser.add_argument("--out", default=None, help="default: stablepaint/hub/shipped/<name>")
    args = parser.parse_args(argv)
    if args.run is not None and args.family is None:
        parser.error("--run needs --family")
    if args.keep_stroke_colors and args.flats_model is None:
        parser.error("--keep_stroke_colors needs --flats_model")
    return args


def training_log(run: Path, until_step: Optional[int] = None) -> Tuple[Dict[str, float], float, int]:
    """(final losses averaged over the last 50 logged steps, wall time in hours summed over the resumed segments,
    last logged step) from the run's tensorboard event files, counting only the steps up to `until_step` (the shipped
    checkpoint's) when given: a run that went on after it does not change its card."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    series: Dict[str, Dict[int, float]] = {}
    wall = 0.0
    for path in sorted(glob.glob(str(run / "logs" / "*" / "events.out.tfevents.*"))):
        events = EventAccumulator(path, size_guidance={"scalars": 0})
        events.Reload()
        tags = events.Tags()["scalars"]
        if not tags:
            continue
        kept = [event for event in events.Scalars(tags[0]) if until_step is None or event.step <= until_step]
        if kept:
            wall += max(event.wall_time for event in kept) - min(event.wall_time for event in kept)
        for tag in tags:
            for event in events.Scalars(tag):
                if until_step is None or event.step <= until_step:
                    series.setdefault(tag, {})[event.step] = event.value
    if not series:
        raise FileNotFoundError(f"no tensorboard scalars under {run / 'logs'}")
    last = max(max(steps) for steps in series.values())
    final = {}
    for tag, steps in series.items():
        recent = [value for step, value in steps.items() if step > last - 50]
        if recent:  # a term no longer logged at the end of the run (e.g. dropped on resume) has no final value
            final[tag] = sum(recent) / len(recent)
    return final, wall / 3600, last


def _out_folder(args) -> Path:
    """`--out`, else the package's shipped folder (`stablepaint/hub/shipped/<name>` of this checkout); its parent made."""
    out = Path(args.out or Path(__file__).resolve().parents[1] / "stablepaint" / "hub" / "shipped" / args.name)
    out.parent.mkdir(parents=True, exist_ok=True)
    return out


def _install(staging: Path, out: Path, name: str, step: int) -> Path:
    """Make `staging` world-readable and move it to `out` in one rename (replacing an older `out`)."""
    os.chmod(staging, 0o755)
    for file in staging.rglob("*"):
        os.chmod(file, 0o755 if file.is_dir() else 0o644)
    commit_folder(staging, out)  # one swap with an older `out` (stablepaint.utils.atomic)
    size = sum(file.stat().st_size for file in out.rglob("*") if file.is_file())
    print(f"shipped {name} (step {step}, {size / 1e6:.1f} MB) to {out}")
    return out


def _section_span(lines, title: str):
    """`(heading index, end index)` of `## title` in `lines` (the end: the next `## ` heading or the end), or `None`."""
    starts = [i for i, line in enumerate(lines) if line.rstrip("\n") == f"## {title}"]
    if not starts:
        return None
    end = next((i for i in range(starts[0] + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    return starts[0], end


def _replace_section(card: str, title: str, text: str) -> str:
    """`card` with the body of its `## title` section replaced by `text` (appended as a new section if absent)."""
    lines = card.splitlines(keepends=True)
    span = _section_span(lines, title)
    if span is None:
        return card.rstrip("\n") + f"\n\n## {title}\n\n{text.strip()}\n"
    start, end = span
    return "".join(lines[: start + 1]) + f"\n{text.strip()}\n\n" + "".join(lines[end:])


def _section_text(card: str, title: str) -> str:
    """The body of `card`'s `## title` section, stripped ("" if absent)."""
    lines = card.splitlines(keepends=True)
    span = _section_span(lines, title)
    return "" if span is None else "".join(lines[span[0] + 1 : span[1]]).strip()


def _set_call_default(pipe, flag: str, key: str, value) -> None:
    """Store `key = value` in the pipeline's config (model_index.json), the default of the calls that omit it; a
    pipeline without that option is an error naming `flag`."""
    if key not in pipe.config:
        raise ValueError(f"{flag}: {type(pipe).__name__} has no `{key}`")
    pipe.register_to_config(**{key: value})


def region_colorizer_of(flats_model: str):
    """The `region_colorizer` of `--flats_model` (a FlatsPipeline's shipped name or folder), in fp16."""
    from stablepaint.hub.loading import load_pipeline

    region_colorizer = getattr(load_pipeline(flats_model), "region_colorizer", None)
    if region_colorizer is None:
        raise ValueError(f"--flats_model {flats_model!r} is not a FlatsPipeline (no `region_colorizer`)")
    return region_colorizer.to(torch.float16)


def flats_section(args, hint_regions: bool, workflow: bool = False) -> str:
    """The card's words on the learned flats stage of a `--pipeline` (the GAN card template has its own); `workflow`:
    an ArtWorkflow, whose flat stage the flats become."""
    strokes = (
        "a stroked region keeping its stroke color" if args.keep_stroke_colors else "reading the strokes as inputs"
    )
    shading = " (which keeps the stroked regions in the stroke colors, `hint_regions=True`)" if hint_regions else ""
    shader, source, own = "the diffusion sample only shades", "the sample", "the sample's own colors"
    if workflow:
        shader = "the flats are the workflow's flat stage: the final stage is generated from them and only shades"
        source, own = "the generated final stage", "the workflow's own flat and final stages"
    return (
        f"This pipeline also holds `region_colorizer`, the learned flats model of `{args.flats_model}` (stablepaint's "
        "`FlatsPipeline`: a small transformer over the lineart's line-bounded regions). By default (`flats=True`) it "
        f"decides every region's color, {strokes}, and {shader} on top: each pixel's brightness within ±15 % of its "
        f"region's median in {source}{shading}, the lines and the colors from the flats "
        f"(`stablepaint.regions.shade_flats`). `flats=False` gives {own}.\n"
    )


def ship_pipeline(args) -> Path:
    """`--pipeline`: the saved pipeline in fp16, its training card completed with the training record and the
    evaluation."""
    from stablepaint.hub.cards import component_attributions
    from stablepaint.hub.loading import load_pipeline
    from stablepaint.hub.registry import save_shipped

    folder = Path(args.pipeline)
    card_file = folder / "README.md"
    if not card_file.is_file():
        raise FileNotFoundError(f"{folder} has no model card (README.md): ship the folder a training script wrote")
    card = card_file.read_text(encoding="utf-8")
    pipe = load_pipeline(str(folder))
    for component in args.without:
        if component not in getattr(pipe, "_optional_components", []):
            raise ValueError(f"--without {component}: not an optional component of {type(pipe).__name__}")
        pipe.register_modules(**{component: None})
    if args.context_encoder is not None:
        from stablepaint.models import StablePaintContextEncoder

        if "context_encoder" not in pipe.config:
            raise ValueError(f"--context_encoder: {type(pipe).__name__} has no `context_encoder` component")
        source = Path(args.context_encoder)
        source = source / "context_encoder" if (source / "context_encoder").is_dir() else source
        pipe.register_modules(context_encoder=StablePaintContextEncoder.from_pretrained(source))
    if args.context_strength is not None:
        if not 0 <= args.context_strength <= 1:
            raise ValueError(f"--context_strength must be in [0, 1], got {args.context_strength}")
        if args.context_strength < 1 and getattr(pipe, "context_encoder", None) is None:
            raise ValueError("--context_strength < 1 starts from the context encoder's latent: the pipeline has none")
        _set_call_default(pipe, "--context_strength", "context_strength", args.context_strength)
    if args.hint_regions:
        _set_call_default(pipe, "--hint_regions", "hint_regions", True)
    if args.flats_model is not None:
        _set_call_default(pipe, "--flats_model", "flats", True)
        pipe.register_modules(region_colorizer=region_colorizer_of(args.flats_model))
        pipe.register_to_config(keep_stroke_colors=args.keep_stroke_colors)
    if args.guidance_scale is not None:
        if not args.guidance_scale >= 0:
            raise ValueError(f"--guidance_scale must be >= 0, got {args.guidance_scale}")
        _set_call_default(pipe, "--guidance_scale", "default_guidance_scale", args.guidance_scale)
    steps, hours, losses = 0, args.prior_hours, {}
    until_step = int(args.checkpoint.split("-")[-1]) if args.checkpoint else None
    for run in args.logs or [str(folder)]:
        run_losses, run_hours, last = training_log(Path(run), until_step=until_step)
        steps, hours = steps + last, hours + run_hours
        losses.update({f"{Path(run).name}/{tag}": value for tag, value in run_losses.items()})
    record = (
        f"Hardware: {args.hardware}; {args.prior_steps + steps} steps in all, wall time {hours:.1f} h.\n\n"
        + "Final losses (mean of the last 50 logged steps): "
        + ", ".join(f"{tag} {value:.3f}" for tag, value in sorted(losses.items()))
        + ".\n\nExact command:\n\n```bash\n"
        + args.command.strip()
        + "\n```\n\nHeld out: "
        + args.held_out
        + ".\n"
    )
    if args.without:
        names = ", ".join(f"`{component}`" for component in args.without)
        record += (
            f"\nLeft out of this folder to keep it small: the optional component(s) {names}; what needs them raises.\n"
        )
    card = _replace_section(card, "Training record", record)
    # the training card names the run's folder; the shipped folder has the shipped name
    card = card.replace(f"\n# {folder.name}\n", f"\n# {args.name}\n", 1)
    card = card.replace(f'from_pretrained("{folder.name}"', f'from_pretrained("{args.name}"')
    if args.attribution:
        card = _replace_section(card, "Data attribution", args.attribution)
    lines = [line for line in component_attributions(pipe) if line not in card]  # e.g. TAEF2's license line
    if lines:
        attribution = "\n\n".join([_section_text(card, "Data attribution"), *lines])
        card = _replace_section(card, "Data attribution", attribution)
    if args.flats_model is not None:
        workflow = hasattr(pipe, "artwork_generation")
        hint_regions = getattr(pipe.config, "hint_regions", False)
        card = _replace_section(card, "The learned flats stage", flats_section(args, hint_regions, workflow))
    if args.title:
        card = re.sub(r"^# .*$", lambda _: f"# {args.title}", card, count=1, flags=re.MULTILINE)
    if args.evaluation:
        text = Path(args.evaluation).read_text()
        if not text.lstrip().startswith("`benchmarks/"):  # a table of `stablepaint evaluate` (results.md)
            text = "`stablepaint evaluate` on the held-out samples:\n\n" + text
        card = _replace_section(card, "Evaluation", text)
    if args.license:
        card = re.sub(r"^license: .*$", f"license: {args.license}", card, count=1, flags=re.MULTILINE)
    if args.description:
        card = card.replace("---\n", f"---\ndescription: {args.description}\n", 1)
    out = _out_folder(args)
    staging = Path(tempfile.mkdtemp(prefix=f".{args.name}.", dir=out.parent))  # same file system: atomic rename
    try:
        saved = save_shipped(pipe, args.name, card=card, root=staging)  # staging/<name>: then one rename
        return _install(saved, out, args.name, args.prior_steps + steps)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def shipped_colorizer_config(args, record, task) -> dict:
    """The colorizer's arguments: `--colorizer_config` (with the recorded `--resolution` as `sample_size` unless it
    gives one), else those the training script built from the recorded flags (or, for a run that started from
    `--pretrained_model_name_or_path`, that pipeline's colorizer's)."""
    if record.feature_extractor or record.feature_extractor_config:
        raise ValueError(
            "the run trained with a semantic feature extractor (F1): this script ships colorizers without"
        )
    if args.colorizer_config is not None:
        return colorizer_config(
            argparse.Namespace(**{**vars(record), "colorizer_config": args.colorizer_config}), task
        )
    return checkpoint_colorizer_config(record, task)  # a warm-started run: its starting pipeline's, converted


def main(argv=None) -> Path:
    args = parse_args(argv)
    if args.pipeline is not None:
        return ship_pipeline(args)
    run = Path(args.run)
    task = GAN_TASKS[args.family]
    checkpoints = list_checkpoints(run)
    if not checkpoints:
        raise FileNotFoundError(f"no checkpoint-N folder in {run}")
    if args.prior_steps < 0 or args.prior_hours < 0:
        raise ValueError("--prior_steps and --prior_hours must be >= 0.")
    checkpoint = run / args.checkpoint if args.checkpoint else Path(checkpoints[-1])
    step = int(checkpoint.name.split("-")[-1])
    record = load_training_args(checkpoint)  # the flags that made this checkpoint
    colorizer = colorizer_from_checkpoint(
        shipped_colorizer_config(args, record, task), checkpoint, ema=not args.no_ema
    )
    losses, hours, _ = training_log(run, until_step=step)

    out = _out_folder(args)
    staging = Path(tempfile.mkdtemp(prefix=f".{args.name}.", dir=out.parent))  # same file system: atomic rename
    flats = {}
    if args.flats_model is not None:
        flats = {"region_colorizer": region_colorizer_of(args.flats_model), "flats": True}
        flats["keep_stroke_colors"] = args.keep_stroke_colors
    pipe = task.pipeline_class(colorizer=colorizer.to(torch.float16), semantic_encoder=None, **flats)
    if args.hint_regions:
        _set_call_default(pipe, "--hint_regions", "hint_regions", True)
    pipe.save_pretrained(staging, safe_serialization=True)
    evaluation: Optional[str] = Path(args.evaluation).read_text() if args.evaluation else None
    write_gan_model_card(
        record,
        task,
        args.prior_steps + step,
        output_dir=staging,
        card_data={
            "license": args.license or "cc-by-4.0",
            **({"description": args.description} if args.description else {}),
        },
        repo_id=args.name,
        source=args.source,
        attribution=args.attribution or ADVENTURER_ATTRIBUTION,
        use_ema=not args.no_ema,
        training_command=args.command,
        hardware=args.hardware,
        wall_hours=f"{args.prior_hours + hours:.1f}",
        final_losses=", ".join(f"{tag} {value:.3f}" for tag, value in sorted(losses.items())),
        parameters=f"{sum(p.numel() for p in colorizer.parameters()) / 1e6:.2f}M",
        held_out=args.held_out,
        evaluation_table=evaluation,
        flats_model=args.flats_model,
        hint_regions=bool(pipe.config.get("hint_regions", False)),
        keep_stroke_colors=args.keep_stroke_colors,
    )
    return _install(staging, out, args.name, step)


if __name__ == "__main__":
    main()

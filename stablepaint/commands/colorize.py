"""`stablepaint colorize LINEART -o OUT`: color a lineart with a shipped pipeline (the first shipped StencilTorch one by
default), a pipeline folder or a Hub id."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import List, Optional

from stablepaint.commands import BaseStablepaintCommand, CLIError, cli_error
from stablepaint.commands.colorize_layers import add_palette_layer_flags, extra_outputs, palette_flag, save_extras
from stablepaint.commands.model_loading import DEVICES, DTYPES, load_model
from stablepaint.utils.atomic import check_not_input, save_image_atomic

#: Pipeline argument names in the messages of the image processor → the command-line names.
FLAGS = {"lineart": "LINEART", "hints": "--hints", "mask": "--mask", "image": "--image", "reference": "--reference"}
FLAGS["reference_lineart"] = "--reference-lineart"


def _load_input(path: Optional[str], flag: str):
    from stablepaint.image_processor import load_image

    if path is None:
        return None
    try:
        return load_image(path, flag)
    except (FileNotFoundError, ValueError, TypeError) as error:
        raise cli_error(error, {flag: flag}) from None


def output_paths(output: str, num_images: int, lineart: str) -> List[Path]:
    """Where the `num_images` outputs go (see the `colorize` description)."""
    from PIL import Image

    target = Path(output)
    if "{i}" in output:
        paths = [Path(output.replace("{i}", str(i))) for i in range(num_images)]
    elif target.is_dir() or not target.suffix:
        stem = Path(lineart).stem
        names = [f"{stem}_colorized.png"] if num_images == 1 else [f"{stem}_{i}.png" for i in range(num_images)]
        paths = [target / name for name in names]
    elif num_images == 1:
        paths = [target]
    else:
        paths = [target.with_name(f"{target.stem}_{i}{target.suffix}") for i in range(num_images)]
    extensions = Image.registered_extensions()
    for path in paths:
        if path.suffix.lower() not in extensions:
            raise CLIError(f"-o/--output: cannot tell the image format of {str(path)!r}; use a .png file name.")
    return paths


def _pipeline_kwargs(pipe, args, lineart, hints, mask, image) -> dict:
    """The call of `pipe` for these arguments: only what it declares it takes, and a clear error for the rest."""
    family = type(pipe).__name__
    accepted = pipe.call_parameters()
    first = "sketch" if pipe.call_method == "generate" else "lineart"  # ArtWorkflowPipeline: generate(sketch, ...)
    wanted = {first: ("LINEART", lineart), "hints": ("--hints", hints), "mask": ("--mask", mask)}
    wanted["image"] = ("--image", image)
    wanted["keep_lines"] = ("--keep-lines", True if args.keep_lines else None)
    wanted["flatten_regions"] = ("--flatten-regions", True if args.flatten_regions else None)
    wanted["num_inference_steps"] = ("--steps", args.steps)
    wanted["guidance_scale"] = ("--guidance-scale", args.guidance_scale)
    wanted["hint_regions"] = ("--hint-regions" if args.hint_regions else "--no-hint-regions", args.hint_regions)
    flats = getattr(args, "flats", None)
    wanted["flats"] = ("--flats" if flats else "--no-flats", flats)
    wanted["palette"] = ("--palette", palette_flag(getattr(args, "palette", None)))
    wanted["output_layers"] = ("--layers", True if getattr(args, "layers", None) else None)
    for key, flag in (("reference", "--reference"), ("reference_lineart", "--reference-lineart")):
        wanted[key] = (flag, _load_input(getattr(args, key, None), flag))  # one reference for every file
    kwargs = {}
    for key, (flag, value) in wanted.items():
        if value is None:
            continue
        if key not in accepted:
            if flag == "--steps":
                what = "generates each stage in one pass" if first == "sketch" else "colors in one forward pass"
                raise CLIError(f"--steps applies to diffusion models; {family} {what}.")
            raise CLIError(f"{family} takes no {flag}.")
        kwargs[key] = value
    return kwargs


class ColorizeCommand(BaseStablepaintCommand):
    """`stablepaint colorize LINEART -o OUT`: color a lineart with a shipped model, a pipeline folder or a Hub id."""

    @staticmethod
    def register_subcommand(commands: argparse._SubParsersAction) -> None:
        colorize = commands.add_parser(
            "colorize",
            help="color a lineart with a shipped model, a pipeline folder or a Hub id",
            description="Color LINEART (dark lines on white) from optional color-stroke hints, inside an optional mask, "
            "keeping an optional previous image outside it. The output has LINEART's size. With --num-images K > 1, OUT "
            "is a pattern holding '{i}' (e.g. out_{i}.png), a file name (written as NAME_0.png, NAME_1.png, ...) or a "
            "folder (written as <LINEART stem>_0.png, ...).",
        )
        colorize.add_argument(
            "lineart",
            metavar="LINEART",
            help="lineart image (or a drawing, with --extract-lineart); a folder or a quoted glob ('pages/*.png') "
            "colors every file into the folder OUT (batch mode: docs/batch_and_large_pages.md)",
        )
        colorize.add_argument("-o", "--output", metavar="OUT", required=True, help="output image (PNG recommended)")
        colorize.add_argument(
            "--hints", metavar="H", default=None, help="RGBA strokes (alpha marks them) or RGB on white"
        )
        colorize.add_argument("--mask", metavar="M", default=None, help="white = area to color (default: everything)")
        colorize.add_argument("--image", metavar="PREV", default=None, help="colored image kept outside the mask")
        colorize.add_argument(
            "--reference",
            metavar="REF",
            default=None,
            help="a colored image of the same character: color like it, with few or no strokes "
            "(docs/reference_coloring.md)",
        )
        colorize.add_argument(
            "--reference-lineart", metavar="REFLINE", default=None, help="the lineart of --reference (optional)"
        )
        colorize.add_argument(
            "--model",
            default=None,
            help="shipped name (see `stablepaint models`), 'flat-fill', pipeline folder or Hub id "
            "(default: the first shipped StencilTorch model)",
        )
        colorize.add_argument("--steps", type=int, default=None, help="denoising steps (diffusion models only)")
        colorize.add_argument(
            "--guidance-scale",
            type=float,
            default=None,
            metavar="G",
            help="classifier-free guidance over the hints (StablePaint only; default: the model's own, higher follows "
            "the strokes more closely)",
        )
        colorize.add_argument("--seed", type=int, default=0, help="seed of image i is SEED + i (default: 0)")
        colorize.add_argument(
            "--num-images", type=int, default=1, metavar="K", help="variations to write (default: 1)"
        )
        colorize.add_argument(
            "--keep-lines", action="store_true", help="copy the lineart's lines into the output exactly"
        )
        colorize.add_argument(
            "--flatten-regions",
            action="store_true",
            help="one color per region bounded by the lines (flat/cel coloring; the model's color under your strokes)",
        )
        colorize.add_argument(
            "--hint-regions",
            action=argparse.BooleanOptionalAction,
            default=None,
            help="StablePaint: fill each region you stroked with your stroke color and in-paint the rest around it "
            "(default: the model's own setting)",
        )
        colorize.add_argument(
            "--flats",
            action=argparse.BooleanOptionalAction,
            default=None,
            help="a PaintsTorch, StencilTorch, StablePaint or ArtWorkflow with a learned flats model: it decides every "
            "region's color and the network only shades on top (default: the model's own setting)",
        )
        colorize.add_argument(
            "--extract-lineart", action="store_true", help="LINEART is a drawing: extract its lineart first (xDoG)"
        )
        colorize.add_argument("--device", default="auto", choices=DEVICES, help="default: cuda, else mps, else cpu")
        colorize.add_argument(
            "--dtype", default="auto", choices=DTYPES, help="default: float16 on cuda, float32 elsewhere"
        )
        colorize.add_argument("--no-progress", action="store_true", help="hide the progress bars")
        colorize.add_argument(
            "--fast",
            action="store_true",
            help="GAN models on the CPU: run the colorizer with ONNX Runtime (same output within 1e-4, 1.5-2x "
            "faster, more on a busy CPU; needs onnxruntime; the graph is cached in ~/.cache/stablepaint/onnx)",
        )
        colorize.add_argument(
            "--fast-int8",
            action="store_true",
            help="GAN models on the CPU: run the colorizer quantized to int8 with OpenVINO (about 3.5x faster at 512², "
            "for previews: within 0.03 mean abs of the float32 output, stroke colors 4-25%% further; 5-10 s to "
            "calibrate; needs stablepaint[openvino])",
        )
        colorize.add_argument(
            "--overwrite", action="store_true", help="batch mode: color the files whose output exists too"
        )
        add_palette_layer_flags(colorize)  # --palette, --save-palette, --layers
        colorize.set_defaults(func=ColorizeCommand)

    def run(self) -> int:
        args = self.args
        from stablepaint.batch import is_batch_input

        if is_batch_input(args.lineart):  # a folder or a glob: batch mode, the same flags for every file
            from stablepaint.commands.colorize_batch import run_batch

            return run_batch(args, _pipeline_kwargs, _load_input)  # this module's helpers: no circle
        import torch
        from tqdm.auto import tqdm

        # 1. Check the arguments and read the inputs (before loading any model: bad input fails at once)
        if args.num_images < 1:
            raise CLIError(f"--num-images must be at least 1, got {args.num_images}.")
        if args.steps is not None and args.steps < 1:
            raise CLIError(f"--steps must be at least 1, got {args.steps}.")
        if args.guidance_scale is not None and not args.guidance_scale >= 0:  # NaN fails too
            raise CLIError(f"--guidance-scale must be a number >= 0, got {args.guidance_scale}.")
        paths = output_paths(args.output, args.num_images, args.lineart)
        extras, extra_files = extra_outputs(args, len(paths)), []  # --layers, --save-palette
        inputs = {"LINEART": args.lineart, "--hints": args.hints, "--mask": args.mask, "--image": args.image}
        inputs.update({"--reference": args.reference, "--reference-lineart": args.reference_lineart})
        for path in paths:
            check_not_input(path, inputs, "-o/--output")
        lineart = _load_input(args.lineart, "LINEART")
        if args.extract_lineart:
            from stablepaint.synthesis.lineart import LineartExtractionError, extract_lineart

            try:
                lineart = extract_lineart(lineart.convert("RGB"))
            except (LineartExtractionError, ValueError) as error:
                raise CLIError(f"--extract-lineart: {error}") from None
        hints = _load_input(args.hints, "--hints")
        mask = _load_input(args.mask, "--mask")
        image = _load_input(args.image, "--image")

        # 2. Load the model
        start = time.perf_counter()
        model, pipe, device, dtype = load_model(args.model, args.device, args.dtype, progress=not args.no_progress)
        if hasattr(pipe, "set_progress_bar_config"):
            pipe.set_progress_bar_config(disable=args.no_progress or args.steps == 1, leave=False)
        from stablepaint.commands.colorize_fast import apply_fast_flag

        apply_fast_flag(pipe, args.fast, args.fast_int8)
        loaded = time.perf_counter() - start
        family = type(pipe).__name__
        if args.num_images > 1 and not pipe.stochastic:
            raise CLIError(
                f"--num-images > 1 needs a model that samples (StablePaint, ArtWorkflow); {family} gives one."
            )
        kwargs = _pipeline_kwargs(pipe, args, lineart, hints, mask, image)
        takes_generator = "generator" in pipe.call_parameters()

        # 3. Color, one image per seed
        start = time.perf_counter()
        for i, path in enumerate(
            tqdm(paths, desc="colorize", unit="image", disable=args.no_progress, file=sys.stderr)
        ):
            if takes_generator:
                kwargs["generator"] = torch.Generator(device="cpu").manual_seed(args.seed + i)
            try:
                output = pipe(**kwargs)
                result = output.images[0]
            except (ValueError, TypeError) as error:
                raise cli_error(error, FLAGS) from None
            save_image_atomic(result, path)
            extra_files += save_extras(extras, i, output, lineart)
        elapsed = time.perf_counter() - start
        written = ", ".join(str(path) for path in paths + extra_files)
        print(
            f"Wrote {written} ({lineart.width}x{lineart.height}) with {model} ({family}, {device}, "
            f"{str(dtype).replace('torch.', '')}) in {elapsed:.2f} s (model loaded in {loaded:.2f} s)."
        )
        return 0

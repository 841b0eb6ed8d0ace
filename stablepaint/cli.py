"""The `stablepaint` command line: `stablepaint prepare`, `stablepaint lineart`, `stablepaint version`."""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import sys
import time
from pathlib import Path
from typing import List, Optional


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="stablepaint",
        description="User-guided lineart colorization: data synthesis, lineart extraction, training and inference.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True

    prepare = commands.add_parser(
        "prepare",
        help="synthesize a training dataset (lineart, hints, mask, flat colors) from a source of illustrations",
        description="Synthesize lineart, color-stroke hints, in-painting masks and flat colors for every illustration "
        "of SRC and write them with `datasets.Dataset.save_to_disk` to OUT.",
    )
    prepare.add_argument(
        "source",
        metavar="SRC",
        help="folder of illustrations, folder of *_line/*_color pairs, save_to_disk folder, or Hub dataset id",
    )
    prepare.add_argument("output", metavar="OUT", help="output folder (save_to_disk)")
    prepare.add_argument("--resolution", type=int, default=512, help="square crop size (default: 512, the thesis')")
    prepare.add_argument("--seed", type=int, default=0, help="base seed; the same seed gives the same dataset")
    prepare.add_argument("--num-proc", type=int, default=1, help="processes to synthesize with (default: 1)")
    prepare.add_argument("--split", default="train", help="split of a Hub dataset (default: train)")
    prepare.add_argument("--image-column", default="image", help="illustration column of a Hub/on-disk dataset")
    prepare.add_argument("--lineart-column", default=None, help="real-lineart column of a Hub/on-disk dataset")
    prepare.add_argument("--max-samples", type=int, default=None, help="only the first N illustrations")
    prepare.add_argument("--eval", action="store_true", help="center crops (evaluation) instead of random crops")
    prepare.add_argument("--n-colors", type=int, default=25, help="colors of the flat simplification (default: 25)")
    prepare.add_argument(
        "--segmentation",
        default="felzenszwalb",
        choices=("felzenszwalb", "slic"),
        help="region segmentation of the simplification (slic is about 2x faster)",
    )
    prepare.add_argument("--no-simplify", action="store_true", help="draw strokes from the raw illustration")
    prepare.add_argument("--no-masks", action="store_true", help="full masks only (PaintsTorch-style data)")
    prepare.add_argument("--overwrite", action="store_true", help="replace OUT if it already holds a dataset")
    prepare.add_argument("--preview", metavar="PNG", default=None, help="also write a grid of the first examples")
    prepare.add_argument(
        "--attribution",
        default=None,
        help="attribution text for the dataset card (default: the source folder's ATTRIBUTION.txt or LICENSE, if any)",
    )
    prepare.set_defaults(func=run_prepare)

    lineart = commands.add_parser(
        "lineart",
        help="extract a black-on-white lineart from a drawing or photo",
        description="Extract a lineart (dark lines on white) from IN and write it to OUT. `xdog` is built in; the "
        'controlnet-aux detectors need `pip install "stablepaint[aux]"` and, for the neural ones, their weights.',
    )
    lineart.add_argument("input", metavar="IN", help="input image")
    lineart.add_argument("output", metavar="OUT", help="output image (PNG recommended)")
    from .lineart import LINEART_METHODS

    lineart.add_argument("--method", default="xdog", choices=LINEART_METHODS, help="detector (default: xdog)")
    lineart.add_argument("--sigma", type=float, default=0.5, help="xDoG σ in pixels (default: 0.5)")
    lineart.add_argument("--threshold", default="step", choices=("step", "otsu", "tanh"), help="xDoG thresholding")
    lineart.add_argument("--annotator-path", default=None, help="folder (or Hub id) with the controlnet-aux weights")
    lineart.add_argument("--detect-resolution", type=int, default=512, help="controlnet-aux working resolution")
    lineart.set_defaults(func=run_lineart)

    version = commands.add_parser("version", help="print the versions of stablepaint and its stack")
    version.set_defaults(func=run_version)
    from .colorize import add_colorize_parsers

    add_colorize_parsers(commands)  # `colorize`, `models`, `export-onnx`; dispatched through set_defaults(func=...)
    from .mos import add_mos_parser

    add_mos_parser(commands)  # `stablepaint mos make|score`; dispatched through set_defaults(func=run_mos_*)
    from .app import add_app_parser

    add_app_parser(commands)  # `stablepaint app`; dispatched through set_defaults(func=run_app)
    from .evaluation import add_evaluate_parser

    add_evaluate_parser(commands)  # `stablepaint evaluate`; dispatched through set_defaults(func=run_evaluate)
    return parser


def run_prepare(args: argparse.Namespace) -> int:
    import datasets

    from .data import EXAMPLE_COLUMNS, SynthesisConfig, prepare_dataset
    from .hub import dataset_card, find_attribution
    from .visualize import example_row, make_grid

    if args.num_proc < 1:
        raise CLIError(f"--num-proc must be at least 1, got {args.num_proc}.")
    if args.max_samples is not None and args.max_samples < 1:
        raise CLIError(f"--max-samples must be at least 1, got {args.max_samples}.")
    output = Path(args.output)
    if output.exists() and not output.is_dir():
        raise CLIError(f"OUT {str(output)!r} is a file; expected a folder.")
    if output.is_dir() and any(output.iterdir()):
        if not args.overwrite:
            raise CLIError(f"OUT {str(output)!r} exists and is not empty; choose a new folder or pass --overwrite.")
        if not (output / "dataset_info.json").exists():
            raise CLIError(f"OUT {str(output)!r} is not a dataset written by `prepare`; refusing to overwrite it.")
        shutil.rmtree(output)
    try:
        config = SynthesisConfig(
            resolution=args.resolution,
            n_colors=args.n_colors,
            segmentation=args.segmentation,
            simplify=not args.no_simplify,
            masks=not args.no_masks,
        )
    except ValueError as error:
        raise CLIError(str(error).replace("`resolution`", "--resolution")) from None
    start = time.perf_counter()
    dataset = prepare_dataset(
        args.source,
        output,
        config=config,
        seed=args.seed,
        train=not args.eval,
        num_proc=args.num_proc,
        split=args.split,
        image_column=args.image_column,
        lineart_column=args.lineart_column,
        max_samples=args.max_samples,
    )
    elapsed = time.perf_counter() - start
    real_lineart = find_real_lineart(args)
    card = dataset_card(
        source=str(args.source),
        num_examples=len(dataset),
        config=config.to_dict(),
        command=" ".join(["stablepaint"] + [shlex.quote(a) for a in args.argv]),
        real_lineart=real_lineart,
        train=not args.eval,
        attribution=args.attribution or find_attribution(args.source),
    )
    card.save(output / "README.md")
    print(
        f"Wrote {len(dataset)} examples ({', '.join(EXAMPLE_COLUMNS)}) to {output} in {elapsed:.1f} s "
        f"({len(dataset) / max(elapsed, 1e-9):.1f} examples/s). Load it with datasets.load_from_disk({str(output)!r})."
    )
    if args.preview:
        reloaded = datasets.load_from_disk(str(output))
        rows = [example_row(reloaded[i], EXAMPLE_COLUMNS[1:5] + ("image",)) for i in range(min(4, len(reloaded)))]
        grid = make_grid(rows, labels=["lineart", "hints", "mask", "simplified", "illustration"])
        Path(args.preview).parent.mkdir(parents=True, exist_ok=True)
        grid.save(args.preview)
        print(f"Preview grid: {args.preview}")
    return 0


def find_real_lineart(args: argparse.Namespace) -> bool:
    from .data import find_pairs

    if args.lineart_column:
        return True
    return Path(args.source).is_dir() and bool(find_pairs(args.source))


def run_lineart(args: argparse.Namespace) -> int:
    from .image_processor import load_image
    from .lineart import LineartExtractionError, extract_lineart

    try:
        image = load_image(args.input, "IN")
    except (ValueError, TypeError, OSError) as error:
        raise CLIError(str(error)) from None
    try:
        result = extract_lineart(
            image,
            method=args.method,
            sigma=args.sigma,
            threshold=args.threshold,
            annotator_path=args.annotator_path,
            detect_resolution=args.detect_resolution,
        )
    except LineartExtractionError as error:
        raise CLIError(str(error)) from None
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    result.save(args.output)
    print(f"Wrote {args.output} ({result.width}x{result.height}, method={args.method}).")
    return 0


def run_version(args: argparse.Namespace) -> int:
    import importlib.metadata as metadata

    for name in ("stablepaint", "torch", "diffusers", "transformers", "accelerate", "datasets", "peft"):
        try:
            print(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            print(f"{name} (not installed)")
    return 0


class CLIError(Exception):
    """An error the command line reports in one line, without a traceback."""


def main(argv: Optional[List[str]] = None) -> int:
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(argv)
    args.argv = argv
    try:
        return args.func(args)
    except (CLIError, OSError, ValueError) as error:  # OSError: missing files, unreachable Hub datasets
        print(f"stablepaint {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

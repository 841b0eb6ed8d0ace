"""`stablepaint prepare SRC OUT`: synthesize a training dataset from a source of illustrations (`stablepaint.data`)."""

from __future__ import annotations

import argparse
import shlex
import time
from pathlib import Path

from stablepaint.commands import BaseStablepaintCommand, CLIError, cli_error
from stablepaint.utils.atomic import atomic_folder, check_not_input, save_image_atomic

#: The library's argument names in error messages → the command line's.
FLAGS = {"source": "SRC", "split": "--split", "image_column": "--image-column", "lineart_column": "--lineart-column"}


def find_real_lineart(args: argparse.Namespace) -> bool:
    from stablepaint.data import find_pairs

    if args.lineart_column:
        return True
    return Path(args.source).is_dir() and bool(find_pairs(args.source))


class PrepareCommand(BaseStablepaintCommand):
    """`stablepaint prepare`: lineart, hints, masks and flat colors for every illustration, saved to disk."""

    @staticmethod
    def register_subcommand(commands: argparse._SubParsersAction) -> None:
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
        prepare.add_argument(
            "--resolution", type=int, default=512, help="square crop size (default: 512, the thesis')"
        )
        prepare.add_argument("--seed", type=int, default=0, help="base seed; the same seed gives the same dataset")
        prepare.add_argument("--num-proc", type=int, default=1, help="processes to synthesize with (default: 1)")
        prepare.add_argument("--split", default="train", help="split of a Hub dataset (default: train)")
        prepare.add_argument("--image-column", default="image", help="illustration column of a Hub/on-disk dataset")
        prepare.add_argument("--lineart-column", default=None, help="real-lineart column of a Hub/on-disk dataset")
        prepare.add_argument("--max-samples", type=int, default=None, help="only the first N illustrations")
        prepare.add_argument("--eval", action="store_true", help="center crops (evaluation) instead of random crops")
        prepare.add_argument(
            "--n-colors", type=int, default=25, help="colors of the flat simplification (default: 25)"
        )
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
        prepare.set_defaults(func=PrepareCommand)

    def run(self) -> int:
        args = self.args
        import datasets

        from stablepaint.data import EXAMPLE_COLUMNS, SynthesisConfig
        from stablepaint.utils.visualize import example_row, make_grid

        if args.num_proc < 1:
            raise CLIError(f"--num-proc must be at least 1, got {args.num_proc}.")
        if args.max_samples is not None and args.max_samples < 1:
            raise CLIError(f"--max-samples must be at least 1, got {args.max_samples}.")
        output = Path(args.output)
        if output.exists() and not output.is_dir():
            raise CLIError(f"OUT {str(output)!r} is a file; expected a folder.")
        if output.is_dir() and any(output.iterdir()):
            if not args.overwrite:
                raise CLIError(
                    f"OUT {str(output)!r} exists and is not empty; choose a new folder or pass --overwrite."
                )
            if not (output / "dataset_info.json").exists():
                raise CLIError(f"OUT {str(output)!r} is not a dataset written by `prepare`; refusing to overwrite it.")
        if Path(args.source).exists():  # a local source: OUT and the preview stay out of it (and it out of OUT)
            check_not_input(output, {"SRC": args.source}, "OUT", nested=True)
            if args.preview:
                check_not_input(args.preview, {"SRC": args.source}, "--preview", nested=True)
        try:
            config = SynthesisConfig(
                resolution=args.resolution,
                n_colors=args.n_colors,
                segmentation=args.segmentation,
                simplify=not args.no_simplify,
                masks=not args.no_masks,
            )
        except ValueError as error:
            raise cli_error(error, {"resolution": "--resolution"}) from None
        start = time.perf_counter()
        # Everything goes into a hidden sibling folder, renamed onto OUT at the end (replacing a previous dataset
        # only then): a failed or killed run leaves OUT as it was.
        with atomic_folder(output, overwrite=True) as staging:
            dataset = self._write(args, staging, config)
        elapsed = time.perf_counter() - start
        print(
            f"Wrote {len(dataset)} examples ({', '.join(EXAMPLE_COLUMNS)}) to {output} in {elapsed:.1f} s "
            f"({len(dataset) / max(elapsed, 1e-9):.1f} examples/s). Load it with datasets.load_from_disk({str(output)!r})."
        )
        if args.preview:
            reloaded = datasets.load_from_disk(str(output))
            rows = [example_row(reloaded[i], EXAMPLE_COLUMNS[1:5] + ("image",)) for i in range(min(4, len(reloaded)))]
            grid = make_grid(rows, labels=["lineart", "hints", "mask", "simplified", "illustration"])
            save_image_atomic(grid, args.preview)
            print(f"Preview grid: {args.preview}")
        return 0

    @staticmethod
    def _write(args, staging: Path, config):
        """The dataset and its card, written into `staging`."""
        from stablepaint.data import prepare_dataset
        from stablepaint.hub.cards import dataset_card, find_attribution

        try:
            dataset = prepare_dataset(
                args.source,
                staging,
                config=config,
                seed=args.seed,
                train=not args.eval,
                num_proc=args.num_proc,
                split=args.split,
                image_column=args.image_column,
                lineart_column=args.lineart_column,
                max_samples=args.max_samples,
            )
        except (ValueError, OSError) as error:
            raise cli_error(error, FLAGS) from None
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
        card.save(staging / "README.md")
        return dataset

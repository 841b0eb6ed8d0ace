"""`stablepaint evaluate`: models on held-out samples in the thesis' hint regimes (`stablepaint.evaluation.evaluate`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from stablepaint.commands import BaseStablepaintCommand, cli_error
from stablepaint.evaluation import REGIMES, evaluate, format_table

#: The library's argument names in error messages → the command line's.
FLAGS = {
    "source": "--data",
    "data": "--data",
    "models": "--model",
    "out_dir": "--out",
    "regimes": "--regimes",
    "num_samples": "--num-samples",
    "resolution": "--resolution",
    "batch_size": "--batch-size",
    "steps": "--steps",
    "include_ids": "--include-ids",
    "exclude_ids": "--exclude-ids",
    "reference": "--reference",
    "guidance_scale": "--guidance-scale",
}


class EvaluateCommand(BaseStablepaintCommand):
    """`stablepaint evaluate --model M [--model M2 ...] --data SRC --out DIR`."""

    @staticmethod
    def register_subcommand(commands: argparse._SubParsersAction) -> None:
        parser = commands.add_parser(
            "evaluate",
            help="evaluate models on a held-out set in the no-hints / hints / full-hints regimes (FID, KID, ...)",
            description="Run each MODEL on held-out samples of DATA in the thesis' hint regimes and write OUT/results.json, "
            "OUT/results.md (a table: one row per model, columns per regime and metric) and OUT/grid_<model>.png.",
        )
        parser.add_argument(
            "--model",
            action="append",
            required=True,
            metavar="PATH_OR_ID",
            help="shipped name, 'flat-fill', pipeline folder or Hub id; repeat for several models",
        )
        parser.add_argument(
            "--data", required=True, metavar="SRC", help="folder of pairs or illustrations, or a dataset"
        )
        parser.add_argument("--regimes", default=",".join(REGIMES), help="comma-separated among none,hints,full")
        parser.add_argument("--num-samples", type=int, default=20, metavar="N", help="first N samples (default: 20)")
        parser.add_argument("--resolution", type=int, default=256, metavar="R", help="center crop side (default: 256)")
        parser.add_argument("--seed", type=int, default=0, help="seed of the hints and generators (default: 0)")
        parser.add_argument("--batch-size", type=int, default=4, metavar="B", help="images per call (default: 4)")
        parser.add_argument("--steps", type=int, default=20, help="denoising steps of diffusion models (default: 20)")
        parser.add_argument("--device", default="auto", help="cpu, cuda, mps or auto (default)")
        ids = parser.add_mutually_exclusive_group()
        ids.add_argument("--include-ids", default=None, metavar="IDS", help="only these ids, e.g. '2480-2499'")
        ids.add_argument("--exclude-ids", default=None, metavar="IDS", help="skip these ids, e.g. '0-2479'")
        parser.add_argument(
            "--split",
            default=None,
            choices=("train", "validation", "test"),
            help="only that split of the documented splits (stablepaint.data.splits; e.g. test: adventurer 2400-2499)",
        )
        parser.add_argument("--inception-weights", default=None, metavar="PT", help="TorchScript FID Inception file")
        parser.add_argument(
            "--vgg-weights",
            default=None,
            metavar="FILE",
            help="VGG16 safetensors (default: $STABLEPAINT_VGG16_WEIGHTS)",
        )
        parser.add_argument(
            "--reference",
            default="flat-fill",
            metavar="MODEL",
            help="compare the other models with this one, sample by sample (default: flat-fill, when evaluated)",
        )
        parser.add_argument(
            "--flatten-regions",
            action="store_true",
            help="call the models that take it with flatten_regions=True (median color per line-bounded region)",
        )
        parser.add_argument(
            "--guidance-scale",
            type=float,
            default=None,
            metavar="G",
            help="classifier-free guidance scale of the models that take one (default: each model's own)",
        )
        parser.add_argument(
            "--raw-network",
            action=argparse.BooleanOptionalAction,
            default=True,
            help="also report each model's raw network ('MODEL (raw network)': hint_regions, flats and "
            "flatten_regions off) beside its default call, when they differ (default: on)",
        )
        parser.add_argument("--out", required=True, metavar="DIR", help="output folder")
        parser.set_defaults(func=EvaluateCommand)

    def run(self) -> int:
        args = self.args
        if args.reference != "flat-fill" and args.reference not in args.model:
            raise ValueError(f"--reference {args.reference!r} is not one of the --model values {args.model}.")
        try:
            report = evaluate(
                models=args.model,
                data=args.data,
                out_dir=args.out,
                regimes=[regime.strip() for regime in args.regimes.split(",") if regime.strip()],
                num_samples=args.num_samples,
                resolution=args.resolution,
                seed=args.seed,
                batch_size=args.batch_size,
                steps=args.steps,
                device=args.device,
                include_ids=args.include_ids,
                exclude_ids=args.exclude_ids,
                inception_weights=args.inception_weights,
                vgg_weights=args.vgg_weights,
                reference=args.reference,
                flatten_regions=args.flatten_regions,
                guidance_scale=args.guidance_scale,
                split=args.split,
                raw_network=args.raw_network,
            )
        except (ValueError, OSError) as error:
            raise cli_error(error, FLAGS) from None
        print(format_table(report), end="")
        print(f"wrote {Path(args.out) / 'results.json'}, {Path(args.out) / 'results.md'} and the grids")
        return 0

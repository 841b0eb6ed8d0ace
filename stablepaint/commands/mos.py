"""`stablepaint mos make|score`: a blind Mean Opinion Score study (`stablepaint.evaluation.mos`)."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from stablepaint.commands import BaseStablepaintCommand
from stablepaint.evaluation import make_study, results_markdown, score_files
from stablepaint.utils.atomic import check_not_input, write_text_atomic


def _no_nan(value):
    """`value` with NaN floats (undefined std / p-value) as None, so the JSON is strict."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _no_nan(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_no_nan(v) for v in value]
    return value


class MosMakeCommand(BaseStablepaintCommand):
    """`stablepaint mos make`: a blind, shuffled 1-5 rating page (registers `mos make` and `mos score`)."""

    @staticmethod
    def register_subcommand(commands: argparse._SubParsersAction) -> None:
        mos = commands.add_parser(
            "mos",
            help="blind Mean Opinion Score study: make a rating page, score the ratings",
            description="A blind MOS study as in the thesis (§IV.1.4.2): `make` writes a static rating page, `score` "
            "turns the downloaded ratings into MOS, std, 95% CI and t-test p-values against the best model.",
        )
        actions = mos.add_subparsers(dest="mos_command", metavar="ACTION")
        actions.required = True

        make = actions.add_parser(
            "make",
            help="write a blind, shuffled 1-5 rating page from several models' outputs",
            description="Copy the images that every --model-dir holds (matched by file name) under anonymous ids into "
            "OUT/images, write OUT/index.html, and the private key (anonymous id -> model, image) beside OUT, never "
            "inside it.",
        )
        make.add_argument(
            "--model-dir", action="append", required=True, metavar="NAME=DIR", help="a model's outputs (repeat)"
        )
        make.add_argument("--reference", default=None, metavar="DIR", help="ground truths, rated blind as 'reference'")
        make.add_argument("--out", required=True, help="page folder (absent or empty)")
        make.add_argument("--key", default=None, help="key file (default: OUT.key.json beside OUT)")
        make.add_argument("--seed", type=int, default=0, help="seed of the anonymous ids, sample and order")
        make.add_argument("--per-page", type=int, default=1, help="images per screen (default: 1)")
        make.add_argument("--max-images", type=int, default=None, help="rate only N images, sampled with the seed")
        make.add_argument("--title", default="Colorization quality study", help="page title")
        make.set_defaults(func=MosMakeCommand)

        score = actions.add_parser(
            "score",
            help="MOS, std, 95%% CI and t-test p-values from the downloaded ratings",
            description="Read the key and every RATINGS file (JSON or CSV from the page) and print a Markdown table.",
        )
        score.add_argument("--key", required=True, help="the key written by `stablepaint mos make`")
        score.add_argument("ratings", nargs="+", metavar="RATINGS", help="ratings files (.json or .csv)")
        score.add_argument(
            "--test", default="auto", choices=("auto", "paired", "welch"), help="t-test (default: auto)"
        )
        score.add_argument(
            "--out", default=None, help="write the table: .md (plus .json beside it) or .json (plus .md)"
        )
        score.set_defaults(func=MosScoreCommand)

    def run(self) -> int:
        args = self.args
        study = make_study(
            args.model_dir,
            args.out,
            reference=args.reference,
            seed=args.seed,
            per_page=args.per_page,
            max_images=args.max_images,
            key_path=args.key,
            title=args.title,
        )
        print(
            f"wrote {study.page} ({study.num_items} items: {len(study.images)} images x {len(study.models)} models); "
            f"key (keep private): {study.key}"
        )
        return 0


class MosScoreCommand(MosMakeCommand):
    """`stablepaint mos score`: MOS, std, 95% CI and t-tests from the downloaded ratings (registered with `mos make`)."""

    def run(self) -> int:
        args = self.args
        if args.out:
            inputs = {"--key": args.key, **{f"RATINGS {path}": path for path in args.ratings}}
            for written in (Path(args.out).with_suffix(".md"), Path(args.out).with_suffix(".json")):
                check_not_input(written, inputs, "--out")
        summary = score_files(args.key, args.ratings, test=args.test)
        markdown = results_markdown(summary)
        print(markdown, end="")
        if args.out:
            out = Path(args.out)
            if out.suffix.lower() not in (".md", ".json"):
                raise ValueError(f"--out must end with .md or .json, got {str(out)!r}.")
            write_text_atomic(out.with_suffix(".md"), markdown)
            write_text_atomic(out.with_suffix(".json"), json.dumps(_no_nan(summary), indent=2))
            print(f"wrote {out.with_suffix('.md')} and {out.with_suffix('.json')}")
        return 0

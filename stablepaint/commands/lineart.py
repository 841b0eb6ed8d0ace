"""`stablepaint lineart IN OUT`: extract a black-on-white lineart from a drawing or photo."""

from __future__ import annotations

import argparse

from stablepaint.commands import BaseStablepaintCommand, CLIError, cli_error
from stablepaint.synthesis.lineart import LINEART_METHODS
from stablepaint.utils.atomic import check_not_input, save_image_atomic


class LineartCommand(BaseStablepaintCommand):
    """`stablepaint lineart`: xDoG, or a controlnet-aux detector."""

    @staticmethod
    def register_subcommand(commands: argparse._SubParsersAction) -> None:
        lineart = commands.add_parser(
            "lineart",
            help="extract a black-on-white lineart from a drawing or photo",
            description="Extract a lineart (dark lines on white) from IN and write it to OUT. `xdog` is built in; the "
            'controlnet-aux detectors need `pip install "stablepaint[aux]"` and, for the neural ones, their weights.',
        )
        lineart.add_argument("input", metavar="IN", help="input image")
        lineart.add_argument("output", metavar="OUT", help="output image (PNG recommended)")

        lineart.add_argument("--method", default="xdog", choices=LINEART_METHODS, help="detector (default: xdog)")
        lineart.add_argument("--sigma", type=float, default=0.5, help="xDoG σ in pixels (default: 0.5)")
        lineart.add_argument("--threshold", default="step", choices=("step", "otsu", "tanh"), help="xDoG thresholding")
        lineart.add_argument(
            "--annotator-path", default=None, help="folder (or Hub id) with the controlnet-aux weights"
        )
        lineart.add_argument("--detect-resolution", type=int, default=512, help="controlnet-aux working resolution")
        lineart.set_defaults(func=LineartCommand)

    def run(self) -> int:
        args = self.args
        from stablepaint.image_processor import load_image
        from stablepaint.synthesis.lineart import LineartExtractionError, extract_lineart

        check_not_input(args.output, {"IN": args.input}, "OUT")
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
        except ValueError as error:  # e.g. xDoG's `sigma`
            raise cli_error(error, {"sigma": "--sigma", "detect_resolution": "--detect-resolution"}) from None
        try:
            save_image_atomic(result, args.output)
        except ValueError as error:  # e.g. an unknown suffix
            raise CLIError(f"OUT: {error}") from None
        print(f"Wrote {args.output} ({result.width}x{result.height}, method={args.method}).")
        return 0

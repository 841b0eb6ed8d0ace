"""`stablepaint export-onnx OUT.onnx`: export a PaintsTorch/StencilTorch colorizer to ONNX (`stablepaint.export.onnx`)."""

from __future__ import annotations

import argparse
import time

from stablepaint.commands import BaseStablepaintCommand, CLIError
from stablepaint.export.onnx import CHECK_SIZES, TOLERANCE, check_onnx, export_onnx, gan_colorizer, onnx_input_names


class ExportOnnxCommand(BaseStablepaintCommand):
    """`stablepaint export-onnx`: the GAN colorizer as an ONNX graph, checked against PyTorch on request."""

    @staticmethod
    def register_subcommand(commands: argparse._SubParsersAction) -> None:
        parser = commands.add_parser(
            "export-onnx",
            help="export a PaintsTorch/StencilTorch colorizer to ONNX (dynamic batch and size)",
            description="Export the GAN colorizer of a PaintsTorch or StencilTorch pipeline to OUT (ONNX, dynamic batch "
            "and spatial size in multiples of 16; inputs `sample`, `hints`, and `features` when the colorizer reads "
            "them). --check compares onnxruntime with PyTorch at two sizes and batches and reports the max abs difference.",
        )
        parser.add_argument("output", metavar="OUT.onnx", help="the ONNX file to write")
        parser.add_argument(
            "--model",
            default=None,
            help="shipped name, pipeline folder or Hub id (default: the first shipped StencilTorch)",
        )
        parser.add_argument("--opset", type=int, default=17, help="ONNX opset (default: 17)")
        parser.add_argument("--check", action="store_true", help=f"check against PyTorch (fails above {TOLERANCE:g})")
        parser.set_defaults(func=ExportOnnxCommand)

    def run(self) -> int:
        args = self.args
        from stablepaint.commands.model_loading import model_name
        from stablepaint.hub.loading import load_pipeline

        model = model_name(args.model)
        for name in ("onnx", "onnxruntime") if args.check else ("onnx",):
            try:
                __import__(name)
            except ImportError:
                raise CLIError(f'{name} is not installed: pip install "stablepaint[onnx]".') from None
        try:
            pipe = load_pipeline(model)
        except (ValueError, OSError) as error:
            raise CLIError(f"--model: {error}") from None
        try:
            colorizer = gan_colorizer(pipe)
        except ValueError as error:
            raise CLIError(f"--model {model}: {error}") from None
        start = time.perf_counter()
        path = export_onnx(pipe, args.output, opset=args.opset)
        elapsed = time.perf_counter() - start
        size = path.stat().st_size / 2**20
        print(
            f"Wrote {path} ({size:.2f} MB, opset {args.opset}, inputs {', '.join(onnx_input_names(colorizer))}) "
            f"in {elapsed:.1f} s."
        )
        if args.check:
            diff = check_onnx(path, pipe)
            sizes = ", ".join(f"{b}x{h}x{w}" for b, h, w in CHECK_SIZES)
            print(f"onnxruntime vs PyTorch at B x H x W = {sizes}: max abs diff {diff:.3g} (tolerance {TOLERANCE:g}).")
            if not diff <= TOLERANCE:
                raise CLIError(f"the ONNX graph differs from PyTorch by {diff:.3g} > {TOLERANCE:g}.")
        return 0

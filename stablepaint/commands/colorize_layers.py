"""The palette and layered-output flags of `stablepaint colorize`: `--palette`, `--save-palette` and `--layers`."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Dict, List, Optional

from stablepaint.commands import CLIError


def add_palette_layer_flags(parser: argparse.ArgumentParser) -> None:
    """Register `--palette`, `--save-palette` and `--layers` on the `colorize` parser."""
    parser.add_argument(
        "--palette",
        metavar="P",
        default=None,
        help="palette lock: every region takes one color of P, a GIMP .gpl file, a swatch image or hex colors "
        "('#e04030,#2050a0') (docs/layers_and_palettes.md)",
    )
    parser.add_argument(
        "--save-palette", metavar="GPL", default=None, help="write the colors of the result (lines left out) as a .gpl"
    )
    parser.add_argument(
        "--layers",
        metavar="FILE",
        default=None,
        help="also write the layers (lines, flats, color, hints) as a .psd or .ora (OpenRaster) file",
    )


def palette_flag(value: Optional[str]):
    """The `--palette` value read once ([`stablepaint.palette.load_palette`]), or `None`; a `CLIError` if unreadable."""
    if value is None:
        return None
    from stablepaint.palette import load_palette

    try:
        return load_palette(value)
    except (ValueError, TypeError, OSError) as error:
        raise CLIError(f"--palette: {error}") from None


def _numbered(path: str, index: int, count: int) -> Path:
    target = Path(path)
    return target if count == 1 else target.with_name(f"{target.stem}_{index}{target.suffix}")


def extra_outputs(args: argparse.Namespace, count: int) -> Dict[str, List[Path]]:
    """The `--layers` and `--save-palette` files of `count` outputs (`NAME_i.ext` when there are several), checked:
    a known suffix, and none of them an input file."""
    from stablepaint.layers import LAYER_FORMATS
    from stablepaint.utils.atomic import check_not_input

    outputs = {}
    if args.layers is not None:
        if Path(args.layers).suffix.lower() not in LAYER_FORMATS:
            raise CLIError(f"--layers: the file must end in .psd or .ora, got {args.layers!r}.")
        outputs["--layers"] = [_numbered(args.layers, i, count) for i in range(count)]
    if args.save_palette is not None:
        if Path(args.save_palette).suffix.lower() != ".gpl":
            raise CLIError(f"--save-palette: the file must end in .gpl, got {args.save_palette!r}.")
        outputs["--save-palette"] = [_numbered(args.save_palette, i, count) for i in range(count)]
    inputs = {"LINEART": args.lineart, "--hints": args.hints, "--mask": args.mask, "--image": args.image}
    inputs.update({"--palette": args.palette, "-o/--output": args.output})
    for flag, paths in outputs.items():
        for path in paths:
            try:
                check_not_input(path, inputs, flag)
            except ValueError as error:
                raise CLIError(str(error)) from None
    return outputs


def save_extras(outputs: Dict[str, List[Path]], index: int, output, lineart) -> List[Path]:
    """Write the layers (`output.layers[0]`) and the result's palette of output `index`; returns the files written."""
    from stablepaint.layers import save_layers
    from stablepaint.palette import image_palette, save_palette

    written = []
    if "--layers" in outputs:
        written.append(save_layers(output.layers[0], outputs["--layers"][index]))
    if "--save-palette" in outputs:
        colors = image_palette(output.images[0], lineart)
        path = outputs["--save-palette"][index]
        written.append(save_palette(colors, path, name=path.stem))
    return written

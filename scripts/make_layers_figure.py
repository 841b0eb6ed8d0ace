"""Make the README's layers figure: one run of the shipped default model on the example lineart and hints, shown as
its layers.

    python scripts/make_layers_figure.py [--model stenciltorch-adventurer] [--out docs/layers.png] [--layers out.ora]

Columns: lines (transparent, shown over a checkerboard) | hints | color (the model's output) | flats |
lines × flats (the visible stack, = keep_lines(flats)) | the same with the palette lock (`PALETTE`, five colors: sienna
hair, skin, red, white, near-black). Example images: DiceBear Adventurer by Lisa Wischofsky,
CC BY 4.0 (examples/pairs/ATTRIBUTION.txt).
"""

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

from stablepaint import load_pipeline
from stablepaint.layers import save_layers
from stablepaint.palette import load_palette
from stablepaint.utils.visualize import make_grid

REPO = Path(__file__).resolve().parents[1]
STEM = "dicebear_adventurer_2494"
PALETTE = ["#a0522d", "#f5d0b0", "#d02838", "#ffffff", "#302020"]


def _on_checkerboard(image: Image.Image, square: int = 8) -> Image.Image:
    """An RGBA layer over a light checkerboard, so that its transparency shows."""
    height, width = image.height, image.width
    y, x = np.mgrid[:height, :width]
    board = np.where(((y // square + x // square) % 2)[..., None] == 0, 255, 225).astype(np.uint8)
    background = Image.fromarray(np.repeat(board, 3, axis=-1)).convert("RGBA")
    return Image.alpha_composite(background, image).convert("RGB")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="stenciltorch-adventurer")
    parser.add_argument("--out", default=str(REPO / "docs" / "layers.png"))
    parser.add_argument("--layers", default=None, help="also write the palette-locked layers (.ora or .psd)")
    args = parser.parse_args()
    lineart = Image.open(REPO / "examples" / "pairs" / f"{STEM}_line.png")
    hints = Image.open(REPO / "examples" / "hints" / f"{STEM}_hints.png")
    palette = load_palette(PALETTE)

    pipe = load_pipeline(args.model)
    pipe.set_progress_bar_config(disable=True)
    (layers,) = pipe(lineart, hints=hints, output_layers=True).layers
    (locked,) = pipe(lineart, hints=hints, palette=palette, output_layers=True).layers
    if args.layers:
        print(f"wrote {save_layers(locked, args.layers)}")
    row = [
        _on_checkerboard(layers.lines),
        _on_checkerboard(layers.hints),
        layers.color.convert("RGB"),
        layers.flats.convert("RGB"),
        layers.composite(),
        locked.composite(),
    ]
    labels = ["lines (multiply)", "hints", "color (model)", "flats", "lines x flats", "palette lock (5)"]
    grid = make_grid([row], labels=labels, cell=160)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    grid.save(args.out, optimize=True)
    print(f"wrote {args.out} ({grid.width}x{grid.height})")


if __name__ == "__main__":
    main()

"""Make the README's artistic-workflow figure with a trained `ArtWorkflowPipeline`.

    python scripts/make_art_workflow_figure.py --model /work/artifacts/workflow/reg \
        --vgg_weights ../shared/weights/vgg16_features.safetensors [--out docs/art_workflow.png]

Rows are held-out DiceBear Adventurer illustrations (CC BY 4.0, Lisa Wischofsky; ids 2494-2499 were left out of
training). Columns: the artwork | its inferred sketch | its inferred flat coloring | the reconstruction after the
AdaIN optimization (learned regularization) | edit 1: the flat stage recolored (hue rotated), and the final artwork
regenerated from it | edit 2: the final-stage latent re-sampled.
"""

import argparse
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from stablepaint import ArtWorkflowPipeline
from stablepaint.utils.visualize import make_grid

REPO = Path(__file__).resolve().parents[1]
LABELS = ("artwork", "inferred sketch", "inferred flat", "reconstruction", "recolored flat", "-> final", "resampled")


def rotate_hue(image: Image.Image, amount: float) -> Image.Image:
    """Rotate the hue of an RGB image by `amount` of a turn (a recoloring that keeps the flat regions)."""
    hsv = np.asarray(image.convert("HSV")).copy()
    hsv[..., 0] = (hsv[..., 0].astype(np.int32) + int(round(amount * 255))) % 256
    return Image.fromarray(hsv, "HSV").convert("RGB")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="A trained ArtWorkflowPipeline folder.")
    parser.add_argument("--data", default=str(REPO.parent / "shared" / "data" / "adventurer"))
    parser.add_argument("--ids", type=int, nargs="+", default=[2496, 2498])
    parser.add_argument("--resolution", type=int, default=64)
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--vgg_weights", default=None)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--out", default=str(REPO / "docs" / "art_workflow.png"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    pipe = ArtWorkflowPipeline.from_pretrained(args.model)
    rows = []
    for i, image_id in enumerate(args.ids):
        artwork = Image.open(Path(args.data) / f"dicebear_adventurer_{image_id}_color.png").convert("RGB")
        artwork = artwork.resize((args.resolution, args.resolution), Image.Resampling.LANCZOS)
        state = pipe.invert(
            artwork,
            optimize_steps=args.steps,
            use_learned_regularization=pipe.regularizer is not None,
            vgg_weights=args.vgg_weights,
        )
        recolored_flat = rotate_hue(state.stages[1][0], 0.4)
        recolored = pipe.edit(state, stage="flat", image=recolored_flat)
        resampled = pipe.edit(state, stage="final", generator=torch.Generator().manual_seed(args.seed + i))
        rows.append(
            [
                artwork,
                state.inferred_stages[0][0],
                state.inferred_stages[1][0],
                state.images[0],
                recolored.stages[1][0],
                recolored.images[0],
                resampled.images[0],
            ]
        )
    grid = make_grid(rows, labels=LABELS, cell=128)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    grid.save(args.out)
    print(f"wrote {args.out} ({grid.width}x{grid.height})")


if __name__ == "__main__":
    main()

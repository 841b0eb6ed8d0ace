"""Two ways to trade hint fidelity against region color error around the learned flats, measured on the `validation`
split of each open dataset (100 drawings, 256², `stablepaint evaluate`'s stroke sampler, `hints` regime):

- **split by strokes**: every region that holds strokes of several colors is divided between them (each pixel takes
  the color of the nearest stroke pixel inside the region), after the flat fill or the flats. Every stroke pixel
  inside a region is then exact (only those on the lines stay dark);
- **StencilTorch shading on the flats**: `stenciltorch-adventurer`'s default call gives the shading (its luminance
  over the median luminance of each region, clipped to [0.85, 1.15]) and the flats the colors, lines multiplied in.

Plus where the flat fill's hint error lies (stroke pixels on the lines, kept dark, against the rest). Writes
benchmarks/results/flats_tradeoffs.json.

    python benchmarks/eval_flats_tradeoffs.py
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
    REPO,
    SHIPPED_FLATS,
    against_reference,
    color_metrics,
    flats_methods,
    machine,
    validation_hints,
    write_report,
)

DATASETS = ("adventurer", "openmoji")


def split_by_strokes(image: np.ndarray, lineart: np.ndarray, hints: np.ndarray) -> np.ndarray:
    """`image` (`(H, W, 3)` in [0, 1]) with each region holding strokes of 2+ colors repainted, pixel by pixel, in the
    color of the nearest stroke pixel of that region (`hints`: `(H, W, 4)` uint8 RGBA)."""
    from scipy import ndimage

    from stablepaint.regions import color_codes, label_regions

    image, stroke = image.copy(), hints[..., 3] >= 128
    labels, _ = label_regions(lineart, 0.5)
    under = stroke & (labels > 0)
    if not under.any():
        return image
    keys = np.unique(labels[under].astype(np.int64) << 24 | color_codes(hints[..., :3])[under])
    regions, colors = np.unique(keys >> 24, return_counts=True)
    boxes = ndimage.find_objects(labels)
    for region in regions[colors >= 2]:
        box = boxes[region - 1]
        inside = labels[box] == region
        _, (ys, xs) = ndimage.distance_transform_edt(~(stroke[box] & inside), return_indices=True)
        nearest = hints[box][..., :3][ys, xs].astype(np.float32) / 255
        image[box][inside] = nearest[inside]
    return image


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--num-samples", type=int, default=100)
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "flats_tradeoffs.json"))
    args = parser.parse_args(argv)
    torch.set_num_threads(2)
    from stablepaint.hub.loading import load_pipeline
    from stablepaint.metrics import delta_e00
    from stablepaint.regions import shade_flats

    methods = flats_methods()
    results = []
    for name in DATASETS:
        samples, targets, lines, hints = validation_hints(name, args.num_samples)
        metrics, outputs = {}, {}
        for method, pipe in methods.items():
            images = outputs[method] = [
                pipe(s.lineart, hints=s.hints["hints"], output_type="np").images[0] for s in samples
            ]
            split = [
                split_by_strokes(
                    image, np.asarray(s.lineart.convert("L"), np.float32) / 255, np.asarray(s.hints["hints"])
                )
                for image, s in zip(images, samples)
            ]
            for label, arrays in ((method, images), (method + " + split by strokes", split)):
                metrics[label] = color_metrics(arrays, targets, lines, hints)
        stencil = load_pipeline("stenciltorch-adventurer")
        stencil.set_progress_bar_config(disable=True)
        shading = [stencil(s.lineart, hints=s.hints["hints"], output_type="np").images[0] for s in samples]
        shaded = [  # what the GAN pipelines' `flats=True` does (stablepaint.regions.shade_flats)
            shade_flats(image[None], flat[None], s.lineart)[0]
            for image, flat, s in zip(shading, outputs[SHIPPED_FLATS], samples)
        ]
        for label, arrays in (
            ("stenciltorch-adventurer (default call)", shading),
            ("StencilTorch shading on the flats", shaded),
        ):
            metrics[label] = color_metrics(arrays, targets, lines, hints)
        base = metrics["flat fill"]
        # Where the flat fill's hint error lies: the stroke pixels on the lines (kept dark) against the rest.
        flat = torch.from_numpy(np.stack(outputs["flat fill"])).permute(0, 3, 1, 2).float()
        errors, stroked = delta_e00(flat, hints[:, :3]), hints[:, 3] >= 0.5
        on_lines = stroked & (lines[:, 0] < 0.5)
        results.append(
            {
                "dataset": name,
                "split": "validation",
                "flat_fill_stroke_pixels_on_lines": float(on_lines.sum() / stroked.sum()),
                "flat_fill_hint_error_share_on_lines": float(errors[on_lines].sum() / errors[stroked].sum()),
            }
        )
        print(f"{name}: flat fill: {results[-1]}", flush=True)
        for label, values in metrics.items():
            row = {"dataset": name, "split": "validation", "samples": len(samples), "method": label}
            row.update(against_reference(values, base))
            results.append(row)
            print(
                f"{name}: {label}: hint {row['hint']:.2f} ({row['hint_ratio']:.2f}x), region {row['region']:.2f} "
                f"({row['region_ratio']:.2f}x), lines {row['lines']:.3f}",
                flush=True,
            )
    write_report(
        args.out,
        "flats_tradeoffs.json",
        {"benchmark": "flats_tradeoffs", "machine": machine(torch.device("cpu")), "results": results},
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

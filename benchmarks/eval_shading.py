"""The shading strength of a pipeline that shades the learned flats (`flats=True`: PaintsTorch, StencilTorch,
StablePaint, ArtWorkflow), chosen on the `validation` split of both open datasets.

Under `flats` the network's light changes each region's brightness by at most `shading` (`config.shading`,
`stablepaint.regions.shade_flats`' `strength`). This runs the pipeline's default call at each strength of
`--strengths` on the first `--limit` validation drawings of each dataset (256², the same seed per drawing at every
strength, so the strengths are compared on the same network outputs): FID to the drawings' ground truth without
strokes (`none` regime, Inception-v3 pool features as `stablepaint evaluate`), and region ΔE00 / hint ΔE00 / lines
kept with 1-10 strokes (`hints` regime, `stablepaint evaluate`'s sampler), next to the flat fill's.

The rule, fixed before looking: among the strengths above 0 (0 is the flats model alone, shipped as its own model),
the one with the lowest mean over the datasets of the no-stroke FID; the test split is never read here. Writes
benchmarks/results/shading_<name>.json and prints a markdown table.

    python benchmarks/eval_shading.py --model art-workflow-adventurer-openmoji --limit 100
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO, color_metrics, machine, write_report  # noqa: E402
from eval_splits import DATASETS, load_split, outputs  # noqa: E402


def features(extractor, images: torch.Tensor) -> torch.Tensor:
    """`(B, D)` Inception features of `(B, 3, H, W)` images in [0, 1], 25 at a time."""
    with torch.no_grad():
        return torch.cat([extractor(images[start : start + 25]) for start in range(0, len(images), 25)])


def fid(extractor, real: torch.Tensor, images: torch.Tensor) -> float:
    """FID between the real images' features (`real`, from `features`) and `(B, 3, H, W)` images in [0, 1]."""
    from stablepaint.metrics.features import FrechetInceptionDistance

    metric = FrechetInceptionDistance(extractor)
    metric.update_features(real, real=True)
    metric.update_features(features(extractor, images), real=False)
    return metric.compute()


def choose(rows: dict) -> float:
    """The strength above 0 with the lowest mean no-stroke FID over the datasets. `rows`: dataset → strength → row."""
    strengths = [s for s in next(iter(rows.values())) if s != "flat fill" and float(s) > 0]
    return float(min(strengths, key=lambda s: np.mean([rows[name][s]["fid"] for name in rows])))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="art-workflow-adventurer-openmoji", help="A shipped name or a folder.")
    parser.add_argument("--strengths", default="0,0.05,0.1,0.15", help="Comma-separated `shading` values in [0, 1].")
    parser.add_argument("--limit", type=int, default=100, help="Drawings per dataset.")
    parser.add_argument("--steps", type=int, default=20, help="Sampling steps of a diffusion pipeline.")
    parser.add_argument("--out", default=None, help="Defaults to benchmarks/results/shading_<model>.json.")
    args = parser.parse_args(argv)
    strengths = [float(s) for s in args.strengths.split(",")]
    if not strengths or any(not 0 <= s <= 1 for s in strengths):
        parser.error(f"--strengths must be numbers in [0, 1], got {args.strengths!r}")
    from stablepaint.hub.loading import load_pipeline
    from stablepaint.metrics.features import InceptionFeatureExtractor

    pipe = load_pipeline(args.model)
    pipe.set_progress_bar_config(disable=True)
    if not getattr(pipe.config, "flats", False):
        parser.error(f"{args.model} does not shade learned flats (its `config.flats` is off)")
    flat = load_pipeline("flat-fill")
    flat.set_progress_bar_config(disable=True)
    extractor = InceptionFeatureExtractor()
    shipped = float(pipe.config.shading)
    rows = {}
    for name in DATASETS:
        data = load_split(name, "validation", args.limit)
        real = features(extractor, data["targets"])  # once per dataset, for every strength
        rows[name] = {}
        for label in ["flat fill"] + [f"{s:g}" for s in strengths]:
            runner = flat if label == "flat fill" else pipe
            if label != "flat fill":
                pipe.register_to_config(shading=float(label))
            none = outputs(runner, data, "none", args.steps)
            hints = outputs(runner, data, "hints", args.steps)
            values = color_metrics(hints, data["targets"], data["lines"], data["hints"]["hints"])
            row = {"fid": fid(extractor, real, none)}
            row.update({metric: float(np.nanmean(array)) for metric, array in values.items()})
            rows[name][label] = row
            print(f"{name} {label}: " + ", ".join(f"{k} {v:.3f}" for k, v in row.items()), flush=True)
    pipe.register_to_config(shading=shipped)
    chosen = choose(rows)
    lines = [
        "| shading | " + " | ".join(f"{n}: FID ↓ | {n}: region ΔE00 ↓ | {n}: hint ΔE00 ↓" for n in DATASETS) + " |",
        "|---|" + "---:|" * 3 * len(DATASETS),
    ]
    for label in rows[DATASETS[0]]:
        cells = [
            f"{rows[n][label][m]:.{1 if m == 'fid' else 2}f}" for n in DATASETS for m in ("fid", "region", "hint")
        ]
        name = f"**{label}** (chosen)" if label != "flat fill" and float(label) == chosen else label
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    table = "\n".join(lines)
    print(table)
    model = Path(args.model).name
    report = {
        "benchmark": "shading",
        "model": model,
        "split": "validation",
        "samples_per_dataset": args.limit,
        "rows": rows,
        "chosen": chosen,
        "rule": "lowest mean no-stroke FID over the datasets among the strengths above 0",
        "machine": machine(torch.device("cpu")),
    }
    out = args.out or str(REPO / "benchmarks" / "results" / f"shading_{model}.json")
    write_report(out, Path(out).name, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Reference coloring on same-character pairs (docs/reference_coloring.md): region ΔE00 per pair of

- `reference`: the model with `reference=` the colored reference, zero strokes;
- `no_reference`: the same model, zero strokes;
- `flat_fill_8`: the flat-fill baseline given 8 strokes sampled from the ground truth (the project's stroke sampler,
  `stablepaint.synthesis.sample_strokes`, at hint resolution; strokes starting on a line are redrawn, which only
  helps the baseline),

with paired tests (t-test and Wilcoxon signed-rank). Run on the validation split to tune, on the test split once:

    python benchmarks/eval_reference.py --split test --out benchmarks/results/reference_coloring.json
"""

from __future__ import annotations

import argparse
import csv
import json
import platform
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import torch
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
PAIRS = REPO / "examples" / "reference_pairs"


def load_pairs(folder: Path, split: str, limit=None):
    with open(folder / "index.csv", newline="", encoding="utf-8") as file:
        rows = [row for row in csv.DictReader(file) if row["split"] == split]
    rows = rows[:limit] if limit else rows
    for row in rows:
        stem = folder / row["id"]
        yield row, {kind: Image.open(f"{stem}_{kind}.png") for kind in ("ref_color", "ref_line", "color", "line")}


def eight_strokes(color: Image.Image, line: Image.Image, seed: int, count: int = 8) -> np.ndarray:
    """`count` strokes sampled from the ground truth at a fourth of its size, each starting on paper."""
    from stablepaint.synthesis import render_strokes, sample_strokes

    size = (color.width // 4, color.height // 4)
    small = np.asarray(color.convert("RGB").resize(size, Image.NEAREST))
    paper = np.asarray(line.convert("L").resize(size, Image.NEAREST)) >= 128
    rng = np.random.default_rng(seed)
    strokes = []
    while len(strokes) < count:
        stroke = sample_strokes(small, seed=rng, n_strokes=(1, 1))[0]
        x, y = stroke.points[0]
        if paper[y, x]:
            strokes.append(stroke)
    return render_strokes(strokes, size[::-1])


def region_error(output: torch.Tensor, color: Image.Image, line: Image.Image) -> float:
    from stablepaint.metrics.color import region_color_error

    target = torch.from_numpy(np.asarray(color.convert("RGB"), dtype=np.float32) / 255).permute(2, 0, 1)[None]
    lineart = torch.from_numpy(np.asarray(line.convert("L"), dtype=np.float32) / 255)[None, None]
    return float(region_color_error(output[None].float().clamp(0, 1), target, lineart)[0])


def paired(a, b):
    from scipy import stats

    a, b = np.asarray(a), np.asarray(b)
    return {
        "mean_difference": float((a - b).mean()),
        "lower_on": int((a < b).sum()),
        "n": len(a),
        "t_test_p": float(stats.ttest_rel(a, b).pvalue),
        "wilcoxon_p": float(stats.wilcoxon(a, b).pvalue),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=Path, default=PAIRS)
    parser.add_argument("--split", choices=("val", "test"), default="val")
    parser.add_argument("--model", default="stenciltorch-adventurer")
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--min-agreement", type=float, default=None, help="override reference_hints' default")
    parser.add_argument("--no-reference-lineart", action="store_true", help="derive the reference's lineart")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    from stablepaint import load_pipeline

    torch.set_num_threads(1)
    pipe, flat = load_pipeline(args.model), load_pipeline("flat-fill")
    from stablepaint.reference import reference_hints

    errors = {"reference": [], "no_reference": [], "flat_fill_8": []}
    ids, start = [], time.time()
    for row, images in load_pairs(args.pairs, args.split, args.limit):
        line, color = images["line"], images["color"]
        ref_line = None if args.no_reference_lineart else images["ref_line"]
        call = {"output_type": "pt", "return_dict": False}
        if args.min_agreement is None:  # the pipelines' `reference=` as users call it
            with_ref = pipe(line, reference=images["ref_color"], reference_lineart=ref_line, **call)[0][0]
        else:  # the same through `reference_hints`, to tune its `min_agreement` (validation split only)
            hints = reference_hints(line, images["ref_color"], ref_line, min_agreement=args.min_agreement)[0]
            with_ref = pipe(line, hints=hints, **call)[0][0]
        without = pipe(line, **call)[0][0]
        strokes = eight_strokes(color, line, zlib.crc32(row["id"].encode()))
        flat_8 = flat(line, hints=strokes, **call)[0][0]
        for name, output in (("reference", with_ref), ("no_reference", without), ("flat_fill_8", flat_8)):
            errors[name].append(region_error(output, color, line))
        ids.append(row["id"])
    means = {name: float(np.mean(values)) for name, values in errors.items()}
    report = {
        "split": args.split,
        "pairs": len(ids),
        "model": args.model,
        "reference_lineart": not args.no_reference_lineart,
        "min_agreement": args.min_agreement,
        "metric": "region ΔE00 (stablepaint.metrics.region_color_error: mean CIEDE2000 over non-line pixels)",
        "mean": means,
        "ratio_reference_to_flat_fill_8": means["reference"] / means["flat_fill_8"],
        "reference_vs_no_reference": paired(errors["reference"], errors["no_reference"]),
        "reference_vs_flat_fill_8": paired(errors["reference"], errors["flat_fill_8"]),
        "machine": f"{platform.machine()} {platform.processor() or ''} CPU, torch {torch.__version__}, 1 thread",
        "seconds": round(time.time() - start, 1),
        "per_pair": {"id": ids, **{name: [round(v, 4) for v in values] for name, values in errors.items()}},
        "command": " ".join(["python", "benchmarks/eval_reference.py"] + sys.argv[1:]),
    }
    summary = {key: value for key, value in report.items() if key != "per_pair"}
    print(json.dumps(summary, indent=2, ensure_ascii=False))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()

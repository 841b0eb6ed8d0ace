"""The learned flats on cleaner strokes: `stablepaint evaluate`'s strokes (the thesis' simulation) clipped to the
pixels whose ground-truth color is the stroke's own (CIEDE2000 < 5), as a careful user would paint them: a second
stroke sampler, to check that the shipped setting (`keep_stroke_colors: false`, the network may override strokes) is
not tuned to the noise of the first. `validation` split of each open dataset (100 drawings, 256², `hints` regime);
flat fill, flats with stroked regions in their stroke color, and the shipped flats; hint and region ΔE00, paired
Wilcoxon against the flat fill. Writes benchmarks/results/flats_clean_strokes.json. `--model LABEL=PATH` adds a
flats pipeline folder (e.g. a run's `best/`) to the comparison; `--split test` runs the held-out drawings instead
(for the final figures of a model chosen on validation).

    python benchmarks/eval_flats_clean_strokes.py
    python benchmarks/eval_flats_clean_strokes.py --model "stroke gate=flats-run/best" --out gate.json
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO, against_reference, flats_methods, machine, validation_hints, write_report  # noqa: E402

DATASETS = ("adventurer", "openmoji")


def clip_strokes(hints: torch.Tensor, targets: torch.Tensor, max_delta_e: float = 5.0) -> torch.Tensor:
    """`hints` (`(B, 4, H, W)` RGBA in [0, 1]) with the alpha of every stroke pixel whose ground-truth color
    (`targets`, `(B, 3, H, W)`) is `max_delta_e` or more CIEDE2000 from the stroke color set to 0."""
    from stablepaint.metrics import delta_e00

    clipped = hints.clone()
    clipped[:, 3] *= (delta_e00(hints[:, :3], targets) < max_delta_e).to(hints.dtype)
    return clipped


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--num-samples", type=int, default=100)
    parser.add_argument("--split", default="validation", choices=("validation", "test"))
    parser.add_argument(
        "--model", action="append", default=[], metavar="LABEL=PATH", help="A flats pipeline folder to compare too."
    )
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "flats_clean_strokes.json"))
    args = parser.parse_args(argv)
    torch.set_num_threads(2)
    from PIL import Image

    from stablepaint import FlatsPipeline
    from stablepaint.metrics.color import hint_fidelity, region_color_error

    methods = flats_methods()
    for spec in args.model:
        label, sep, path = spec.partition("=")
        if not sep or not label or not path:
            parser.error(f"--model must be LABEL=PATH, got {spec!r}")
        methods[label] = FlatsPipeline.from_pretrained(path)
        methods[label].set_progress_bar_config(disable=True)
    results = []
    for name in DATASETS:
        samples, targets, lines, stroke_hints = validation_hints(name, args.num_samples, args.split)
        for strokes, hints in (
            ("thesis simulation", stroke_hints),
            ("clipped to their color", None),
        ):
            if hints is None:
                hints = clip_strokes(stroke_hints, targets)
            kept = (hints[:, 3].flatten(1) > 0.5).any(1)  # drawings that still have a stroke
            images = [
                Image.fromarray((h.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8), "RGBA") for h in hints
            ]
            metrics = {}
            for method, pipe in methods.items():
                outputs = torch.cat(
                    [pipe(s.lineart, hints=h, output_type="pt").images for s, h in zip(samples, images)]
                )
                metrics[method] = {
                    "hint": hint_fidelity(outputs, hints)[kept].numpy(),
                    "region": region_color_error(outputs, targets, lines)[kept].numpy(),
                }
            base = metrics["flat fill"]
            for method, values in metrics.items():
                row = {"dataset": name, "split": args.split, "strokes": strokes, "samples": int(kept.sum())}
                row["method"] = method
                row.update(against_reference(values, base))
                results.append(row)
                print(
                    f"{name}, {strokes} ({row['samples']}): {method}: hint {row['hint']:.2f} ({row['hint_ratio']:.2f}x), "
                    f"region {row['region']:.2f} ({row['region_ratio']:.2f}x)",
                    flush=True,
                )
    report = {"benchmark": "flats_clean_strokes", "machine": machine(torch.device("cpu")), "results": results}
    write_report(args.out, "flats_clean_strokes.json", report)
    return 0


if __name__ == "__main__":
    sys.exit(main())

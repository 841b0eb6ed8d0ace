"""The learned flats model against the flat-fill baseline, on the `test` split of each open dataset
(`stablepaint.data.splits`: adventurer ids 2400-2499, OpenMoji ~10 % by lineart group), at 256², in the `none`
(no strokes) and `hints` (1-10 synthetic strokes, `stablepaint evaluate`'s sampler) regimes.

Three colorizations per sample: `flat-fill` (`FlatFillPipeline`), the flats model's default call (`FlatsPipeline`:
stroked regions keep their stroke color, the network colors the rest) and its raw network (the network's color for
every region, stroked ones too). Per sample: region ΔE00, hint ΔE00 (at the stroke pixels) and lines kept; paired
Wilcoxon signed-rank tests against the flat fill, and how many samples are better. With `--shade-with MODEL` (a
StencilTorch pipeline), that model also runs on the flats as dense hints (its raw network, no `hint_regions`): the
GAN shading on top of the flats. Writes benchmarks/results/flats_eval.json.

    python benchmarks/eval_flats.py --model stablepaint/hub/shipped/flats-adventurer-openmoji
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO, machine, write_report  # noqa: E402

DATASETS = ("adventurer", "openmoji")


def shaded(shader, samples, flats: torch.Tensor) -> torch.Tensor:
    """`shader` (a StencilTorch pipeline) run on the flats as dense hints, its raw network (no `hint_regions`)."""
    from PIL import Image

    outputs = []
    for sample, image in zip(samples, flats):
        array = (image.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        dense = Image.fromarray(array).convert("RGBA")  # alpha 255 everywhere: every pixel is a hint
        outputs.append(shader(sample.lineart, hints=dense, hint_regions=False, output_type="pt").images)
    return torch.cat(outputs)


def evaluate_dataset(name: str, pipe, flat, split: str, limit, shader=None) -> dict:
    from scipy.stats import wilcoxon

    from stablepaint.evaluation.samples import _image_tensor, load_samples
    from stablepaint.metrics.color import hint_fidelity, line_preservation, region_color_error

    data = REPO.parent / "shared" / "data" / name
    samples = load_samples(data, num_samples=limit, resolution=256, regimes=["none", "hints"], split=split)
    targets = _image_tensor([s.image for s in samples], "RGB")
    lines = _image_tensor([s.lineart for s in samples], "L")
    # the raw network: the same weights deciding every region, stroked ones too (no stroke constraint)
    raw = type(pipe)(region_colorizer=pipe.region_colorizer, keep_stroke_colors=False)
    raw.set_progress_bar_config(disable=True)
    report = {"samples": len(samples), "split": split}
    for regime in ("none", "hints"):
        hints = [s.hints[regime] for s in samples]
        outputs = {
            "flat-fill": pipe_outputs(flat, samples, hints),
            "flats (default call)": pipe_outputs(pipe, samples, hints),
            "flats (raw network)": pipe_outputs(raw, samples, hints),
        }
        if shader is not None:  # the GAN shades on top of the flats
            outputs["stenciltorch on the flats"] = shaded(shader, samples, outputs["flats (default call)"])
        hint_tensor = _image_tensor(hints, "RGBA") if regime == "hints" else None
        rows, base = {}, None
        for label, images in outputs.items():
            metrics = {"region_delta_e00": region_color_error(images, targets, lines)}
            metrics["lines_kept"] = line_preservation(images, lines)
            if hint_tensor is not None:
                metrics["hint_delta_e00"] = hint_fidelity(images, hint_tensor)
            row = {key: round(float(np.nanmean(value.numpy())), 3) for key, value in metrics.items()}
            if base is None:
                base = metrics
            else:
                for key in ("region_delta_e00", "hint_delta_e00"):
                    if key not in metrics:
                        continue
                    a, b = metrics[key].numpy(), base[key].numpy()
                    ok = ~(np.isnan(a) | np.isnan(b))
                    row[f"{key}_ratio_to_flat_fill"] = round(float(a[ok].mean() / b[ok].mean()), 3)
                    row[f"{key}_better_on"] = f"{int((a[ok] < b[ok]).sum())}/{int(ok.sum())}"
                    row[f"{key}_wilcoxon_p"] = float(wilcoxon(a[ok], b[ok]).pvalue)
            rows[label] = row
            print(f"{name} {regime} {label}: {row}", flush=True)
        report[regime] = rows
    return report


def pipe_outputs(pipe, samples, hints) -> torch.Tensor:
    return torch.cat([pipe(s.lineart, hints=h, output_type="pt").images for s, h in zip(samples, hints)])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="a FlatsPipeline folder or shipped name")
    parser.add_argument("--split", default="test", choices=("validation", "test"))
    parser.add_argument("--limit", type=int, default=None, help="at most this many samples per dataset")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--shade-with", default=None, help="a StencilTorch model run on the flats as dense hints")
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results"))
    parser.add_argument("--name", default="flats_eval.json")
    args = parser.parse_args(argv)
    from stablepaint import FlatFillPipeline, FlatsPipeline

    torch.set_num_threads(args.threads)
    pipe = FlatsPipeline.from_pretrained(args.model)
    pipe.set_progress_bar_config(disable=True)
    flat = FlatFillPipeline()
    report = {"model": str(args.model), "resolution": 256, "machine": machine(torch.device("cpu"))}
    shader = None
    if args.shade_with:
        from stablepaint.hub.loading import load_pipeline

        shader = load_pipeline(args.shade_with)
        shader.set_progress_bar_config(disable=True)
        report["shaded_with"] = args.shade_with
    for name in DATASETS:
        report[name] = evaluate_dataset(name, pipe, flat, args.split, args.limit, shader)
    write_report(args.out, args.name, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Color quality of the GAN colorizers' int8 path (`enable_fast_inference(precision="int8")`) against eager float32.

Per shipped GAN model, on the `test` split of each open dataset (`stablepaint.data.splits`; the int8 calibration
drawings come from the `validation` splits), 256², `stablepaint evaluate`'s stroke sampler (`hints` regime, 1-10
strokes): the model's default call (its README settings) with the colorizer in eager float32 and in int8. Per sample:
hint ΔE00, region ΔE00 and lines kept; the relative change of the means and the paired Wilcoxon p-value; the mean
and max absolute difference of the images. Writes benchmarks/results/gan_int8_quality.json.

    python benchmarks/eval_gan_int8.py --num-samples 100
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO, color_metrics, machine, write_report  # noqa: E402

#: The default call of each model (the README's settings column).
MODELS = {"stenciltorch-adventurer": {}, "paintstorch-adventurer": {"flatten_regions": True}}
DATASETS = ("adventurer", "openmoji")


def compare(pipe, samples, settings: dict) -> dict:
    from scipy.stats import wilcoxon

    from stablepaint.evaluation.samples import _image_tensor

    targets = _image_tensor([s.image for s in samples], "RGB")
    lines = _image_tensor([s.lineart for s in samples], "L")
    hints = _image_tensor([s.hints["hints"] for s in samples], "RGBA")
    fast, outputs, metrics = pipe._fast_colorizer, {}, {}
    for path in ("eager", "int8"):
        pipe._fast_colorizer = None if path == "eager" else fast
        outputs[path] = torch.cat(
            [pipe(s.lineart, hints=s.hints["hints"], output_type="pt", **settings).images for s in samples]
        )
        metrics[path] = color_metrics(outputs[path], targets, lines, hints)
    difference = (outputs["int8"] - outputs["eager"]).abs()
    report = {
        "samples": len(samples),
        "image_mean_abs_diff": float(difference.mean()),
        "image_max_abs_diff": float(difference.max()),
    }
    for metric in ("hint", "region", "lines"):
        eager, int8 = metrics["eager"][metric], metrics["int8"][metric]
        keep = ~(np.isnan(eager) | np.isnan(int8))
        p = float(wilcoxon(eager[keep], int8[keep]).pvalue) if np.any(eager[keep] != int8[keep]) else 1.0
        report[metric] = {
            "eager": float(eager[keep].mean()),
            "int8": float(int8[keep].mean()),
            "change": float(int8[keep].mean() / eager[keep].mean() - 1),
            "p": p,
        }
    return report


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--num-samples", type=int, default=100, help="per dataset (the first of its test split)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "gan_int8_quality.json"))
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    from stablepaint.evaluation.samples import load_samples
    from stablepaint.hub.loading import load_pipeline

    samples = {
        name: load_samples(
            REPO.parent / "shared" / "data" / name,
            num_samples=args.num_samples,
            resolution=256,
            regimes=["hints"],
            split="test",
        )
        for name in DATASETS
    }
    results = []
    for model, settings in MODELS.items():
        pipe = load_pipeline(model, device="cpu")
        pipe.set_progress_bar_config(disable=True)
        pipe.enable_fast_inference(precision="int8")
        for name in DATASETS:
            report = compare(pipe, samples[name], settings)
            results.append({"model": model, "settings": settings, "dataset": name, "split": "test", **report})
            print(
                f"{model} on {name} ({report['samples']}): "
                + ", ".join(
                    f"{m} {report[m]['eager']:.3f} -> {report[m]['int8']:.3f} ({100 * report[m]['change']:+.1f} %, "
                    f"p = {report[m]['p']:.2g})"
                    for m in ("hint", "region", "lines")
                )
                + f"; image mean abs diff {report['image_mean_abs_diff']:.4f}",
                flush=True,
            )
    report = {"benchmark": "gan_int8_quality", "machine": machine(torch.device("cpu")), "results": results}
    write_report(args.out, "gan_int8_quality.json", report)
    return 0


if __name__ == "__main__":
    sys.exit(main())

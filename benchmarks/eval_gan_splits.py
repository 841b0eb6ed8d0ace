"""A GAN colorizer (StencilTorch, PaintsTorch) against the flat fill on the documented splits of both open datasets
(`stablepaint.data.splits`), at 256², in the `none` (no strokes) and `hints` (1-10 synthetic strokes, `stablepaint
evaluate`'s sampler) regimes. Every model is run twice: its raw network (`hint_regions=False`, no
`flatten_regions`) and its default call (the pipeline's stored defaults, e.g. StencilTorch's `hint_regions=True`).
Per sample: region ΔE00, hint ΔE00 (at the stroke pixels) and lines kept; paired Wilcoxon signed-rank tests against
the flat fill.

Two uses:

    # the held-out evaluation of a pipeline (never used to choose anything)
    python benchmarks/eval_gan_splits.py --model stablepaint/hub/shipped/stenciltorch-adventurer-openmoji --split test
    # checkpoint selection on the validation split: every checkpoint of a run (EMA generator), scored by the mean over
    # the datasets of its raw network's region ΔE00 / the flat fill's in the `hints` regime (lower is better)
    python benchmarks/eval_gan_splits.py --run ../runs/stenciltorch-both --family stenciltorch --split validation \
        --limit 50 --name stenciltorch_checkpoints.json
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO, against_reference, color_metrics, machine, write_report  # noqa: E402

DATASETS = ("adventurer", "openmoji")
RESOLUTION = 256
REGIMES = ("none", "hints")


def load_split(name: str, split: str, limit) -> dict:
    """The samples of one dataset's split with both regimes' strokes, as tensors."""
    from stablepaint.evaluation.samples import _image_tensor, load_samples

    data = REPO.parent / "shared" / "data" / name
    samples = load_samples(data, num_samples=limit, resolution=RESOLUTION, regimes=list(REGIMES), split=split)
    return {
        "samples": samples,
        "targets": _image_tensor([s.image for s in samples], "RGB"),
        "lines": _image_tensor([s.lineart for s in samples], "L"),
        "hints": {regime: hint_tensor([s.hints[regime] for s in samples]) for regime in REGIMES},
    }


def hint_tensor(hints) -> torch.Tensor:
    """`(B, 4, H, W)` strokes in [0, 1]; zeros for the `none` regime (its strokes are `None`)."""
    from stablepaint.evaluation.samples import _image_tensor

    if hints[0] is None:
        return torch.zeros(len(hints), 4, RESOLUTION, RESOLUTION)
    return _image_tensor(hints, "RGBA")


def outputs(pipe, data: dict, regime: str, **kwargs) -> torch.Tensor:
    return torch.cat(
        [pipe(s.lineart, hints=s.hints[regime], output_type="pt", **kwargs).images for s in data["samples"]]
    )


def raw_kwargs(pipe) -> dict:
    """The call options that leave the network alone: no region heuristic."""
    options = {"flatten_regions": False}
    if "hint_regions" in pipe.config:
        options["hint_regions"] = False
    return options


def measure(pipe, data: dict, calls: dict, flat_metrics: dict) -> dict:
    """`calls`: label → call options. Per regime and label: means, ratios to the flat fill and paired p."""
    report = {}
    for regime in REGIMES:
        rows = {"flat fill": {k: float(np.nanmean(v)) for k, v in flat_metrics[regime].items()}}
        for label, kwargs in calls.items():
            values = color_metrics(
                outputs(pipe, data, regime, **kwargs), data["targets"], data["lines"], data["hints"][regime]
            )
            metrics = ("hint", "region") if regime == "hints" else ("region",)
            row = against_reference(values, flat_metrics[regime], metrics)
            for metric in metrics:
                keep = ~(np.isnan(values[metric]) | np.isnan(flat_metrics[regime][metric]))
                row[f"{metric}_better_on"] = (
                    f"{int((values[metric][keep] < flat_metrics[regime][metric][keep]).sum())}/{int(keep.sum())}"
                )
            rows[label] = {k: rounded(k, v) for k, v in row.items()}
        report[regime] = rows
    return report


def markdown(report: dict) -> str:
    """The held-out figures of `--model` as a Markdown table (for the model card and the docs)."""
    lines = [
        f"`benchmarks/eval_gan_splits.py`, `{report['split']}` split ("
        + ", ".join(f"{count} {name} drawings" for name, count in report["samples"].items())
        + f"), {report['resolution']}², paired Wilcoxon against the flat fill.",
        "",
        "| dataset | strokes | call | hint ΔE00 ↓ (× flat fill, p) | region ΔE00 ↓ (× flat fill, p) | lines kept |",
        "|---|---|---|---|---|---:|",
    ]

    def cell(row, metric):
        if metric not in row or row[metric] != row[metric]:  # absent or NaN
            return "—"
        if f"{metric}_ratio" not in row:
            return f"{row[metric]:.2f}"
        p = row[f"{metric}_p"]
        return (
            f"{row[metric]:.2f} ({row[f'{metric}_ratio']:.2f}×, p = {p:.1e})"
            if p is not None
            else f"{row[metric]:.2f}"
        )

    for name in report["samples"]:
        for regime in REGIMES:
            for call, row in report[name][regime].items():
                lines.append(
                    f"| {name} | {regime} | {call} | {cell(row, 'hint')} | {cell(row, 'region')} | {row['lines']:.3f} |"
                )
    return "\n".join(lines) + "\n"


def rounded(key: str, value):
    """Means to 4 decimals; p-values to 3 significant digits (a p of 1e-12 is not 0)."""
    if not isinstance(value, float):
        return value
    return float(f"{value:.3g}") if key.endswith("_p") else round(value, 4)


def flat_fill_metrics(data: dict) -> dict:
    from stablepaint.hub.loading import load_pipeline

    flat = load_pipeline("flat-fill")
    flat.set_progress_bar_config(disable=True)
    return {
        regime: color_metrics(outputs(flat, data, regime), data["targets"], data["lines"], data["hints"][regime])
        for regime in REGIMES
    }


def checkpoint_pipelines(run: Path, family: str):
    """`(name, pipeline)` of every checkpoint of a GAN run, its EMA generator in float32."""
    from stablepaint.training.gan import GAN_TASKS, colorizer_config
    from stablepaint.training.gan_weights import colorizer_from_checkpoint
    from stablepaint.training.records import load_training_args
    from stablepaint.training.utils import list_checkpoints

    task = GAN_TASKS[family]
    for checkpoint in list_checkpoints(run):
        record = load_training_args(checkpoint)
        colorizer = colorizer_from_checkpoint(colorizer_config(record, task), Path(checkpoint), ema=record.use_ema)
        yield Path(checkpoint).name, task.pipeline_class(colorizer=colorizer, semantic_encoder=None)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--model", help="a pipeline folder or shipped name")
    source.add_argument("--run", help="a GAN training --output_dir: score every checkpoint (raw network)")
    parser.add_argument("--family", default="stenciltorch", choices=("paintstorch", "stenciltorch"))
    parser.add_argument("--split", default="test", choices=("validation", "test"))
    parser.add_argument("--limit", type=int, default=100, help="at most this many samples per dataset")
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=DATASETS)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results"))
    parser.add_argument("--name", default=None, help="default: gan_splits_<split>.json")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    data = {name: load_split(name, args.split, args.limit) for name in args.datasets}
    flat = {name: flat_fill_metrics(data[name]) for name in args.datasets}
    report = {"split": args.split, "resolution": RESOLUTION, "machine": machine(torch.device("cpu"))}
    report["samples"] = {name: len(data[name]["samples"]) for name in args.datasets}
    if args.model:
        from stablepaint.hub.loading import load_pipeline

        pipe = load_pipeline(args.model)
        pipe.set_progress_bar_config(disable=True)
        calls = {
            "raw network": raw_kwargs(pipe),
            "default call": {},
            "default call, keep_lines=True": {"keep_lines": True},
        }
        report["model"] = str(args.model)
        for name in args.datasets:
            report[name] = measure(pipe, data[name], calls, flat[name])
            print(name, report[name], flush=True)
    else:
        report["run"], scores = str(args.run), {}
        for checkpoint, pipe in checkpoint_pipelines(Path(args.run), args.family):
            pipe.set_progress_bar_config(disable=True)
            rows = {
                name: measure(pipe, data[name], {"raw network": raw_kwargs(pipe)}, flat[name])
                for name in args.datasets
            }
            ratios = [rows[name]["hints"]["raw network"]["region_ratio"] for name in args.datasets]
            scores[checkpoint] = {"score": round(float(np.mean(ratios)), 4), **rows}
            print(checkpoint, scores[checkpoint]["score"], [round(r, 3) for r in ratios], flush=True)
        report["checkpoints"] = scores
        report["chosen"] = min(scores, key=lambda name: scores[name]["score"]) if scores else None
        print("chosen:", report["chosen"])
    path = write_report(args.out, args.name or f"gan_splits_{args.split}.json", report)
    if args.model and path is not None:
        path.with_suffix(".md").write_text(markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""A colorizer (StencilTorch, PaintsTorch, StablePaint, ArtWorkflow) against the flat fill on the documented splits of
both open datasets (`stablepaint.data.splits`), at 256², in the `none` (no strokes) and `hints` (1-10 synthetic
strokes, `stablepaint evaluate`'s sampler) regimes. A diffusion pipeline samples `--steps` steps (default 20) with one
seed per drawing, an ArtWorkflow samples its stage latents with one seed per drawing. Every model is run twice: its
raw network (`hint_regions=False`, `flats=False`, no `flatten_regions`) and its default call (the pipeline's stored
defaults, e.g. `hint_regions=True`, `flats=True`).
Per sample: region ΔE00, hint ΔE00 (at the stroke pixels) and lines kept; paired Wilcoxon signed-rank tests against
the flat fill.

Three uses:

    # the held-out evaluation of a pipeline (never used to choose anything)
    python benchmarks/eval_splits.py --model stablepaint/hub/shipped/stenciltorch-adventurer-openmoji --split test
    # checkpoint selection on the validation split: every checkpoint of a run (EMA generator or UNet; `--family
    # stablepaint` for a `--stage unet` run, `--family art_workflow` for train_art_workflow.py), scored by the mean
    # over the datasets of its raw network's region ΔE00 / the flat fill's in the `hints` regime (lower is better)
    python benchmarks/eval_splits.py --run ../runs/stenciltorch-both --family stenciltorch --split validation \
        --limit 50 --name stenciltorch_checkpoints.json
    # the default call, chosen on the validation split among the candidate calls (`CANDIDATES`) of one checkpoint,
    # with a learned flats model attached (`--flats-model`): see `choose_default`
    python benchmarks/eval_splits.py --run ../runs/stenciltorch-both --checkpoint checkpoint-2000 \
        --choose-default --flats-model flats-adventurer-openmoji --split validation --limit 100
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO, against_reference, color_metrics, machine, write_report  # noqa: E402

from stablepaint.evaluation.evaluate import pipeline_arguments, raw_network_options  # noqa: E402

DATASETS = ("adventurer", "openmoji")
RESOLUTION = 256
REGIMES = ("none", "hints")
#: The calls `--choose-default` compares, those a pipeline takes (`candidate_calls`; `flats` needs a
#: `region_colorizer`: `--flats-model`; `hint_regions` an in-painting network; `flatten_regions` is the heuristic of
#: the pipelines without one).
CANDIDATES = {
    "raw network": {},
    "hint_regions": {"hint_regions": True},
    "flatten_regions": {"flatten_regions": True},
    "flats, shaded by the raw network": {"flats": True},
    "flats, shaded by hint_regions": {"hint_regions": True, "flats": True},
}
#: The lines a default call must keep on every dataset (issue 17).
MIN_LINES_KEPT = 0.95


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


def candidate_calls(pipe) -> dict:
    """The `CANDIDATES` `pipe` takes, each on top of its raw network's options."""
    raw = raw_network_options(pipe)
    inpaints, flats = getattr(pipe, "inpaints", False), getattr(pipe, "region_colorizer", None) is not None
    calls = {}
    for label, options in CANDIDATES.items():
        if ("hint_regions" in options and not inpaints) or ("flats" in options and not flats):
            continue
        if "flatten_regions" in options and (inpaints or "flatten_regions" not in raw):
            continue
        calls[label] = {**raw, **options}
    return calls


def outputs(pipe, data: dict, regime: str, steps: int = 20, **kwargs) -> torch.Tensor:
    """The pipeline's images of every sample; a diffusion pipeline samples `steps` steps, a stochastic pipeline is
    seeded by the sample's index (the same noise for every call compared)."""
    accepted = pipeline_arguments(pipe)
    images = []
    for index, sample in enumerate(data["samples"]):
        if getattr(pipe, "stochastic", False):
            kwargs.update(num_inference_steps=steps, generator=torch.Generator().manual_seed(index))
        call = {k: v for k, v in kwargs.items() if accepted is None or k in accepted}
        images.append(pipe(sample.lineart, hints=sample.hints[regime], output_type="pt", **call).images)
    return torch.cat(images)


def first(data: dict, flat: dict, count: int):
    """The first `count` samples of a split (`load_split`) and their flat-fill metrics."""
    part = {key: data[key][:count] for key in ("samples", "targets", "lines")}
    part["hints"] = {regime: tensor[:count] for regime, tensor in data["hints"].items()}
    return part, {regime: {k: v[:count] for k, v in metrics.items()} for regime, metrics in flat.items()}


def choose_default(rows: dict) -> str:
    """The default call chosen on the validation split, a rule fixed before looking: among the calls that keep at
    least `MIN_LINES_KEPT` of the lines on every dataset (`hints` regime), the lowest mean over the datasets of region
    ΔE00 / the flat fill's, ties broken by the mean hint ratio. With these strokes, hint ΔE00 cannot fall far under the
    flat fill's while the lines stay (docs/flats.md), so region error decides. `rows`: dataset → call → `hints` row."""
    calls = [call for call in next(iter(rows.values())) if call != "flat fill"]

    def key(call):
        region = np.mean([rows[name][call]["region_ratio"] for name in rows])
        hint = np.mean([rows[name][call]["hint_ratio"] for name in rows])
        return (region, hint)

    keeping = [call for call in calls if all(rows[name][call]["lines"] >= MIN_LINES_KEPT for name in rows)]
    return min(keeping or calls, key=key)


def measure(pipe, data: dict, calls: dict, flat_metrics: dict, steps: int = 20) -> dict:
    """`calls`: label → call options. Per regime and label: means, ratios to the flat fill and paired p."""
    report = {}
    for regime in REGIMES:
        rows = {"flat fill": {k: float(np.nanmean(v)) for k, v in flat_metrics[regime].items()}}
        for label, kwargs in calls.items():
            values = color_metrics(
                outputs(pipe, data, regime, steps, **kwargs), data["targets"], data["lines"], data["hints"][regime]
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
        f"`benchmarks/eval_splits.py`, `{report['split']}` split ("
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


def checkpoint_pipelines(run: Path, family: str, only=None):
    """`(name, pipeline)` of every checkpoint of a run (or of those named in `only`), its EMA generator or UNet in
    float32."""
    from stablepaint.training.diffusion import stablepaint_from_checkpoint
    from stablepaint.training.gan import GAN_TASKS, checkpoint_colorizer_config
    from stablepaint.training.gan_weights import colorizer_from_checkpoint
    from stablepaint.training.records import load_training_args
    from stablepaint.training.utils import list_checkpoints
    from stablepaint.training.workflow import art_workflow_from_checkpoint

    configs = {}  # a warm-started run's config comes from loading its starting pipeline: once per run, not per checkpoint
    for checkpoint in list_checkpoints(run):
        if only is not None and Path(checkpoint).name not in only:
            continue
        if family in ("stablepaint", "art_workflow"):
            load = stablepaint_from_checkpoint if family == "stablepaint" else art_workflow_from_checkpoint
            yield Path(checkpoint).name, load(checkpoint)
            continue
        task, record = GAN_TASKS[family], load_training_args(checkpoint)
        key = (record.pretrained_model_name_or_path, str(record.colorizer_config), record.resolution)
        if key not in configs:
            configs[key] = checkpoint_colorizer_config(record, task)
        config = configs[key]
        colorizer = colorizer_from_checkpoint(config, Path(checkpoint), ema=record.use_ema)
        yield Path(checkpoint).name, task.pipeline_class(colorizer=colorizer, semantic_encoder=None)


def previous_scores(path, report: dict) -> dict:
    """The checkpoint scores of an earlier `--run` report (`--previous`), checked to come from the same split and
    samples; `{}` without one."""
    if path is None:
        return {}
    import json

    earlier = json.loads(Path(path).read_text())
    for key in ("split", "resolution", "samples"):
        if earlier.get(key) != report[key]:
            raise ValueError(f"--previous {path}: its {key} is {earlier.get(key)!r}, this run's {report[key]!r}")
    return dict(earlier["checkpoints"])


def attach_flats(pipe, flats_model) -> None:
    """Give `pipe` the `region_colorizer` of the FlatsPipeline `flats_model` (float32), so that `flats=` applies."""
    if flats_model is None:
        return
    from stablepaint.hub.loading import load_pipeline

    pipe.register_modules(region_colorizer=load_pipeline(flats_model).region_colorizer.float())


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--model", help="a pipeline folder or shipped name")
    source.add_argument("--run", help="a training --output_dir: score every checkpoint (raw network)")
    parser.add_argument(
        "--family", default="stenciltorch", choices=("paintstorch", "stenciltorch", "stablepaint", "art_workflow")
    )
    parser.add_argument("--steps", type=int, default=20, help="sampling steps of a diffusion pipeline")
    parser.add_argument(
        "--checkpoint", nargs="+", default=None, help="with --run: only these checkpoints (e.g. checkpoint-2000)"
    )
    parser.add_argument(
        "--previous",
        default=None,
        help="with --run: a report of the same run, split and samples whose checkpoint scores join this one's "
        "(a run resumed after a first selection: only the new checkpoints are scored)",
    )
    parser.add_argument(
        "--flats-model", default=None, help="attach this FlatsPipeline's region_colorizer (the `flats=` call option)"
    )
    parser.add_argument(
        "--choose-default", action="store_true", help="compare the CANDIDATES calls and name the chosen default"
    )
    parser.add_argument(
        "--raw-limit",
        type=int,
        default=None,
        help="with --model: the raw network on the first N samples only (a slow raw call, e.g. ArtWorkflow's AdaIN "
        "optimization); its row is labelled with N and compared with the flat fill on the same samples",
    )
    parser.add_argument(
        "--without-keep-lines",
        action="store_true",
        help="with --model: leave out the `default call, keep_lines=True` row (a flats-stage default call keeps the "
        "lines already: the same images, twice the time of a diffusion model)",
    )
    parser.add_argument("--split", default="test", choices=("validation", "test"))
    parser.add_argument("--limit", type=int, default=100, help="at most this many samples per dataset")
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=DATASETS)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results"))
    parser.add_argument("--name", default=None, help="default: gan_splits_<split>.json")
    args = parser.parse_args(argv)
    if args.without_keep_lines and not args.model:
        parser.error("--without-keep-lines goes with --model")
    if args.choose_default and args.split != "validation":
        parser.error("--choose-default chooses on the validation split only (--split validation)")
    if args.choose_default and args.run and (not args.checkpoint or len(args.checkpoint) != 1):
        parser.error("--choose-default with --run needs one --checkpoint")
    torch.set_num_threads(args.threads)
    data = {name: load_split(name, args.split, args.limit) for name in args.datasets}
    flat = {name: flat_fill_metrics(data[name]) for name in args.datasets}
    report = {"split": args.split, "resolution": RESOLUTION, "machine": machine(torch.device("cpu"))}
    report["steps"] = args.steps
    report["samples"] = {name: len(data[name]["samples"]) for name in args.datasets}
    if args.model:
        from stablepaint.hub.loading import load_pipeline

        pipes = [(str(args.model), load_pipeline(args.model))]
    else:
        pipes = checkpoint_pipelines(Path(args.run), args.family, only=args.checkpoint)
    if args.choose_default or args.model:
        label, pipe = next(iter(pipes))
        pipe.set_progress_bar_config(disable=True)
        attach_flats(pipe, args.flats_model)
        if args.choose_default:
            calls = candidate_calls(pipe)
        else:
            calls = {"raw network": raw_network_options(pipe), "default call": {}}
            if not args.without_keep_lines:
                calls["default call, keep_lines=True"] = {"keep_lines": True}
        report["model"], report["flats_model"] = label, args.flats_model
        raw_limit = args.raw_limit if args.model and args.raw_limit else None
        for name in args.datasets:
            if raw_limit is not None and raw_limit < len(data[name]["samples"]):
                rest = {label: options for label, options in calls.items() if label != "raw network"}
                report[name] = measure(pipe, data[name], rest, flat[name], args.steps)
                part, part_flat = first(data[name], flat[name], raw_limit)
                raw = measure(pipe, part, {"raw network": calls["raw network"]}, part_flat, args.steps)
                for regime in REGIMES:
                    rows = report[name][regime]
                    report[name][regime] = {
                        "flat fill": rows.pop("flat fill"),
                        f"raw network (first {raw_limit})": raw[regime]["raw network"],
                        **rows,
                    }
            else:
                report[name] = measure(pipe, data[name], calls, flat[name], args.steps)
            print(name, report[name], flush=True)
        if args.choose_default:
            report["chosen_default"] = choose_default({name: report[name]["hints"] for name in args.datasets})
            print("chosen default:", report["chosen_default"], calls[report["chosen_default"]])
    else:
        report["run"], scores = str(args.run), previous_scores(args.previous, report)
        for checkpoint, pipe in pipes:
            pipe.set_progress_bar_config(disable=True)
            rows = {
                name: measure(pipe, data[name], {"raw network": raw_network_options(pipe)}, flat[name], args.steps)
                for name in args.datasets
            }
            ratios = [rows[name]["hints"]["raw network"]["region_ratio"] for name in args.datasets]
            scores[checkpoint] = {"score": round(float(np.mean(ratios)), 4), **rows}
            print(checkpoint, scores[checkpoint]["score"], [round(r, 3) for r in ratios], flush=True)
        report["checkpoints"] = scores
        report["chosen"] = min(scores, key=lambda name: scores[name]["score"]) if scores else None
        print("chosen:", report["chosen"])
    path = write_report(args.out, args.name or f"gan_splits_{args.split}.json", report)
    if "model" in report and path is not None:
        path.with_suffix(".md").write_text(markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())

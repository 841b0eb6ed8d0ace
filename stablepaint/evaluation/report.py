"""What `stablepaint evaluate` writes besides `results.json`: the paired comparison with a reference model, the
Markdown table `results.md` and the image grid of each model."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Dict, List, Optional

import numpy as np
import torch
from PIL import Image

from stablepaint.metrics import METRIC_DIRECTIONS
from stablepaint.utils.atomic import save_image_atomic

#: How the table names each metric, and how many decimals it shows.
METRIC_LABELS = {
    "fid": ("FID", 2),
    "kid": ("KID", 4),
    "vgg_distance": ("VGG dist.", 3),
    "lpips": ("LPIPS", 3),
    "hint_fidelity": ("hint ΔE00", 2),
    "line_preservation": ("lines kept", 3),
    "region_color_error": ("region ΔE00", 2),
    "color_bleeding": ("bleeding", 1),
}
#: The per-sample errors kept in `results.json` and compared between models (↓ better).
PAIRED_METRICS = ("hint_fidelity", "region_color_error")


def paired_comparison(
    per_sample: Dict[str, Dict[str, Dict[str, List[Optional[float]]]]], reference: str
) -> Dict[str, Dict[str, Dict[str, Any]]]:
    """Compare each model with `reference` sample by sample (the same samples, hints and seeds): for every regime and
    metric of `PAIRED_METRICS`, the number of samples where both are defined (`n`), the mean of model − reference
    (`mean_difference`, negative = lower error than the reference), on how many samples the model's error is lower
    (`lower_on`), and the two-sided paired t-test p-value (`p_value`; `None` below 2 samples or when every
    difference is the same). With 20 samples a difference of a few tenths of ΔE00 is usually not significant.

    Returns:
        `dict`: `{model: {regime: {metric: {...}}}}` for every model but the reference.
    """
    from scipy import stats

    if reference not in per_sample:
        raise ValueError(f"`reference` {reference!r} is not among the evaluated models {list(per_sample)}.")
    comparison: Dict[str, Dict[str, Dict[str, Any]]] = {}
    for model, by_regime in per_sample.items():
        if model == reference:
            continue
        comparison[model] = {}
        for regime, by_metric in by_regime.items():
            comparison[model][regime] = {}
            for name, values in by_metric.items():
                pairs = [
                    (a, b)
                    for a, b in zip(values, per_sample[reference][regime][name])
                    if a is not None and b is not None
                ]
                if not pairs:
                    continue
                ours, theirs = np.array(pairs).T
                differences = ours - theirs
                p_value = None
                if len(pairs) >= 2 and np.ptp(differences) > 0:
                    p_value = float(stats.ttest_rel(ours, theirs).pvalue)
                comparison[model][regime][name] = {
                    "n": len(pairs),
                    "mean_difference": float(differences.mean()),
                    "lower_on": int((differences < 0).sum()),
                    "p_value": p_value,
                }
    return comparison


def grid_file_name(model: str) -> str:
    """`grid_<model>.png`, with the characters of a path or Hub id replaced."""
    return "grid_" + re.sub(r"[^A-Za-z0-9._-]+", "_", model).strip("_") + ".png"


def _write_grid(make_grid, out_dir: Path, model: str, samples, regime: str, outputs: torch.Tensor) -> None:
    rows = []
    for sample, output in zip(samples, outputs):
        output_image = Image.fromarray((output.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8))
        hints = sample.hints.get(regime) or Image.new("RGB", sample.image.size, (255, 255, 255))
        rows.append([sample.lineart, hints, output_image, sample.image])
    labels = ["lineart", f"hints ({regime})", "output", "ground truth"]
    grid = make_grid(rows, labels=labels, cell=min(256, samples[0].image.width))
    save_image_atomic(grid, out_dir / grid_file_name(model))


def format_table(report: Dict[str, Any]) -> str:
    """The Markdown table of a `results.json` report: one row per model, the columns grouped per regime."""
    config, results = report["config"], report["results"]
    metric_names = list(report["metrics"])
    regimes = config["regimes"]
    header = ["model"]
    for regime in regimes:
        for name in metric_names:
            label, _ = METRIC_LABELS[name]
            header.append(f"{regime}: {label} {'↑' if METRIC_DIRECTIONS[name] else '↓'}")
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" + "---:|" * (len(header) - 1)]
    for model, by_regime in results.items():
        cells = [f"`{model}`"]
        for regime in regimes:
            for name in metric_names:
                value = by_regime[regime].get(name)
                cells.append("—" if value is None else f"{value:.{METRIC_LABELS[name][1]}f}")
        lines.append("| " + " | ".join(cells) + " |")
    versions = ", ".join(f"{name} {version}" for name, version in config["versions"].items())
    text = [
        f"Evaluation of {len(results)} model(s) on {config['num_samples']} samples of `{config['data']}` at "
        f"{config['resolution']}², seed {config['seed']} ({versions})"
        + (
            ", every model that takes it called with `flatten_regions=True` (not its raw network)"
            if config.get("flatten_regions")
            else ""
        )
        + (
            f", guidance scale {config['guidance_scale']:g} for the models that take one."
            if config.get("guidance_scale") is not None
            else "."
        ),
        "",
        *lines,
        "",
        "↑ higher is better, ↓ lower is better; — not defined (hint ΔE00 without hints, or too few images for FID/KID).",
        "Regimes: `none` no hints; `hints` synthetic strokes; `full` the flat-color simplification as dense hints.",
        f"FID/KID features: {config['feature_extractor']}; VGG dist. is a VGG16 feature distance, not LPIPS.",
    ]
    for model, model_notes in report.get("notes", {}).items():
        for note in model_notes:
            text.append(f"Note — `{model}`: {note}.")
    paired = report.get("paired")
    if paired:
        reference = next(model for model in results if model not in paired)
        text += [
            "",
            f"Paired with `{reference}`, sample by sample (model − reference; negative = lower error):",
            "",
            "| model | regime | metric | mean difference | lower on | paired t-test p |",
            "|---|---|---|---:|---:|---:|",
        ]
        for model, by_regime in paired.items():
            for regime, by_metric in by_regime.items():
                for name, row in by_metric.items():
                    p_value = "—" if row["p_value"] is None else f"{row['p_value']:.3f}"
                    text.append(
                        f"| `{model}` | {regime} | {METRIC_LABELS[name][0]} | {row['mean_difference']:+.2f} | "
                        f"{row['lower_on']}/{row['n']} | {p_value} |"
                    )
    return "\n".join(text) + "\n"

"""`stablepaint evaluate`: run pipelines on a held-out set in the thesis' three hint regimes and write the table.

The regimes (thesis §IV.2.3, §IV.3.3):
- `none`: no hints;
- `hints`: synthetic color strokes (`stablepaint.synthesis.simulate_strokes`, from the flat-color simplification as in
  training), drawn with a fixed seed per sample, identical for every model;
- `full`: the flat-color simplification of the illustration (`stablepaint.synthesis.simplify_colors`) as dense hints.

For each model and regime, `ColorizationMetrics` (`stablepaint.metrics`) is computed against the illustrations and
against the hints actually given; the results go to `results.json`, a Markdown table `results.md` and an image grid
per model.
"""

from __future__ import annotations

import inspect
import json
import math
import os
import re
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Union

import numpy as np
import torch
from PIL import Image

from stablepaint.metrics import METRIC_DIRECTIONS, ColorizationMetrics

REGIMES = ("none", "hints", "full")
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
#: Pipeline arguments evaluation passes when the pipeline takes them; a dropped one is noted in the table.
_NOTED_ARGUMENTS = ("hints",)


@dataclass
class EvaluationSample:
    """One held-out example: its id, the illustration (the target), the lineart, and the hints of each regime as
    RGBA images at the lineart's resolution (`None` for the `none` regime)."""

    id: str
    image: Image.Image
    lineart: Image.Image
    hints: Dict[str, Optional[Image.Image]] = field(default_factory=dict)
    seed: int = 0


# ----------------------------------------------------------------------------------------------------------------
# Data
# ----------------------------------------------------------------------------------------------------------------


def _natural_key(text: str):
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text)]


def _parse_ids(spec: Union[None, str, Sequence[str]], name: str) -> Optional[List]:
    """`"2480-2499,2501,dicebear_adventurer_7"` → a list of ints, (low, high) ranges and strings."""
    if spec is None:
        return None
    tokens = spec.split(",") if isinstance(spec, str) else [t for item in spec for t in str(item).split(",")]
    parsed = []
    for token in (t.strip() for t in tokens):
        if not token:
            continue
        if re.fullmatch(r"\d+-\d+", token):
            low, high = (int(v) for v in token.split("-"))
            if low > high:
                raise ValueError(f"`{name}`: the range {token!r} is empty (start > end).")
            parsed.append((low, high))
        elif token.isdigit():
            parsed.append(int(token))
        else:
            parsed.append(token)
    if not parsed:
        raise ValueError(f"`{name}` is empty; expected ids such as '2480-2499,2510' or file stems.")
    return parsed


def _id_matches(sample_id: str, selectors: List) -> bool:
    """An id matches its exact name, or through the last number in it (e.g. `dicebear_adventurer_2494` ← 2494)."""
    numbers = re.findall(r"\d+", sample_id)
    number = int(numbers[-1]) if numbers else None
    for selector in selectors:
        if isinstance(selector, str) and selector == sample_id:
            return True
        if isinstance(selector, int) and selector == number:
            return True
        if isinstance(selector, tuple) and number is not None and selector[0] <= number <= selector[1]:
            return True
    return False


def _sample_ids(dataset) -> List[str]:
    """The id of each row: the illustration's file stem without `_color`, or the row index."""
    import datasets

    column = dataset.cast_column("image", datasets.Image(decode=False))["image"]
    ids = []
    for index, item in enumerate(column):
        path = item.get("path") if isinstance(item, dict) else None
        if path:
            stem = Path(path).stem
            ids.append(stem[: -len("_color")] if stem.endswith("_color") else stem)
        else:
            ids.append(str(index))
    if len(set(ids)) != len(ids):  # e.g. the same file name in two sub-folders: fall back to row indices
        ids = [f"{index}:{sample_id}" for index, sample_id in enumerate(ids)]
    return ids


def load_samples(
    data: Union[str, os.PathLike, "datasets.Dataset"],  # noqa: F821
    num_samples: Optional[int] = 20,
    resolution: int = 256,
    seed: int = 0,
    regimes: Sequence[str] = REGIMES,
    include_ids=None,
    exclude_ids=None,
) -> List[EvaluationSample]:
    """Select the held-out samples and synthesize their hints.

    The selection is deterministic: rows sorted by id (natural order), filtered by `include_ids` / `exclude_ids`,
    then the first `num_samples`. Each sample is center-cropped to `resolution`² with its real lineart when the source
    has pairs, else an xDoG lineart, exactly as `stablepaint.data.synthesize_example` does for evaluation; its random
    draws come from `numpy.random.default_rng((seed, crc32(id)))` only, so a sample gets the same hints whatever
    the other samples, and every model sees the same ones.
    """
    import datasets

    from stablepaint.data import SynthesisConfig, load_illustrations, synthesize_example

    if not isinstance(resolution, int) or resolution < 16 or resolution % 4:
        raise ValueError(f"`resolution` must be a multiple of 4, at least 16, got {resolution!r}.")
    if num_samples is not None and (not isinstance(num_samples, int) or num_samples < 1):
        raise ValueError(f"`num_samples` must be a positive int, got {num_samples!r}.")
    include, exclude = _parse_ids(include_ids, "include_ids"), _parse_ids(exclude_ids, "exclude_ids")
    dataset = data if isinstance(data, datasets.Dataset) else load_illustrations(data)
    ids = _sample_ids(dataset)
    order = sorted(range(len(ids)), key=lambda index: _natural_key(ids[index]))
    if include is not None:
        order = [index for index in order if _id_matches(ids[index], include)]
    if exclude is not None:
        order = [index for index in order if not _id_matches(ids[index], exclude)]
    if num_samples is not None:
        order = order[:num_samples]
    if not order:
        raise ValueError(
            f"no samples to evaluate in `data` {str(data)!r} ({len(ids)} rows before the id filters)."
            if not isinstance(data, datasets.Dataset)
            else f"no samples to evaluate ({len(ids)} rows before the id filters)."
        )
    # At least one stroke per sample in the `hints` regime: a sample without strokes would be the `none` regime.
    config = SynthesisConfig(resolution=resolution, masks=False, n_strokes=(1, 10))
    samples = []
    for index in order:
        row = dataset[index]
        sample_seed = zlib.crc32(ids[index].encode("utf-8"))
        example = synthesize_example(
            row["image"], row.get("lineart"), np.random.default_rng((seed, sample_seed)), config, train=False
        )
        size = example["image"].size
        hints = {"none": None}
        hints["hints"] = example["hints"].resize(size, Image.Resampling.NEAREST)  # strokes at full resolution
        full = example["simplified"].convert("RGBA")  # alpha 255 everywhere: every pixel is a hint
        hints["full"] = full
        samples.append(
            EvaluationSample(
                id=ids[index],
                image=example["image"],
                lineart=example["lineart"],
                hints={regime: hints[regime] for regime in regimes},
                seed=(seed + sample_seed) % 2**63,
            )
        )
    return samples


def _image_tensor(images: Sequence[Image.Image], mode: str) -> torch.Tensor:
    arrays = [np.asarray(image.convert(mode), dtype=np.float32) / 255.0 for image in images]
    tensor = torch.from_numpy(np.stack(arrays))
    return tensor[:, None] if tensor.ndim == 3 else tensor.permute(0, 3, 1, 2)


# ----------------------------------------------------------------------------------------------------------------
# Running a pipeline
# ----------------------------------------------------------------------------------------------------------------


def pipeline_arguments(pipe) -> Optional[set]:
    """The keyword arguments the pipeline's call accepts (`None` when it takes any `**kwargs`). A pipeline whose
    `__call__` only forwards `*args, **kwargs` to `generate` (ArtWorkflowPipeline) is read through `generate`."""
    function = pipe.__call__
    parameters = inspect.signature(function).parameters.values()
    if all(p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in parameters) and hasattr(pipe, "generate"):
        parameters = inspect.signature(pipe.generate).parameters.values()
    if any(p.kind == p.VAR_KEYWORD for p in parameters):
        return None
    return {p.name for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}


def run_pipeline(
    pipe,
    samples: Sequence[EvaluationSample],
    regime: str,
    steps: int,
    device=None,
    flatten_regions: bool = False,
    guidance_scale: Optional[float] = None,
):
    """Color a batch of samples in a regime; returns the `(B, 3, H, W)` outputs in [0, 1] and the arguments the
    pipeline did not take. `flatten_regions=True` is passed to the pipelines that take it (not noted otherwise: a
    pipeline without it, like the flat-fill baseline, colors flat regions already or has no such option), and so is a
    `guidance_scale` (`None`: the pipeline's default)."""
    accepted = pipeline_arguments(pipe)
    generator_device = "cpu"  # CPU generators: the same draws on every device
    kwargs: Dict[str, Any] = {
        "hints": [sample.hints[regime] for sample in samples] if regime != "none" else None,
        "generator": [torch.Generator(generator_device).manual_seed(sample.seed) for sample in samples],
        "num_inference_steps": steps,
        "output_type": "pt",
        "return_dict": True,
    }
    if flatten_regions:
        kwargs["flatten_regions"] = True
    if guidance_scale is not None:
        kwargs["guidance_scale"] = guidance_scale
    dropped = [] if accepted is None else [name for name in _NOTED_ARGUMENTS if name not in accepted]
    if regime == "none":  # no hints to give: not a dropped argument
        dropped = [name for name in dropped if name != "hints"]
    if accepted is not None:
        kwargs = {name: value for name, value in kwargs.items() if name in accepted}
    lineart = [sample.lineart for sample in samples]
    output = pipe(lineart, **kwargs)
    images = output.images if hasattr(output, "images") else output[0]
    if not isinstance(images, torch.Tensor):
        raise TypeError(f"the pipeline returned {type(images).__name__} for output_type='pt'; expected a tensor.")
    images = images.detach().to("cpu", torch.float32)
    size = samples[0].image.size[::-1]
    if tuple(images.shape[-2:]) != size:
        images = torch.nn.functional.interpolate(images, size=size, mode="bicubic", align_corners=False)
    return images.clamp(0, 1), dropped


# ----------------------------------------------------------------------------------------------------------------
# The evaluation
# ----------------------------------------------------------------------------------------------------------------


def _versions() -> Dict[str, str]:
    import diffusers

    from stablepaint import __version__

    return {"stablepaint": __version__, "torch": torch.__version__, "diffusers": diffusers.__version__}


def _json_value(value):
    return None if isinstance(value, float) and math.isnan(value) else value


def evaluate(
    models: Sequence[str],
    data,
    out_dir: Union[str, os.PathLike],
    regimes: Sequence[str] = REGIMES,
    num_samples: Optional[int] = 20,
    resolution: int = 256,
    seed: int = 0,
    batch_size: int = 4,
    steps: int = 20,
    device: Optional[str] = None,
    include_ids=None,
    exclude_ids=None,
    feature_extractor: Optional[Callable[[torch.Tensor], torch.Tensor]] = None,
    inception_weights: Optional[Union[str, os.PathLike]] = None,
    vgg_weights: Optional[Union[str, os.PathLike]] = None,
    grid_samples: int = 4,
    load_pipeline: Optional[Callable] = None,
    progress: bool = True,
    reference: Optional[str] = "flat-fill",
    flatten_regions: bool = False,
    guidance_scale: Optional[float] = None,
) -> Dict[str, Any]:
    """Evaluate pipelines and write `results.json`, `results.md` and `grid_<model>.png` to `out_dir`.

    Args:
        models (`Sequence[str]`): Names for `stablepaint.hub.loading.load_pipeline`: shipped names, `"flat-fill"`, pipeline
            folders or Hub ids. The table's row label is the name as given.
        data: A source `stablepaint.data.load_illustrations` reads, or a `datasets.Dataset` with an `image` column.
        out_dir: Where to write the results (created).
        regimes (`Sequence[str]`, *optional*): Among `"none"`, `"hints"`, `"full"`.
        num_samples, resolution, seed, include_ids, exclude_ids: The held-out samples (see `load_samples`).
        batch_size (`int`, *optional*, defaults to 4): Images per pipeline call.
        steps (`int`, *optional*, defaults to 20): Denoising steps, for pipelines that take `num_inference_steps`.
        device (`str`, *optional*): Where the pipelines and metric networks run (`"auto"`: cuda, mps or cpu).
        feature_extractor (callable, *optional*): FID/KID features; by default `InceptionFeatureExtractor`.
        inception_weights, vgg_weights (path, *optional*): Files for `InceptionFeatureExtractor` and
            `VGGFeatureDistance`.
        grid_samples (`int`, *optional*, defaults to 4): Rows of each model's image grid.
        load_pipeline (callable, *optional*): Replaces `stablepaint.hub.loading.load_pipeline` (tests).
        progress (`bool`, *optional*, defaults to `True`): Show a tqdm progress bar.
        reference (`str`, *optional*, defaults to `"flat-fill"`): Compare every other model with this one sample by
            sample on the two color errors (`paired_comparison`); ignored when it is not among `models`, `None` for
            no comparison.
        flatten_regions (`bool`, *optional*, defaults to `False`): Call the pipelines that take it with
            `flatten_regions=True` (each line-bounded region gets its median output color).
        guidance_scale (`float`, *optional*): Classifier-free guidance scale for the pipelines that take one
            (StablePaint); `None` keeps each pipeline's default (`config.default_guidance_scale`), noted per model.

    Returns:
        `dict`: what `results.json` holds (with `per_sample` hint and region errors, and `paired`).
    """
    from tqdm.auto import tqdm

    from stablepaint.metrics import InceptionFeatureExtractor
    from stablepaint.utils.visualize import make_grid

    if isinstance(models, str):
        models = [models]
    models = list(models)
    if not models:
        raise ValueError("`models` is empty: give at least one model name, folder or Hub id.")
    if len(set(models)) != len(models):
        raise ValueError(f"`models` lists a model twice: {models}.")
    regimes = list(regimes)
    unknown = [regime for regime in regimes if regime not in REGIMES]
    if unknown or not regimes:
        raise ValueError(f"`regimes` must be a non-empty subset of {REGIMES}, got {regimes}.")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"`batch_size` must be a positive int, got {batch_size!r}.")
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"`steps` must be a positive int, got {steps!r}.")
    if guidance_scale is not None and (
        isinstance(guidance_scale, bool) or not isinstance(guidance_scale, (int, float)) or not guidance_scale >= 0
    ):
        raise ValueError(f"`guidance_scale` must be a number >= 0 or None, got {guidance_scale!r}.")
    if load_pipeline is None:
        from stablepaint.hub.loading import load_pipeline
    from stablepaint.hub.loading import resolve_device

    device = resolve_device(device)
    samples = load_samples(data, num_samples, resolution, seed, regimes, include_ids, exclude_ids)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    extractor = feature_extractor or InceptionFeatureExtractor(inception_weights, device=device)
    metrics = ColorizationMetrics(extractor, vgg_weights=vgg_weights, seed=seed, device=device, kid_subset_size=1000)
    targets = _image_tensor([sample.image for sample in samples], "RGB")
    linearts = _image_tensor([sample.lineart for sample in samples], "L")
    hint_tensors = {
        regime: None if regime == "none" else _image_tensor([sample.hints[regime] for sample in samples], "RGBA")
        for regime in regimes
    }
    grid_regime = "hints" if "hints" in regimes else regimes[-1]
    batches = [range(start, min(start + batch_size, len(samples))) for start in range(0, len(samples), batch_size)]

    results: Dict[str, Dict[str, Dict[str, Optional[float]]]] = {}
    per_sample: Dict[str, Dict[str, Dict[str, List[Optional[float]]]]] = {}
    notes: Dict[str, List[str]] = {}
    bar = tqdm(total=len(models) * len(regimes) * len(batches), desc="evaluate", disable=not progress)
    for model in models:
        try:
            pipe = load_pipeline(model, device=device)
        except (ValueError, OSError) as error:
            raise ValueError(f"could not load model {model!r}: {error}") from error
        if hasattr(pipe, "set_progress_bar_config"):
            pipe.set_progress_bar_config(disable=True)
        results[model], dropped_all, per_sample[model] = {}, set(), {}
        grid_outputs: List[torch.Tensor] = []
        for regime in regimes:
            metrics.reset()
            values = per_sample[model][regime] = {name: [] for name in PAIRED_METRICS}
            for batch in batches:
                batch_samples = [samples[index] for index in batch]
                outputs, dropped = run_pipeline(
                    pipe, batch_samples, regime, steps, device, flatten_regions, guidance_scale
                )
                dropped_all.update(dropped)
                index = torch.tensor(list(batch))
                hints = None if hint_tensors[regime] is None else hint_tensors[regime][index]
                if "hints" in dropped:
                    hints = None  # the model was not given the hints: do not score it against them
                per_image = metrics.update(outputs, targets[index], linearts[index], hints)
                for name, kept in values.items():
                    kept += _float_list(per_image[name]) if name in per_image else [None] * len(batch)
                if regime == grid_regime and sum(len(o) for o in grid_outputs) < grid_samples:
                    grid_outputs.append(outputs)
                bar.update(1)
            results[model][regime] = {name: _json_value(value) for name, value in metrics.compute().items()}
        notes[model] = [f"the pipeline takes no `{name}`: not passed" for name in sorted(dropped_all)]
        pipe_config = getattr(pipe, "config", None)
        default_scale = getattr(pipe_config, "default_guidance_scale", None)
        if guidance_scale is None and default_scale is not None:
            notes[model].append(f"guidance scale {default_scale:g} (the pipeline's default)")
        if getattr(pipe_config, "hint_regions", False) is True:
            notes[model].append(
                "`hint_regions=True` (the pipeline's default): the stroked regions are filled with the stroke colors "
                "and the model in-paints the rest"
            )
        _write_grid(make_grid, out_dir, model, samples, grid_regime, torch.cat(grid_outputs)[:grid_samples])
        del pipe
    bar.close()

    metric_names = metrics.names
    report = {
        "config": {
            "data": str(data) if not hasattr(data, "column_names") else "datasets.Dataset",
            "num_samples": len(samples),
            "sample_ids": [sample.id for sample in samples],
            "regimes": regimes,
            "resolution": resolution,
            "seed": seed,
            "steps": steps,
            "batch_size": batch_size,
            "flatten_regions": bool(flatten_regions),
            "guidance_scale": guidance_scale,
            "device": str(device or "cpu"),
            "feature_extractor": getattr(extractor, "source", type(extractor).__name__),
            "lpips": metrics.lpips is not None,
            "versions": _versions(),
        },
        "metrics": {name: ("higher" if METRIC_DIRECTIONS[name] else "lower") + " is better" for name in metric_names},
        "results": results,
        "notes": notes,
        "per_sample": per_sample,
        "paired": paired_comparison(per_sample, reference) if reference in results else None,
    }
    with open(out_dir / "results.json", "w", encoding="utf-8") as file:
        json.dump(report, file, indent=2, ensure_ascii=False)
    (out_dir / "results.md").write_text(format_table(report), encoding="utf-8")
    return report


#: The per-sample errors kept in `results.json` and compared between models (↓ better).
PAIRED_METRICS = ("hint_fidelity", "region_color_error")


def _float_list(values: torch.Tensor) -> List[Optional[float]]:
    return [value if math.isfinite(value) else None for value in values.detach().double().cpu().tolist()]


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
    make_grid(rows, labels=labels, cell=min(256, samples[0].image.width)).save(out_dir / grid_file_name(model))


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
        + (", every model that takes it called with `flatten_regions=True`" if config.get("flatten_regions") else "")
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

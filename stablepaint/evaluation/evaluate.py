"""`stablepaint evaluate`: run pipelines on a held-out set in the thesis' three hint regimes and write the table.

The regimes (`none`, `hints`, `full`) and the held-out samples are in `stablepaint.evaluation.samples`. For each model
and regime, `ColorizationMetrics` (`stablepaint.metrics`) is computed against the illustrations and against the hints
actually given; the results go to `results.json`, a Markdown table `results.md` and an image grid per model
(`stablepaint.evaluation.report`).
"""

from __future__ import annotations

import inspect
import json
import math
import os
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Union

import torch

from stablepaint.evaluation.report import PAIRED_METRICS, _write_grid, format_table, paired_comparison
from stablepaint.evaluation.samples import REGIMES, EvaluationSample, _image_tensor, load_samples
from stablepaint.metrics import METRIC_DIRECTIONS, ColorizationMetrics
from stablepaint.utils.atomic import check_not_input, write_text_atomic

#: Pipeline arguments evaluation passes when the pipeline takes them; a dropped one is noted in the table.
_NOTED_ARGUMENTS = ("hints",)


# ----------------------------------------------------------------------------------------------------------------
# Running a pipeline
# ----------------------------------------------------------------------------------------------------------------


def pipeline_arguments(pipe) -> Optional[set]:
    """The keyword arguments the pipeline's call accepts (`None` when it takes any `**kwargs`): what a stablepaint
    pipeline declares (`call_parameters`), else, for any other callable, its signature — a `__call__` that only
    forwards `*args, **kwargs` to `generate` is read through `generate`."""
    declared = getattr(pipe, "call_parameters", None)
    if declared is not None:
        return set(declared())
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
    options: Optional[Dict[str, Any]] = None,
):
    """Color a batch of samples in a regime; returns the `(B, 3, H, W)` outputs in [0, 1] and the arguments the
    pipeline did not take. `flatten_regions=True` is passed to the pipelines that take it (not noted otherwise: a
    pipeline without it, like the flat-fill baseline, colors flat regions already or has no such option), and so is a
    `guidance_scale` (`None`: the pipeline's default); `options` (e.g. [`raw_network_options`]) come last and win."""
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
    kwargs.update(options or {})
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


#: The call options that put a heuristic or a second model after a pipeline's network; all off = its raw network.
REGION_OPTIONS = ("hint_regions", "flats", "flatten_regions")


def raw_network_options(pipe) -> Dict[str, bool]:
    """The options of `pipe`'s call that give its raw network: each of `REGION_OPTIONS` it takes, set to `False`
    (empty when it takes none)."""
    accepted = pipeline_arguments(pipe)
    return {name: False for name in REGION_OPTIONS if accepted is not None and name in accepted}


def _model_notes(pipe, dropped, guidance_scale, options) -> List[str]:
    """What the results table says under a model: arguments it does not take, defaults it used."""
    notes = [f"the pipeline takes no `{name}`: not passed" for name in sorted(dropped)]
    config = getattr(pipe, "config", None)
    default_scale = getattr(config, "default_guidance_scale", None)
    if guidance_scale is None and default_scale is not None:
        notes.append(f"guidance scale {default_scale:g} (the pipeline's default)")
    if options:
        notes.append("raw network: " + ", ".join(f"`{name}={value}`" for name, value in options.items()))
        return notes
    hint_regions = getattr(config, "hint_regions", False) is True
    if getattr(config, "flats", False) is True:
        source = " (its `hint_regions=True` output)" if hint_regions else ""
        notes.append(
            "`flats=True` (the pipeline's default): the learned flats model decides the region colors, the network"
            f"{source} shades them"
        )
    elif hint_regions:
        notes.append(
            "`hint_regions=True` (the pipeline's default): the stroked regions are filled with the stroke colors "
            "and the model in-paints the rest"
        )
    return notes


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
    split: Optional[str] = None,
    raw_network: bool = True,
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
        raw_network (`bool`, *optional*, defaults to `True`): Also evaluate every model's raw network, under the
            label `"<model> (raw network)"`: the same call with every region option it takes turned off
            (`hint_regions`, `flats`, `flatten_regions`: [`raw_network_options`]). A model whose default call uses
            none of them (the flat fill, `FlatsPipeline`, a pipeline without those defaults) runs once.
        split (`str`, *optional*): Only the samples of this split (`"test"`, `"validation"`, `"train"`) of
            `stablepaint.data.splits` (see `load_samples`).

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
    out_dir = Path(out_dir)
    if isinstance(data, (str, os.PathLike)) and Path(data).exists():
        check_not_input(out_dir, {"--data": data}, "--out")
    samples = load_samples(data, num_samples, resolution, seed, regimes, include_ids, exclude_ids, split=split)
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
    runs = len(models) * (2 if raw_network else 1)  # less the raw runs a model turns out not to need (below)
    bar = tqdm(total=runs * len(regimes) * len(batches), desc="evaluate", disable=not progress)
    for model in models:
        try:
            pipe = load_pipeline(model, device=device)
        except (ValueError, OSError) as error:
            raise ValueError(f"could not load model {model!r}: {error}") from error
        if hasattr(pipe, "set_progress_bar_config"):
            pipe.set_progress_bar_config(disable=True)
        variants = [(model, None)]
        raw = raw_network_options(pipe) if raw_network else None
        config = getattr(pipe, "config", None)
        if not flatten_regions and not any(getattr(config, name, False) is True for name in REGION_OPTIONS):
            raw = None  # the default call is the raw network already
        if raw:
            variants.append((f"{model} (raw network)", raw))
        elif raw_network:  # the bar counted a raw run this model does not need
            bar.total -= len(regimes) * len(batches)
            bar.refresh()
        for label, options in variants:
            results[label], dropped_all, per_sample[label] = {}, set(), {}
            grid_outputs: List[torch.Tensor] = []
            for regime in regimes:
                metrics.reset()
                values = per_sample[label][regime] = {name: [] for name in PAIRED_METRICS}
                for batch in batches:
                    batch_samples = [samples[index] for index in batch]
                    outputs, dropped = run_pipeline(
                        pipe, batch_samples, regime, steps, device, flatten_regions, guidance_scale, options
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
                results[label][regime] = {name: _json_value(value) for name, value in metrics.compute().items()}
            notes[label] = _model_notes(pipe, dropped_all, guidance_scale, options)
            _write_grid(make_grid, out_dir, label, samples, grid_regime, torch.cat(grid_outputs)[:grid_samples])
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
    write_text_atomic(out_dir / "results.json", json.dumps(report, indent=2, ensure_ascii=False))
    write_text_atomic(out_dir / "results.md", format_table(report))
    return report


def _float_list(values: torch.Tensor) -> List[Optional[float]]:
    return [value if math.isfinite(value) else None for value in values.detach().double().cpu().tolist()]

#!/usr/bin/env python
"""Train the learned flat-color model ([`RegionColorizer`] in a [`FlatsPipeline`]) on folders of `*_color`/`*_line`
pairs.

1. **Tokens, once** (`--cache_dir`): for every pair, its regions ([`stablepaint.region_tokens`]), each region's
   ground-truth color (the per-channel median of the illustration over the region) and `--hint_draws` draws of
   synthetic strokes (the project's stroke simulator, `stablepaint.synthesis.simulate_strokes`: draw 0 has none, the
   others 1–12 strokes, two thirds of them from the flat-color simplification as in training and evaluation, one
   third from the raw illustration with box down-sampling — a second sampler, so the model does not learn one
   sampler's habits). With `--clean_draws N`, N more draws whose strokes are clipped to the pixels whose ground
   truth is the stroke's own color (CIEDE2000 < 5), as a careful user paints them: strokes to keep.
2. **Training**: batches of (pair, random draw), strokes of some stroked regions dropped at random and a random
   horizontal flip; the loss is the area-weighted CIELAB distance (ΔE76) between the predicted and the true color of
   every region *without* strokes (the stroked ones are constraints at inference), or of every region with
   `--supervise_stroked` (then the network decides the stroked regions too, reading their strokes as inputs). With
   `--stroke_gate` (implies `--supervise_stroked`) the network also predicts, per stroked region, whether to keep
   its stroke color exactly: the loss is that distance for the trust-weighted mix of the stroke color and the
   predicted one, plus a binary cross-entropy towards "the stroke color is closer to the truth than the prediction".
3. **Selection**: every `--validation_steps` the same distance on the `validation` split (`stablepaint.data.splits`;
   fixed draws) decides the checkpoint kept; the `test` split is never read here.

    accelerate launch train/train_flats.py --train_data_dir ../shared/data/adventurer ../shared/data/openmoji \\
        --cache_dir flats-cache --output_dir flats-model --max_train_steps 6000
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import sys
from pathlib import Path

import numpy as np
import torch
from accelerate import Accelerator
from PIL import Image
from tqdm.auto import tqdm

from stablepaint.data.splits import split_of
from stablepaint.models.region_colorizer import RegionColorizer
from stablepaint.region_tokens import NUM_SHAPE_FEATURES, SHAPE_GRID, region_tokens, stroke_features
from stablepaint.regions import region_medians
from stablepaint.training.utils import resume_from_checkpoint, save_checkpoint
from stablepaint.utils.atomic import atomic_write

logger = logging.getLogger(__name__)


def parse_args(input_args=None):
    parser = argparse.ArgumentParser(description="Train the learned flat-color model (FlatsPipeline).")
    parser.add_argument("--train_data_dir", nargs="+", required=True, help="Folders of *_color/*_line pairs.")
    parser.add_argument("--cache_dir", required=True, help="Where the tokens of each folder are kept (npz).")
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--resolution", type=int, default=256, help="Pairs are resized to this square size.")
    parser.add_argument("--hint_draws", type=int, default=6, help="Stroke draws per pair (draw 0: no strokes).")
    parser.add_argument("--max_pairs", type=int, default=None, help="At most this many pairs per folder (tests).")
    parser.add_argument(
        "--pretrained_model_name_or_path",
        default=None,
        help="A FlatsPipeline (folder, shipped name or Hub id) whose region colorizer training continues from (its "
        "architecture replaces --hidden_size/--num_layers/--num_heads; a --stroke_gate it lacks starts untrained).",
    )
    parser.add_argument("--hidden_size", type=int, default=128)
    parser.add_argument("--num_layers", type=int, default=4)
    parser.add_argument("--num_heads", type=int, default=4)
    parser.add_argument("--train_batch_size", type=int, default=64)
    parser.add_argument("--learning_rate", type=float, default=1e-3)
    parser.add_argument("--weight_decay", type=float, default=0.01)
    parser.add_argument("--max_train_steps", type=int, default=6000)
    parser.add_argument("--drop_stroke_probability", type=float, default=0.3)
    parser.add_argument(
        "--supervise_stroked",
        action="store_true",
        help="Also train on the stroked regions (the network decides them too: `keep_stroke_colors=False`).",
    )
    parser.add_argument(
        "--clean_draws",
        type=int,
        default=0,
        help="Extra stroke draws per pair clipped to the pixels of the stroke's own color (careful strokes).",
    )
    parser.add_argument(
        "--stroke_gate",
        action="store_true",
        help="Train the network's stroke gate too (keep a stroked region's stroke color or not); implies "
        "--supervise_stroked.",
    )
    parser.add_argument("--gate_loss_weight", type=float, default=1.0, help="Weight of the gate's cross-entropy.")
    parser.add_argument("--validation_steps", type=int, default=250)
    parser.add_argument("--checkpointing_steps", type=int, default=500)
    parser.add_argument("--checkpoints_total_limit", type=int, default=2)
    parser.add_argument("--resume_from_checkpoint", default=None, help="'latest' or a checkpoint-N folder.")
    parser.add_argument("--mixed_precision", default="no", choices=("no", "fp16", "bf16"))
    parser.add_argument("--num_workers", type=int, default=1, help="Processes for the token cache.")
    parser.add_argument("--seed", type=int, default=0)
    parser.set_defaults(gradient_accumulation_steps=1)  # read by the shared `resume_from_checkpoint`; no accumulation
    args = parser.parse_args(input_args)
    for name in ("hint_draws", "train_batch_size", "max_train_steps", "validation_steps", "checkpointing_steps"):
        if getattr(args, name) < 1:
            raise ValueError(f"`--{name}` must be at least 1, got {getattr(args, name)}.")
    if args.clean_draws < 0:
        raise ValueError(f"`--clean_draws` must be at least 0, got {args.clean_draws}.")
    args.supervise_stroked = args.supervise_stroked or args.stroke_gate
    args.total_draws = args.hint_draws + args.clean_draws
    return args


# 1. Tokens ------------------------------------------------------------------------------------------------------


def _pair_tokens(job):
    """Tokens, true colors and stroke draws of one pair (a worker's job)."""
    from stablepaint.synthesis.simplify import simplify_colors
    from stablepaint.synthesis.strokes import simulate_strokes

    color_path, line_path, resolution, draws, seed = job[:5]
    clean_draws = job[5] if len(job) > 5 else 0
    image = Image.open(color_path).convert("RGB").resize((resolution, resolution), Image.Resampling.BICUBIC)
    line = Image.open(line_path).convert("L").resize((resolution, resolution), Image.Resampling.BICUBIC)
    lineart = (np.asarray(line) >= 128).astype(np.float32)
    tokens = region_tokens(lineart)
    pixels = np.asarray(image)
    regions = np.arange(1, tokens.num_regions + 1)
    truth = np.stack([region_medians(pixels[..., c], tokens.labels, regions) for c in range(3)], -1)
    rng = np.random.default_rng(seed)
    simplified = simplify_colors(pixels, rng, n_colors=25, segmentation="slic")
    strokes = [np.zeros((tokens.num_regions, 5), np.float32)]
    for draw in range(1, draws + clean_draws):
        source, resample = (simplified, "nearest") if draw % 3 else (pixels, "box")
        hints = simulate_strokes(source, rng, scale=4, n_strokes=(1, 12), resample=resample)
        hints = np.array(Image.fromarray(hints, "RGBA").resize((resolution,) * 2, Image.Resampling.NEAREST))
        if draw >= draws:
            hints[..., 3] *= clean_pixels(hints, pixels)
        strokes.append(stroke_features(tokens.labels, tokens.num_regions, hints)[0])
    return tokens.features[:, :NUM_SHAPE_FEATURES], np.round(truth).astype(np.uint8), tokens.areas, np.stack(strokes)


def clean_pixels(hints: np.ndarray, pixels: np.ndarray, max_delta_e: float = 5.0) -> np.ndarray:
    """`(H, W)` uint8, 1 where the stroke color (`hints`, `(H, W, 4)` uint8 RGBA) is within `max_delta_e` CIEDE2000
    of the illustration (`pixels`, `(H, W, 3)` uint8)."""
    from stablepaint.metrics import delta_e00

    def tensor(array):
        return torch.from_numpy(np.array(array[..., :3])).permute(2, 0, 1)[None].float() / 255.0

    return (delta_e00(tensor(hints), tensor(pixels))[0] < max_delta_e).numpy().astype(np.uint8)


def build_cache(folder: str, args) -> Path:
    """The tokens of every pair of `folder` in one npz (built once, written atomically)."""
    from stablepaint.data import find_pairs

    clean = f"-clean{args.clean_draws}" if args.clean_draws else ""
    path = Path(args.cache_dir) / f"{Path(folder).resolve().name}-{args.resolution}-{args.hint_draws}{clean}.npz"
    if path.is_file():
        return path
    pairs = find_pairs(folder)[: args.max_pairs]
    if not pairs:
        raise ValueError(f"`--train_data_dir` {folder!r} holds no *_color/*_line pairs.")
    ids = [Path(color).stem[: -len("_color")] for color, _ in pairs]
    jobs = [
        (c, ln, args.resolution, args.hint_draws, (args.seed, i), args.clean_draws) for i, (c, ln) in enumerate(pairs)
    ]
    if args.num_workers > 1:
        from multiprocessing import get_context

        with get_context("spawn").Pool(args.num_workers) as pool:
            results = list(tqdm(pool.imap(_pair_tokens, jobs, chunksize=8), total=len(jobs), desc=path.name))
    else:
        results = [_pair_tokens(job) for job in tqdm(jobs, desc=path.name)]
    counts = np.array([len(areas) for _, _, areas, _ in results])
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as temp:
        with open(temp, "wb") as handle:
            np.savez(
                handle,
                ids=np.array(ids),
                offsets=np.concatenate([[0], np.cumsum(counts)]),
                shapes=np.concatenate([r[0] for r in results]),
                truth=np.concatenate([r[1] for r in results]),
                areas=np.concatenate([r[2] for r in results]),
                strokes=np.concatenate([r[3] for r in results], axis=1),
            )
    return path


class TokenSet:
    """The cached tokens of some pairs: `batch(indices, draws, rng)` → padded tensors."""

    def __init__(self, caches, split):
        self.items = []
        for cache in caches:
            with np.load(cache) as npz:  # each key read once (an NpzFile reads the array again at every access)
                data = {key: npz[key] for key in ("ids", "offsets", "shapes", "truth", "areas", "strokes")}
            offsets = data["offsets"]
            for index, sample_id in enumerate(data["ids"]):
                if split_of(str(sample_id)) != split or offsets[index + 1] == offsets[index]:
                    continue
                part = slice(offsets[index], offsets[index + 1])
                self.items.append(
                    tuple(
                        np.ascontiguousarray(array)
                        for array in (data["shapes"][part], data["truth"][part], data["areas"][part])
                    )
                    + (np.ascontiguousarray(data["strokes"][:, part]),)
                )
        if not self.items:
            raise ValueError(f"no pairs of the {split!r} split in the training folders.")

    def __len__(self):
        return len(self.items)

    def batch(self, indices, draws, rng=None, drop=0.0, stroked=False):
        n = -(-max(len(self.items[i][2]) for i in indices) // 32) * 32  # few distinct shapes: no kernel re-JIT
        tokens = np.zeros((len(indices), n, NUM_SHAPE_FEATURES + 5), np.float32)
        truth = np.zeros((len(indices), n, 3), np.uint8)
        weights = np.zeros((len(indices), n), np.float32)
        for row, (index, draw) in enumerate(zip(indices, draws)):
            shapes, colors, areas, strokes = self.items[index]
            stroke = strokes[draw].copy()
            shapes = shapes.copy()
            if rng is not None:
                stroke[rng.random(len(stroke)) < drop] = 0.0  # those regions' strokes dropped
                if rng.random() < 0.5:
                    shapes = flip_shapes(shapes)
            k = len(areas)
            tokens[row, :k] = np.concatenate([shapes, stroke], axis=1)
            truth[row, :k] = colors
            weights[row, :k] = (areas / areas.sum()) * ((stroke[:, 0] == 0) | stroked)
        padding = np.ones((len(indices), n), bool)
        for row, index in enumerate(indices):
            padding[row, : len(self.items[index][2])] = False
        return torch.from_numpy(tokens), torch.from_numpy(padding), torch.from_numpy(truth), torch.from_numpy(weights)


def flip_shapes(shapes: np.ndarray) -> np.ndarray:
    """The shape features of the horizontally mirrored drawing."""
    flipped = shapes.copy()
    flipped[:, 1] = 1.0 - shapes[:, 1]
    flipped[:, 3], flipped[:, 5] = 1.0 - shapes[:, 5], 1.0 - shapes[:, 3]
    grid = shapes[:, 11:].reshape(-1, SHAPE_GRID, SHAPE_GRID)
    flipped[:, 11:] = grid[:, :, ::-1].reshape(len(shapes), -1)
    return flipped


# 2. Loss -------------------------------------------------------------------------------------------------------


def lab(rgb: torch.Tensor) -> torch.Tensor:
    """`(..., 3)` sRGB in [0, 1] → CIELAB."""
    from stablepaint.metrics.color import rgb_to_lab

    return rgb_to_lab(rgb.reshape(-1, 3, 1, 1).float()).reshape(rgb.shape)


def lab_distance(lab1: torch.Tensor, lab2: torch.Tensor) -> torch.Tensor:
    """ΔE76 between `(..., 3)` CIELAB colors (smooth at 0)."""
    return torch.sqrt(((lab1 - lab2) ** 2).sum(-1) + 1e-4)


def delta_e76(colors: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """`(..., 3)` sRGB in [0, 1] vs `(..., 3)` uint8 → ΔE76 per region (smooth at 0)."""
    return lab_distance(lab(colors), lab(truth.float() / 255.0))


def region_errors(model, tokens, padding, truth, hard: bool = False):
    """Per region ΔE76 of the network's color to the truth, and the gate's cross-entropy (0 without a gate). With a
    stroke gate, a stroked region's color is the trust-weighted mix of its stroke color and the predicted one
    (`hard`: the stroke color where trust >= 0.5, as `FlatsPipeline` does)."""
    output = model(tokens, padding)
    truth_lab = lab(truth.float() / 255.0)
    predicted = lab(output.colors)
    if output.trust is None:
        return lab_distance(predicted, truth_lab), torch.zeros(())
    stroked = tokens[..., NUM_SHAPE_FEATURES] > 0.5
    stroke_lab = tokens[..., NUM_SHAPE_FEATURES + 2 :].float() * 100.0
    trust = output.trust.float() * stroked
    if hard:
        trust = (trust >= 0.5).float()
    errors = lab_distance(trust[..., None] * stroke_lab + (1 - trust[..., None]) * predicted, truth_lab)
    # the gate's target: the stroke color is closer to the truth than the network's own color
    target = (lab_distance(stroke_lab, truth_lab) < lab_distance(predicted.detach(), truth_lab)).float()
    gate = torch.nn.functional.binary_cross_entropy(
        output.trust.float().clamp(1e-6, 1 - 1e-6), target, reduction="none"
    )
    gate = (gate * stroked * ~padding).sum() / (stroked & ~padding).sum().clamp_min(1)
    return errors, gate


def region_loss(model, tokens, padding, truth, weights, gate_weight: float = 1.0):
    errors, gate = region_errors(model, tokens, padding, truth)
    return (errors * weights).sum() / weights.sum().clamp_min(1e-8) + gate_weight * gate


@torch.no_grad()
def validate(model, validation: TokenSet, args) -> float:
    """Area-weighted ΔE76 of the unstroked regions (every region with `--supervise_stroked`; a gate decides as at
    inference) over every validation pair and draw (fixed: no dropping)."""
    model.eval()
    total, weight = 0.0, 0.0
    for draw in range(args.total_draws):
        for start in range(0, len(validation), 256):
            indices = list(range(start, min(start + 256, len(validation))))
            tokens, padding, truth, weights = validation.batch(
                indices, [draw] * len(indices), stroked=args.supervise_stroked
            )
            errors = region_errors(model, tokens, padding, truth, hard=True)[0]
            total += float((errors * weights).sum())
            weight += float(weights.sum())
    model.train()
    return total / max(weight, 1e-8)


# 3. Training ----------------------------------------------------------------------------------------------------


def build_model(args) -> RegionColorizer:
    """A new region colorizer, or that of `--pretrained_model_name_or_path` (with a fresh gate if it has none and
    `--stroke_gate` asks for one)."""
    if args.pretrained_model_name_or_path is None:
        return RegionColorizer(
            hidden_size=args.hidden_size,
            num_layers=args.num_layers,
            num_heads=args.num_heads,
            stroke_gate=args.stroke_gate,
        )
    from stablepaint.hub.loading import load_pipeline

    pretrained = getattr(load_pipeline(args.pretrained_model_name_or_path), "components", {}).get("region_colorizer")
    if pretrained is None:
        raise ValueError(
            f"`--pretrained_model_name_or_path` {args.pretrained_model_name_or_path!r} has no region colorizer."
        )
    config = {k: v for k, v in pretrained.config.items() if not k.startswith("_")}
    config["stroke_gate"] = bool(args.stroke_gate or config.get("stroke_gate", False))
    model = RegionColorizer(**config)
    missing, unexpected = model.load_state_dict(pretrained.float().state_dict(), strict=False)
    if unexpected or any(not name.startswith("gate.") for name in missing):
        raise ValueError(f"the pretrained region colorizer does not fit: missing {missing}, unexpected {unexpected}.")
    return model


def main(args) -> Path:
    from stablepaint.pipelines.pipeline_flats import FlatsPipeline

    accelerator = Accelerator(mixed_precision=args.mixed_precision)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    caches = [build_cache(folder, args) for folder in args.train_data_dir]
    train, validation = TokenSet(caches, "train"), TokenSet(caches, "validation")
    accelerator.print(f"{len(train)} training pairs, {len(validation)} validation pairs")
    torch.manual_seed(args.seed)
    model = build_model(args)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.learning_rate, weight_decay=args.weight_decay)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: 0.5 * (1 + math.cos(math.pi * min(step / args.max_train_steps, 1.0)))
    )
    model, optimizer, schedule = accelerator.prepare(model, optimizer, schedule)
    output = Path(args.output_dir)
    output.mkdir(parents=True, exist_ok=True)
    best_path = output / "best.json"
    best = {"step": None, "validation_delta_e76": float("inf")}
    # the shared loader (one step per "epoch": the batch of a step depends on the step only, nothing to skip)
    step, _, _ = resume_from_checkpoint(accelerator, args, num_update_steps_per_epoch=1)
    if step and best_path.is_file():
        best = json.loads(best_path.read_text())
    progress = tqdm(total=args.max_train_steps, initial=step, desc="flats", disable=not accelerator.is_main_process)
    while step < args.max_train_steps:
        rng = np.random.default_rng((args.seed, step))  # the batch depends on the step only: exact resumption
        indices = rng.integers(0, len(train), args.train_batch_size).tolist()
        draws = rng.integers(0, args.total_draws, args.train_batch_size).tolist()
        batch = [
            t.to(accelerator.device)
            for t in train.batch(indices, draws, rng, args.drop_stroke_probability, args.supervise_stroked)
        ]
        with accelerator.autocast():
            loss = region_loss(model, *batch, gate_weight=args.gate_loss_weight)
        accelerator.backward(loss)
        accelerator.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad()
        step += 1
        progress.update(1)
        progress.set_postfix(loss=f"{loss.item():.2f}")
        if step % args.validation_steps == 0 or step == args.max_train_steps:
            score = validate(accelerator.unwrap_model(model), validation, args)
            accelerator.print(f"step {step}: validation ΔE76 {score:.3f} (best {best['validation_delta_e76']:.3f})")
            if score < best["validation_delta_e76"]:
                best = {"step": step, "validation_delta_e76": score}
                FlatsPipeline(
                    region_colorizer=accelerator.unwrap_model(model), keep_stroke_colors=not args.supervise_stroked
                ).save_pretrained(output / "best")
                with atomic_write(best_path) as temp:
                    Path(temp).write_text(json.dumps(best, indent=2))
        if step % args.checkpointing_steps == 0:
            save_checkpoint(accelerator, output, step, args.checkpoints_total_limit)
    progress.close()
    accelerator.print(f"best: step {best['step']}, validation ΔE76 {best['validation_delta_e76']:.3f}")
    with atomic_write(output / "training_args.json") as temp:
        Path(temp).write_text(json.dumps(vars(args), indent=2, default=str))
    return output / "best"


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    sys.exit(0 if main(parse_args()) else 1)

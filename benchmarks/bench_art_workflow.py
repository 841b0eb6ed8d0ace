"""Benchmark of `ArtWorkflowPipeline.invert` (the paper's Table 2, and the edit realism of its Table 3).

For held-out illustrations, each row runs `invert` with one optimization setting and reports
- `invert` time per image (and its ratio to the "none" row, measured in the same run),
- the reconstruction L1 between the regenerated final stage and the artwork (the paper's reconstruction error),
- a Fréchet distance between VGG16 `relu4_3` features (spatially averaged, 512-d) of the reconstructions and of the
  artworks ("FID-style": VGG instead of Inception, and few images, so only the comparison between rows means
  anything),
- the same Fréchet distance for edits: the final-stage latent re-sampled after the optimization (Table 3: an
  optimization that memorizes the input degrades edits).

Rows: no optimization; AdaIN optimization; AdaIN + fixed weight decay (one row per `--weight_decay`); AdaIN + learned
regularization (when the pipeline has a `regularizer`).

    python benchmarks/bench_art_workflow.py --model /work/artifacts/workflow/reg \
        --vgg_weights ../shared/weights/vgg16_features.safetensors --out outputs/bench
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from scipy import linalg

from stablepaint import ArtWorkflowPipeline
from stablepaint.models.perceptual import VGG16Features

DEFAULT_IDS = tuple(range(2480, 2494))  # held out of the shipped model's training (2494-2499 are the examples)


def parse_args(input_args=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=str, required=True, help="A saved ArtWorkflowPipeline.")
    parser.add_argument(
        "--data", type=str, default=str(Path(__file__).resolve().parents[2] / "shared" / "data" / "adventurer")
    )
    parser.add_argument("--ids", type=int, nargs="+", default=list(DEFAULT_IDS), help="Adventurer ids to invert.")
    parser.add_argument("--n", type=int, default=None, help="Use only the first N ids.")
    parser.add_argument("--resolution", type=int, default=64, help="Working size (the shipped model trains at 64).")
    parser.add_argument("--steps", type=int, default=150, help="AdaIN-optimization steps per stage (paper: 150).")
    parser.add_argument("--weight_decay", type=float, nargs="*", default=[1e-2, 1e-1], help="Fixed weight decays.")
    parser.add_argument("--perceptual_weight", type=float, default=10.0)
    parser.add_argument("--vgg_weights", type=str, default=None)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=str, default=None, help="Folder for the JSON report (art_workflow.json).")
    return parser.parse_args(input_args)


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets (Heusel et al., 2017)."""
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    with warnings.catch_warnings():  # few images: the covariances are singular, which the distance tolerates
        warnings.simplefilter("ignore")
        covmean = np.real(linalg.sqrtm(cov_a @ cov_b))
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a + cov_b - 2 * covmean))


def load_images(args):
    paths = [Path(args.data) / f"dicebear_adventurer_{i}_color.png" for i in args.ids[: args.n]]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"missing benchmark images: {missing[:3]}")
    size = args.resolution
    return [Image.open(p).convert("RGB").resize((size, size), Image.Resampling.LANCZOS) for p in paths]


def main(args):
    torch.set_num_threads(args.threads)
    pipe = ArtWorkflowPipeline.from_pretrained(args.model)
    pipe.set_progress_bar_config(disable=True)
    images = load_images(args)
    vgg = VGG16Features.from_weights(args.vgg_weights, layers=("relu1_2", "relu2_2", "relu3_3", "relu4_3"))
    pipe._loaded_perceptual = vgg  # the same network measures and optimizes; loaded once

    def features(tensors):
        with torch.no_grad():
            return torch.cat([vgg(t)[-1].mean(dim=(2, 3)) for t in tensors]).numpy()

    rows = [("none", {"optimize_steps": 0, "use_learned_regularization": False})]
    rows.append(("adain", {"optimize_steps": args.steps, "use_learned_regularization": False}))
    for decay in args.weight_decay:
        kwargs = {"optimize_steps": args.steps, "use_learned_regularization": False, "weight_decay": decay}
        rows.append((f"adain+wd{decay:g}", kwargs))
    if pipe.regularizer is not None:
        rows.append(("adain+learned", {"optimize_steps": args.steps, "use_learned_regularization": True}))

    originals, results = [], {}
    for name, kwargs in rows:
        recon, edits, l1s, increments, seconds = [], [], [], [], 0.0
        for i, image in enumerate(images):
            start = time.perf_counter()
            state = pipe.invert(image, perceptual_weight=args.perceptual_weight, output_type="pt", **kwargs)
            seconds += time.perf_counter() - start
            target = state.inferred_tensors[-1]
            recon.append(state.stage_tensors[-1])
            l1s.append((state.stage_tensors[-1] - target).abs().mean().item())
            increments.append(float(np.mean([d.abs().mean().item() for d in state.adain_increments])))
            edit = pipe.edit(state, stage=pipe.num_stages - 1, generator=torch.Generator().manual_seed(args.seed + i))
            edits.append(edit.stage_tensors[-1])
            if name == "none":
                originals.append(target)  # the artworks as the pipeline sees them (working size)
        real = features(originals)
        results[name] = {
            "seconds_per_image": seconds / len(images),
            "reconstruction_l1": float(np.mean(l1s)),
            "frechet_vgg_reconstruction": frechet_distance(features(recon), real),
            "frechet_vgg_edit": frechet_distance(features(edits), real),
            "mean_abs_increment": float(np.mean(increments)),
        }
        print(f"{name:>16}: " + ", ".join(f"{k}={v:.4g}" for k, v in results[name].items()), flush=True)

    reference = results["none"]
    print(f"\n{len(images)} held-out images at {args.resolution}², {args.steps} steps/stage; ratios to 'none':")
    print("| row | invert s/image | × none | recon L1 | × none | Fréchet-VGG recon | Fréchet-VGG edit | mean |Δp| |")
    print("|---|---|---|---|---|---|---|---|")
    for name, r in results.items():
        print(
            f"| {name} | {r['seconds_per_image']:.3f} | {r['seconds_per_image'] / reference['seconds_per_image']:.1f} | "
            f"{r['reconstruction_l1']:.4f} | {r['reconstruction_l1'] / reference['reconstruction_l1']:.3f} | "
            f"{r['frechet_vgg_reconstruction']:.2f} | {r['frechet_vgg_edit']:.2f} | {r['mean_abs_increment']:.4f} |"
        )
    if args.out:
        report = {"args": vars(args), "results": results}
        Path(args.out).mkdir(parents=True, exist_ok=True)
        (Path(args.out) / "art_workflow.json").write_text(json.dumps(report, indent=2))
    return results


if __name__ == "__main__":
    main(parse_args())

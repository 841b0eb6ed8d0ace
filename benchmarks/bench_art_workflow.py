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

Grid mode (`--grid`): speed and memory of `generate` (sketch → flat → final, one generator forward per transition)
per `--sizes` × `--batch-sizes`, and training images/s of one full training step (`train_art_workflow.py`'s
`inference_step` + `generation_step`: hinge GANs, BicycleGAN, cycle loss; no AdaIN regularization step), each
against a same-run reference: a plain diffusers `UNet2DModel` (32, 64, 128; 2 layers per block: 3.61M parameters, vs
3.07M per transition generator) run once per transition (forward; MSE step for training). Models: `--model`, or the
shipped model's configuration with random weights (generation: base 32, 2 downsamplings, 4 residual blocks, latent 8,
6.82M; inference: base 32, 6 downsamplings; discriminators: base 32, 3 layers, 2 scales).

    OMP_NUM_THREADS=1 python benchmarks/bench_art_workflow.py --grid --threads 1 --sizes 64 128 256 \
        --batch-sizes 1 8 --train-resolution 64 --out benchmarks/results/art_workflow_grid_cpu.json
"""

from __future__ import annotations

import argparse
import json
import sys
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
    parser.add_argument(
        "--model", type=str, default=None, help="A saved ArtWorkflowPipeline (required without --grid)."
    )
    parser.add_argument("--grid", action="store_true", help="speed/memory grid instead of the inversion table")
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512, 1024], help="--grid: square sizes")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8], help="--grid: batch sizes")
    parser.add_argument("--device", default="auto", help="--grid: auto (cuda if available), cpu, cuda")
    parser.add_argument("--repeats", type=int, default=3, help="--grid: timed calls per cell (median)")
    parser.add_argument("--max-seconds", type=float, default=None, help="--grid: skip cells predicted slower")
    parser.add_argument("--train-resolution", type=int, default=64, help="--grid: training step size")
    parser.add_argument("--train-batch-size", type=int, default=8, help="--grid: training batch (paper: 8)")
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
    args = parser.parse_args(input_args)
    if args.model is None and not args.grid:
        parser.error("--model is required (except with --grid)")
    return args


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


def grid_pipeline(args, device):
    from stablepaint import ArtWorkflowDiscriminators, ArtWorkflowGenerationModel, ArtWorkflowInferenceModel

    torch.manual_seed(args.seed)
    if args.model:
        pipe = ArtWorkflowPipeline.from_pretrained(args.model)
        folder = Path(args.model) / "discriminators"
        discriminators = ArtWorkflowDiscriminators.from_pretrained(str(folder)) if folder.is_dir() else None
    else:
        generation = ArtWorkflowGenerationModel(
            latent_dim=8, base_channels=32, num_downsample=2, num_res_blocks=4, mlp_dim=128, encoder_channels=32
        )
        inference = ArtWorkflowInferenceModel(base_channels=32, max_channel_mult=8, num_downs=6)
        pipe = ArtWorkflowPipeline(artwork_generation=generation, workflow_inference=inference)
        discriminators = None
    if discriminators is None:
        stage_channels = tuple(pipe.artwork_generation.config.stage_channels)
        discriminators = ArtWorkflowDiscriminators(stage_channels=stage_channels, base_channels=32)
    pipe.to(device)
    pipe.set_progress_bar_config(disable=True)
    return pipe, discriminators.to(device)


def reference_unets(pipe, device):
    from diffusers import UNet2DModel

    torch.manual_seed(0)
    channels = list(pipe.artwork_generation.config.stage_channels)
    return [
        UNet2DModel(
            in_channels=channels[k],
            out_channels=channels[k + 1],
            block_out_channels=(32, 64, 128),
            layers_per_block=2,
            norm_num_groups=16,
            down_block_types=("DownBlock2D",) * 3,
            up_block_types=("UpBlock2D",) * 3,
        ).to(device)
        for k in range(len(channels) - 1)
    ]


def training_row(args, pipe, discriminators, references, device):
    """Images/s of one training step of `train_art_workflow.py` (inference nets, then generators) and of one MSE step
    of the reference UNets (one per transition)."""
    import importlib.util
    from types import SimpleNamespace

    import torch.nn.functional as F

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from common import interleaved, peak_memory_mb

    spec = importlib.util.spec_from_file_location(
        "train_art_workflow", Path(__file__).resolve().parents[1] / "train" / "train_art_workflow.py"
    )
    train = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(train)

    class Accelerator:
        num_processes = 1

        def autocast(self):
            return torch.autocast(device.type, enabled=False)

        def backward(self, loss):
            loss.backward()

    accelerator = Accelerator()
    flags = SimpleNamespace(
        lambda_l1_inference=10.0, lambda_l1=10.0, lambda_latent=0.5, lambda_kl=0.01, lambda_cycle=1.0
    )
    generation, inference = pipe.artwork_generation.train(), pipe.workflow_inference.train()
    discriminators.train()
    size, batch = args.train_resolution, args.train_batch_size
    gen = torch.Generator().manual_seed(0)
    stages = [
        (torch.rand(batch, c, size, size, generator=gen) * 2 - 1).to(device)
        for c in pipe.artwork_generation.config.stage_channels
    ]

    def adam(*modules):
        return torch.optim.Adam([p for m in modules for p in m.parameters()], lr=2e-4, betas=(0.5, 0.999))

    inference_opts = (adam(inference), adam(discriminators.inference))
    generation_opts = (adam(generation), adam(discriminators.encoded, discriminators.random))
    reference_opt = adam(*references)

    def workflow_step():
        train.inference_step(flags, accelerator, inference, discriminators, inference_opts, stages, False)
        train.generation_step(
            flags, accelerator, generation, inference, discriminators, generation_opts, stages, None, False
        )

    def reference_step():
        loss = sum(F.mse_loss(u(stages[k], 0).sample, stages[k + 1]) for k, u in enumerate(references))
        loss.backward()
        reference_opt.step()
        reference_opt.zero_grad(set_to_none=True)

    times = interleaved({"workflow": workflow_step, "reference": reference_step}, device, args.repeats, 1)
    w, r = times["workflow"]["median_s"], times["reference"]["median_s"]
    row = {
        "resolution": size,
        "batch_size": batch,
        "images_per_s": batch / w,
        "reference_images_per_s": batch / r,
        "ratio": r / w,
        "peak_mb": peak_memory_mb(workflow_step, device),
        "reference_peak_mb": peak_memory_mb(reference_step, device),
    }
    generation.eval(), inference.eval()
    return row


def grid_main(args):
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from common import CellBudget, PeakMemory, hardware_label, interleaved, machine, peak_memory_mb, resolve_device

    device = resolve_device(args.device)
    torch.set_num_threads(args.threads)
    pipe, discriminators = grid_pipeline(args, device)
    references = [u.eval() for u in reference_unets(pipe, device)]
    per_transition = [sum(p.numel() for p in g.parameters()) / 1e6 for g in pipe.artwork_generation.generators]
    reference_params = sum(p.numel() for p in references[0].parameters()) / 1e6
    info = machine(device)
    print(f"{hardware_label(info)}; generators {per_transition} M per transition; reference {reference_params:.2f} M")
    rows, budget = [], CellBudget(args.max_seconds)
    for size in args.sizes:
        for batch in args.batch_sizes:
            cell = {"size": size, "batch": batch}
            reason = budget.skip_reason("cell", size, batch)
            if reason:
                rows.append({**cell, "skipped": reason})
                print(f"{size:>5}² ×{batch:<2} skipped: {reason}", flush=True)
                continue
            start = time.perf_counter()
            sketch = [Image.new("L", (size, size), 255)] * batch
            channels = list(pipe.artwork_generation.config.stage_channels)
            inputs = [torch.randn(batch, c, size, size, device=device) for c in channels[:-1]]

            def generate():
                return pipe(sketch, generator=torch.Generator().manual_seed(0), output_type="pt")

            def reference():
                for unet, x in zip(references, inputs):
                    unet(x, 0)

            with torch.no_grad():
                times = interleaved({"generate": generate, "reference": reference}, device, args.repeats, 1)
                memory = peak_memory_mb(generate, device)
                reference_memory = peak_memory_mb(reference, device)
            g, r = times["generate"]["median_s"], times["reference"]["median_s"]
            row = {
                **cell,
                "ms_per_image": 1000 * g / batch,
                "images_per_s": batch / g,
                "reference_ms_per_image": 1000 * r / batch,
                "ratio": g / r,
                "peak_mb": memory,
                "reference_peak_mb": reference_memory,
            }
            rows.append(row)
            budget.record("cell", time.perf_counter() - start, size, batch)
            print(
                f"{size:>5}² ×{batch:<2} {row['ms_per_image']:>9.1f} ms/img {row['images_per_s']:>8.2f} img/s "
                f"ref {row['reference_ms_per_image']:>9.1f} ms/img ratio {row['ratio']:.2f} peak {memory:.1f} MB",
                flush=True,
            )
    training = training_row(args, pipe, discriminators, references, device)
    print(
        f"training {args.train_resolution}² batch {args.train_batch_size}: {training['images_per_s']:.2f} img/s, "
        f"reference {training['reference_images_per_s']:.2f} img/s, ratio {training['ratio']:.2f}"
    )
    report = {
        "benchmark": "art_workflow_grid",
        "hardware": hardware_label(info),
        "machine": info,
        "memory_method": PeakMemory(device).method,
        "generator_params_m": per_transition,
        "reference_params_m": reference_params,
        "args": vars(args),
        "grid": rows,
        "training": training,
    }
    if args.out:
        path = Path(args.out)
        path = path if path.suffix == ".json" else path / "art_workflow_grid.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(report, indent=2))
        print(f"wrote {path}")
    return report


if __name__ == "__main__":
    arguments = parse_args()
    grid_main(arguments) if arguments.grid else main(arguments)

"""PaintsTorch / StencilTorch speed and memory: a grid of sizes × batch sizes, and training throughput.

Per pipeline (PaintsTorchPipeline, StencilTorchPipeline) and per cell of `--sizes` × `--batch-sizes`:

- latency per image and images/s of the whole pipeline call (numpy inputs → pre-processing → generator forward →
  post-processing with the mask composite, `output_type="pt"`), and of the generator forward alone;
- peak memory of one pipeline call (CUDA: `max_memory_allocated`; CPU: process RSS peak rise; see common.py);
- the same-run reference: a plain forward of a diffusers `UNet2DModel` (convolutional, no attention) of about the
  generator's parameter count, on the same tensor sizes (lineart + hints upsampled, + composite and mask for
  StencilTorch). `ratio` = pipeline seconds / reference seconds; `generator_ratio` = generator forward / reference.

Training: one full WGAN-GP step (critic step with gradient penalty, G1 step with VGG16 content loss, G2 / guide
decoder step) against one MSE step of the same reference `UNet2DModel`, as images/s; `ratio` = GAN images/s /
reference images/s.

Configs: `default` = the thesis' sizes (G1 21.9M; reference UNet2DModel 24.0M), `small` = the shipped models' sizes
(colorizer block_out_channels [16, 32, 64, 128, 256], mid_block_layers 6, mid_cardinality 16, up_block_cardinality
[16, 16, 8], feature_channels 0: 3.96M; critic [32, 64, 128], head 256; reference UNet2DModel (32, 64, 128, 128), one
layer per block: 4.13M), `tiny` (smoke tests). The candidate and its reference alternate call after call; warm-up calls
are excluded; medians are reported.

    OMP_NUM_THREADS=1 python benchmarks/bench_gan.py --config small --threads 1 --max-seconds 300 \
        --out benchmarks/results/gan_small_cpu.json
    python benchmarks/bench_gan.py --config small --device cuda --out benchmarks/results/gan_small_h100.json
    python benchmarks/bench_gan.py --tiny --sizes 32 --batch-sizes 1   # smoke test
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
    DTYPES,
    CellBudget,
    PeakMemory,
    add_grid_arguments,
    add_speedup_arguments,
    hardware_label,
    interleaved,
    machine,
    peak_memory_mb,
    resolve_device,
    speed_up,
    speedup_label,
    write_report,
)

from stablepaint.models import (  # noqa: E402
    PaintsTorchCritic,
    PaintsTorchGenerator,
    StencilTorchGuideDecoder,
    VGG16Features,
)
from stablepaint.training.gan import GANTask, gan_step  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
TINY = {
    "block_out_channels": (4, 8, 8, 16, 16),
    "mid_block_layers": 1,
    "mid_cardinality": 2,
    "up_block_dilations": ((1,), (1,), (1,)),
    "up_block_cardinality": (2, 2, 2),
}
TINY_CRITIC = {"block_out_channels": (4, 8, 8), "head_channels": 8, "head_downsamples": 1, "cardinality": 2}
# The shipped models' sizes (the colorizer has 3.96M parameters).
SMALL = {
    "block_out_channels": (16, 32, 64, 128, 256),
    "mid_block_layers": 6,
    "mid_cardinality": 16,
    "up_block_cardinality": (16, 16, 8),
}
SMALL_CRITIC = {"block_out_channels": (32, 64, 128), "head_channels": 256}
CONFIGS = {
    "default": ({}, {}, {"channels": (64, 128, 256, 256), "layers": 2, "groups": 32}),
    "small": (SMALL, SMALL_CRITIC, {"channels": (32, 64, 128, 128), "layers": 1, "groups": 16}),
    "tiny": (TINY, TINY_CRITIC, {"channels": (8, 8, 16, 16), "layers": 1, "groups": 4}),
}
PIPELINES = ("paintstorch", "stenciltorch")


def reference_unet(config: str, in_channels: int):
    from diffusers import UNet2DModel

    spec = CONFIGS[config][2]
    return UNet2DModel(
        in_channels=in_channels,
        out_channels=3,
        block_out_channels=spec["channels"],
        layers_per_block=spec["layers"],
        norm_num_groups=spec["groups"],
        down_block_types=("DownBlock2D",) * len(spec["channels"]),
        up_block_types=("UpBlock2D",) * len(spec["channels"]),
    )


def count(module) -> int:
    return sum(p.numel() for p in module.parameters())


def build_pipeline(name: str, config: str, device, dtype):
    from stablepaint import PaintsTorchPipeline, StencilTorchPipeline

    torch.manual_seed(0)
    stencil = name == "stenciltorch"
    colorizer = PaintsTorchGenerator(in_channels=5 if stencil else 1, feature_channels=0, **CONFIGS[config][0])
    pipeline = (StencilTorchPipeline if stencil else PaintsTorchPipeline)(colorizer=colorizer)
    pipeline.to(device=device)
    if dtype != torch.float32:
        pipeline.to(dtype=dtype)
    pipeline.set_progress_bar_config(disable=True)
    # The reference reads what the generator reads, at full resolution: lineart + hints (+ composite + mask).
    reference = reference_unet(config, in_channels=9 if stencil else 5).to(device=device).eval()
    if dtype != torch.float32:
        reference.to(dtype=dtype)
    return pipeline, reference


def make_inputs(size: int, batch: int, seed: int = 0):
    """Numpy inputs of the conditioning contract: lineart (uint8 H×W), RGBA strokes at 1/4, mask, previous image."""
    rng = np.random.default_rng(seed)
    lineart = np.full((size, size), 255, np.uint8)
    for _ in range(16):
        row = int(rng.integers(0, size - 2))
        lineart[row : row + 2, int(rng.integers(0, size // 2)) : int(rng.integers(size // 2, size))] = 0
    hints = np.zeros((size // 4, size // 4, 4), np.uint8)
    hints[size // 16 : size // 16 + 2, size // 32 : size // 8] = (200, 60, 40, 255)
    mask = np.zeros((size, size), np.uint8)
    mask[size // 4 : 3 * size // 4, size // 4 : 3 * size // 4] = 255
    image = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
    return {"lineart": [lineart] * batch, "hints": [hints] * batch, "mask": [mask] * batch, "image": [image] * batch}


def grid(args, device, dtype):
    """One row per pipeline × size × batch: measured, or skipped with the reason."""
    rows, budget = [], CellBudget(args.max_seconds)
    for name in PIPELINES:
        pipeline, reference = build_pipeline(name, args.config, device, dtype)
        pipeline.colorizer = speed_up(pipeline.colorizer, args)  # `--channels-last`, `--compile`: the same for both
        reference = speed_up(reference, args)
        generator = pipeline.colorizer.eval()
        stencil = name == "stenciltorch"
        params = {"generator_params_m": count(generator) / 1e6, "reference_params_m": count(reference) / 1e6}
        for size in args.sizes:
            for batch in args.batch_sizes:
                cell = {"pipeline": name, "size": size, "batch": batch, **params}
                reason = budget.skip_reason(name, size, batch)
                if reason:
                    rows.append({**cell, "skipped": reason})
                    print(f"{name:>12} {size:>5}² ×{batch:<2} skipped: {reason}", flush=True)
                    continue
                start = time.perf_counter()
                inputs = make_inputs(size, batch)
                kwargs = {"mask": inputs["mask"], "image": inputs["image"]} if stencil else {}
                in_channels = generator.config.in_channels
                g_input = torch.randn(batch, in_channels, size, size, device=device, dtype=dtype)
                g_hints = torch.randn(batch, 4, size // 4, size // 4, device=device, dtype=dtype)
                r_input = torch.randn(batch, reference.config.in_channels, size, size, device=device, dtype=dtype)

                def run_pipeline():
                    return pipeline(inputs["lineart"], hints=inputs["hints"], output_type="pt", **kwargs)

                with torch.no_grad():
                    times = interleaved(
                        {
                            "pipeline": run_pipeline,
                            "generator": lambda: generator(g_input, g_hints),
                            "reference": lambda: reference(r_input, 0),
                        },
                        device,
                        args.repeats,
                        args.warmup,
                    )
                    memory = peak_memory_mb(run_pipeline, device)
                    reference_memory = peak_memory_mb(lambda: reference(r_input, 0), device)
                p, g, r = (times[k]["median_s"] for k in ("pipeline", "generator", "reference"))
                row = {
                    **cell,
                    "pipeline_ms_per_image": 1000 * p / batch,
                    "images_per_s": batch / p,
                    "generator_ms_per_image": 1000 * g / batch,
                    "reference_ms_per_image": 1000 * r / batch,
                    "reference_images_per_s": batch / r,
                    "ratio": p / r,
                    "generator_ratio": g / r,
                    "peak_mb": memory,
                    "reference_peak_mb": reference_memory,
                    "memory_ratio": memory / reference_memory if reference_memory > 0 else None,
                    "samples_s": {k: v["samples_s"] for k, v in times.items()},
                }
                rows.append(row)
                budget.record(name, time.perf_counter() - start, size, batch)
                print(
                    f"{name:>12} {size:>5}² ×{batch:<2} {row['pipeline_ms_per_image']:>9.1f} "
                    f"{row['generator_ms_per_image']:>9.1f} {row['reference_ms_per_image']:>9.1f} "
                    f"{row['ratio']:>6.2f} {row['images_per_s']:>8.2f} {memory:>9.1f} {reference_memory:>9.1f}",
                    flush=True,
                )
    return rows


class _Accelerator:
    """What `gan_step` needs from an `Accelerator`, for one process without it."""

    sync_gradients = True

    def __init__(self, device):
        self.device = device

    def unwrap_model(self, model):
        return model

    def autocast(self):
        return torch.autocast(self.device.type, enabled=False)

    def backward(self, loss):
        loss.backward()


def training_throughput(args, device, task_name: str, vgg):
    """fp32 training images/s of one WGAN-GP step of `task_name` and of one MSE step of the reference UNet2DModel."""
    torch.manual_seed(0)
    size, batch = args.train_resolution, args.batch_size
    stencil = task_name == "stenciltorch"
    generator_config, critic_config, _ = CONFIGS[args.config]
    g1 = PaintsTorchGenerator(in_channels=5 if stencil else 1, feature_channels=0, **generator_config)
    critic = PaintsTorchCritic(feature_channels=0, **critic_config)
    if stencil:
        auxiliary = StencilTorchGuideDecoder.from_colorizer(g1)
    else:
        auxiliary = PaintsTorchGenerator(in_channels=3, out_channels=1, feature_channels=0, **generator_config)
    nets = [m.to(device).train() for m in (g1, critic, auxiliary)]
    optimizers = [torch.optim.Adam(m.parameters(), lr=1e-4, betas=(0.5, 0.9)) for m in (critic, g1, auxiliary)]
    batch_tensors = {
        "image": torch.rand(batch, 3, size, size) * 2 - 1,
        "lineart": torch.rand(batch, 1, size, size) * 2 - 1,
        "hints": torch.rand(batch, 4, size // 4, size // 4) * 2 - 1,
        "mask": (torch.rand(batch, 1, size, size) > 0.5).float(),
        "composite": torch.rand(batch, 3, size, size) * 2 - 1,
        "simplified": torch.rand(batch, 3, size, size) * 2 - 1,
    }
    batch_tensors = {k: v.to(device) for k, v in batch_tensors.items()}
    task = GANTask(task_name, object, {}, "paintstorch_card.md", "auxiliary")
    flags = SimpleNamespace(  # the thesis' objective: no opt-in terms
        lambda_gp=10.0,
        drift=1e-3,
        lambda_adv=1e-4,
        auxiliary_weight=1.0,
        lambda_l1=0.0,
        lambda_hint=0.0,
        lambda_region=0.0,
    )
    accelerator = _Accelerator(device)

    unet = reference_unet(args.config, in_channels=9 if stencil else 5).to(device).train()
    unet_optimizer = torch.optim.Adam(unet.parameters(), lr=1e-4)
    parts = ["lineart", "composite", "mask"] if stencil else ["lineart"]
    hints_up = F.interpolate(batch_tensors["hints"], size=(size, size), mode="nearest")
    unet_input = torch.cat([batch_tensors[k] for k in parts] + [hints_up], dim=1)

    def unet_step():
        loss = F.mse_loss(unet(unet_input, 0).sample, batch_tensors["image"])
        loss.backward()
        unet_optimizer.step()
        unet_optimizer.zero_grad(set_to_none=True)

    def gan():
        gan_step(flags, task, batch_tensors, nets, optimizers, None, vgg, accelerator)

    times = interleaved({"gan": gan, "reference": unet_step}, device, args.train_repeats, 1)
    step_s, unet_s = times["gan"]["median_s"], times["reference"]["median_s"]
    return {
        "task": task_name,
        "resolution": size,
        "batch_size": batch,
        "images_per_s": batch / step_s,
        "reference_images_per_s": batch / unet_s,
        "ratio": unet_s / step_s,
        "peak_mb": peak_memory_mb(gan, device),
        "reference_peak_mb": peak_memory_mb(unet_step, device),
        "trainable_params_m": sum(count(m) for m in nets) / 1e6,
        "reference_params_m": count(unet) / 1e6,
        "samples_s": {k: v["samples_s"] for k, v in times.items()},
    }


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_grid_arguments(parser)
    add_speedup_arguments(parser)
    parser.add_argument("--config", choices=tuple(CONFIGS), default="default", help="model sizes (see above)")
    parser.add_argument("--tiny", action="store_true", help="same as --config tiny (smoke test)")
    parser.add_argument("--train_resolution", "--train-resolution", type=int, default=256)
    parser.add_argument("--batch_size", "--train-batch-size", type=int, default=4, help="training batch size")
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per cell (median)")
    parser.add_argument("--train_repeats", "--train-repeats", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1, help="untimed calls before timing")
    parser.add_argument("--no-training", action="store_true", help="skip the training throughput")
    parser.add_argument(
        "--vgg_weights",
        default=os.environ.get(
            "STABLEPAINT_VGG16_WEIGHTS", str(REPO.parent / "shared" / "weights" / "vgg16_features.safetensors")
        ),
    )
    parser.add_argument("--out", default=None, help="report: a .json file, or a folder (gets gan.json)")
    args = parser.parse_args(argv)
    if args.tiny:
        args.config = "tiny"
    return args


def main(argv=None):
    args = parse_args(argv)
    device = resolve_device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    dtype = DTYPES[args.dtype]
    info = machine(device)
    print(
        f"{hardware_label(info)}; device {device}; config {args.config}; {args.dtype}{speedup_label(args)}", flush=True
    )
    print(
        f"{'pipeline':>12} {'cell':>9} {'pipe ms/img':>9} {'G1 ms/img':>9} {'ref ms/img':>9} {'ratio':>6} "
        f"{'img/s':>8} {'peak MB':>9} {'ref MB':>9}"
    )
    rows = grid(args, device, dtype)
    # Kept from the first version of this benchmark: generator forward vs reference, PaintsTorch, batch 1.
    latency = [
        {
            "size": r["size"],
            "generator_ms": r["generator_ms_per_image"],
            "reference_ms": r["reference_ms_per_image"],
            "ratio": r["generator_ratio"],
            "generator_params_m": r["generator_params_m"],
            "reference_params_m": r["reference_params_m"],
        }
        for r in rows
        if r["pipeline"] == "paintstorch" and r["batch"] == min(args.batch_sizes) and "skipped" not in r
    ]
    training = []
    if not args.no_training:
        # Random weights time the same: `--vgg_weights random` where the ImageNet weights are not at hand.
        vgg = VGG16Features() if args.vgg_weights == "random" else VGG16Features.from_weights(args.vgg_weights)
        vgg = vgg.to(device).eval().requires_grad_(False)
        print(f"{'task':>13} {'img/s':>8} {'ref img/s':>10} {'ratio':>7} {'peak MB':>9}", end="")
        print(f"   (fp32 training, {args.train_resolution}², batch {args.batch_size})")
        for task in PIPELINES:
            row = training_throughput(args, device, task, vgg)
            training.append(row)
            print(
                f"{task:>13} {row['images_per_s']:>8.2f} {row['reference_images_per_s']:>10.2f} {row['ratio']:>7.2f} "
                f"{row['peak_mb']:>9.1f}",
                flush=True,
            )
        print("training ratio = GAN step (critic + G1 + G2/guide, VGG content loss) img/s / UNet2D MSE step img/s")
    report = {
        "benchmark": "gan",
        "hardware": hardware_label(info),
        "machine": info,
        "memory_method": PeakMemory(device).method,
        "args": vars(args),
        "grid": rows,
        "latency": latency,
        "training": training,
    }
    write_report(args.out, "gan.json", report)
    return report


if __name__ == "__main__":
    main()

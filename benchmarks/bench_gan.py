"""PaintsTorch / StencilTorch speed: generator forward latency at 256² and 512², and training images/s.

Reference measured in the same run: a plain diffusers `UNet2DModel` (convolutional, no attention) of about the same
parameter count as the thesis-size generator G1 (24.0M vs 21.9M), run on the same inputs: one forward for latency, one
MSE step for training. The printed ratios say what PaintsTorch's architecture (ResNeXt blocks, grouped dilated
convolutions, PixelShuffle) and its three-network WGAN-GP step cost against that generic U-Net.

    python benchmarks/bench_gan.py [--sizes 256 512] [--train_resolution 256] [--batch_size 4] [--out benchmarks/results]
    python benchmarks/bench_gan.py --tiny   # smoke test sizes
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path
from types import SimpleNamespace

import torch
import torch.nn.functional as F

from stablepaint.gan_training import GANTask, gan_step
from stablepaint.models import PaintsTorchCritic, PaintsTorchGenerator, StencilTorchGuideDecoder, VGG16Features

REPO = Path(__file__).resolve().parents[1]
TINY = {
    "block_out_channels": (4, 8, 8, 16, 16),
    "mid_block_layers": 1,
    "mid_cardinality": 2,
    "up_block_dilations": ((1,), (1,), (1,)),
    "up_block_cardinality": (2, 2, 2),
}
TINY_CRITIC = {"block_out_channels": (4, 8, 8), "head_channels": 8, "head_downsamples": 1, "cardinality": 2}


def reference_unet(tiny: bool, in_channels: int):
    from diffusers import UNet2DModel

    channels = (8, 8, 16, 16) if tiny else (64, 128, 256, 256)
    return UNet2DModel(
        in_channels=in_channels,
        out_channels=3,
        block_out_channels=channels,
        layers_per_block=1 if tiny else 2,
        norm_num_groups=4 if tiny else 32,
        down_block_types=("DownBlock2D",) * 4,
        up_block_types=("UpBlock2D",) * 4,
    )


def synchronize(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed_pair(fn, reference, device, repeats: int, warmup: int):
    """Median seconds per call of `fn` and of `reference`, timed alternately (so that a change in the machine's load
    during the run hits both alike), after `warmup` calls of each."""
    for _ in range(warmup):
        fn(), reference()
    times = ([], [])
    for _ in range(repeats):
        for index, call in enumerate((fn, reference)):
            synchronize(device)
            start = time.perf_counter()
            call()
            synchronize(device)
            times[index].append(time.perf_counter() - start)
    return tuple(sorted(t)[len(t) // 2] for t in times)


def latency(args, device, dtype, size: int):
    torch.manual_seed(0)
    g1 = PaintsTorchGenerator(**(TINY if args.tiny else {})).to(device).eval()
    unet = reference_unet(args.tiny, in_channels=5).to(device).eval()
    if dtype != torch.float32:
        g1, unet = g1.to(dtype=dtype), unet.to(dtype=dtype)
    features = torch.randn(1, g1.config.feature_channels, size // 16, size // 16, device=device, dtype=dtype)
    lineart = torch.randn(1, 1, size, size, device=device, dtype=dtype)
    hints = torch.randn(1, 4, size // 4, size // 4, device=device, dtype=dtype)
    unet_input = torch.randn(1, 5, size, size, device=device, dtype=dtype)  # lineart + upsampled hints
    with torch.no_grad():
        g1_s, unet_s = timed_pair(
            lambda: g1(lineart, hints, features), lambda: unet(unet_input, 0), device, args.repeats, args.warmup
        )
    return {
        "size": size,
        "generator_ms": 1000 * g1_s,
        "reference_ms": 1000 * unet_s,
        "ratio": g1_s / unet_s,
        "generator_params_m": sum(p.numel() for p in g1.parameters()) / 1e6,
        "reference_params_m": sum(p.numel() for p in unet.parameters()) / 1e6,
    }


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


def training_throughput(args, device, task_name: str):
    torch.manual_seed(0)
    size, batch = args.train_resolution, args.batch_size
    stencil = task_name == "stenciltorch"
    g1 = PaintsTorchGenerator(in_channels=5 if stencil else 1, feature_channels=0, **(TINY if args.tiny else {}))
    critic = PaintsTorchCritic(feature_channels=0, **(TINY_CRITIC if args.tiny else {}))
    if stencil:
        auxiliary = StencilTorchGuideDecoder.from_colorizer(g1)
    else:
        auxiliary = PaintsTorchGenerator(
            in_channels=3, out_channels=1, feature_channels=0, **(TINY if args.tiny else {})
        )
    nets = [m.to(device).train() for m in (g1, critic, auxiliary)]
    vgg = VGG16Features.from_weights(args.vgg_weights).to(device)
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
    flags = SimpleNamespace(lambda_gp=10.0, drift=1e-3, lambda_adv=1e-4, auxiliary_weight=1.0)
    accelerator = _Accelerator(device)

    unet = reference_unet(args.tiny, in_channels=5).to(device).train()
    unet_optimizer = torch.optim.Adam(unet.parameters(), lr=1e-4)
    unet_input = torch.cat([batch_tensors["lineart"], batch_tensors["composite"], batch_tensors["mask"]], dim=1)

    def unet_step():
        loss = F.mse_loss(unet(unet_input, 0).sample, batch_tensors["image"])
        loss.backward()
        unet_optimizer.step()
        unet_optimizer.zero_grad(set_to_none=True)

    step_s, unet_s = timed_pair(
        lambda: gan_step(flags, task, batch_tensors, nets, optimizers, None, vgg, accelerator),
        unet_step,
        device,
        args.train_repeats,
        1,
    )
    return {
        "task": task_name,
        "resolution": size,
        "batch_size": batch,
        "images_per_s": batch / step_s,
        "reference_images_per_s": batch / unet_s,
        "ratio": unet_s / step_s,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    parser.add_argument("--train_resolution", type=int, default=256)
    parser.add_argument("--batch_size", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--train_repeats", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--dtype", choices=("fp32", "fp16", "bf16"), default="fp32", help="Inference dtype.")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--tiny", action="store_true", help="Tiny models (smoke test).")
    parser.add_argument(
        "--num_threads", type=int, default=None, help="torch CPU threads (1 is steadiest on a shared machine)."
    )
    parser.add_argument(
        "--vgg_weights",
        default=os.environ.get(
            "STABLEPAINT_VGG16_WEIGHTS", str(REPO.parent / "shared" / "weights" / "vgg16_features.safetensors")
        ),
    )
    parser.add_argument("--out", type=str, default=None, help="Folder for gan.json.")
    args = parser.parse_args()
    device = torch.device(args.device)
    if args.num_threads:
        torch.set_num_threads(args.num_threads)
    dtype = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[args.dtype]
    print(f"device {device} ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)")

    results = {"latency": [], "training": []}
    print(f"{'size':>6} {'G1 ms':>10} {'UNet2D ms':>10} {'ratio':>7}   (batch 1, {args.dtype})")
    for size in args.sizes:
        row = latency(args, device, dtype, size)
        results["latency"].append(row)
        print(f"{size:>5}² {row['generator_ms']:>10.1f} {row['reference_ms']:>10.1f} {row['ratio']:>7.2f}")
    print(f"params: G1 {row['generator_params_m']:.2f}M, reference UNet2DModel {row['reference_params_m']:.2f}M")

    print(
        f"{'task':>13} {'img/s':>8} {'UNet2D img/s':>13} {'ratio':>7}   ({args.train_resolution}², batch {args.batch_size})"
    )
    for task in ("paintstorch", "stenciltorch"):
        row = training_throughput(args, device, task)
        results["training"].append(row)
        print(f"{task:>13} {row['images_per_s']:>8.2f} {row['reference_images_per_s']:>13.2f} {row['ratio']:>7.2f}")
    print(
        "training ratio = GAN step (critic + G1 + G2/guide, VGG content loss) throughput / UNet2D MSE step throughput"
    )

    if args.out:
        os.makedirs(args.out, exist_ok=True)
        report = {"device": str(device), "torch": torch.__version__, "args": vars(args), **results}
        Path(args.out, "gan.json").write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()

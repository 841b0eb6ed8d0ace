"""Helpers shared by the benchmarks: grid flags, interleaved timing, peak memory, machine description, JSON report.

Timing protocol (every bench): warm-up calls are excluded; the candidate and its reference alternate call after call
(`interleaved`), so that a load change on a shared machine hits both alike; the figure is the median. A grid cell whose
predicted cost exceeds `--max-seconds` is reported as skipped (with the prediction), never dropped silently.

Peak memory (`PeakMemory`): on CUDA, `torch.cuda.max_memory_allocated()` minus the allocation before the call (the
tensors the call itself allocates, weights excluded). On CPU, the rise of the process' resident set size (RSS) over
its value before the call, sampled every millisecond by a thread with `psutil`, after giving the allocator's free
memory back to the OS with glibc's `malloc_trim` (else memory kept from earlier calls is reused unseen; `ru_maxrss`
is a high-water mark of the whole process and cannot be reset between cells).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable, Dict, Optional

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def add_grid_arguments(parser: argparse.ArgumentParser, sizes=(256, 512, 1024), batch_sizes=(1, 8)) -> None:
    """The flags every grid benchmark shares."""
    parser.add_argument("--sizes", type=int, nargs="+", default=list(sizes), help="square sides to time")
    parser.add_argument("--batch-sizes", "--batch_sizes", type=int, nargs="+", default=list(batch_sizes))
    parser.add_argument("--device", default="auto", help="auto (cuda if available), cpu, cuda, cuda:1 ...")
    parser.add_argument("--dtype", choices=tuple(DTYPES), default="fp32", help="inference dtype")
    parser.add_argument(
        "--max-seconds",
        "--max_seconds",
        type=float,
        default=None,
        help="skip (and report as skipped) a cell whose predicted time for all its calls exceeds this",
    )
    parser.add_argument(
        "--threads", "--num_threads", type=int, default=None, help="torch CPU threads (1 is steadiest when shared)"
    )


def add_speedup_arguments(parser: argparse.ArgumentParser) -> None:
    """`--channels-last`, `--compile` and `--compile-backend`: what `speed_up` applies to the timed networks."""
    parser.add_argument(
        "--channels-last", "--channels_last", action="store_true", help="networks in channels_last memory format"
    )
    parser.add_argument("--compile", action="store_true", help="torch.compile the timed networks")
    parser.add_argument(
        "--compile-backend",
        "--compile_backend",
        default="inductor",
        help="torch.compile backend (default inductor; `eager` runs the same code path without compiling)",
    )


def speed_up(module: torch.nn.Module, args: argparse.Namespace) -> torch.nn.Module:
    """`module` in channels_last memory format (`--channels-last`) and compiled (`--compile`), as the flags say."""
    if getattr(args, "channels_last", False):
        module = module.to(memory_format=torch.channels_last)
    if getattr(args, "compile", False):
        module = torch.compile(module, backend=args.compile_backend)
    return module


def speedup_label(args: argparse.Namespace) -> str:
    """`""`, `"+channels_last"`, `"+compile"` or both, as the flags say."""
    flags = [name for name in ("channels_last", "compile") if getattr(args, name, False)]
    return "".join(f"+{name}" for name in flags)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {name!r}: CUDA is not available on this machine.")
    return device


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def interleaved(
    calls: Dict[str, Callable[[], object]], device, repeats: int, warmup: int = 1, pause_s: float = 0.0
) -> Dict[str, dict]:
    """Median and all seconds per call of each callable, timed in turns (A, B, C, A, B, C, ...) after `warmup`
    untimed calls of each. `pause_s` sleeps before each timed call: runtimes with their own thread pools (ONNX Runtime,
    OpenVINO, PyTorch's OpenMP) keep spinning for a while after a call and slow down the next one's threads."""
    for _ in range(warmup):
        for call in calls.values():
            call()
    times = {name: [] for name in calls}
    for _ in range(max(1, repeats)):
        for name, call in calls.items():
            synchronize(device)
            time.sleep(pause_s)
            start = time.perf_counter()
            call()
            synchronize(device)
            times[name].append(time.perf_counter() - start)
    return {name: {"median_s": statistics.median(t), "samples_s": t} for name, t in times.items()}


class PeakMemory:
    """Peak memory of a block in MiB (`.mb`): CUDA's allocator peak over the allocation before the block on a GPU,
    else the peak rise of this process' RSS (sampled every millisecond)."""

    def __init__(self, device: torch.device):
        self.device = device
        self.mb = float("nan")

    @property
    def method(self) -> str:
        if self.device.type == "cuda":
            return "torch.cuda.max_memory_allocated - memory_allocated before"
        return "process RSS peak rise over the value before the call (psutil, 1 ms sampling, after glibc malloc_trim)"

    def __enter__(self):
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self.start = torch.cuda.memory_allocated(self.device)
            return self
        import gc

        import psutil

        gc.collect()
        _release_free_memory()  # else the allocator reuses memory kept from earlier calls and the RSS does not rise
        self.process = psutil.Process()
        self.start = self.peak = self.process.memory_info().rss
        self.running = True
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()
        return self

    def _sample(self):
        while self.running:
            self.peak = max(self.peak, self.process.memory_info().rss)
            time.sleep(0.001)

    def __exit__(self, *exc):
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            self.mb = (torch.cuda.max_memory_allocated(self.device) - self.start) / 2**20
        else:
            self.running = False
            self.thread.join()
            self.mb = (max(self.peak, self.process.memory_info().rss) - self.start) / 2**20


def _release_free_memory() -> None:
    """Give the C allocator's free memory back to the OS (glibc `malloc_trim`), where available."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def peak_memory_mb(call: Callable[[], object], device: torch.device) -> float:
    with PeakMemory(device) as memory:
        call()
    return memory.mb


def cpu_model_name() -> str:
    try:
        output = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        for line in output.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return platform.processor() or platform.machine()


def machine(device: torch.device) -> dict:
    """What ran the benchmark: CPU model (lscpu), torch threads, GPU name, library versions."""
    import diffusers

    info = {
        "device": str(device),
        "cpu": cpu_model_name(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "diffusers": diffusers.__version__,
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def hardware_label(info: dict) -> str:
    if info.get("gpu"):
        return info["gpu"]
    threads = info["torch_threads"]
    return f"{info['cpu']}, {threads} thread{'s' if threads != 1 else ''}"


class CellBudget:
    """Predicts a cell's cost from the cells already measured (seconds per pixel·image, which grows no slower than
    linearly in pixels and batch for these convolutional models) and tells whether it fits `--max-seconds`."""

    def __init__(self, max_seconds: Optional[float]):
        self.max_seconds = max_seconds
        self.seconds_per_unit: Dict[str, float] = {}

    def record(self, key: str, seconds: float, size: int, batch: int) -> None:
        self.seconds_per_unit[key] = max(self.seconds_per_unit.get(key, 0.0), seconds / (size * size * batch))

    def predict(self, key: str, size: int, batch: int) -> Optional[float]:
        rate = self.seconds_per_unit.get(key)
        return None if rate is None else rate * size * size * batch

    def skip_reason(self, key: str, size: int, batch: int) -> Optional[str]:
        predicted = self.predict(key, size, batch)
        if self.max_seconds is None or predicted is None or predicted <= self.max_seconds:
            return None
        return f"predicted {predicted:.0f} s > --max-seconds {self.max_seconds:g}"


def held_out_hints(resolution: int = 128) -> dict:
    """The held-out adventurer samples 2480-2499 of the shipped StablePaint (seen by none of the shipped models) in the
    sparse-hint regime: `samples`, `lineart` and `hints` (PIL lists, the pipelines' inputs) and the metric tensors
    `targets`, `line_tensor`, `hint_tensor`."""
    from stablepaint.evaluation.samples import _image_tensor, load_samples

    data = REPO.parent / "shared" / "data" / "adventurer"
    samples = load_samples(data, num_samples=20, resolution=resolution, include_ids="2480-2499", regimes=["hints"])
    lineart = [sample.lineart for sample in samples]
    hints = [sample.hints["hints"] for sample in samples]
    return {
        "samples": samples,
        "lineart": lineart,
        "hints": hints,
        "targets": _image_tensor([sample.image for sample in samples], "RGB"),
        "line_tensor": _image_tensor(lineart, "L"),
        "hint_tensor": _image_tensor(hints, "RGBA"),
    }


def write_report(out: Optional[str], default_name: str, report: dict) -> Optional[Path]:
    """Write `report` to `out` (a .json file, or a folder that gets `default_name`)."""
    if not out:
        return None
    path = Path(out)
    if path.suffix.lower() != ".json":
        path = path / default_name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2))
    print(f"wrote {path}")
    return path


# ----------------------------------------------------------------------------------------------------------------
# The learned flats against the flat fill (eval_flats_tradeoffs.py, eval_flats_clean_strokes.py)
# ----------------------------------------------------------------------------------------------------------------

SHIPPED_FLATS = "flats (shipped: the network decides every region)"


def flats_methods() -> dict:
    """The flat fill, the shipped flats with stroked regions kept in their stroke color, and the shipped flats, by
    label, progress bars off."""
    from stablepaint import FlatsPipeline
    from stablepaint.hub.loading import load_pipeline

    flats = load_pipeline("flats-adventurer-openmoji")
    methods = {
        "flat fill": load_pipeline("flat-fill"),
        "flats, stroked regions in their stroke color": FlatsPipeline(flats.region_colorizer, keep_stroke_colors=True),
        SHIPPED_FLATS: flats,
    }
    for pipe in methods.values():
        pipe.set_progress_bar_config(disable=True)
    return methods


def against_reference(values: dict, reference: dict, metrics=("hint", "region")) -> dict:
    """Per metric of `values` (name → per-sample numpy array, NaN where undefined): the mean, and for `metrics` the
    ratio to `reference`'s mean and the paired Wilcoxon p over the samples both define (`None` when equal)."""
    from scipy.stats import wilcoxon

    row = {metric: float(np.nanmean(array)) for metric, array in values.items()}
    for metric in metrics:
        row[f"{metric}_ratio"] = row[metric] / float(np.nanmean(reference[metric]))
        keep = ~(np.isnan(values[metric]) | np.isnan(reference[metric]))
        differs = np.any(values[metric][keep] != reference[metric][keep])
        row[f"{metric}_p"] = float(wilcoxon(values[metric][keep], reference[metric][keep]).pvalue) if differs else None
    return row


def color_metrics(images, targets: torch.Tensor, lines: torch.Tensor, hints: torch.Tensor) -> Dict[str, np.ndarray]:
    """Per-sample hint ΔE00, region ΔE00 and lines kept of `images`: a `(B, 3, H, W)` tensor in [0, 1] or a list of
    `(H, W, 3)` arrays."""
    from stablepaint.metrics.color import hint_fidelity, line_preservation, region_color_error

    if not isinstance(images, torch.Tensor):
        images = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float()
    return {
        "hint": hint_fidelity(images, hints).numpy(),
        "region": region_color_error(images, targets, lines).numpy(),
        "lines": line_preservation(images, lines).numpy(),
    }


def validation_hints(name: str, num_samples: int, split: str = "validation"):
    """The first `num_samples` drawings of the `split` split (`validation` by default) of the open dataset `name` at
    256² with the evaluation's strokes (`hints` regime): `(samples, targets (B, 3, H, W), lineart (B, 1, H, W), hints
    (B, 4, H, W))`."""
    from stablepaint.evaluation.samples import _image_tensor, load_samples

    data = REPO.parent / "shared" / "data" / name
    samples = load_samples(data, num_samples=num_samples, resolution=256, regimes=["hints"], split=split)
    return (
        samples,
        _image_tensor([s.image for s in samples], "RGB"),
        _image_tensor([s.lineart for s in samples], "L"),
        _image_tensor([s.hints["hints"] for s in samples], "RGBA"),
    )

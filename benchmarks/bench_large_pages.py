"""Large pages: time and peak memory of coloring one 1024², 2048² and 4096² lineart on CPU, with the default shipped
StencilTorch model (`keep_lines` and `flatten_regions` on) and with the flat-fill baseline.

The page is a grid of the example adventurer linearts (`examples/pairs`), each scaled up with NEAREST so that its
lines stay 1-bit, with one stroke per panel. Every cell runs in a fresh subprocess; its peak is the process' maximum
resident set size (`ru_maxrss`) during the call minus the RSS before it (imports, model and inputs already loaded),
and the process' own `ru_maxrss` is reported too. Time is one call (a 4096² call takes tens of seconds; there is no
warm-up call at that size, but the model runs at its own scale, so the first-call cost is small: see `warmup_s`).

    python benchmarks/bench_large_pages.py [--sizes 1024 2048 4096] [--threads 2] [--out benchmarks/results]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
MODELS = ("stenciltorch", "flat-fill")


def make_page(size: int, panel: int = 256) -> tuple:
    """A `size`² lineart page (L) and its hints (RGBA): example linearts tiled at `size // 4` per panel."""
    lines = sorted((REPO / "examples" / "pairs").glob("*_line.png"))
    grid, cell = 4, size // 4
    page = Image.new("L", (size, size), 255)
    hints = np.zeros((size, size, 4), dtype=np.uint8)
    rng = np.random.default_rng(0)
    for index in range(grid * grid):
        y, x = divmod(index, grid)
        art = Image.open(lines[index % len(lines)]).convert("L").resize((cell, cell), Image.Resampling.NEAREST)
        page.paste(art, (x * cell, y * cell))
        color = rng.integers(0, 256, 3)
        top, left = y * cell + cell // 2, x * cell + cell // 4
        hints[top : top + max(2, cell // 64), left : left + cell // 2] = (*color, 255)
    return page, Image.fromarray(hints, "RGBA")


def _rss_mb() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def run_cell(model: str, size: int, threads: int) -> dict:
    """One cell, in this process (called in a fresh subprocess by `main`)."""
    import torch

    from stablepaint.hub.loading import load_pipeline
    from stablepaint.hub.registry import default_model

    torch.set_num_threads(threads)
    name = default_model("StencilTorchPipeline").name if model == "stenciltorch" else "flat-fill"
    pipe = load_pipeline(name, device="cpu")
    if hasattr(pipe, "set_progress_bar_config"):
        pipe.set_progress_bar_config(disable=True)
    kwargs = {"keep_lines": True, "flatten_regions": True} if model == "stenciltorch" else {}
    small, small_hints = make_page(256)
    start = time.perf_counter()
    pipe(small, hints=small_hints, **kwargs)
    warmup = time.perf_counter() - start
    page, hints = make_page(size)
    before_mb = _rss_mb()
    before_peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    start, cpu_start = time.perf_counter(), time.process_time()
    image = pipe(page, hints=hints, **kwargs).images[0]
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    lines = np.asarray(page) < 128
    exact = bool(np.array_equal(np.asarray(image)[lines], np.repeat(np.asarray(page)[lines][:, None], 3, axis=1)))
    return {
        "model": name,
        "size": size,
        "output_size": list(image.size),
        "seconds": round(seconds, 2),
        "cpu_s": round(cpu_seconds, 2),
        "warmup_s": round(warmup, 2),
        "peak_rss_mb": round(peak_mb, 1),
        "call_peak_rss_rise_mb": round(max(0.0, peak_mb - max(before_mb, before_peak_mb)), 1),
        "rss_before_call_mb": round(before_mb, 1),
        "lines_bit_exact": exact if model == "stenciltorch" else None,
        "output_sha256": hashlib.sha256(np.asarray(image).tobytes()).hexdigest(),
        "threads": threads,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1024, 2048, 4096])
    parser.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results"), help="folder or .json ('' = none)")
    parser.add_argument(
        "--baseline",
        metavar="DIR",
        help="also run every cell with the stablepaint of DIR first on the path (e.g. an export of the previous "
        "commit: git archive HEAD | tar -x -C DIR), alternating with this checkout's",
    )
    parser.add_argument("--cell", nargs=2, metavar=("MODEL", "SIZE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.cell:
        print(json.dumps(run_cell(args.cell[0], int(args.cell[1]), args.threads)))
        return
    cells = []
    versions = {"this checkout": None, **({"baseline": args.baseline} if args.baseline else {})}
    for model in args.models:
        for size in args.sizes:
            for version, root in reversed(versions.items()):  # the baseline first, then this checkout
                command = [sys.executable, __file__, "--cell", model, str(size), "--threads", str(args.threads)]
                env = dict(os.environ, **({"PYTHONPATH": root} if root else {}))
                done = subprocess.run(command, capture_output=True, text=True, cwd=root or REPO, env=env)
                if done.returncode != 0:
                    cells.append({"model": model, "size": size, "error": done.stderr.strip().splitlines()[-1:]})
                else:
                    cells.append(json.loads(done.stdout.strip().splitlines()[-1]))
                cells[-1]["version"] = version
                print(json.dumps(cells[-1]), flush=True)
    import platform

    import torch

    report = {
        "benchmark": "large_pages",
        "machine": {
            "cpu_count": os.cpu_count(),
            "threads": args.threads,
            "platform": platform.platform(),
            "python": sys.version.split()[0],
            "torch": torch.__version__,
        },
        "cells": cells,
    }
    if args.out:
        path = Path(args.out)
        path = path if path.suffix == ".json" else path / "large_pages_cpu.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(report, indent=2) + "\n")
        print(f"wrote {path}")


if __name__ == "__main__":
    main()

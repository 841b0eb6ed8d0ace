"""Synthesis throughput: examples/s of `stablepaint.data.synthesize_example` at 256² and 512², 1 and 2 processes.

Reference measured in the same run: the bare cost of decoding, resizing and cropping the same illustrations (what any
data loader pays without synthesis), so the printed ratio says how much the thesis' synthesis recipe costs on top.
Multi-process figures are steady state: the pool is started and warmed up before the clock starts.

    python benchmarks/bench_synthesis.py [--data ../shared/data/adventurer] [--n 64] [--out benchmarks/results]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import time
from pathlib import Path

import numpy as np
from PIL import Image

from stablepaint.data import SynthesisConfig, find_pairs, resize_and_crop, synthesize_example

REPO = Path(__file__).resolve().parents[1]


def _synthesize(job):
    path, resolution, index, segmentation = job
    image = Image.open(path)
    image.load()
    config = SynthesisConfig(resolution=resolution, segmentation=segmentation)
    synthesize_example(image, seed=np.random.default_rng((0, 0, index)), config=config)
    return 1


def _baseline(job):
    path, resolution = job[:2]
    image = Image.open(path).convert("RGB")
    resize_and_crop([image], resolution, np.random.default_rng(0))
    return 1


def throughput(fn, jobs, processes: int) -> float:
    """Steady-state examples/s: the worker pool is started and warmed up (imports, first call) before timing."""
    if processes == 1:
        fn(jobs[0])
        start = time.perf_counter()
        for job in jobs:
            fn(job)
        return len(jobs) / (time.perf_counter() - start)
    with mp.get_context("spawn").Pool(processes) as pool:
        pool.map(fn, jobs[:processes], chunksize=1)
        start = time.perf_counter()
        pool.map(fn, jobs, chunksize=max(1, len(jobs) // (4 * processes)))
        return len(jobs) / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(REPO.parent / "shared" / "data" / "adventurer"))
    parser.add_argument("--n", type=int, default=64, help="illustrations per measurement")
    parser.add_argument("--segmentation", default="felzenszwalb", choices=("felzenszwalb", "slic"))
    parser.add_argument("--out", default=None, help="folder to write results.json into")
    args = parser.parse_args()

    data = Path(args.data)
    paths = [color for color, _ in find_pairs(data)] or sorted(str(p) for p in data.glob("*.png"))
    if not paths:
        raise SystemExit(f"no images in {data}")
    paths = (paths * (args.n // len(paths) + 1))[: args.n]
    machine = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores"
    print(f"synthesis throughput ({args.segmentation}) on {len(paths)} illustrations from {data} ({machine})")
    print(f"{'resolution':>10} {'procs':>5} {'examples/s':>11} {'decode+crop/s':>14} {'synthesis cost':>15}")
    results = []
    for resolution in (256, 512):
        jobs = [(p, resolution, i, args.segmentation) for i, p in enumerate(paths)]
        for processes in (1, 2):
            synth = throughput(_synthesize, jobs, processes)
            base = throughput(_baseline, jobs, processes)
            results.append(
                {"resolution": resolution, "processes": processes, "examples_per_s": synth, "baseline_per_s": base}
            )
            print(f"{resolution:>9}² {processes:>5} {synth:>11.1f} {base:>14.1f} {base / synth:>14.1f}x")
    if args.out:
        Path(args.out).mkdir(parents=True, exist_ok=True)
        (Path(args.out) / "synthesis.json").write_text(
            json.dumps({"machine": machine, "segmentation": args.segmentation, "results": results}, indent=2)
        )


if __name__ == "__main__":
    main()

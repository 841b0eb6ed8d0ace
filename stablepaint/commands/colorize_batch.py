"""`stablepaint colorize DIR -o OUTDIR` (or a glob, `'pages/*.png'`): batch mode of the `colorize` command.

The flags of `colorize` apply to every file (the model is loaded once); `--hints` is a folder of per-file hints
(`<stem>_hints.png` or `<stem>.png`) or one hints file for all. See [`stablepaint.batch.colorize_folder`].
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Callable

from stablepaint.commands import CLIError, cli_error
from stablepaint.commands.model_loading import load_model

#: Library argument names in the batch's messages → the command line's.
#: Input files given once for the whole batch: no output may overwrite them.
PROTECTED = ("--mask", "--image", "--reference", "--reference-lineart")
BATCH_FLAGS = {"inputs": "LINEART", "output_dir": "-o/--output", "hints": "--hints", "output": "-o/--output"}


def _check_batch_arguments(args: argparse.Namespace) -> None:
    if args.num_images != 1:
        raise CLIError("--num-images applies to one LINEART; in batch mode (a folder or a glob) each file gets one.")
    if args.extract_lineart:
        raise CLIError("--extract-lineart applies to one LINEART; extract the folder's linearts first.")
    for flag in ("layers", "save_palette"):  # written beside one output: not in batch mode
        if getattr(args, flag, None):
            raise CLIError(f"--{flag.replace('_', '-')} applies to one LINEART, not to a folder or a glob.")
    output = Path(args.output)
    if "{i}" in args.output or (output.suffix and not output.is_dir()):
        raise CLIError(f"-o/--output: in batch mode OUT is a folder, got {args.output!r}.")


def run_batch(args: argparse.Namespace, pipeline_kwargs: Callable, load_input: Callable) -> int:
    """Run `colorize` on every file of the folder or glob `args.lineart` (exit code 1 when a file failed), with the
    `colorize` command's own helpers: `pipeline_kwargs(pipe, args, lineart, hints, mask, image)` (the call for the
    flags) and `load_input(path, flag)`."""
    from stablepaint.batch import colorize_folder, plan_batch

    _check_batch_arguments(args)
    protected = {flag: getattr(args, flag.lstrip("-").replace("-", "_"), None) for flag in PROTECTED}
    if args.hints is not None and not Path(args.hints).is_dir():
        protected["--hints"] = args.hints
    try:  # 1. Check the batch before loading the model: a wrong folder fails at once
        items = plan_batch(args.lineart, args.output, hints=args.hints, protected=protected)
    except ValueError as error:
        raise cli_error(error, BATCH_FLAGS) from None
    mask = load_input(args.mask, "--mask")
    image = load_input(args.image, "--image")

    # 2. Load the model once (and its --fast path)
    model, pipe, _, _ = load_model(args.model, args.device, args.dtype, progress=not args.no_progress)
    if hasattr(pipe, "set_progress_bar_config"):
        pipe.set_progress_bar_config(disable=True)  # one bar for the whole batch
    from stablepaint.commands.colorize_fast import apply_fast_flag

    apply_fast_flag(pipe, getattr(args, "fast", False), getattr(args, "fast_int8", False))
    # The flags, checked against what the pipeline takes, once for every file (placeholders for the per-file inputs)
    hints_flag = None if args.hints is None else args.hints
    kwargs = pipeline_kwargs(pipe, args, args.lineart, hints_flag, mask, image)
    for key in ("lineart", "sketch", "hints"):
        kwargs.pop(key, None)
    seed = args.seed if "generator" in pipe.call_parameters() else None

    start = time.perf_counter()  # 3. Color
    summary = colorize_folder(
        pipe,
        [item.lineart for item in items],
        args.output,
        hints=args.hints,
        overwrite=args.overwrite,
        call_kwargs=kwargs,
        progress=not args.no_progress,
        protected=protected,
        seed=seed,
    )
    elapsed = time.perf_counter() - start
    print(f"Colored {args.lineart} into {args.output} with {model} ({len(items)} files, {elapsed:.1f} s): {summary}")
    return 0 if summary.ok else 1

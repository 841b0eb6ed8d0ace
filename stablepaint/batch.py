"""Batch mode: color every lineart of a folder (or a glob, or a list of files) into an output folder, resumably.

One call of the pipeline per file, with the same keyword arguments for every file (`palette`, `reference`,
`keep_lines`, ...); per-file hints come from a hints folder by file name ([`find_hints`]). Every output is written
atomically (`stablepaint.utils.atomic`), so a run killed at any moment leaves complete outputs only and the next run
skips them ([`colorize_folder`]); a file that fails is recorded with its reason and the batch goes on.

This module imports no pipeline: it calls the pipeline object it is given.
"""

from __future__ import annotations

import glob
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Union

from stablepaint.utils.atomic import check_not_input, is_temp_name, save_image_atomic

PathLike = Union[str, os.PathLike]

#: File extensions read as images in a folder (and as hints).
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")
#: The name of a lineart's output in the output folder: `<stem>` + this.
OUTPUT_SUFFIX = "_colorized.png"
#: The hints of `<stem>.<ext>` in a hints folder, in order of preference: `<stem>_hints.*`, then `<stem>.*`.
HINT_SUFFIXES = ("_hints", "")


@dataclass
class BatchItem:
    """One file of a batch.

    Args:
        lineart (`Path`): The input lineart.
        output (`Path`): Where its colored image goes.
        hints (`Path`, *optional*): Its hints file, if one was found.
        status (`str`): `"done"` (written by this run), `"skipped"` (the output existed) or `"failed"`.
        reason (`str`, *optional*): Why it failed (the exception's type and message) or was skipped.
        seconds (`float`): Time spent on it.
    """

    lineart: Path
    output: Path
    hints: Optional[Path] = None
    status: str = "pending"
    reason: Optional[str] = None
    seconds: float = 0.0


@dataclass
class BatchSummary:
    """What a batch did: one [`BatchItem`] per input file, in input order."""

    items: List[BatchItem] = field(default_factory=list)

    def _with(self, status: str) -> List[BatchItem]:
        return [item for item in self.items if item.status == status]

    @property
    def done(self) -> List[BatchItem]:
        return self._with("done")

    @property
    def skipped(self) -> List[BatchItem]:
        return self._with("skipped")

    @property
    def failed(self) -> List[BatchItem]:
        return self._with("failed")

    @property
    def ok(self) -> bool:
        """Whether no file failed."""
        return not self.failed

    def to_dict(self) -> Dict[str, Any]:
        """A JSON-ready dict: the counts and every item."""
        counts = {status: len(self._with(status)) for status in ("done", "skipped", "failed")}
        items = [
            {
                "lineart": str(item.lineart),
                "output": str(item.output),
                "hints": None if item.hints is None else str(item.hints),
                "status": item.status,
                "reason": item.reason,
                "seconds": round(item.seconds, 3),
            }
            for item in self.items
        ]
        return {**counts, "total": len(self.items), "items": items}

    def __str__(self) -> str:
        lines = [f"{len(self.done)} done, {len(self.skipped)} skipped (output exists), {len(self.failed)} failed"]
        lines += [f"  failed {item.lineart}: {item.reason}" for item in self.failed]
        return "\n".join(lines)


def is_batch_input(lineart: PathLike) -> bool:
    """Whether `lineart` names several files: an existing folder or a glob pattern (`*`, `?`, `[`) that is not itself
    an existing file."""
    text = os.fspath(lineart)
    if os.path.isdir(text):
        return True
    return glob.has_magic(text) and not os.path.exists(text)


def find_inputs(inputs: Union[PathLike, Sequence[PathLike]], name: str = "inputs") -> List[Path]:
    """The lineart files of a batch, sorted by path.

    Args:
        inputs (`str`, `os.PathLike` or a list of those): A folder (its image files, not its subfolders), a glob
            pattern (e.g. `"pages/*.png"`; matching folders are left out) or a list of files.
        name (`str`, *optional*): The argument's name in error messages.

    Returns:
        `List[Path]`: the files; hidden files and the temporaries of interrupted writes are left out.

    Raises:
        `ValueError`: nothing matches, or a listed file does not exist.
    """
    if isinstance(inputs, (str, os.PathLike)):
        text = os.fspath(inputs)
        if os.path.isdir(text):
            paths = [path for path in Path(text).iterdir() if path.suffix.lower() in IMAGE_EXTENSIONS]
        elif glob.has_magic(text) and not os.path.exists(text):
            paths = [Path(match) for match in glob.glob(text)]
        else:
            paths = [Path(text)]
    else:
        paths = [Path(item) for item in inputs]
    missing = [str(path) for path in paths if not path.is_file() and not glob.has_magic(str(path))]
    if not isinstance(inputs, (str, os.PathLike)) and missing:
        raise ValueError(f"`{name}`: no such file {missing[0]!r}.")
    paths = sorted(path for path in paths if path.is_file() and not path.name.startswith("."))
    paths = [path for path in paths if not is_temp_name(path.name)]
    if not paths:
        raise ValueError(f"`{name}`: no image file in {os.fspath(inputs)!r} (expected a folder, a glob or files).")
    return paths


def find_hints(lineart: PathLike, hints_dir: Optional[PathLike]) -> Optional[Path]:
    """The hints of one lineart in a hints folder: `<stem>_hints.<ext>`, else `<stem>.<ext>` (`<stem>`: the lineart's
    file name without its extension; `<ext>`: .png first, then the other `IMAGE_EXTENSIONS`). `None` when there is
    none (the lineart is colored without hints) or no folder."""
    if hints_dir is None:
        return None
    stem = Path(lineart).stem
    for suffix in HINT_SUFFIXES:
        for extension in IMAGE_EXTENSIONS:
            candidate = Path(hints_dir) / f"{stem}{suffix}{extension}"
            if candidate.is_file():
                return candidate
    return None


def plan_batch(
    inputs: Union[PathLike, Sequence[PathLike]],
    output_dir: PathLike,
    hints: Optional[PathLike] = None,
    suffix: str = OUTPUT_SUFFIX,
    protected: Optional[Dict[str, Optional[PathLike]]] = None,
) -> List[BatchItem]:
    """The items of a batch, before anything runs: inputs, outputs and hints, checked.

    Files of `inputs` that are the outputs of other inputs (`<stem>_colorized.png` when the output folder is the
    input folder) are left out, so that a second run does not color its own outputs.

    Args:
        inputs: See [`find_inputs`].
        output_dir (`str` or `os.PathLike`): The output folder (created when missing).
        hints (`str` or `os.PathLike`, *optional*): A hints folder ([`find_hints`]) or one hints file for every input.
        suffix (`str`, *optional*, defaults to `"_colorized.png"`): Output name = input stem + `suffix`.
        protected (`Dict[str, path]`, *optional*): Other inputs (`{flag: path}`) that no output may overwrite.

    Raises:
        `ValueError`: no input, two inputs with one output name, `output_dir` is a file, an output is an input.
    """
    output_dir = Path(output_dir)
    if output_dir.exists() and not output_dir.is_dir():
        raise ValueError(f"`output_dir` {str(output_dir)!r} is a file; expected a folder.")
    if not suffix or "/" in suffix or os.sep in suffix:
        raise ValueError(f"`suffix` must be a non-empty file name ending, got {suffix!r}.")
    paths = find_inputs(inputs)
    outputs = {path: output_dir / f"{path.stem}{suffix}" for path in paths}
    produced = {os.path.realpath(output) for output in outputs.values()}
    paths = [path for path in paths if os.path.realpath(path) not in produced]
    if not paths:
        raise ValueError(f"`inputs`: only outputs of this batch ({suffix!r} files) in {os.fspath(inputs)!r}.")
    seen: Dict[Path, Path] = {}
    for path in paths:
        if outputs[path] in seen:
            raise ValueError(
                f"`inputs` {str(seen[outputs[path]])!r} and {str(path)!r} have the same name: both would be written "
                f"to {str(outputs[path])!r}."
            )
        seen[outputs[path]] = path
    hints_dir = hints if hints is not None and os.path.isdir(hints) else None
    if hints is not None and hints_dir is None and not os.path.isfile(hints):
        raise ValueError(f"`hints`: no such folder or file {os.fspath(hints)!r}.")
    items = []
    for path in paths:
        hint = find_hints(path, hints_dir) if hints_dir is not None else (None if hints is None else Path(hints))
        check_not_input(outputs[path], {"lineart": path, "hints": hint, **(protected or {})}, "output")
        items.append(BatchItem(lineart=path, output=outputs[path], hints=hint))
    all_inputs = {os.path.realpath(path) for path in paths}
    for item in items:
        if os.path.realpath(item.output) in all_inputs:
            raise ValueError(f"output {str(item.output)!r} is an input of the batch; refusing to overwrite it.")
    return items


def colorize_folder(
    pipe: Callable,
    inputs: Union[PathLike, Sequence[PathLike]],
    output_dir: PathLike,
    hints: Optional[PathLike] = None,
    overwrite: bool = False,
    call_kwargs: Optional[Dict[str, Any]] = None,
    suffix: str = OUTPUT_SUFFIX,
    progress: bool = True,
    protected: Optional[Dict[str, Optional[PathLike]]] = None,
    seed: Optional[int] = None,
) -> BatchSummary:
    """
    Color every lineart of `inputs` with `pipe` into `output_dir`, one output per file, resumably.

    An output that exists already is skipped (a killed run left complete outputs only: every write is atomic), unless
    `overwrite`. A file that fails (unreadable, wrong size of hints, out of memory, ...) is recorded with its reason
    and the batch goes on. Inputs are only read.

    Args:
        pipe (`Callable`): A stablepaint pipeline (or any callable taking `lineart=` and returning `.images`).
        inputs (`str`, `os.PathLike` or a list of those): A folder, a glob pattern or files ([`find_inputs`]).
        output_dir (`str` or `os.PathLike`): The output folder; `<stem>_colorized.png` per input.
        hints (`str` or `os.PathLike`, *optional*): A folder holding `<stem>_hints.png` or `<stem>.png` per lineart
            ([`find_hints`]; a lineart without one is colored without hints), or one hints file for every lineart.
        overwrite (`bool`, *optional*, defaults to `False`): Color files whose output exists too.
        call_kwargs (`dict`, *optional*): Keyword arguments of every call (e.g. `keep_lines=True`, `palette=...`,
            `reference=...`, `mask=...`); `lineart` and `hints` are set per file.
        suffix (`str`, *optional*, defaults to `"_colorized.png"`): Output name = input stem + `suffix`.
        progress (`bool`, *optional*, defaults to `True`): Show one progress bar (on stderr) for the batch.
        protected (`Dict[str, path]`, *optional*): Other input files (`{flag: path}`) no output may overwrite.
        seed (`int`, *optional*): For pipelines that sample: every file gets a fresh `torch.Generator` seeded with
            it, so an output does not depend on the files before it (nor on a resumed run).

    Returns:
        [`BatchSummary`]: done / skipped / failed, with the reasons.

    Raises:
        `ValueError`: the batch itself is wrong ([`plan_batch`]); a single file never raises.
    """
    from tqdm.auto import tqdm

    if not isinstance(overwrite, bool):
        raise TypeError(f"`overwrite` must be a bool, got {type(overwrite).__name__}.")
    kwargs = dict(call_kwargs or {})
    for key in ("lineart", "hints"):
        if key in kwargs:
            raise ValueError(f"`call_kwargs` must not hold {key!r}: it is set per file (use `inputs` / `hints`).")
    items = plan_batch(inputs, output_dir, hints=hints, suffix=suffix, protected=protected)
    Path(output_dir).mkdir(parents=True, exist_ok=True)
    summary = BatchSummary(items)
    bar = tqdm(items, desc="colorize", unit="file", disable=not progress, file=sys.stderr)
    for item in bar:
        if seed is not None:
            import torch

            kwargs["generator"] = torch.Generator(device="cpu").manual_seed(seed)
        _run_item(pipe, item, kwargs, overwrite)
        bar.set_postfix(done=len(summary.done), skipped=len(summary.skipped), failed=len(summary.failed))
    return summary


def _run_item(pipe: Callable, item: BatchItem, kwargs: Dict[str, Any], overwrite: bool) -> None:
    from stablepaint.utils.image_io import load_image

    start = time.perf_counter()
    if item.output.exists() and not overwrite:
        item.status, item.reason = "skipped", "output exists"
        return
    try:
        call_method = getattr(pipe, "call_method", "__call__")
        first = "sketch" if call_method == "generate" else "lineart"  # ArtWorkflowPipeline.generate(sketch, ...)
        call = {first: load_image(item.lineart, "lineart"), **kwargs}
        if item.hints is not None:
            call["hints"] = load_image(item.hints, "hints")
        result = getattr(pipe, call_method)(**call).images[0]
        save_image_atomic(result, item.output)
    except Exception as error:  # noqa: BLE001 - one file's failure must not stop the batch; the reason is kept
        item.status, item.reason = "failed", f"{type(error).__name__}: {error}"
    else:
        item.status = "done"
    finally:
        item.seconds = time.perf_counter() - start

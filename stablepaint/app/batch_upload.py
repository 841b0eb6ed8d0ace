"""The web app's batch mode, without gradio: several uploaded linearts colored with one model and the same settings,
returned as one zip with a summary ([`stablepaint.batch.colorize_folder`])."""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from typing import Any, Optional, Sequence, Tuple

from stablepaint.batch import colorize_folder


def colorize_uploads(
    logic,
    model: str,
    files: Optional[Sequence[Any]],
    keep_lines: bool = False,
    flatten_regions: bool = False,
    folder: Optional[str] = None,
) -> Tuple[Optional[str], str]:
    """Color every uploaded lineart with `model` (one output per file, no hints) and zip the results.

    Args:
        logic ([`~stablepaint.app.ColorizationApp`]): The app's logic (the model cache and the image size limit).
        model (`str`): The display name of the model.
        files (list of paths, or objects with `.name`): The uploaded linearts.
        keep_lines (`bool`), flatten_regions (`bool`): Applied to every file (where the model takes them).
        folder (`str`, *optional*): Where to write (the app's temp folder).

    Returns:
        `(zip path or None, summary)`: the zip holds `<stem>_colorized.png` per colored file and `summary.json`;
        the summary (Markdown) counts done and failed files, with the reasons. `None` when nothing was colored.
    """
    from stablepaint.app.colorization_app import _supported_kwargs

    paths = [os.fspath(getattr(item, "name", item)) for item in files or []]
    if not paths:
        raise ValueError("Upload one or more lineart images for the batch.")
    pipe = logic.pipeline(model)
    limit = logic.max_image_size
    first = "sketch" if pipe.call_method == "generate" else "lineart"

    def call(lineart, **kwargs):
        if max(lineart.size) > limit:
            raise ValueError(f"{lineart.width}x{lineart.height} is larger than this app's {limit} px per side.")
        return getattr(pipe, pipe.call_method)(**{first: lineart}, **kwargs)

    kwargs = _supported_kwargs(pipe, {"keep_lines": bool(keep_lines), "flatten_regions": bool(flatten_regions)})
    if folder is not None:
        os.makedirs(folder, exist_ok=True)
    target = tempfile.mkdtemp(prefix="batch-", dir=folder)
    outputs = os.path.join(target, "colorized")
    summary = colorize_folder(call, paths, outputs, call_kwargs=kwargs, progress=False)
    archive = None
    if summary.done:
        archive = os.path.join(target, "stablepaint_batch.zip")
        with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as handle:
            for item in summary.done:
                handle.write(item.output, arcname=item.output.name)
            report = summary.to_dict()
            for entry, item in zip(report["items"], summary.items):  # file names only, not the server's folders
                entry.update(lineart=item.lineart.name, output=item.output.name, hints=None, reason=_reason(item))
            handle.writestr("summary.json", json.dumps(report, indent=2))
    lines = [f"**Batch:** {len(summary.done)} done, {len(summary.failed)} failed ({model})."]
    lines += [f"- {item.lineart.name}: {_reason(item)}" for item in summary.failed]
    return archive, "\n".join(lines)


def _reason(item) -> Optional[str]:
    """Why a file failed, naming the file but not the server's path to the upload."""
    if item.reason is None:
        return None
    return item.reason.replace(str(item.lineart), item.lineart.name)

"""The web app's temporary files end with the sessions that made them.

gradio keeps every upload and every result image in its cache folder (the app's `GRADIO_TEMP_DIR`), one sub-folder per
file content, shared by every session that sent or received the same bytes. [`purge_session_files`] removes them once
no session is left: gradio calls the `unload` event of a session when its browser tab (or `gradio_client.Client`)
disconnects, and the last one to leave empties the cache. Files touched after that moment (an upload of a session
that has just arrived) are kept, and so is everything at the top of the folder (the `--share` tunnel's certificate).
Sub-folders stay (empty), so that a concurrent write into one never fails. Between sessions, `delete_cache` still
removes files older than an hour.
"""

import os
import time
from pathlib import Path
from typing import Optional, Union


def purge_session_files(temp_dir: Union[str, os.PathLike], before: Optional[float] = None) -> int:
    """Delete the files in the sub-folders of `temp_dir` last modified before `before` (default: now); return how
    many were deleted. Top-level files and the folders themselves are kept."""
    before = time.time() if before is None else before
    removed = 0
    root = Path(temp_dir)
    if not root.is_dir():
        return 0
    for folder in [entry for entry in root.iterdir() if entry.is_dir() and not entry.is_symlink()]:
        for path in folder.rglob("*"):
            try:
                if path.is_file() and not path.is_symlink() and path.stat().st_mtime < before:
                    path.unlink()
                    removed += 1
            except OSError:  # removed meanwhile by gradio's own cache cleaning, or in use: skip it
                continue
    return removed


def open_sessions(demo, exclude: Optional[str] = None) -> int:
    """How many sessions of a launched gradio Blocks (but `exclude`) have run an event and not disconnected yet."""
    holder = getattr(demo, "state_holder", None)
    sessions = getattr(holder, "session_data", {}) if holder is not None else {}
    return sum(
        1 for key, session in list(sessions.items()) if key != exclude and not getattr(session, "is_closed", False)
    )


def register_session_cleanup(demo, temp_dir: Union[str, os.PathLike]) -> None:
    """Within a `gradio.Blocks` context: when a session ends and none is left open, purge the cached files."""
    import gradio as gr

    # No `from __future__ import annotations` here: gradio finds the `gr.Request` parameter by its annotation.
    def on_unload(request: gr.Request):
        started = time.time()
        if open_sessions(demo, exclude=request.session_hash) == 0:
            purge_session_files(temp_dir, before=started)

    demo.unload(on_unload)


__all__ = ["open_sessions", "purge_session_files", "register_session_cleanup"]

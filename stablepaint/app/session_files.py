"""The web app's temporary files end with the sessions that made them.

gradio keeps every upload and every result image in its cache folder (the app's `GRADIO_TEMP_DIR`), one sub-folder per
file content, shared by every session that sent or received the same bytes. [`SessionFileCleanup`] removes them once
no session is left: gradio calls the `unload` event of a session when its browser tab (or `gradio_client.Client`)
disconnects. The purge waits `delay` seconds after the last session ended and then runs only if the cache stayed
untouched and no session opened meanwhile. The wait is what makes it safe: gradio also calls `unload` when a live tab
merely loses its heartbeat connection for a moment (under load), and such a tab keeps working — it writes to the cache
at its next upload or Run, which cancels the purge. Everything at the top of the folder (the `--share` tunnel's
certificate) and the sub-folders themselves stay, so that a concurrent write into one never fails. Between sessions,
`delete_cache` still removes files older than an hour.
"""

import os
import threading
import time
from pathlib import Path
from typing import Optional, Union


def _cached_files(root: Path):
    if not root.is_dir():
        return
    for folder in [entry for entry in root.iterdir() if entry.is_dir() and not entry.is_symlink()]:
        for path in folder.rglob("*"):
            try:
                if path.is_file() and not path.is_symlink():
                    yield path, path.stat().st_mtime
            except OSError:  # removed meanwhile by gradio's own cache cleaning
                continue


def purge_session_files(temp_dir: Union[str, os.PathLike], before: Optional[float] = None) -> int:
    """Delete the files in the sub-folders of `temp_dir` last modified before `before` (default: now); return how
    many were deleted. Top-level files and the folders themselves are kept."""
    before = time.time() if before is None else before
    removed = 0
    for path, modified in list(_cached_files(Path(temp_dir))):
        if modified < before:
            try:
                path.unlink()
                removed += 1
            except OSError:  # removed meanwhile, or in use: skip it
                continue
    return removed


def last_modified(temp_dir: Union[str, os.PathLike]) -> float:
    """The newest modification time of a cached file under `temp_dir` (0.0 when there is none)."""
    return max((modified for _, modified in _cached_files(Path(temp_dir))), default=0.0)


def open_sessions(demo, exclude: Optional[str] = None) -> int:
    """How many sessions of a launched gradio Blocks (but `exclude`) have run an event and not disconnected yet."""
    holder = getattr(demo, "state_holder", None)
    sessions = getattr(holder, "session_data", {}) if holder is not None else {}
    return sum(
        1 for key, session in list(sessions.items()) if key != exclude and not getattr(session, "is_closed", False)
    )


class SessionFileCleanup:
    """Purge `temp_dir`'s cached files `delay` seconds after the last session of `demo` ended, unless a session opened
    or the cache was written meanwhile.

    Args:
        demo (`gradio.Blocks`): The app whose sessions are counted.
        temp_dir (`str` or `os.PathLike`): gradio's cache folder (`GRADIO_TEMP_DIR`).
        delay (`float`, *optional*, defaults to 60): Seconds to wait after the last session ended. `0` purges at once.
    """

    def __init__(self, demo, temp_dir: Union[str, os.PathLike], delay: float = 60.0):
        if not delay >= 0:  # NaN fails too
            raise ValueError(f"`purge_delay` must be a number of seconds >= 0, got {delay!r}.")
        self.demo, self.temp_dir, self.delay = demo, temp_dir, float(delay)
        self.purged = 0  # files removed so far
        self.skipped = 0  # purges called off by a session or a write during the wait
        self._timer: Optional[threading.Timer] = None
        self._lock = threading.Lock()

    def session_ended(self, session_hash: Optional[str] = None) -> None:
        """Called by the `unload` event: when no other session is open, (re)start the wait."""
        ended = time.time()
        if open_sessions(self.demo, exclude=session_hash) > 0:
            return
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
            self._timer = threading.Timer(self.delay, self.purge_if_idle, args=(ended,))
            self._timer.daemon = True  # never keeps the server process alive
            self._timer.start()

    def purge_if_idle(self, ended: float) -> int:
        """Purge the files older than `ended` if no session is open and nothing was written since; return how many."""
        if open_sessions(self.demo) > 0 or last_modified(self.temp_dir) >= ended:
            self.skipped += 1
            return 0
        removed = purge_session_files(self.temp_dir, before=ended)
        self.purged += removed
        return removed

    def cancel(self) -> None:
        """Stop a pending purge (the app is closing)."""
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None


def register_session_cleanup(demo, temp_dir: Union[str, os.PathLike], delay: float = 60.0) -> SessionFileCleanup:
    """Within a `gradio.Blocks` context: purge the cached files once the last session has ended and `delay` seconds
    passed without a new session or a write ([`SessionFileCleanup`]). Returns the cleanup object."""
    import gradio as gr

    cleanup = SessionFileCleanup(demo, temp_dir, delay)

    # No `from __future__ import annotations` here: gradio finds the `gr.Request` parameter by its annotation.
    def on_unload(request: gr.Request):
        cleanup.session_ended(request.session_hash)

    demo.unload(on_unload)
    return cleanup


__all__ = ["SessionFileCleanup", "last_modified", "open_sessions", "purge_session_files", "register_session_cleanup"]

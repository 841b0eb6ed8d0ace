"""A cache of the region step of `simplify_colors`, the costly and epoch-independent part of training synthesis.

`simplify_colors` cuts the cropped illustration into regions (Felzenszwalb's segmentation: about 90% of the time of
`synthesize_example` at 512²) and paints every region with its median color. Both depend only on the pixels they get,
never on the random generator, so `RegionCache` keeps their result (the region-median image) keyed by a hash of those
pixels and of the segmentation settings: the next epoch of the same illustration with the same crop window (always
when the illustration is square, as the DiceBear and OpenMoji sets are, and for center crops) skips the segmentation
and gives bit-identical examples. A random crop window that was never seen is a miss and is segmented as before.

Entries are PNG bytes (lossless; a 512² flat-colored region image takes about 30 KB), held in memory (least recently
used evicted past `max_bytes`) and, with `directory`, also written there atomically as `<key>.png`, so that
`DataLoader` workers, later epochs and later runs share them. Delete the folder to clear it.
"""

from __future__ import annotations

import hashlib
import io
import os
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Callable, Optional, Union

import numpy as np
from PIL import Image

from stablepaint.utils.atomic import write_bytes_atomic

#: Bump when the region step changes, so that older on-disk entries are no longer read.
CACHE_VERSION = "1"
#: Default memory budget of a `RegionCache`, per process.
DEFAULT_MAX_BYTES = 256 * 2**20


class RegionCache:
    """Memory (and optionally disk) cache of region images, keyed by a hash of the input pixels and the settings.

    Args:
        max_bytes (`int`, *optional*, defaults to 256 MiB):
            Memory budget of the PNG-compressed entries of this process; 0 keeps nothing in memory.
        directory (`str` or `os.PathLike`, *optional*):
            Folder for on-disk entries (`<key>.png`, written atomically), shared by processes and runs.

    Attributes `hits` and `misses` count the lookups of this process.
    """

    def __init__(self, max_bytes: int = DEFAULT_MAX_BYTES, directory: Optional[Union[str, os.PathLike]] = None):
        if isinstance(max_bytes, bool) or not isinstance(max_bytes, (int, np.integer)) or max_bytes < 0:
            raise ValueError(f"`max_bytes` must be a non-negative integer, got {max_bytes!r}.")
        if directory is not None and Path(directory).exists() and not Path(directory).is_dir():
            raise ValueError(f"`directory` must be a folder, got the file {str(directory)!r}.")
        self.max_bytes = int(max_bytes)
        self.directory = None if directory is None else Path(directory)
        self.hits = 0
        self.misses = 0
        self._entries: "OrderedDict[str, bytes]" = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def nbytes(self) -> int:
        """Bytes held in memory."""
        return self._size

    @staticmethod
    def key(rgb: np.ndarray, method: str, settings: dict) -> str:
        """The entry key of `rgb` (uint8, H×W×3) segmented by `method` with `settings`."""
        digest = hashlib.blake2b(digest_size=20)
        header = f"v{CACHE_VERSION}|{method}|{sorted(settings.items())}|{rgb.shape}|{rgb.dtype}|"
        digest.update(header.encode())
        digest.update(np.ascontiguousarray(rgb).tobytes())
        return digest.hexdigest()

    def lookup(self, rgb: np.ndarray, method: str, settings: dict, compute: Callable[[], np.ndarray]) -> np.ndarray:
        """The cached region image of `rgb`, or `compute()`'s (then stored). Returns a new uint8 array each time."""
        key = self.key(rgb, method, settings)
        data = self._get(key)
        if data is not None:
            result = _decode(data)
            if result.shape == rgb.shape:
                self.hits += 1
                return result
            self._forget(key)  # unreadable or of another shape: recomputed and rewritten
        self.misses += 1
        result = np.ascontiguousarray(compute(), dtype=np.uint8)
        self._put(key, _encode(result))
        return result

    def clear(self) -> None:
        """Forget the memory entries and, with `directory`, delete the on-disk ones."""
        with self._lock:
            self._entries.clear()
            self._size = 0
        if self.directory is not None and self.directory.is_dir():
            for path in self.directory.glob("*.png"):
                path.unlink(missing_ok=True)

    def _path(self, key: str) -> Optional[Path]:
        return None if self.directory is None else self.directory / f"{key}.png"

    def _get(self, key: str) -> Optional[bytes]:
        with self._lock:
            data = self._entries.get(key)
            if data is not None:
                self._entries.move_to_end(key)
                return data
        path = self._path(key)
        if path is not None and path.is_file():
            data = path.read_bytes()
            self._remember(key, data)
            return data
        return None

    def _put(self, key: str, data: bytes) -> None:
        self._remember(key, data)
        path = self._path(key)
        if path is not None:
            write_bytes_atomic(path, data)

    def _remember(self, key: str, data: bytes) -> None:
        if len(data) > self.max_bytes:
            return
        with self._lock:
            if key in self._entries:
                return
            self._entries[key] = data
            self._size += len(data)
            while self._size > self.max_bytes:
                _, old = self._entries.popitem(last=False)
                self._size -= len(old)

    def _forget(self, key: str) -> None:
        with self._lock:
            data = self._entries.pop(key, None)
            if data is not None:
                self._size -= len(data)

    def __getstate__(self) -> dict:
        # Sent to `DataLoader` workers at every epoch: settings and counters only, not the entries (nor the lock).
        state = {k: v for k, v in self.__dict__.items() if k not in ("_entries", "_lock")}
        state["_size"] = 0
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._entries = OrderedDict()
        self._lock = threading.Lock()


def resolve_cache(
    cache: Union[bool, RegionCache], cache_dir: Optional[Union[str, os.PathLike]] = None
) -> Optional[RegionCache]:
    """The `RegionCache` that a `cache` argument names: `True` a new one (on disk too with `cache_dir`), `False` none,
    or the given instance."""
    if not isinstance(cache, (bool, RegionCache)):
        raise TypeError(f"`cache` must be a bool or a `RegionCache`, got {type(cache).__name__}.")
    if cache_dir is not None and cache is not True:
        raise ValueError("`cache_dir` needs `cache=True` (give a `RegionCache(directory=...)` as `cache` instead).")
    if cache is True:
        return RegionCache(directory=cache_dir)
    return None if cache is False else cache


def _encode(rgb: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def _decode(data: bytes) -> np.ndarray:
    try:
        with Image.open(io.BytesIO(data)) as image:
            return np.asarray(image.convert("RGB"))
    except (OSError, ValueError):
        return np.empty((0, 0, 3), dtype=np.uint8)  # unreadable: a miss

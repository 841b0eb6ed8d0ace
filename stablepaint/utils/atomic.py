"""Writes that lose nothing: every file or folder a command writes appears complete, in one rename, or not at all.

A write goes to a temporary sibling of the destination, `.<name>.<pid>-<8 hex>.tmp` (same folder, so the rename is
atomic on one file system), is flushed to disk (`fsync`) and then renamed onto the destination (`os.replace`); on an
error the temporary is removed and the destination is untouched. A process killed mid-write leaves at most such a
hidden temporary; the next write to the same destination removes the temporaries of dead processes (and, for a
folder replaced by the two-rename fallback, puts a previous version found aside back first).

This module imports nothing from the rest of stablepaint (`tests/test_architecture.py`).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import secrets
import shutil
import sys
from pathlib import Path
from typing import Iterator, Mapping, Optional, Union

PathLike = Union[str, os.PathLike]

#: `.<name>.<pid>-<8 hex>.tmp`, and `.<name>.<pid>-<8 hex>.old.tmp` for a folder's previous version set aside.
TEMP_PATTERN = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)-(?P<token>[0-9a-f]{8})(?P<old>\.old)?\.tmp$")


def temp_path(path: PathLike, old: bool = False) -> Path:
    """A fresh temporary sibling of `path`: `.<name>.<pid>-<8 hex>.tmp` (`.old.tmp` for a version set aside)."""
    path = Path(path)
    return path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}{'.old' if old else ''}.tmp")


def is_temp_name(name: str) -> bool:
    """Whether a file name is one of this module's temporaries."""
    return TEMP_PATTERN.match(name) is not None


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def clean_stale(path: PathLike) -> None:
    """Remove the temporaries that dead processes left beside `path`. A previous folder version set aside by an
    interrupted two-rename replacement is put back when `path` is missing (removed when it is not)."""
    path = Path(path)
    if not path.parent.is_dir():
        return
    for leftover in sorted(path.parent.iterdir()):
        match = TEMP_PATTERN.match(leftover.name)
        if match is None or match["name"] != path.name or _alive(int(match["pid"])):
            continue
        if match["old"] and not os.path.lexists(path):
            os.replace(leftover, path)
        else:
            _remove(leftover)


def _fsync(path: Path) -> None:
    """Flush a file, or every file of a folder, and the folder itself, to disk (best effort where unsupported)."""
    paths = [path]
    if path.is_dir():
        paths = [Path(root) / name for root, _, files in os.walk(path) for name in files] + [path]
    for item in paths:
        try:
            fd = os.open(item, os.O_RDONLY)
        except OSError:
            continue
        try:
            os.fsync(fd)
        except OSError:
            pass
        finally:
            os.close(fd)


def commit(temp: PathLike, path: PathLike) -> None:
    """The final rename of a write: `temp` becomes `path` in one step (the destination's folder is synced after)."""
    os.replace(temp, path)
    _fsync(Path(path).parent)


_RENAME_EXCHANGE = 2


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one step (Linux `renameat2(RENAME_EXCHANGE)`); False where the system cannot."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        return False
    at_fdcwd = -100
    result = renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), _RENAME_EXCHANGE)
    return result == 0


def commit_folder(temp: PathLike, path: PathLike) -> None:
    """Put the folder `temp` in place of `path`, replacing a previous folder there: one atomic swap where the system
    has one (the previous version then sits at `temp` and is removed), else two renames (the previous version is
    set aside as `.<name>.<pid>-<hex>.old.tmp`, which `clean_stale` puts back if the process dies in between)."""
    temp, path = Path(temp), Path(path)
    if not path.exists() or (path.is_dir() and not any(path.iterdir())):
        commit(temp, path)  # onto nothing or an empty folder: one rename
        return
    if _exchange(temp, path):
        _fsync(path.parent)
        _remove(temp)  # now the previous version
        return
    aside = temp_path(path, old=True)
    os.replace(path, aside)
    commit(temp, path)
    _remove(aside)


@contextlib.contextmanager
def atomic_write(path: PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path` to write; on success it is synced and renamed onto `path`, on an error
    removed (the destination keeps its previous content, or stays absent).

    ```python
    with atomic_write("out/results.json") as tmp:
        tmp.write_text(text)
    ```
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    clean_stale(path)
    temp = temp_path(path)
    try:
        yield temp
        if not temp.exists():
            raise FileNotFoundError(f"nothing was written to the temporary file of {str(path)!r}.")
        _fsync(temp)
        commit(temp, path)
    except BaseException:
        _remove(temp)
        raise


@contextlib.contextmanager
def atomic_folder(path: PathLike, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary folder beside `path` to fill; on success it is synced and renamed into place, on an error
    removed. An existing non-empty folder at `path` is replaced only with `overwrite=True` (else `FileExistsError`,
    raised before anything is written)."""
    path = Path(path)

    def check() -> None:
        if path.exists() and not path.is_dir():
            raise FileExistsError(f"{str(path)!r} is a file, not a folder.")
        if not overwrite and path.is_dir() and any(path.iterdir()):
            raise FileExistsError(f"{str(path)!r} exists and is not empty.")

    path.parent.mkdir(parents=True, exist_ok=True)
    clean_stale(path)
    check()
    temp = temp_path(path)
    temp.mkdir()
    try:
        yield temp
        check()  # nothing appeared there meanwhile
        _fsync(temp)
        commit_folder(temp, path)
    except BaseException:
        _remove(temp)
        raise


def write_text_atomic(path: PathLike, text: str, encoding: str = "utf-8") -> Path:
    with atomic_write(path) as temp:
        temp.write_text(text, encoding=encoding)
    return Path(path)


def write_bytes_atomic(path: PathLike, data: bytes) -> Path:
    with atomic_write(path) as temp:
        temp.write_bytes(data)
    return Path(path)


def save_image_atomic(image, path: PathLike, **kwargs) -> Path:
    """`image.save(path)` atomically (a PIL image; the format comes from `path`'s suffix, as `Image.save` reads it)."""
    from PIL import Image

    path = Path(path)
    image_format = kwargs.pop("format", None) or Image.registered_extensions().get(path.suffix.lower())
    if image_format is None:
        raise ValueError(f"cannot tell the image format of {str(path)!r} from its suffix.")
    with atomic_write(path) as temp:
        image.save(temp, format=image_format, **kwargs)
    return path


def _same(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return a.resolve() == b.resolve()


def _inside(child: Path, parent: Path) -> bool:
    child, parent = child.resolve(), parent.resolve()
    return child != parent and child.is_relative_to(parent)


def check_not_input(
    output: PathLike,
    inputs: Mapping[str, Optional[PathLike]],
    output_flag: str,
    nested: bool = False,
) -> None:
    """Raise `ValueError` naming both flags when `output` is one of `inputs` (`{flag: path}`; `None` skipped): the
    same file (hard or symbolic links included) or the same resolved path. With `nested=True` (folders), an output
    inside an input or an input inside the output is refused too."""
    output = Path(output)
    for flag, value in inputs.items():
        if value is None:
            continue
        source = Path(value)
        if _same(output, source):
            raise ValueError(
                f"{output_flag} {str(output)!r} is the input {flag} {str(source)!r}; refusing to overwrite an input."
            )
        if nested and _inside(output, source):
            raise ValueError(f"{output_flag} {str(output)!r} is inside the input {flag} {str(source)!r}.")
        if nested and _inside(source, output):
            raise ValueError(
                f"{output_flag} {str(output)!r} holds the input {flag} {str(source)!r}; refusing to overwrite it."
            )

"""File I/O: every file the project writes goes through here (atomically), JSON is read here.

A file is written to a temporary name in the destination folder, flushed and fsynced, then renamed
over the destination, so a killed process leaves either the old file or the new one, never a
half-written one. Temporary names start with ``.tmp-`` so stray ones are easy to recognise.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np

__all__ = [
    "atomic_open",
    "cache_dir",
    "read_json",
    "remove_stray_temp",
    "write_bytes",
    "write_json",
    "write_npz",
    "write_png",
    "write_text",
]


def _process_umask() -> int:
    mask = os.umask(0o022)  # read once, at import (os.umask can only be read by setting it)
    os.umask(mask)
    return mask


_UMASK = _process_umask()


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "wb") -> Iterator[IO]:
    """Open a temporary file beside ``path``; rename it onto ``path`` when the block succeeds.

    Args:
        path: destination file; its parent folder is created if needed.
        mode: ``"wb"`` or ``"w"`` (text, UTF-8).

    The file gets the permissions a plain ``open`` would give it: an existing ``path``'s, else
    ``0o666`` less the umask (a temporary file is created private, ``0o600``).

    If the block raises, the temporary file is removed and ``path`` is untouched. An operating
    system error while writing (a full disk, a read-only folder, no permission) is raised as an
    ``OSError`` naming ``path`` (not the temporary file) and its cause.
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"atomic_open: mode must be 'wb' or 'w', got {mode!r}")
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".tmp-{path.name}.", dir=path.parent)
        try:
            perms = os.stat(path).st_mode & 0o7777
        except FileNotFoundError:
            perms = 0o666 & ~_UMASK
        os.fchmod(fd, perms)
        with os.fdopen(fd, mode, **({"encoding": "utf-8"} if mode == "w" else {})) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        if tmp is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        if isinstance(err, OSError) and not isinstance(err, FileNotFoundError):
            raise OSError(err.errno, err.strerror or str(err), str(path)) from err
        raise


def cache_dir() -> Path:
    """halo's cache folder: ``$HALO_CACHE_DIR``, else ``$XDG_CACHE_HOME/halo``, else
    ``~/.cache/halo`` (it holds the stamps of verified datasets)."""
    if os.environ.get("HALO_CACHE_DIR"):
        return Path(os.environ["HALO_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "halo"


def remove_stray_temp(
    folder: str | os.PathLike, names: Iterable[str] | None = None, *, recursive: bool = False
) -> list[Path]:
    """Delete the temporary files that a killed writer left in ``folder``.

    Args:
        folder: where to look (a missing folder has none).
        names: only temporaries of these destination names (``.tmp-<name>.*``); ``None``: all.
        recursive: also look in subfolders.

    Returns:
        The paths removed.
    """
    import shutil

    folder = Path(folder)
    if not folder.is_dir():
        return []
    patterns = ["*"] if names is None else list(names)
    glob = folder.rglob if recursive else folder.glob
    removed = []
    for name in patterns:
        # files (atomic_open: .tmp-<name>.*) and folders (a report built aside: .tmp-<name>-*)
        for stray in [*glob(f".tmp-{name}.*"), *glob(f".tmp-{name}-*")]:
            if stray.is_symlink() or stray.is_file():
                stray.unlink(missing_ok=True)
            elif stray.is_dir():
                shutil.rmtree(stray, ignore_errors=True)
            else:
                continue
            removed.append(stray)
    return removed


def remove_stray_temp_of(out: str | os.PathLike) -> list[Path]:
    """The temporaries a killed command left for its output ``out`` (a file or a folder): those
    beside it (``.tmp-<name>.*``, ``.tmp-<name>-*``) and, for a folder, every one inside it."""
    out = Path(out)
    removed = remove_stray_temp(out.parent, [out.name]) if out.parent.is_dir() else []
    if out.is_dir() and not out.is_symlink():
        removed += remove_stray_temp(out, recursive=True)
    return removed


def check_writable(folder: str | os.PathLike, need_bytes: int = 0) -> None:
    """Fail before any work unless ``folder`` can take ``need_bytes``: it is created (with its
    parents) and a probe file is written and removed in it (a read-only folder or file system
    fails here, whoever runs), and its file system must have ``need_bytes`` free.

    Raises:
        OSError: naming ``folder`` and the cause (``ENOSPC`` with the space it has and needs).
    """
    import errno
    import shutil

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=folder, prefix=".tmp-probe-"):
        pass
    free = shutil.disk_usage(folder).free
    if free < need_bytes:
        raise OSError(
            errno.ENOSPC,
            f"No space left on device: {free / 2**20:.0f} MB free, the job's checkpoints need "
            f"about {need_bytes / 2**20:.0f} MB",
            str(folder),
        )


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_open(path, "wb") as fh:
        fh.write(data)


def write_text(path: str | os.PathLike, text: str) -> None:
    """Write UTF-8 ``text`` to ``path`` atomically."""
    with atomic_open(path, "w") as fh:
        fh.write(text)


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as indented JSON (NaN written as ``NaN``) atomically."""
    write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def write_png(path: str | os.PathLike, array: np.ndarray) -> None:
    """Write a uint8 ``[H, W]`` (grey/label) or ``[H, W, 3]`` (RGB) array, or a uint16 ``[H, W]``
    array, as a PNG atomically."""
    from PIL import Image

    array = np.asarray(array)
    if array.dtype == np.uint16 and array.ndim == 2:
        img = Image.fromarray(array)
    elif array.dtype == np.uint8 and (array.ndim == 2 or (array.ndim == 3 and array.shape[2] == 3)):
        img = Image.fromarray(array)
    else:
        raise ValueError(
            f"write_png({path}): expected uint8 [H,W] or [H,W,3] or uint16 [H,W], "
            f"got {array.dtype} {list(array.shape)}"
        )
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    write_bytes(path, buf.getvalue())


def write_npz(path: str | os.PathLike, **arrays: np.ndarray) -> None:
    """Write arrays to a compressed ``.npz`` atomically (``path`` must end in ``.npz``)."""
    if not str(path).endswith(".npz"):
        raise ValueError(f"write_npz: path must end in .npz, got {path}")
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    write_bytes(path, buf.getvalue())


def read_json(path: str | os.PathLike, what: str) -> Any:
    """Read a JSON file; a missing or invalid file is one clear error naming ``what`` and the path.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: ``path`` is not valid JSON.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} {path} does not exist")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ValueError(f"{what} {path} is not valid JSON: {err}") from None
    except UnicodeDecodeError:
        raise ValueError(f"{what} {path} is not valid JSON: not UTF-8 text") from None
    except RecursionError:
        raise ValueError(f"{what} {path} is not valid JSON: nested too deeply") from None

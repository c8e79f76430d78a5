"""Checkpoints: the one place that writes, reads and checks model files (docs/design.md, "Files").

A checkpoint is a dict ``{"model": state_dict, "optimizer": state_dict | None, "step": int,
...meta}`` of plain data only (tensors, numbers, strings, lists, dicts); the meta (``backbone``,
``model_key``, ``num_classes``, ``protocol``, ``fingerprint``, ``config``, ...) says what the
weights are for, and :func:`check_fits` compares it with a run before any model is built. Files
are written atomically (:mod:`halo.io`).

Nothing loaded from disk may run code: :func:`load_checkpoint` reads with
``torch.load(weights_only=True)``, which builds tensors and plain containers only. A file whose
pickle would import anything else (a function to call, a class to build) is refused with one line
naming the file and what it would import, before any of it runs.
"""

from __future__ import annotations

import io
import pickle
import pickletools
import warnings
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import nn

from halo.io import write_bytes

if TYPE_CHECKING:
    from halo.config import Run

__all__ = [
    "UnsafeCheckpoint",
    "check_fits",
    "load_checkpoint",
    "load_weights",
    "pickle_imports",
    "save_checkpoint",
    "unwrap",
]


class UnsafeCheckpoint(ValueError):
    """A checkpoint whose loading would run code (it is refused, nothing of it runs)."""


def unwrap(model: nn.Module) -> nn.Module:
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


def save_checkpoint(path: str | Path, model: nn.Module, optimizer, step: int, meta: dict) -> None:
    """Write model + optimiser + step + metadata atomically.

    The checkpoint is serialised in memory first, so a write that fails (a full disk) is an
    ``OSError`` naming ``path``, not an error from inside torch's zip writer.
    """
    state = {
        "model": unwrap(model).state_dict(),
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "step": step,
        **meta,
    }
    buffer = io.BytesIO()
    torch.save(state, buffer)
    write_bytes(path, buffer.getbuffer())


_STRINGS = {
    "SHORT_BINUNICODE",
    "BINUNICODE",
    "BINUNICODE8",
    "UNICODE",
    "SHORT_BINSTRING",
    "BINSTRING",
    "STRING",
}


def pickle_imports(data: bytes) -> list[str]:
    """``module.name`` of every global a pickle stream would import, read without running it.

    Args:
        data: one pickle stream (a torch checkpoint's ``data.pkl``, or a bare pickle).

    Returns:
        The names in order of appearance, duplicates removed (``GLOBAL`` and ``STACK_GLOBAL``;
        the latter's operands are followed through the memo).

    Raises:
        ValueError: ``data`` is not a pickle stream.
    """
    names: list[str] = []
    stack: list[str | None] = []  # the string operands seen, for STACK_GLOBAL
    memo: dict[int, str | None] = {}
    try:
        for op, arg, _ in pickletools.genops(data):
            if op.name in _STRINGS:
                stack.append(str(arg))
            elif op.name in ("BINGET", "LONG_BINGET", "GET"):
                stack.append(memo.get(int(arg)))
            elif op.name in ("BINPUT", "LONG_BINPUT", "PUT"):
                memo[int(arg)] = stack[-1] if stack else None
            elif op.name == "MEMOIZE":
                memo[len(memo)] = stack[-1] if stack else None
            elif op.name in ("GLOBAL", "INST"):
                names.append(str(arg).replace(" ", "."))
            elif op.name == "STACK_GLOBAL":
                module, name = (stack[-2], stack[-1]) if len(stack) >= 2 else (None, None)
                names.append(f"{module or '?'}.{name or '?'}")
            else:
                stack.append(None)
    except Exception as err:  # pickletools raises ValueError and others on a broken stream
        raise ValueError(f"not a pickle stream: {err}") from None
    return list(dict.fromkeys(names))


def _pickles(path: Path) -> list[bytes]:
    """The pickle streams of a checkpoint file: ``*/data.pkl`` of torch's zip format, else the
    file itself (a legacy or bare pickle)."""
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as zf:
            return [zf.read(n) for n in zf.namelist() if n.endswith(".pkl")]
    return [path.read_bytes()]


def _refusal(path: Path) -> str | None:
    """Why loading ``path`` with weights_only failed, in one line, when it is not corruption."""
    try:
        streams = _pickles(path)
        imports = [n for s in streams for n in pickle_imports(s)]
    except (ValueError, OSError, zipfile.BadZipFile):
        return None
    unsafe = [n for n in imports if not n.startswith(("torch.", "collections.OrderedDict"))]
    if not unsafe:
        return None
    return (
        f"checkpoint {path} is refused: loading it would import and run "
        f"{', '.join(unsafe[:3])}{' ...' if len(unsafe) > 3 else ''}; halo loads only plain "
        "tensors and values (torch.load weights_only=True). If you trust the file, re-save its "
        "state dict with plain types (see docs/reliability.md)"
    )


def load_checkpoint(path: str | Path) -> dict:
    """Read a checkpoint on the CPU, plain data only (``torch.load(weights_only=True)``).

    Raises:
        FileNotFoundError: no such file.
        UnsafeCheckpoint: loading it would run code (nothing of it ran); names the file.
        ValueError: not a readable checkpoint (corrupt, truncated, not a dict).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    try:
        with warnings.catch_warnings():  # torch warns about the pickle protocol of a refusal
            warnings.simplefilter("ignore")
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        reason = _refusal(path)
        if reason is not None:
            raise UnsafeCheckpoint(reason) from None
        raise ValueError(f"checkpoint {path} is not a readable checkpoint: {_first(err)}") from None
    except Exception as err:  # torch raises many kinds of errors for a corrupt file
        raise ValueError(f"checkpoint {path} is not a readable checkpoint: {_first(err)}") from None
    if not isinstance(ckpt, dict) or "model" not in ckpt:
        raise ValueError(f"checkpoint {path} is not a halo checkpoint (no 'model' state dict)")
    return ckpt


def _first(err: BaseException) -> str:
    """The error's most telling line (torch's messages run over many lines)."""
    lines = [ln.strip() for ln in str(err).splitlines() if ln.strip()]
    for ln in lines:
        if "Unsupported" in ln or "corrupt" in ln.lower() or "magic" in ln.lower():
            return ln
    return lines[0] if lines else type(err).__name__


def load_weights(model: nn.Module, ckpt: dict, *, where: str = "checkpoint") -> None:
    """Load a checkpoint's weights; a model of another backbone/class count is a clear error."""
    try:
        unwrap(model).load_state_dict(ckpt["model"])
    except RuntimeError as err:
        first = str(err).strip().splitlines()
        meta = {k: ckpt.get(k) for k in ("backbone", "model_key", "num_classes")}
        raise ValueError(
            f"{where} does not fit this model ({meta}): {first[1] if len(first) > 1 else first[0]}"
        ) from None


def check_fits(ckpt: dict, run: Run, where: Path) -> None:
    """A checkpoint of another backbone, head variant or class count is a clear error.

    Raises:
        ValueError: naming the checkpoint, what it was trained for and what ``run`` needs.
    """
    mine = {
        "backbone": run.config.backbone,
        "model_key": run.model_key,
        "num_classes": run.num_classes,
    }
    theirs = {k: ckpt.get(k) for k in mine}
    if theirs != mine:
        raise ValueError(f"checkpoint {where} was trained for {theirs}, this config needs {mine}")

"""Image and label files: decoding (a corrupt or truncated file is a DataError naming it) and,
for the synthetic benchmark, label writing in each dataset's own file format.

Pillow and OpenCV are imported when a file is read or written, so this module is cheap to import
(the dataset modules name their label reader and writer in their
:class:`~halo.data.layout.Layout`).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from halo.data.layout import DataError

__all__ = [
    "read_label_8bit",
    "read_label_16bit_first_channel",
    "read_rgb",
    "write_label_8bit",
    "write_label_16bit_first_channel",
    "write_label_palette",
]


def read_rgb(path: Path) -> np.ndarray:
    """Read an 8-bit RGB image as uint8 [H, W, 3]; a corrupt or truncated file is a DataError."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im.load()
            if im.mode != "RGB":
                im = im.convert("RGB")
            return np.asarray(im, dtype=np.uint8)
    except (OSError, UnidentifiedImageError, SyntaxError) as err:
        raise DataError(f"cannot read image {path}: {err}") from err


def read_label_8bit(path: Path) -> np.ndarray:
    """Read a single-channel 8-bit label PNG (grey 'L' or palette 'P') as uint8 [H, W]."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im.load()
            if im.mode not in ("L", "P"):
                raise DataError(
                    f"label {path}: expected a single-channel 8-bit PNG of label ids "
                    f"(mode L or P), got mode {im.mode}"
                )
            return np.asarray(im, dtype=np.uint8)
    except (OSError, UnidentifiedImageError, SyntaxError) as err:
        raise DataError(f"cannot read label {path}: {err}") from err


def read_label_16bit_first_channel(path: Path) -> np.ndarray:
    """Read a 16-bit PNG whose first (R) channel holds class ids (SYNTHIA) as uint16 [H, W].

    Pillow would silently truncate 16-bit RGB to its high bytes (all zeros here), so OpenCV reads
    these files; OpenCV returns channels as BGR, so the first channel is the last one.
    """
    import cv2

    if not path.is_file():
        raise DataError(f"cannot read label {path}: no such file")
    arr = cv2.imread(os.fspath(path), cv2.IMREAD_UNCHANGED)
    if arr is None:
        raise DataError(f"cannot read label {path}: not a readable PNG (corrupt or truncated?)")
    if arr.ndim == 3:
        arr = arr[..., 2] if arr.shape[2] >= 3 else arr[..., 0]
    return arr.astype(np.uint16, copy=False)


def write_label_8bit(path: Path, raw: np.ndarray) -> None:
    """Write label values uint8 [H, W] as a grey 8-bit PNG (Cityscapes, ACDC), atomically."""
    from halo.io import write_png

    write_png(path, raw)


def _cityscapes_palette() -> np.ndarray:
    """uint8 [256, 3]: Cityscapes labelId → its class colour (black where no class)."""
    from halo.data.labels import CITYSCAPES_LABEL_IDS, CITYSCAPES_PALETTE

    pal = np.zeros((256, 3), np.uint8)
    lut = CITYSCAPES_LABEL_IDS.train_ids()
    ok = lut != 255
    pal[np.flatnonzero(ok)] = CITYSCAPES_PALETTE[lut[ok]]
    return pal


def write_label_palette(path: Path, raw: np.ndarray) -> None:
    """Write Cityscapes labelIds uint8 [H, W] as a palette PNG (GTAV's label files), atomically."""
    import io

    from PIL import Image

    from halo.io import write_bytes

    im = Image.fromarray(raw, mode="P")
    im.putpalette(_cityscapes_palette().ravel().tolist())
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    write_bytes(path, buf.getvalue())


def write_label_16bit_first_channel(path: Path, raw: np.ndarray) -> None:
    """Write class ids [H, W] into the first channel of a 16-bit RGB PNG (SYNTHIA), atomically."""
    import cv2

    from halo.io import write_bytes

    arr = np.zeros((*raw.shape, 3), np.uint16)
    arr[..., 2] = raw  # OpenCV writes BGR: channel 2 is the PNG's first (R) channel
    ok, buf = cv2.imencode(".png", arr)
    if not ok:
        raise OSError(f"cannot encode {path}")
    write_bytes(path, buf.tobytes())

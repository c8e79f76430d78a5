"""The one dataset class every loader shares: a list of (image, label) files in a real layout.

Each dataset module (``gta5``, ``cityscapes``, ``synthia``, ``acdc``) only declares its layout and
how its label files are encoded; :func:`halo.data.build_dataset` discovers the files
(:mod:`halo.data.layout`), and reading, id mapping, resizing and error reporting live here.
Reading a corrupt file, an unknown label id or mismatched sizes fails naming the file.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from halo.data import labels as label_tables
from halo.data.layout import DataError, Sample
from halo.data.readers import read_rgb
from halo.data.transforms import image_to_tensor, resize_pair

__all__ = ["SegmentationDataset"]

_VERIFY_VERSION = 1  # bump when verify() checks more: older stamps then no longer count


class SegmentationDataset(Dataset):
    """Image/label pairs with raw label ids mapped to a class protocol's train ids.

    Items are ``{"image": float32 [3, H, W] in [0, 1], "label": int64 [H, W] (255 = ignore),
    "id": str}``. With ``size=(H, W)`` images are resized (``resample``: bilinear or bicubic) and
    labels by nearest neighbour, or kept at their own size (``label_size``: evaluation at the
    label size). Unlabelled samples (``label is None``) give a label of all 255.
    """

    def __init__(
        self,
        name: str,
        samples: Sequence[Sample],
        *,
        label_reader: Callable[[Path], np.ndarray],
        encoding: label_tables.LabelEncoding | None,
        protocol: str = "cityscapes19",
        size: tuple[int, int] | None = None,
        where: str = "",
        table: tuple[np.ndarray, np.ndarray] | None = None,
        resample: str = "bilinear",
        label_size: bool = False,
    ) -> None:
        if not samples:
            raise DataError(f"{name}: no images found{' under ' + where if where else ''}")
        if size is not None:
            if len(size) != 2 or min(size) <= 0:
                raise ValueError(f"size must be (height, width) with positive ints, got {size}")
            size = (int(size[0]), int(size[1]))
        self.name = name
        self.where = where
        self.samples = list(samples)
        self.size = size
        self.resample = resample
        self.label_size = label_size
        self.protocol = label_tables.get_protocol(protocol)
        self._label_reader = label_reader
        if table is None:  # the official datasets' label tables
            self._lut = encoding.train_ids(protocol)
            self._known = encoding.known_ids()
        else:  # (lut, known) of a folder dataset's classes.yaml
            self._lut, self._known = table

    @property
    def ids(self) -> list[str]:
        return [s.id for s in self.samples]

    @property
    def num_classes(self) -> int:
        return self.protocol.num_classes

    def __len__(self) -> int:
        return len(self.samples)

    def load_label(self, index: int) -> np.ndarray | None:
        """The label of sample ``index`` as train ids, uint8 [H, W] at native size (or None)."""
        sample = self.samples[index]
        if sample.label is None:
            return None
        raw = self._label_reader(sample.label)
        if raw.ndim != 2:
            raise DataError(f"label {sample.label}: expected a [H, W] map, got {raw.shape}")
        if raw.max(initial=0) > 255 or not self._known[raw.astype(np.intp)].all():
            bad = np.unique(raw[~self._known[np.minimum(raw, 255).astype(np.intp)] | (raw > 255)])
            raise DataError(
                f"label {sample.label}: ids {bad[:10].tolist()} are not in the {self.name} "
                f"label table"
            )
        return self._lut[raw]

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Image uint8 [H, W, 3] and train-id label uint8 [H, W], resized to ``size`` if set."""
        image, label = self.load_native(index)
        if self.size is not None:
            image, label = resize_pair(
                image, label, self.size, resample=self.resample, resize_label=not self.label_size
            )
        return image, label

    def load_native(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Image uint8 [H, W, 3] and train-id label uint8 [H, W] at the files' own size."""
        sample = self.samples[index]
        image = read_rgb(sample.image)
        label = self.load_label(index)
        if label is None:
            label = np.full(image.shape[:2], label_tables.IGNORE_INDEX, dtype=np.uint8)
        elif label.shape != image.shape[:2]:
            raise DataError(
                f"size mismatch: image {sample.image} is {image.shape[1]}x{image.shape[0]} "
                f"but label {sample.label} is {label.shape[1]}x{label.shape[0]} (WxH)"
            )
        return image, label

    def __getitem__(self, index: int) -> dict:
        image, label = self.load(index)
        return {
            "image": image_to_tensor(image),
            "label": torch.from_numpy(label.astype(np.int64)),
            "id": self.samples[index].id,
        }

    def describe(self) -> dict:
        """What a run trained or was scored on: ``{"name", "where", "images", "labelled",
        "fingerprint"}`` (:meth:`fingerprint`: the files' paths, sizes and times, none opened)."""
        return {
            "name": self.name,
            "where": self.where,
            "images": len(self.samples),
            "labelled": sum(s.label is not None for s in self.samples),
            "fingerprint": self.fingerprint(),
        }

    def fingerprint(self) -> str:
        """A hash of the dataset's files as they are now: paths, sizes, modification and change
        times and inodes (no file is opened), with the dataset name, label table and verify
        version."""
        import hashlib

        h = hashlib.sha256(
            f"{_VERIFY_VERSION}\0{self.name}\0{self._known.tobytes().hex()}".encode()
        )
        for sample in self.samples:
            for path in (sample.image, sample.label):
                if path is None:
                    h.update(b"\0-")
                    continue
                try:
                    st = path.stat()
                except OSError as err:
                    raise DataError(f"{self.name}: cannot stat {path}: {err}") from err
                # ctime and inode too: copies that preserve mtimes (cp -p, rsync -a) change them
                key = (path.resolve(), st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)
                h.update("\0".join(map(str, ("", *key))).encode())
        return h.hexdigest()

    def _stamp(self, cache: str | os.PathLike | None) -> tuple[Path | None, str | None]:
        """The verification stamp of the files as they are now under ``cache`` (and their
        :meth:`fingerprint`), or ``(None, None)`` without a cache."""
        if cache is None:
            return None, None
        before = self.fingerprint()
        return Path(cache) / "verified" / f"{before}.json", before

    def verify(self, *, workers: int | None = None, cache: str | os.PathLike | None = None) -> bool:
        """Decode every image and label once, raising the first DataError in sample order: a
        corrupt or truncated PNG, label ids outside the table, image/label size mismatch.

        Args:
            workers: decoding threads (default: up to 8, one per CPU).
            cache: a folder of stamps; the files whose :meth:`fingerprint` has a stamp there
                were verified before and are not decoded again; a successful check writes one
                (with the classes each label holds: :meth:`class_presence`).

        Returns:
            ``True`` if the files were decoded, ``False`` if a stamp showed them verified.
        """
        stamp, before = self._stamp(cache)
        if stamp is not None and stamp.is_file():
            return False
        self._decode_all(workers, stamp, before)
        return True

    def class_presence(self, *, cache: str | os.PathLike | None = None) -> np.ndarray:
        """Which classes each sample's label holds: bool [N, num_classes] (an unlabelled sample
        holds none). Read from the verification stamp under ``cache`` when it has them, else
        every file is decoded once (which also verifies it and writes the stamp)."""
        from halo.io import read_json

        stamp, before = self._stamp(cache)
        if stamp is not None and stamp.is_file():
            masks = read_json(stamp, "verification stamp").get("presence")
            if isinstance(masks, list) and len(masks) == len(self):
                return _unpack_presence(masks, self.num_classes)
        return self._decode_all(None, stamp, before)

    def _decode_all(self, workers: int | None, stamp: Path | None, before: str | None):
        """Decode every sample (``workers`` threads); write ``stamp`` if the files did not
        change meanwhile; the class presence, bool [N, num_classes]."""
        from concurrent.futures import ThreadPoolExecutor

        if workers is None:
            cpus = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
            workers = max(1, min(8, len(cpus) if cpus else (os.cpu_count() or 1)))
        c = self.num_classes

        def check(index: int) -> np.ndarray:
            _, label = self.load_native(index)  # the decoded arrays are dropped at once
            return np.bincount(label[label < c].ravel(), minlength=c)[:c] > 0

        with ThreadPoolExecutor(max_workers=workers) as pool:
            presence = np.stack(list(pool.map(check, range(len(self)))))
        # files changed while they were decoded: what was checked is not what is there now
        if stamp is not None and self.fingerprint() == before:
            from halo.io import write_json

            record = {"dataset": self.name, "samples": len(self)}
            record["presence"] = _pack_presence(presence)
            try:
                write_json(stamp, record)
            except OSError:  # a read-only cache only costs a second check next time
                pass
        return presence


def _pack_presence(presence: np.ndarray) -> list[int]:
    """bool [N, C] → one bit mask per sample (bit c: class c present), for a JSON stamp."""
    weights = 1 << np.arange(presence.shape[1], dtype=object)
    return [int(x) for x in (presence.astype(object) * weights).sum(axis=1)]


def _unpack_presence(masks: list, num_classes: int) -> np.ndarray:
    """The inverse of :func:`_pack_presence`: bool [N, num_classes]."""
    bits = np.array([int(m) for m in masks], dtype=object)[:, None] >> np.arange(num_classes)
    return (bits & 1).astype(bool)

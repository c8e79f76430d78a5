"""Evaluation: confusion matrix, per-class IoU, mIoU (and SYNTHIA's mIoU*), and the eval loop.

The math is three pure functions: :func:`confusion_matrix` (``torch.bincount`` on the input's
device), :func:`per_class_iou` and :func:`mean_iou`. IoU follows the Cityscapes convention: a class
with neither ground-truth nor predicted pixels has an undefined IoU (NaN) and is left out of the
mean -- it counts neither as 0 nor as 1 (smp's ``iou_score`` counts it as 1). A class present in
the ground truth but never predicted, or predicted but absent from the ground truth, has IoU 0.

:func:`evaluate` runs a segmenter over a dataset batch by batch and only keeps running sums (the
confusion matrix and, per ground-truth class, pixel counts and radius sums for the paper's
"class-average radius vs class pixel share" figure), so the pool's logits are never held at once.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from halo.data.labels import IGNORE_INDEX
from halo.models.segmenter import module_device

__all__ = [
    "EvalResult",
    "class_radius_sum",
    "confusion_matrix",
    "evaluate",
    "mean_iou",
    "per_class_iou",
]

logger = logging.getLogger(__name__)


def _check_int_tensor(x: object, name: str) -> Tensor:
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of class indices, got {type(x).__name__}")
    if x.is_floating_point() or x.is_complex() or x.dtype == torch.bool:
        raise TypeError(f"{name} must be an integer tensor of class indices, got dtype {x.dtype}")
    return x


def _check_num_classes(num_classes: object) -> int:
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive int, got {num_classes!r}")
    return num_classes


def _flat_checked(
    target: Tensor, num_classes: int, ignore_index: int, pred: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    """Flattened int64 targets (a new tensor, ignored pixels set to 0) and the ignored mask.

    Checks with one host sync that every prediction (if given) and every non-ignored target is in
    ``[0, num_classes)``; the slow path only runs to word the error.
    """
    target = target.reshape(-1).long()
    ignored = target == ignore_index
    target = target.masked_fill(ignored, 0)  # a copy: the caller's tensor is never written
    checked = [("target", target)] if pred is None else [("pred", pred), ("target", target)]
    if target.numel():
        bounds = torch.stack([b for _, x in checked for b in torch.aminmax(x)]).tolist()
        if min(bounds[0::2]) < 0 or max(bounds[1::2]) >= num_classes:
            for name, x in checked:
                bad = (x < 0) | (x >= num_classes)
                if bool(bad.any()):
                    values = torch.unique(x[bad]).tolist()[:10]
                    raise ValueError(
                        f"{name} has class indices {values} outside [0, {num_classes})"
                        + (f" (ignore_index is {ignore_index})" if name == "target" else "")
                    )
    return target, ignored


def confusion_matrix(
    pred: Tensor, target: Tensor, num_classes: int, *, ignore_index: int = IGNORE_INDEX
) -> Tensor:
    """Confusion matrix of predicted vs ground-truth class indices, counted on the input's device.

    Args:
        pred: integer tensor of predicted classes, any shape; every value must be in
            ``[0, num_classes)`` (also where the target is ignored: an out-of-range prediction is
            a bug upstream).
        target: integer tensor of ground-truth classes, the same shape as ``pred``; values in
            ``[0, num_classes)`` or ``ignore_index``.
        num_classes: number of classes ``C``.
        ignore_index: ground-truth value of pixels to skip.

    Returns:
        int64 ``[C, C]`` on ``pred``'s device; entry ``[i, j]`` counts pixels of ground-truth class
        ``i`` predicted as class ``j`` (rows = ground truth, columns = prediction).

    Raises:
        TypeError: ``pred`` or ``target`` is not an integer tensor.
        ValueError: shapes differ, ``num_classes`` is not a positive int, a prediction is outside
            ``[0, C)``, or a non-ignored target is outside ``[0, C)``.
    """
    pred = _check_int_tensor(pred, "pred")
    target = _check_int_tensor(target, "target")
    num_classes = _check_num_classes(num_classes)
    if pred.shape != target.shape:
        raise ValueError(
            f"pred and target must have the same shape, got {tuple(pred.shape)} and "
            f"{tuple(target.shape)}"
        )
    if pred.device != target.device:
        raise ValueError(
            f"pred and target must be on one device, got {pred.device}, {target.device}"
        )
    pred = pred.reshape(-1).long()
    target, ignored = _flat_checked(target, num_classes, ignore_index, pred)
    # Ignored pixels go to one extra bin that is dropped: no boolean indexing (no host sync).
    bins = num_classes * num_classes
    index = target.mul_(num_classes).add_(pred).masked_fill_(ignored, bins)
    counts = torch.bincount(index, minlength=bins + 1)
    return counts[:bins].reshape(num_classes, num_classes)


def class_radius_sum(
    radius: Tensor, target: Tensor, num_classes: int, *, ignore_index: int = IGNORE_INDEX
) -> Tensor:
    """Sum of a per-pixel value (the hyperbolic radius) per ground-truth class.

    Args:
        radius: float tensor, the same shape as ``target`` (e.g. ``[B, H, W]``).
        target: integer ground-truth classes in ``[0, C)`` or ``ignore_index``.
        num_classes: number of classes ``C``.
        ignore_index: ground-truth value of pixels to skip.

    Returns:
        float64 ``[C]`` on ``radius``'s device: the sum of ``radius`` over each class's pixels
        (divide by the class's pixel count, the row sums of the confusion matrix, for the mean).

    Raises:
        ValueError: shapes differ, or a non-ignored target is outside ``[0, C)``.
    """
    target = _check_int_tensor(target, "target")
    num_classes = _check_num_classes(num_classes)
    if not isinstance(radius, Tensor) or not radius.is_floating_point():
        raise TypeError(f"radius must be a floating-point tensor, got {radius!r:.80}")
    if radius.shape != target.shape:
        raise ValueError(
            f"radius and target must have the same shape, got {tuple(radius.shape)} and "
            f"{tuple(target.shape)}"
        )
    target, ignored = _flat_checked(target, num_classes, ignore_index)
    index = target.masked_fill_(ignored, num_classes)
    sums = torch.bincount(index, weights=radius.reshape(-1).double(), minlength=num_classes + 1)
    return sums[:num_classes]


def per_class_iou(confusion: Tensor) -> Tensor:
    """Intersection over union of each class from a confusion matrix.

    Args:
        confusion: ``[C, C]`` counts (rows = ground truth, columns = prediction), any real dtype.

    Returns:
        float64 ``[C]`` on ``confusion``'s device: ``TP / (TP + FP + FN)``; NaN for a class with
        neither ground-truth nor predicted pixels (undefined, left out of :func:`mean_iou`).

    Raises:
        ValueError: ``confusion`` is not a square 2-D tensor or has negative entries.
    """
    if not isinstance(confusion, Tensor) or confusion.dim() != 2:
        shape = tuple(confusion.shape) if isinstance(confusion, Tensor) else type(confusion)
        raise ValueError(f"confusion must be a [C, C] tensor, got {shape}")
    if confusion.shape[0] != confusion.shape[1]:
        raise ValueError(f"confusion must be square [C, C], got {tuple(confusion.shape)}")
    if bool((confusion < 0).any()):
        raise ValueError("confusion must hold non-negative counts")
    conf = confusion.double()
    tp = conf.diagonal()
    union = conf.sum(dim=0) + conf.sum(dim=1) - tp
    nan = torch.full_like(tp, math.nan)
    return torch.where(union > 0, tp / union.clamp_min(1.0), nan)


def mean_iou(iou: Tensor, subset: Sequence[int] | None = None) -> float:
    """Mean IoU over the classes whose IoU is defined (NaN-aware), optionally over a subset.

    Args:
        iou: float ``[C]`` per-class IoU (:func:`per_class_iou`), NaN for undefined classes.
        subset: class indices to average over (e.g. SYNTHIA's 13-class mIoU*,
            ``halo.data.labels.get_protocol("synthia16").subset13``); ``None`` means all classes.

    Returns:
        The mean in ``[0, 1]`` as a Python float; NaN if no class in the selection is defined.

    Raises:
        ValueError: ``iou`` is not 1-D, or ``subset`` is empty, has duplicates or indices outside
            ``[0, C)``.
    """
    if not isinstance(iou, Tensor) or iou.dim() != 1:
        shape = tuple(iou.shape) if isinstance(iou, Tensor) else type(iou).__name__
        raise ValueError(f"iou must be a 1-D [C] tensor, got {shape}")
    values = iou.double()
    if subset is not None:
        index = _check_subset(subset, iou.numel())
        values = values[torch.tensor(index, dtype=torch.long, device=iou.device)]
    defined = ~torch.isnan(values)
    if not bool(defined.any()):
        return math.nan
    return float(values[defined].mean())


def _check_subset(subset: Sequence[int], num_classes: int | None) -> list[int]:
    """The subset as a list; ``num_classes=None`` skips the range check (done later)."""
    index = list(subset)
    if not index:
        raise ValueError("subset must name at least one class index")
    if any(isinstance(i, bool) or not isinstance(i, int) for i in index):
        raise ValueError(f"subset must hold int class indices, got {index!r}")
    if len(set(index)) != len(index):
        raise ValueError(f"subset has duplicate class indices: {index}")
    bad = [i for i in index if i < 0 or (num_classes is not None and i >= num_classes)]
    if bad:
        limit = "" if num_classes is None else f" < {num_classes}"
        raise ValueError(f"subset indices {bad} are not class indices 0 <= i{limit}")
    return index


def _percent(x: float) -> float | None:
    return None if math.isnan(x) else 100.0 * x


def _float_or_none(x: float) -> float | None:
    return None if math.isnan(x) else x


@dataclass(frozen=True)
class EvalResult:
    """What :func:`evaluate` measured over a dataset (all tensors on CPU).

    Attributes:
        confusion: int64 ``[C, C]``, rows = ground truth, columns = prediction.
        iou: float64 ``[C]`` per-class IoU in ``[0, 1]``, NaN for a class absent from both.
        miou: mean IoU in ``[0, 1]`` over the defined classes.
        miou13: mean IoU over the given class subset (SYNTHIA's mIoU*), ``None`` without one.
        class_pixels: int64 ``[C]`` non-ignored ground-truth pixels of each class.
        class_mean_radius: float64 ``[C]`` mean radius over each class's ground-truth pixels,
            NaN for a class without pixels.
        num_images: number of images evaluated.
    """

    confusion: Tensor
    iou: Tensor
    miou: float
    miou13: float | None
    class_pixels: Tensor
    class_mean_radius: Tensor
    num_images: int

    @property
    def num_classes(self) -> int:
        return int(self.confusion.shape[0])

    def to_metrics(self, class_names: Sequence[str]) -> dict:
        """A JSON-ready summary (NaN becomes ``None``, i.e. JSON ``null``).

        Args:
            class_names: the ``C`` class names, in class-index order.

        Returns:
            ``{"miou": percent, "miou13": percent or None, "per_class_iou": {name: percent or
            None}, "class_names": [...], "class_pixel_share": {name: fraction of the non-ignored
            pixels in [0, 1] or None}, "class_mean_radius": {name: float or None},
            "num_images": n}``.

        Raises:
            ValueError: ``class_names`` does not have ``C`` distinct names.
        """
        names = [str(n) for n in class_names]
        if len(names) != self.num_classes or len(set(names)) != len(names):
            raise ValueError(
                f"class_names must be {self.num_classes} distinct names, got {len(names)}: "
                f"{names[:25]}"
            )
        total = int(self.class_pixels.sum())
        shares = [int(n) / total if total else math.nan for n in self.class_pixels.tolist()]
        return {
            "miou": _percent(self.miou),
            "miou13": None if self.miou13 is None else _percent(self.miou13),
            "per_class_iou": {
                n: _percent(v) for n, v in zip(names, self.iou.tolist(), strict=True)
            },
            "class_names": names,
            "class_pixel_share": {n: _float_or_none(s) for n, s in zip(names, shares, strict=True)},
            "class_mean_radius": {
                n: _float_or_none(r)
                for n, r in zip(names, self.class_mean_radius.tolist(), strict=True)
            },
            "num_images": self.num_images,
        }


def _known_num_classes(model: nn.Module, dataset: Dataset) -> int | None:
    """``num_classes`` as declared by the model and/or dataset; a disagreement is an error."""
    declared = {
        who: getattr(obj, "num_classes", None)
        for who, obj in (("model", model), ("dataset", dataset))
    }
    known = {who: n for who, n in declared.items() if isinstance(n, int)}
    if len(set(known.values())) > 1:
        raise ValueError(
            f"model has num_classes={known['model']} but dataset has num_classes={known['dataset']}"
        )
    return next(iter(known.values()), None)


def _probabilities(
    model: nn.Module, images: Tensor, flip: bool, size: tuple[int, int] | None
) -> tuple[Tensor, Tensor]:
    """Softmax probabilities ``[B, C, H, W]`` (flip-averaged if asked) and radius ``[B, h, w]``.

    With ``size`` (the labels'), logits of another size are upsampled to it bilinearly with
    ``align_corners=True`` before the softmax, as the official evaluation at the label size."""

    def softmax(logits: Tensor) -> Tensor:
        if size is not None and tuple(logits.shape[-2:]) != tuple(size):
            logits = F.interpolate(logits, size=size, mode="bilinear", align_corners=True)
        return logits.softmax(dim=1)

    out = model(images)
    probs = softmax(out.logits)
    if flip:
        probs = 0.5 * (probs + softmax(model(images.flip(-1)).logits).flip(-1))
    return probs, out.radius


def evaluate(
    model: nn.Module,
    dataset: Dataset,
    *,
    batch_size: int = 8,
    num_workers: int = 0,
    flip: bool = False,
    progress: bool = True,
    subset13: Sequence[int] | None = None,
    ignore_index: int = IGNORE_INDEX,
    label_size: bool = False,
) -> EvalResult:
    """Evaluate a segmenter on a labelled dataset: confusion matrix, IoU, radius per class.

    The model runs in eval mode under ``torch.inference_mode`` on the device of its parameters;
    afterwards every submodule gets back the training flag it had. Only running sums are kept per
    batch (never the dataset's logits).

    Args:
        model: maps float32 images ``[B, 3, H, W]`` in ``[0, 1]`` to an output with ``logits``
            ``[B, C, H, W]`` (input resolution) and ``radius`` ``[B, h, w]`` (any resolution; it is
            upsampled bilinearly, ``align_corners=False``, to the label's) -- a
            :class:`~halo.models.segmenter.SegmenterOutput`.
        dataset: items ``{"image": float32 [3, H, W], "label": int64 [H, W] (ignore_index =
            ignore), "id": str}`` (``halo.data.build_dataset``); images of different sizes need
            ``batch_size=1``.
        batch_size: images per forward pass.
        num_workers: DataLoader worker processes.
        flip: average the softmax probabilities of each image and of its horizontally flipped
            version (flipped back). The radius statistics use the unflipped pass.
        progress: show a tqdm progress bar.
        subset13: class indices of SYNTHIA's 13-class mIoU* (fills ``EvalResult.miou13``).
        ignore_index: label value of pixels that are not counted.
        label_size: the labels keep their files' size (``eval.label_size``): logits are
            upsampled to it before the softmax (bilinear, ``align_corners=True``).

    Returns:
        An :class:`EvalResult` with CPU tensors.

    Raises:
        ValueError: an empty dataset, a bad ``batch_size`` or ``subset13``, model and dataset
            disagreeing on the number of classes, or logits / labels of unexpected shapes.
    """
    from halo.progress import progress as bar

    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    if len(dataset) == 0:
        raise ValueError("dataset is empty: nothing to evaluate")
    num_classes = _known_num_classes(model, dataset)
    if subset13 is not None:
        subset13 = _check_subset(subset13, num_classes)  # fail before the first batch
    device = module_device(model)
    loader = DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=False,
        num_workers=num_workers,
        pin_memory=device.type == "cuda",
    )
    modes = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        with torch.inference_mode():
            batches = bar(loader, desc="evaluate", enabled=progress)
            sums = _accumulate(model, batches, device, flip, label_size, num_classes, ignore_index)
    finally:
        for module, training in modes:
            module.training = training
    result = _result(*sums, subset13)
    logger.debug("evaluated %d images: mIoU %.2f", result.num_images, 100.0 * result.miou)
    return result


def _accumulate(model, batches, device, flip, label_size, num_classes, ignore_index):
    """Running sums over ``batches``: ``(confusion [C, C], radius sum [C], images)``."""
    confusion: Tensor | None = None
    radius_sum: Tensor | None = None
    num_images = 0
    for batch in batches:
        images = batch["image"].to(device, non_blocking=True)
        labels = batch["label"].to(device, non_blocking=True)
        size = tuple(labels.shape[-2:]) if label_size else None
        probs, radius = _probabilities(model, images, flip, size)
        if num_classes is None:
            num_classes = probs.shape[1]
        _check_batch(probs, radius, labels, num_classes)
        pred = probs.argmax(dim=1)
        radius = F.interpolate(
            radius.unsqueeze(1),
            size=labels.shape[-2:],
            mode="bilinear",
            align_corners=False,
        ).squeeze(1)
        conf = confusion_matrix(pred, labels, num_classes, ignore_index=ignore_index)
        rsum = class_radius_sum(radius, labels, num_classes, ignore_index=ignore_index)
        confusion = conf if confusion is None else confusion + conf
        radius_sum = rsum if radius_sum is None else radius_sum + rsum
        num_images += images.shape[0]
    return confusion, radius_sum, num_images


def _result(confusion: Tensor, radius_sum: Tensor, num_images: int, subset13) -> EvalResult:
    """The evaluation's result from its sums (CPU copies: callers may update them in place)."""
    # Clone outside inference mode: callers may update the results in place.
    confusion = confusion.cpu().clone()
    radius_sum = radius_sum.cpu().clone()
    iou = per_class_iou(confusion)
    class_pixels = confusion.sum(dim=1)
    mean_radius = torch.where(
        class_pixels > 0,
        radius_sum / class_pixels.clamp_min(1),
        torch.full_like(radius_sum, math.nan),
    )
    return EvalResult(
        confusion=confusion,
        iou=iou,
        miou=mean_iou(iou),
        miou13=None if subset13 is None else mean_iou(iou, subset13),
        class_pixels=class_pixels,
        class_mean_radius=mean_radius,
        num_images=num_images,
    )


def _check_batch(probs: Tensor, radius: Tensor, labels: Tensor, num_classes: int) -> None:
    if probs.shape[1] != num_classes:
        raise ValueError(
            f"model returned logits with {probs.shape[1]} classes, expected {num_classes}"
        )
    if labels.dim() != 3 or probs.shape[-2:] != labels.shape[-2:]:
        raise ValueError(
            f"logits {tuple(probs.shape)} and labels {tuple(labels.shape)} must share [H, W] "
            "(logits [B, C, H, W], labels [B, H, W])"
        )
    if radius.dim() != 3 or radius.shape[0] != labels.shape[0]:
        raise ValueError(
            f"model returned radius of shape {tuple(radius.shape)}, expected [B, h, w]"
        )

"""Evaluation: confusion matrix, IoU / mIoU (Cityscapes convention), and the evaluate loop."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from halo.data.labels import get_protocol
from halo.engine.evaluate import (
    EvalResult,
    class_radius_sum,
    confusion_matrix,
    evaluate,
    mean_iou,
    per_class_iou,
)
from halo.models.segmenter import SegmenterOutput, build_backbone

IGNORE = 255


# ----------------------------------------------------------------------------- independent oracle


def numpy_confusion(pred: np.ndarray, target: np.ndarray, num_classes: int) -> np.ndarray:
    """Confusion matrix by counting every (gt, pred) pair: no bincount, no index arithmetic."""
    conf = np.zeros((num_classes, num_classes), dtype=np.int64)
    keep = target != IGNORE
    for i in range(num_classes):
        for j in range(num_classes):
            conf[i, j] = np.sum(keep & (target == i) & (pred == j))
    return conf


def numpy_miou(conf: np.ndarray) -> float:
    ious = []
    for c in range(conf.shape[0]):
        tp = conf[c, c]
        fn = conf[c].sum() - tp
        fp = conf[:, c].sum() - tp
        if tp + fp + fn > 0:
            ious.append(tp / (tp + fp + fn))
    return float(np.mean(ious)) if ious else math.nan


# ---------------------------------------------------------------------- known-answer: IoU and mIoU


def test_per_class_iou_known_answer() -> None:
    conf = torch.tensor(
        [
            [3, 1, 0, 0],  # class 0: TP 3, FN 1, FP 2 -> 3 / 6
            [0, 0, 0, 0],  # class 1: never in gt, predicted once -> 0
            [2, 0, 0, 0],  # class 2: in gt, never predicted -> 0
            [0, 0, 0, 0],  # class 3: absent from both -> undefined (NaN)
        ]
    )
    iou = per_class_iou(conf)
    assert iou.dtype == torch.float64
    assert iou[:3].tolist() == [0.5, 0.0, 0.0]
    assert math.isnan(iou[3])
    # Excluded from the mean: counting it as 1 (smp) would give 0.375, as 0 would give 0.125.
    assert mean_iou(iou) == pytest.approx(1 / 6)


def test_per_class_iou_perfect_and_empty() -> None:
    assert per_class_iou(torch.diag(torch.tensor([4, 1, 7]))).tolist() == [1.0, 1.0, 1.0]
    iou = per_class_iou(torch.zeros(3, 3, dtype=torch.int64))
    assert torch.isnan(iou).all()
    assert math.isnan(mean_iou(iou))


@pytest.mark.parametrize(
    "bad", [torch.zeros(3), torch.zeros(2, 3), torch.tensor([[1, -1], [0, 2]]), [[1, 0], [0, 1]]]
)
def test_per_class_iou_rejects_bad_confusion(bad) -> None:
    with pytest.raises(ValueError, match="confusion"):
        per_class_iou(bad)


def test_mean_iou_subset() -> None:
    iou = torch.tensor([1.0, 0.5, math.nan, 0.0], dtype=torch.float64)
    assert mean_iou(iou) == pytest.approx(0.5)
    assert mean_iou(iou, [0, 1]) == pytest.approx(0.75)
    assert mean_iou(iou, [1, 2]) == pytest.approx(0.5)  # the NaN class is left out
    assert math.isnan(mean_iou(iou, [2]))
    assert mean_iou(iou.float(), (3,)) == 0.0


def test_mean_iou_synthia_13_class_subset() -> None:
    protocol = get_protocol("synthia16")
    subset = protocol.subset13
    assert len(subset) == 13
    iou = torch.ones(protocol.num_classes, dtype=torch.float64)
    excluded = [i for i, name in enumerate(protocol.classes) if name in ("wall", "fence", "pole")]
    iou[excluded] = 0.0
    assert mean_iou(iou, subset) == pytest.approx(1.0)
    assert mean_iou(iou) == pytest.approx(13 / 16)


@pytest.mark.parametrize(
    ("subset", "match"),
    [([], "at least one"), ([0, 0], "duplicate"), ([4], "class indices"), ([-1], "class indices")],
)
def test_mean_iou_rejects_bad_subset(subset, match) -> None:
    with pytest.raises(ValueError, match=match):
        mean_iou(torch.zeros(4, dtype=torch.float64), subset)


def test_mean_iou_rejects_non_vector() -> None:
    with pytest.raises(ValueError, match="iou must be a 1-D"):
        mean_iou(torch.zeros(2, 2))


# ------------------------------------------------------------------------------- confusion matrix


def test_confusion_matrix_known_answer() -> None:
    pred = torch.tensor([[0, 1, 1], [2, 2, 0]])
    target = torch.tensor([[0, 1, 2], [IGNORE, 2, 1]])
    conf = confusion_matrix(pred, target, 3)
    assert conf.dtype == torch.int64
    assert conf.tolist() == [[1, 0, 0], [1, 1, 0], [0, 1, 1]]  # rows = gt, cols = prediction


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("dtype", [torch.int64, torch.int32, torch.uint8])
def test_confusion_and_miou_match_numpy(seed: int, dtype: torch.dtype) -> None:
    rng = np.random.default_rng(seed)
    num_classes = int(rng.integers(2, 9))
    shape = (int(rng.integers(1, 4)), int(rng.integers(1, 20)), int(rng.integers(1, 20)))
    # Some classes absent from gt, some from the prediction, some from both.
    gt_classes = rng.choice(num_classes, size=rng.integers(1, num_classes + 1), replace=False)
    pred_classes = rng.choice(num_classes, size=rng.integers(1, num_classes + 1), replace=False)
    target = rng.choice(gt_classes, size=shape)
    target[rng.random(shape) < 0.2] = IGNORE
    pred = rng.choice(pred_classes, size=shape)
    expected = numpy_confusion(pred, target, num_classes)

    conf = confusion_matrix(
        torch.from_numpy(pred).to(dtype), torch.from_numpy(target).to(dtype), num_classes
    )
    np.testing.assert_array_equal(conf.numpy(), expected)
    assert int(conf.sum()) == int((target != IGNORE).sum())
    miou = mean_iou(per_class_iou(conf))
    reference = numpy_miou(expected)
    if math.isnan(reference):
        assert math.isnan(miou)
    else:
        assert miou == pytest.approx(reference, abs=1e-6)


def test_confusion_matrix_empty_input_and_inputs_untouched() -> None:
    empty = torch.zeros(0, 4, dtype=torch.int64)
    assert confusion_matrix(empty, empty, 3).tolist() == [[0] * 3] * 3
    assert class_radius_sum(empty.float(), empty, 3).tolist() == [0.0] * 3
    pred = torch.tensor([[1, 0], [2, 2]])
    target = torch.tensor([[1, IGNORE], [0, 2]])
    copies = pred.clone(), target.clone()
    confusion_matrix(pred, target, 3)
    class_radius_sum(torch.ones(2, 2), target, 3)
    assert torch.equal(pred, copies[0]) and torch.equal(target, copies[1])


def test_ignore_index_is_skipped() -> None:
    pred = torch.tensor([0, 1, 2, 1])
    assert confusion_matrix(pred, torch.full((4,), IGNORE), 3).sum() == 0
    target = torch.tensor([0, -1, 2, -1])
    conf = confusion_matrix(pred, target, 3, ignore_index=-1)
    assert conf.tolist() == [[1, 0, 0], [0, 0, 0], [0, 0, 1]]
    # With the default ignore index, -1 is not a label.
    with pytest.raises(ValueError, match=r"target has class indices \[-1\]"):
        confusion_matrix(pred, target, 3)


@pytest.mark.parametrize("bad", [3, -1, 255])
def test_out_of_range_prediction_raises(bad: int) -> None:
    pred = torch.tensor([0, 1, bad])
    with pytest.raises(ValueError, match=rf"pred has class indices \[{bad}\] outside \[0, 3\)"):
        confusion_matrix(pred, torch.tensor([0, 1, 2]), 3)
    # Also where the target is ignored: an out-of-range prediction is a bug upstream.
    with pytest.raises(ValueError, match="pred has class indices"):
        confusion_matrix(pred, torch.tensor([0, 1, IGNORE]), 3)


def test_confusion_matrix_rejects_bad_input() -> None:
    t = torch.zeros(2, 3, dtype=torch.int64)
    with pytest.raises(ValueError, match="same shape"):
        confusion_matrix(t, t.reshape(3, 2), 3)
    with pytest.raises(TypeError, match="pred must be an integer tensor"):
        confusion_matrix(t.float(), t, 3)
    with pytest.raises(TypeError, match="target must be an integer tensor"):
        confusion_matrix(t, t.bool(), 3)
    with pytest.raises(ValueError, match="num_classes must be a positive int"):
        confusion_matrix(t, t, 0)
    with pytest.raises(ValueError, match=r"target has class indices \[7\] outside \[0, 3\)"):
        confusion_matrix(t, torch.full_like(t, 7), 3)


def test_class_radius_sum_known_answer() -> None:
    radius = torch.tensor([[1.0, 2.0, 4.0], [8.0, 16.0, 32.0]])
    target = torch.tensor([[0, 2, 0], [IGNORE, 2, 2]])
    sums = class_radius_sum(radius, target, 4)
    assert sums.dtype == torch.float64
    assert sums.tolist() == [5.0, 0.0, 50.0, 0.0]
    with pytest.raises(ValueError, match="same shape"):
        class_radius_sum(radius[:1], target, 4)


# ------------------------------------------------------------------------------- evaluate: setup


class LabelledImages(Dataset):
    """Items like halo.data: float32 image [3, H, W] in [0, 1], int64 label [H, W], id."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, num_classes: int | None = None):
        self.images, self.labels = images, labels
        if num_classes is not None:
            self.num_classes = num_classes

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> dict:
        return {"image": self.images[i], "label": self.labels[i], "id": f"img{i:03d}"}


def random_labels(n: int, size: tuple[int, int], num_classes: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, num_classes, (n, *size), generator=g)
    labels[torch.rand(n, *size, generator=g) < 0.15] = IGNORE
    return labels


class OracleModel(nn.Module):
    """Reads the class from image channel 0 and answers it; radius = channel 1 at stride 2."""

    def __init__(self, num_classes: int, *, declare: bool = True) -> None:
        super().__init__()
        self.k = num_classes
        if declare:
            self.num_classes = num_classes

    def forward(self, images: torch.Tensor) -> SegmenterOutput:
        cls = (images[:, 0] * (self.k - 1)).round().long()
        logits = 10.0 * F.one_hot(cls, self.k).permute(0, 3, 1, 2).to(images.dtype)
        radius = images[:, 1, ::2, ::2]
        return SegmenterOutput(logits, radius.unsqueeze(1), radius)


def oracle_data(num_classes: int, seed: int, n: int = 5, size=(8, 12)):
    """Images that encode their label in channel 0 and a per-image radius in channel 1."""
    labels = random_labels(n, size, num_classes - 1, seed)  # the last class never occurs
    visible = torch.where(labels == IGNORE, 0, labels)
    radii = torch.linspace(0.1, 0.9, n)
    images = torch.zeros(n, 3, *size)
    images[:, 0] = visible / (num_classes - 1)
    images[:, 1] = radii.view(n, 1, 1)
    return images, labels, radii


# --------------------------------------------------------------------- evaluate: known predictions


class StoredLogitsModel(nn.Module):
    """Answers the logits stored for each image (looked up by the image's first pixel)."""

    def __init__(self, logits: torch.Tensor) -> None:
        super().__init__()
        self.logits = logits
        self.num_classes = logits.shape[1]

    def forward(self, images: torch.Tensor) -> SegmenterOutput:
        index = images[:, 0, 0, 0].round().long()
        logits = self.logits[index]
        radius = torch.ones(images.shape[0], *images.shape[-2:])
        return SegmenterOutput(logits, radius.unsqueeze(1), radius)


@pytest.mark.parametrize("seed", range(4))
def test_evaluate_random_predictions_match_numpy(seed: int) -> None:
    """The whole loop (batches, accumulation, IoU, mean) against the independent oracle on random
    predictions; the last class is absent from both the prediction and the ground truth and is
    left out of the mean (not counted as 0 or 1)."""
    g = torch.Generator().manual_seed(seed)
    n, k, size = 5, 6, (9, 13)
    logits = torch.randn(n, k, *size, generator=g)
    logits[:, -1] = -1e4  # never predicted
    labels = random_labels(n, size, k - 1, seed=100 + seed)  # never in the ground truth
    images = torch.zeros(n, 3, *size)
    images[:, 0] = torch.arange(n, dtype=torch.float32).view(n, 1, 1)
    result = evaluate(
        StoredLogitsModel(logits),
        LabelledImages(images, labels, k),
        batch_size=2,
        progress=False,
    )
    expected = numpy_confusion(logits.argmax(1).numpy(), labels.numpy(), k)
    np.testing.assert_array_equal(result.confusion.numpy(), expected)
    assert math.isnan(result.iou[-1])
    assert result.miou == pytest.approx(numpy_miou(expected), abs=1e-6)
    zero_or_one = [np.mean([*result.iou[:-1].tolist(), v]) for v in (0.0, 1.0)]
    assert all(abs(result.miou - v) > 1e-6 for v in zero_or_one)
    metrics = result.to_metrics([f"c{c}" for c in range(k)])
    assert metrics["per_class_iou"][f"c{k - 1}"] is None
    assert metrics["miou"] == pytest.approx(100 * numpy_miou(expected), abs=1e-6)


@pytest.mark.parametrize("batch_size", [1, 2, 8])
def test_evaluate_oracle_gives_miou_100(batch_size: int) -> None:
    num_classes = 4
    images, labels, radii = oracle_data(num_classes, seed=batch_size)
    result = evaluate(
        OracleModel(num_classes),
        LabelledImages(images, labels, num_classes),
        batch_size=batch_size,
        progress=False,
    )
    assert isinstance(result, EvalResult)
    assert result.num_images == len(images)
    assert result.miou == 1.0
    assert result.miou13 is None
    expected = numpy_confusion(labels.numpy(), labels.numpy(), num_classes)
    np.testing.assert_array_equal(result.confusion.numpy(), expected)
    assert math.isnan(result.iou[-1])  # the class that never occurs is excluded
    assert result.class_pixels.tolist() == expected.sum(axis=1).tolist()

    # Radius per class: constant per image, so the class mean is a pixel-weighted image mean.
    counts = np.stack([[(lab == c).sum() for c in range(num_classes)] for lab in labels.numpy()])
    weighted = (counts * radii.numpy()[:, None]).sum(0)
    with np.errstate(invalid="ignore"):
        expected_radius = weighted / counts.sum(0)
    np.testing.assert_allclose(result.class_mean_radius.numpy(), expected_radius, rtol=1e-6)
    assert math.isnan(result.class_mean_radius[-1])

    metrics = result.to_metrics(["road", "car", "sky", "bus"])
    assert metrics["miou"] == 100.0
    assert metrics["per_class_iou"]["bus"] is None
    assert metrics["class_mean_radius"]["bus"] is None
    assert metrics["class_pixel_share"]["bus"] == 0.0
    assert sum(metrics["class_pixel_share"].values()) == pytest.approx(1.0)
    json.dumps(metrics, allow_nan=False)


def test_evaluate_subset13_and_results_are_ordinary_tensors() -> None:
    images, labels, _ = oracle_data(4, seed=3)
    result = evaluate(
        OracleModel(4), LabelledImages(images, labels), subset13=[0, 1], progress=False
    )
    assert result.miou13 == 1.0
    assert result.to_metrics("abcd")["miou13"] == 100.0
    result.confusion.add_(1)  # created under inference_mode, returned as normal tensors
    assert not result.iou.is_inference()


class LeftRightModel(nn.Module):
    """Position-dependent logits: l1 on the left half, l2 on the right half (3 classes).

    argmax(l1) = 1, argmax(l2) = 2; averaging probabilities of l1 and l2 gives class 1, averaging
    logits would give class 0. So flip averaging predicts class 1 everywhere.
    """

    num_classes = 3

    def forward(self, images: torch.Tensor) -> SegmenterOutput:
        b, _, h, w = images.shape
        l1 = torch.tensor([0.0, 10.0, -10.0])
        l2 = torch.tensor([1.0, -10.0, 5.0])
        left = (torch.arange(w) < w // 2).view(1, 1, 1, w)
        logits = torch.where(left, l1.view(1, 3, 1, 1), l2.view(1, 3, 1, 1)).expand(b, 3, h, w)
        radius = torch.ones(b, h, w)
        return SegmenterOutput(logits, radius.unsqueeze(1), radius)


@pytest.mark.parametrize("flip", [False, True])
def test_flip_averages_probabilities_flipped_back(flip: bool) -> None:
    h, w = 2, 6
    labels = torch.ones(1, h, w, dtype=torch.int64)  # gt class 1 everywhere
    images = torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(0))
    result = evaluate(LeftRightModel(), LabelledImages(images, labels), flip=flip, progress=False)
    if flip:  # every pixel predicted as 1
        assert result.confusion.tolist() == [[0, 0, 0], [0, h * w, 0], [0, 0, 0]]
    else:  # left half 1, right half 2
        assert result.confusion.tolist() == [[0, 0, 0], [0, h * w // 2, h * w // 2], [0, 0, 0]]


# ----------------------------------------------------------------------- evaluate: real segmenter


@pytest.fixture(scope="module")
def tiny_segmenter() -> nn.Module:
    torch.manual_seed(0)
    return build_backbone("deeplabv3plus-r18", 5, encoder_weights=None)


@pytest.fixture(scope="module")
def tiny_pool() -> LabelledImages:
    images = torch.rand(5, 3, 32, 64, generator=torch.Generator().manual_seed(1))
    return LabelledImages(images, random_labels(5, (32, 64), 4, seed=2), num_classes=5)


def test_evaluate_real_segmenter(tiny_segmenter: nn.Module, tiny_pool: LabelledImages) -> None:
    model = tiny_segmenter
    model.train()
    model.encoder.eval()  # a mixed state (e.g. frozen encoder BN) must come back as it was
    before = {name: m.training for name, m in model.named_modules()}
    result = evaluate(model, tiny_pool, batch_size=2, progress=False)
    assert {name: m.training for name, m in model.named_modules()} == before
    assert model.training and not model.encoder.training

    labels = tiny_pool.labels
    assert int(result.confusion.sum()) == int((labels != IGNORE).sum())
    assert result.confusion.shape == (5, 5) and result.confusion.dtype == torch.int64
    assert result.class_pixels.tolist() == [int((labels == c).sum()) for c in range(5)]
    present = result.class_pixels > 0
    assert torch.isfinite(result.class_mean_radius[present]).all()
    assert (result.class_mean_radius[present] > 0).all()
    assert torch.isnan(result.class_mean_radius[~present]).all()  # class 4 never in the gt

    # Batched accumulation equals one pass over the whole pool.
    model.eval()
    with torch.no_grad():
        pred = model(tiny_pool.images).logits.argmax(1)
    np.testing.assert_array_equal(
        result.confusion.numpy(), confusion_matrix(pred, labels, 5).numpy()
    )
    model.train()

    metrics = result.to_metrics([f"class{c}" for c in range(5)])
    text = json.dumps(metrics, allow_nan=False)
    assert json.loads(text)["class_mean_radius"]["class4"] is None
    assert metrics["num_images"] == 5
    assert metrics["miou"] == pytest.approx(100 * numpy_miou(result.confusion.numpy()))


def test_evaluate_real_segmenter_with_flip(
    tiny_segmenter: nn.Module, tiny_pool: LabelledImages
) -> None:
    tiny_segmenter.eval()
    result = evaluate(tiny_segmenter, tiny_pool, batch_size=4, flip=True, progress=False)
    assert not tiny_segmenter.training
    assert int(result.confusion.sum()) == int((tiny_pool.labels != IGNORE).sum())
    assert 0.0 <= result.miou <= 1.0


# ---------------------------------------------------------------------------- evaluate: bad input


def test_evaluate_rejects_bad_input() -> None:
    images, labels, _ = oracle_data(4, seed=0)
    model = OracleModel(4)
    with pytest.raises(ValueError, match="dataset is empty"):
        evaluate(model, LabelledImages(images[:0], labels[:0]), progress=False)
    with pytest.raises(ValueError, match="batch_size must be a positive int"):
        evaluate(model, LabelledImages(images, labels), batch_size=0, progress=False)
    with pytest.raises(ValueError, match="num_classes=4 but dataset has num_classes=5"):
        evaluate(model, LabelledImages(images, labels, num_classes=5), progress=False)
    with pytest.raises(ValueError, match=r"subset indices \[4\]"):
        evaluate(model, LabelledImages(images, labels), subset13=[0, 4], progress=False)
    with pytest.raises(ValueError, match="must share"):
        evaluate(model, LabelledImages(images, labels[:, :-1]), progress=False)


def test_evaluate_rejects_wrong_number_of_logit_classes() -> None:
    images, labels, _ = oracle_data(4, seed=0)
    model = OracleModel(4, declare=False)  # the count is checked against the dataset's
    with pytest.raises(ValueError, match="logits with 4 classes, expected 6"):
        evaluate(model, LabelledImages(images, labels, num_classes=6), progress=False)


# ---------------------------------------------------------------------------------------- device


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_evaluate_on_cuda_matches_cpu(tiny_pool: LabelledImages) -> None:
    torch.manual_seed(0)
    model = build_backbone("deeplabv3plus-r18", 5, encoder_weights=None).eval()
    on_cpu = evaluate(model, tiny_pool, batch_size=2, progress=False)
    on_gpu = evaluate(model.to("cuda"), tiny_pool, batch_size=2, flip=True, progress=False)
    assert on_gpu.confusion.device.type == "cpu"
    assert on_gpu.class_pixels.tolist() == on_cpu.class_pixels.tolist()
    # Float differences may flip a few near-tie argmaxes: compare the metric, not every cell.
    assert on_gpu.miou == pytest.approx(
        evaluate(model.to("cpu"), tiny_pool, flip=True, progress=False).miou, abs=0.02
    )
    torch.testing.assert_close(
        on_gpu.class_mean_radius, on_cpu.class_mean_radius, rtol=1e-3, atol=0
    )

    pred = torch.randint(0, 5, (2, 9, 7), device="cuda")
    target = torch.randint(0, 5, (2, 9, 7), device="cuda")
    conf = confusion_matrix(pred, target, 5)
    assert conf.device.type == "cuda"
    np.testing.assert_array_equal(
        conf.cpu().numpy(), numpy_confusion(pred.cpu().numpy(), target.cpu().numpy(), 5)
    )


def test_label_size_upsamples_the_logits_to_the_labels_before_the_softmax() -> None:
    """eval.label_size: logits [8, 12] against labels [16, 24]: the confusion counts every label
    pixel, and equals the one of the official recipe computed by hand (bilinear with
    align_corners=True, then softmax, flip-averaged, argmax)."""
    g = torch.Generator().manual_seed(3)
    logits = torch.randn(2, 4, 8, 12, generator=g)
    labels = torch.randint(0, 4, (2, 16, 24), generator=g)
    images = torch.zeros(2, 3, 8, 12)
    images[1] = 1.0  # StoredLogitsModel: the image's first pixel picks its logits
    model = StoredLogitsModel(logits)
    for flip in (False, True):
        got = evaluate(
            model, LabelledImages(images, labels), flip=flip, label_size=True, progress=False
        )
        up = F.interpolate(logits, size=(16, 24), mode="bilinear", align_corners=True)
        probs = up.softmax(dim=1)
        if flip:  # the stored model answers the same logits for the mirrored image
            probs = 0.5 * (probs + probs.flip(-1))
        want = confusion_matrix(probs.argmax(dim=1), labels, 4)
        assert torch.equal(got.confusion, want)
        assert int(got.confusion.sum()) == labels.numel()

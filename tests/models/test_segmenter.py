"""Segmenter and backbone presets: every preset builds and trains a step, the output contract."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from halo.models.heads import HEADS, EuclideanHead, HyperbolicHead
from halo.models.segmenter import (
    ARCHITECTURES,
    BACKBONES,
    IMAGENET_MEAN,
    IMAGENET_STD,
    Segmenter,
    SegmenterOutput,
    build_backbone,
    build_segmenter,
    check_input_size,
    get_backbone,
)

NUM_CLASSES = 5
LIGHT = ["deeplabv3plus-r18", "deeplabv3plus-mbv2", "segformer-b0"]


def _images(seed: int = 0, size=(64, 96), batch: int = 2) -> torch.Tensor:
    return torch.rand(batch, 3, *size, generator=torch.Generator().manual_seed(seed))


def test_registry_names() -> None:
    assert set(BACKBONES) >= {
        "deeplabv3plus-r101",
        "segformer-b4",
        "deeplabv3plus-r18",
        "deeplabv3plus-mbv2",
        "segformer-b0",
    }
    for name, preset in BACKBONES.items():
        assert name == name.lower() == preset.name
        assert preset.arch in ARCHITECTURES


@pytest.mark.parametrize("name", sorted(BACKBONES))
def test_every_preset_builds_and_trains_a_step(name) -> None:
    # encoder_weights=None (the default): nothing is downloaded. Batch 2 for BatchNorm.
    torch.manual_seed(0)
    model = build_backbone(name, NUM_CLASSES)
    preset = get_backbone(name)
    assert isinstance(model, Segmenter)
    assert model.input_divisor == preset.input_divisor == model.encoder.output_stride
    assert isinstance(model.head, HyperbolicHead)
    assert model.head.in_channels == preset.decoder_channels
    images = _images(size=(64, 64))
    out = model(images)
    assert isinstance(out, SegmenterOutput)
    assert out.logits.shape == (2, NUM_CLASSES, 64, 64)
    assert out.embeddings.shape == (2, 64, 16, 16)
    assert out.radius.shape == (2, 16, 16)
    assert all(torch.isfinite(t).all() for t in out)
    labels = torch.randint(0, NUM_CLASSES, (2, 64, 64))
    F.cross_entropy(out.logits, labels).backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)


@pytest.mark.parametrize("name", LIGHT)
@pytest.mark.parametrize("head", sorted(HEADS))
def test_output_contract(name, head) -> None:
    torch.manual_seed(1)
    model = build_backbone(name, NUM_CLASSES, head=head)
    assert type(model) is Segmenter  # one class for both heads
    out = model(_images(size=(64, 96)))
    dim = 64 if head == "hyperbolic" else get_backbone(name).decoder_channels
    assert out.logits.shape == (2, NUM_CLASSES, 64, 96)
    assert out.embeddings.shape == (2, dim, 16, 24)
    assert out.radius.shape == (2, 16, 24)
    assert (out.radius >= 0).all()
    assert out.logits.dtype == out.embeddings.dtype == out.radius.dtype == torch.float32


def test_logits_are_the_head_logits_upsampled_and_images_normalised() -> None:
    torch.manual_seed(2)
    model = build_backbone("deeplabv3plus-mbv2", NUM_CLASSES).eval()
    images = _images(3)
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    with torch.no_grad():
        out = model(images)
        head_out = model.head(model.decoder(model.encoder((images - mean) / std)))
    expected = F.interpolate(
        head_out.logits, size=images.shape[-2:], mode="bilinear", align_corners=False
    )
    torch.testing.assert_close(out.logits, expected)
    torch.testing.assert_close(out.radius, head_out.radius)
    torch.testing.assert_close(out.embeddings, head_out.embeddings)


def test_normalisation_buffers_move_but_are_not_saved() -> None:
    model = build_backbone("segformer-b0", NUM_CLASSES)
    assert "mean" not in model.state_dict() and "std" not in model.state_dict()
    model = model.double()
    assert model.mean.dtype == torch.float64
    out = model(_images(4).double())
    assert out.logits.dtype == torch.float64


def test_state_dict_round_trip() -> None:
    torch.manual_seed(3)
    a = build_backbone("deeplabv3plus-r18", NUM_CLASSES).eval()
    torch.manual_seed(4)
    b = build_backbone("deeplabv3plus-r18", NUM_CLASSES).eval()
    b.load_state_dict(a.state_dict())
    images = _images(5)
    with torch.no_grad():
        torch.testing.assert_close(a(images).logits, b(images).logits)


def test_param_groups_split_encoder_from_decoder_and_head() -> None:
    model = build_backbone("deeplabv3plus-mbv2", NUM_CLASSES)
    groups = model.param_groups(1e-3)
    assert [g["name"] for g in groups] == ["encoder", "head"]
    assert groups[0]["lr"] == 1e-3 and groups[1]["lr"] == pytest.approx(1e-2)
    ids = [id(p) for g in groups for p in g["params"]]
    assert len(ids) == len(set(ids))
    assert set(ids) == {id(p) for p in model.parameters()}
    assert {id(p) for p in groups[0]["params"]} == {id(p) for p in model.encoder.parameters()}
    head_ids = {id(p) for p in groups[1]["params"]}
    assert {id(p) for p in model.head.parameters()} <= head_ids
    assert {id(p) for p in model.decoder.parameters()} <= head_ids
    torch.optim.SGD(groups, lr=1e-3, momentum=0.9)  # accepted as is
    with pytest.raises(ValueError, match="lr"):
        model.param_groups(0.0)


def test_decoder_channels_option_reaches_the_head() -> None:
    model = build_segmenter(
        "deeplabv3plus", "mobilenet_v2", NUM_CLASSES, head="euclidean", decoder_channels=512
    )
    assert isinstance(model.head, EuclideanHead)
    assert model.head.in_channels == 512
    assert model.head.hfr is None  # hfr=None: the Euclidean head's default is off
    out = model(_images(6))
    assert out.embeddings.shape[1] == 512


def test_build_segmenter_options() -> None:
    model = build_segmenter(
        "DeepLabV3Plus",  # smp's spelling is accepted
        "resnet18",
        NUM_CLASSES,
        embed_dim=16,
        curvature=0.5,
        hfr=False,
        encoder_output_stride=8,
    )
    assert model.head.embed_dim == 16 and model.head.curvature == 0.5 and model.head.hfr is None
    assert model.input_divisor == 8
    assert model(_images(7, size=(40, 56))).logits.shape == (2, NUM_CLASSES, 40, 56)


def test_build_backbone_overrides_win() -> None:
    model = build_backbone("segformer-b0", NUM_CLASSES, head="euclidean", decoder_channels=128)
    assert model.head_name == "euclidean" and model.head.in_channels == 128


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: build_backbone("unet-r18", 3), r"unknown backbone 'unet-r18'.*segformer-b0"),
        (lambda: build_segmenter("pspnet", "resnet18", 3), r"unknown architecture.*segformer"),
        (lambda: build_segmenter("segformer", "resnet1000", 3), r"unknown encoder.*mit_b0"),
        (lambda: build_segmenter("segformer", "mit_b0", 3, head="x"), r"unknown head.*euclidean"),
        (
            lambda: build_segmenter("segformer", "mit_b0", 3, encoder_output_stride=8),
            "encoder_output_stride",
        ),
    ],
)
def test_unknown_names_list_the_valid_ones(call, match) -> None:
    with pytest.raises(ValueError, match=match):
        call()


@pytest.mark.parametrize(
    ("backbone", "size", "ok"),
    [
        ("deeplabv3plus-r18", (512, 1024), True),
        ("deeplabv3plus-r18", (48, 80), True),
        ("deeplabv3plus-r18", (50, 80), False),
        ("segformer-b0", (48, 64), False),
        ("segformer-b0", (64, 96), True),
        ("segformer-b4", (0, 64), False),
    ],
)
def test_check_input_size(backbone, size, ok) -> None:
    if ok:
        check_input_size(backbone, *size)
    else:
        with pytest.raises(ValueError, match=r"multiples of (16|32)"):
            check_input_size(backbone, *size)


def test_forward_rejects_bad_images() -> None:
    model = build_backbone("segformer-b0", NUM_CLASSES)
    with pytest.raises(ValueError, match="multiples of 32"):
        model(_images(size=(48, 64)))
    with pytest.raises(ValueError, match=r"\[B, 3, H, W\]"):
        model(torch.rand(2, 1, 64, 64))
    with pytest.raises(ValueError, match="floating point"):
        model(torch.zeros(2, 3, 64, 64, dtype=torch.uint8))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("head", sorted(HEADS))
def test_segmenter_follows_the_device(head) -> None:
    model = build_backbone("deeplabv3plus-r18", NUM_CLASSES, head=head).to("cuda")
    out = model(_images().to("cuda"))
    assert all(t.device.type == "cuda" for t in out)
    out.logits.sum().backward()


def test_frozen_batchnorm_keeps_the_statistics_and_never_trains() -> None:
    """freeze_batchnorm: the same output as the BatchNorm in eval mode, in train and eval mode
    alike, no trainable parameter and no statistics update."""
    from torchvision.ops import FrozenBatchNorm2d

    from halo.models.segmenter import freeze_batchnorm

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.ReLU())
    net(torch.randn(8, 3, 9, 9))  # move the running statistics off their start values
    net[1].weight.data.uniform_(0.5, 2.0)
    net.eval()
    x = torch.randn(2, 3, 9, 9)
    expected = net(x)
    frozen = freeze_batchnorm(net).train()
    assert isinstance(frozen[1], FrozenBatchNorm2d)
    torch.testing.assert_close(frozen(x), expected)
    before = frozen[1].running_mean.clone()
    frozen(torch.randn(4, 3, 9, 9) * 5)
    torch.testing.assert_close(frozen[1].running_mean, before)
    assert {n for n, p in frozen.named_parameters()} == {"0.weight", "0.bias"}


def test_a_frozen_bn_segmenter_has_no_trainable_batchnorm2d_left() -> None:
    from torchvision.ops import FrozenBatchNorm2d

    seg = build_backbone("deeplabv3plus-r18", 5, encoder_weights=None, frozen_bn=True)
    kinds = {type(m) for m in seg.encoder.modules()}
    assert FrozenBatchNorm2d in kinds and torch.nn.BatchNorm2d not in kinds
    assert torch.nn.BatchNorm2d not in {type(m) for m in seg.decoder.modules()}  # as official

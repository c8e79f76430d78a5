"""The segmenter: an smp encoder + decoder with one of our heads, and the backbone presets.

``build_segmenter`` builds a segmentation-models-pytorch model, keeps its ``encoder`` and
``decoder`` untouched and puts a head from :data:`~halo.models.heads.HEADS` where smp's
``segmentation_head`` was. :class:`Segmenter` normalises ``[0, 1]`` RGB images with the ImageNet
statistics itself, runs the head at the decoder's resolution (stride 4 for DeepLabV3+ and
SegFormer) and upsamples only the logits to the input size (bilinear, ``align_corners=False``).

``BACKBONES`` names the presets: the paper's two families (``deeplabv3plus-r101``,
``segformer-b4``) and light CPU ones (``deeplabv3plus-r18``, ``deeplabv3plus-mbv2``,
``segformer-b0``). Each preset knows the input-size divisor its output stride needs;
:func:`check_input_size` rejects an image size the backbone cannot take.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from halo.models.heads import HEADS, build_head, lookup

__all__ = [
    "ARCHITECTURES",
    "BACKBONES",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "BackbonePreset",
    "Segmenter",
    "SegmenterOutput",
    "build_backbone",
    "build_segmenter",
    "check_input_size",
    "get_backbone",
]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class SegmenterOutput(NamedTuple):
    """What :meth:`Segmenter.forward` returns.

    Attributes:
        logits: ``[B, K, H, W]`` at the input resolution (unnormalised class scores).
        embeddings: ``[B, D, h, w]`` at the decoder's resolution: ball points (hyperbolic head)
            or the classifier's input features (Euclidean head).
        radius: ``[B, h, w]`` at the decoder's resolution: ``d(0, x) = 2 ||v||`` (hyperbolic) or
            the feature L2 norm (Euclidean). Acquisition reads this; nobody recomputes it.
    """

    logits: Tensor
    embeddings: Tensor
    radius: Tensor


@dataclass(frozen=True)
class _Architecture:
    smp_name: str
    decoder_channels_arg: str  # the smp keyword that sets the decoder's output channels
    output_stride_arg: str | None  # the smp keyword for the encoder's output stride, if any


ARCHITECTURES: dict[str, _Architecture] = {
    "deeplabv3plus": _Architecture("DeepLabV3Plus", "decoder_channels", "encoder_output_stride"),
    "segformer": _Architecture("Segformer", "decoder_segmentation_channels", None),
}
"""Supported smp architectures (lower-case name -> how to configure it)."""


def _check_encoder_name(encoder: str) -> None:
    if not isinstance(encoder, str):
        raise ValueError(f"encoder must be an smp encoder name (str), got {encoder!r}")
    if encoder.startswith("tu-"):
        return  # timm universal encoders: smp/timm validate the rest
    import segmentation_models_pytorch as smp  # lazy: config validation needs no smp (~4 s)

    names = smp.encoders.get_encoder_names()
    if encoder not in names:
        raise ValueError(
            f"unknown encoder {encoder!r}; valid smp encoder names: {', '.join(names)} "
            "(or 'tu-<timm model>')"
        )


def _check_divisible(height: int, width: int, divisor: int, what: str) -> None:
    if height <= 0 or width <= 0 or height % divisor or width % divisor:
        raise ValueError(
            f"image size (H, W) = ({height}, {width}) is not valid for {what}: both must be "
            f"positive multiples of {divisor} (the encoder's output stride)"
        )


class Segmenter(nn.Module):
    """Encoder + decoder (from smp) + head (ours), one class for every head.

    Args:
        encoder: smp encoder (``images [B, 3, H, W] -> list of feature maps``).
        decoder: smp decoder (``features -> [B, C_dec, h, w]``).
        head: a registered head (``[B, C_dec, h, w] -> HeadOutput``).
        input_divisor: H and W must be multiples of this (the encoder's output stride).
        head_name: the head's registry name, kept for checkpoints and logs.
    """

    def __init__(
        self,
        encoder: nn.Module,
        decoder: nn.Module,
        head: nn.Module,
        *,
        input_divisor: int,
        head_name: str,
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder
        self.head = head
        self.input_divisor = int(input_divisor)
        self.head_name = head_name
        self.num_classes = head.num_classes
        self.embed_dim = head.embed_dim
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), False)

    def check_input_size(self, height: int, width: int) -> None:
        """Raise ``ValueError`` unless ``(height, width)`` are multiples of ``input_divisor``."""
        _check_divisible(height, width, self.input_divisor, "this segmenter")

    def forward(self, images: Tensor) -> SegmenterOutput:
        """Segment a batch of images.

        Args:
            images: float ``[B, 3, H, W]`` RGB in ``[0, 1]`` (not normalised; this module applies
                the ImageNet mean/std). H and W must be multiples of ``input_divisor``.

        Returns:
            ``SegmenterOutput(logits [B, K, H, W], embeddings [B, D, h, w], radius [B, h, w])``
            with ``h x w`` the decoder's resolution (``H/4 x W/4`` for the presets).
        """
        if not isinstance(images, Tensor) or images.dim() != 4 or images.shape[1] != 3:
            shape = tuple(images.shape) if isinstance(images, Tensor) else type(images).__name__
            raise ValueError(f"images must be a [B, 3, H, W] RGB tensor, got {shape}")
        if not images.is_floating_point():
            raise ValueError(f"images must be floating point in [0, 1], got dtype {images.dtype}")
        height, width = images.shape[-2:]
        self.check_input_size(height, width)
        x = (images - self.mean.to(images.dtype)) / self.std.to(images.dtype)
        features = self.decoder(self.encoder(x))
        out = self.head(features)
        logits = out.logits
        if logits.shape[-2:] != (height, width):
            logits = F.interpolate(
                logits, size=(height, width), mode="bilinear", align_corners=False
            )
        return SegmenterOutput(logits, out.embeddings, out.radius)

    def encoder_parameters(self) -> Iterator[nn.Parameter]:
        """Parameters of the (pretrainable) encoder."""
        return self.encoder.parameters()

    def head_parameters(self) -> Iterator[nn.Parameter]:
        """Parameters of the decoder and the head ("head" in the RIPU/HALO lr convention)."""
        yield from self.decoder.parameters()
        yield from self.head.parameters()

    def param_groups(self, lr: float, *, head_lr_scale: float = 10.0) -> list[dict]:
        """Optimizer parameter groups: encoder at ``lr``, decoder + head at ``lr * head_lr_scale``.

        Args:
            lr: the encoder's learning rate (1e-3 in HALO/RIPU).
            head_lr_scale: factor for decoder + head (10 in HALO/RIPU).

        Returns:
            ``[{"name": "encoder", "params": [...], "lr": lr},
            {"name": "head", "params": [...], "lr": lr * head_lr_scale}]``, for any
            ``torch.optim`` optimizer.
        """
        if not lr > 0 or not head_lr_scale > 0:
            raise ValueError(f"lr and head_lr_scale must be > 0, got {lr!r}, {head_lr_scale!r}")
        return [
            {"name": "encoder", "params": list(self.encoder_parameters()), "lr": lr},
            {"name": "head", "params": list(self.head_parameters()), "lr": lr * head_lr_scale},
        ]


def build_segmenter(
    arch: str,
    encoder: str,
    num_classes: int,
    head: str = "hyperbolic",
    embed_dim: int = 64,
    curvature: float = 1.0,
    hfr: bool | None = None,
    encoder_weights: str | None = None,
    *,
    decoder_channels: int | None = None,
    encoder_output_stride: int | None = None,
    precision: str = "float32",
    **arch_options: object,
) -> Segmenter:
    """Build a :class:`Segmenter` from an smp architecture, an smp encoder and a head name.

    Args:
        arch: a key of :data:`ARCHITECTURES` (``"deeplabv3plus"``, ``"segformer"``;
            case-insensitive, so smp's ``"DeepLabV3Plus"`` works too).
        encoder: any smp encoder name (``"resnet101"``, ``"mit_b4"``, ``"tu-..."``).
        num_classes: number of classes ``K``.
        head: a key of :data:`~halo.models.heads.HEADS` (``"hyperbolic"`` or ``"euclidean"``).
        embed_dim: ball dimension (hyperbolic head only).
        curvature: ``c > 0`` (hyperbolic head only).
        hfr: hyperbolic feature reweighting; ``None`` means the head's default (on for the
            hyperbolic head, off for the Euclidean one).
        encoder_weights: smp pretrained weights name (``"imagenet"``) or ``None`` (tests: always
            ``None``; nothing is downloaded then).
        decoder_channels: decoder output channels (smp's default, 256, when ``None``).
        encoder_output_stride: DeepLabV3+ only: 8 or 16 (smp's default 16 when ``None``).
        precision: ``"float32"`` or ``"float64"`` for the hyperbolic math (hyperbolic head only).
        **arch_options: further keyword arguments for the smp architecture.

    Returns:
        The segmenter (training mode, on CPU, float32).

    Raises:
        ValueError: unknown ``arch``, ``encoder`` or ``head`` (the message lists valid names), or
            an option the architecture does not take.
    """
    spec = lookup(ARCHITECTURES, arch, "architecture")
    _check_encoder_name(encoder)
    lookup(HEADS, head, "head")  # fail before the (slow) smp build
    head_name = head.lower()
    head_options: dict[str, object] = {}
    if hfr is not None:
        head_options["hfr"] = bool(hfr)
    if head_name == "hyperbolic":
        head_options.update(embed_dim=embed_dim, curvature=curvature, precision=precision)
    smp_options = dict(arch_options)
    if decoder_channels is not None:
        smp_options[spec.decoder_channels_arg] = decoder_channels
    if encoder_output_stride is not None:
        if spec.output_stride_arg is None:
            raise ValueError(f"encoder_output_stride is not an option of architecture {arch!r}")
        smp_options[spec.output_stride_arg] = encoder_output_stride
    import segmentation_models_pytorch as smp

    model = smp.create_model(
        spec.smp_name,
        encoder_name=encoder,
        encoder_weights=encoder_weights,
        classes=num_classes,
        **smp_options,
    )
    in_channels = model.segmentation_head[0].in_channels
    head_module = build_head(head, in_channels, num_classes, **head_options)
    return Segmenter(
        model.encoder,
        model.decoder,
        head_module,
        input_divisor=model.encoder.output_stride,
        head_name=head_name,
    )


@dataclass(frozen=True)
class BackbonePreset:
    """A named encoder + decoder configuration.

    Attributes:
        name: registry name (lower-case).
        arch: key of :data:`ARCHITECTURES`.
        encoder: smp encoder name.
        decoder_channels: decoder output channels.
        input_divisor: H and W must be multiples of this (the encoder's output stride).
        encoder_output_stride: DeepLabV3+'s encoder output stride, ``None`` for SegFormer.
        description: one line for listings.
    """

    name: str
    arch: str
    encoder: str
    decoder_channels: int
    input_divisor: int
    encoder_output_stride: int | None = None
    description: str = ""


BACKBONES: dict[str, BackbonePreset] = {
    p.name: p
    for p in (
        BackbonePreset(
            name="deeplabv3plus-r101",
            arch="deeplabv3plus",
            encoder="resnet101",
            decoder_channels=512,
            input_divisor=16,
            encoder_output_stride=16,
            description="paper: DeepLabV3+ ResNet-101, 512-channel decoder as the official HALO/RIPU code",
        ),
        BackbonePreset(
            name="segformer-b4",
            arch="segformer",
            encoder="mit_b4",
            decoder_channels=768,
            input_divisor=32,
            encoder_output_stride=None,
            description="paper: SegFormer MiT-B4, 768-channel MLP decoder as SegFormer-B4",
        ),
        BackbonePreset(
            name="deeplabv3plus-r18",
            arch="deeplabv3plus",
            encoder="resnet18",
            decoder_channels=256,
            input_divisor=16,
            encoder_output_stride=16,
            description="light: DeepLabV3+ ResNet-18 for CPU runs",
        ),
        BackbonePreset(
            name="deeplabv3plus-mbv2",
            arch="deeplabv3plus",
            encoder="mobilenet_v2",
            decoder_channels=256,
            input_divisor=16,
            encoder_output_stride=16,
            description="light: DeepLabV3+ MobileNetV2 for CPU runs",
        ),
        BackbonePreset(
            name="segformer-b0",
            arch="segformer",
            encoder="mit_b0",
            decoder_channels=256,
            input_divisor=32,
            encoder_output_stride=None,
            description="light: SegFormer MiT-B0 for CPU runs",
        ),
    )
}
"""Backbone presets, lower-case name -> :class:`BackbonePreset`."""


def get_backbone(name: str) -> BackbonePreset:
    """The preset called ``name``; ``ValueError`` listing the valid names otherwise."""
    return lookup(BACKBONES, name, "backbone")


def build_backbone(name: str, num_classes: int, **overrides: object) -> Segmenter:
    """Build the segmenter of a backbone preset.

    Args:
        name: a key of :data:`BACKBONES`.
        num_classes: number of classes ``K``.
        **overrides: keyword arguments of :func:`build_segmenter` (``head``, ``embed_dim``,
            ``curvature``, ``hfr``, ``encoder_weights``, ``decoder_channels``, ...); they win over
            the preset's values.

    Returns:
        The segmenter.
    """
    preset = get_backbone(name)
    options: dict[str, object] = {"decoder_channels": preset.decoder_channels}
    if preset.encoder_output_stride is not None:
        options["encoder_output_stride"] = preset.encoder_output_stride
    options.update(overrides)
    return build_segmenter(preset.arch, preset.encoder, num_classes, **options)


def check_input_size(backbone: str, height: int, width: int) -> None:
    """Reject an image size the backbone preset cannot take.

    Args:
        backbone: a key of :data:`BACKBONES`.
        height: image height H in pixels.
        width: image width W in pixels.

    Raises:
        ValueError: unknown backbone, or H / W not positive multiples of its input divisor.
    """
    preset = get_backbone(backbone)
    _check_divisible(height, width, preset.input_divisor, f"backbone {preset.name!r}")

"""The model tables, torch-free: smp architectures, backbone presets and the head registry.

Config validation (and so the workflow's parse step) checks backbone and head names and image
sizes against these tables without importing torch or smp; :mod:`halo.models.segmenter` builds
from them. The head classes live in :mod:`halo.models.heads`; :data:`HEADS` names them lazily
(docs/design.md, section "Registries").
"""

from __future__ import annotations

from dataclasses import dataclass

from halo.registry import Registry

__all__ = [
    "ARCHITECTURES",
    "BACKBONES",
    "DECODERS",
    "HEADS",
    "Architecture",
    "BackbonePreset",
    "check_divisible",
    "check_input_size",
    "get_backbone",
]


@dataclass(frozen=True)
class Architecture:
    """How to configure one smp architecture.

    Attributes:
        smp_name: the name ``smp.create_model`` takes.
        decoder_channels_arg: the smp keyword that sets the decoder's output channels.
        output_stride_arg: the smp keyword for the encoder's output stride, if any.
    """

    smp_name: str
    decoder_channels_arg: str
    output_stride_arg: str | None


ARCHITECTURES: Registry[Architecture] = Registry(
    "architecture",
    {
        "deeplabv3plus": Architecture("DeepLabV3Plus", "decoder_channels", "encoder_output_stride"),
        "segformer": Architecture("Segformer", "decoder_segmentation_channels", None),
    },
)
"""Supported smp architectures (lower-case name -> how to configure it)."""


HEADS: Registry = Registry("head")
"""Head registry: lower-case name -> head class of :mod:`halo.models.heads` (imported on use)."""
HEADS.add_lazy("euclidean", "halo.models.heads:EuclideanHead")
HEADS.add_lazy("hyperbolic", "halo.models.heads:HyperbolicHead")

DECODERS: Registry = Registry("decoder")
"""Decoder registry: name -> a function of :mod:`halo.models.decoders` that takes the decoder smp
built and the head, and returns the decoder to use (``smp``: as built; ``official``: the official
code's DeepLabV3+ or SegFormer decode head, and the head as that code builds it)."""
DECODERS.add_lazy("smp", "halo.models.decoders:smp_decoder")
DECODERS.add_lazy("official", "halo.models.decoders:official")


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
        decoder_options: further smp keyword arguments of the decoder (e.g. the ASPP's
            ``decoder_atrous_rates``); pairs, so the preset stays hashable.
        description: one line for listings.
    """

    name: str
    arch: str
    encoder: str
    decoder_channels: int
    input_divisor: int
    encoder_output_stride: int | None = None
    decoder_options: tuple[tuple[str, object], ...] = ()
    description: str = ""


BACKBONES: Registry[BackbonePreset] = Registry(
    "backbone",
    (
        (p.name, p)
        for p in (
            BackbonePreset(
                name="deeplabv3plus-r101",
                arch="deeplabv3plus",
                encoder="resnet101",
                decoder_channels=512,
                input_divisor=8,
                encoder_output_stride=8,
                decoder_options=(("decoder_atrous_rates", (6, 12, 18)),),
                description="paper: DeepLabV3+ ResNet-101 at output stride 8 (layers 3-4 "
                "dilated), separable ASPP at rates 6/12/18, 512-channel decoder, 48-channel "
                "low-level projection, as the official HALO/RIPU code",
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
    ),
)
"""Backbone presets, lower-case name -> :class:`BackbonePreset`."""


def get_backbone(name: str) -> BackbonePreset:
    """The preset called ``name``; ``ValueError`` listing the valid names otherwise."""
    return BACKBONES.lookup(name)


def check_divisible(height: int, width: int, divisor: int, what: str) -> None:
    """Raise ``ValueError`` unless H and W are positive multiples of ``divisor``."""
    if height <= 0 or width <= 0 or height % divisor or width % divisor:
        raise ValueError(
            f"image size (H, W) = ({height}, {width}) is not valid for {what}: both must be "
            f"positive multiples of {divisor} (the encoder's output stride)"
        )


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
    check_divisible(height, width, preset.input_divisor, f"backbone {preset.name!r}")

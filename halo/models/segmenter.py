"""The segmenter: an smp encoder + decoder with one of our heads.

``build_segmenter`` builds a segmentation-models-pytorch model, keeps its ``encoder`` and
``decoder`` untouched and puts a head from :data:`~halo.models.heads.HEADS` where smp's
``segmentation_head`` was. :class:`Segmenter` normalises ``[0, 1]`` RGB images with the ImageNet
statistics itself, runs the head at the decoder's resolution (stride 4 for DeepLabV3+ and
SegFormer) and upsamples only the logits to the input size (bilinear, ``align_corners=False``).

``BACKBONES`` (in :mod:`halo.models.presets`, torch-free, re-exported here) names the presets:
the paper's two families (``deeplabv3plus-r101``, ``segformer-b4``) and light CPU ones
(``deeplabv3plus-r18``, ``deeplabv3plus-mbv2``, ``segformer-b0``). Each preset knows the
input-size divisor its output stride needs; :func:`check_input_size` rejects an image size the
backbone cannot take.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from halo.models.heads import build_head
from halo.models.presets import (
    ARCHITECTURES,
    BACKBONES,
    DECODERS,
    HEADS,
    BackbonePreset,
    check_divisible,
    check_input_size,
    get_backbone,
)

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
    "module_device",
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


def module_device(module: nn.Module) -> torch.device:
    """The device of a module's first parameter (or buffer); the CPU for a stateless module.

    Device follows the data: evaluation and acquisition run where the model's weights are."""
    for tensor in itertools.chain(module.parameters(), module.buffers()):
        return tensor.device
    return torch.device("cpu")


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
        check_divisible(height, width, self.input_divisor, "this segmenter")

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


def freeze_batchnorm(module: nn.Module) -> nn.Module:
    """Replace, in place, every ``BatchNorm2d`` below ``module`` by a torchvision
    ``FrozenBatchNorm2d`` holding the same running statistics and affine parameters (constant
    buffers: no gradient, no statistics update, the same output in train and eval mode).

    Returns:
        ``module`` (a ``BatchNorm2d`` passed itself is returned frozen).
    """
    from torchvision.ops import FrozenBatchNorm2d

    def frozen(bn: nn.BatchNorm2d) -> FrozenBatchNorm2d:
        out = FrozenBatchNorm2d(bn.num_features, eps=bn.eps)
        with torch.no_grad():
            if bn.affine:
                out.weight.copy_(bn.weight)
                out.bias.copy_(bn.bias)
            if bn.running_mean is not None:
                out.running_mean.copy_(bn.running_mean)
                out.running_var.copy_(bn.running_var)
        return out

    if isinstance(module, nn.BatchNorm2d):
        return frozen(module)
    for name, child in list(module.named_children()):
        if isinstance(child, nn.BatchNorm2d):
            setattr(module, name, frozen(child))
        else:
            freeze_batchnorm(child)
    return module


def _head_options(
    head: str, hfr: bool | None, embed_dim: int, curvature: float, precision: str, normalize: bool
) -> dict[str, object]:
    """The keyword options of the head ``head`` (build_segmenter's arguments that concern it)."""
    options: dict[str, object] = {}
    if hfr is not None:
        options["hfr"] = bool(hfr)
    if head.lower() == "hyperbolic":
        options.update(embed_dim=embed_dim, curvature=curvature, precision=precision)
        if not normalize:
            options["hfr_normalize"] = False
    return options


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
    frozen_bn: bool = False,
    hfr_normalize: bool = True,
    decoder: str = "smp",
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
        frozen_bn: replace every BatchNorm2d of the encoder and the decoder by a
            FrozenBatchNorm2d with its statistics and affine parameters (the official recipe with
            ImageNet weights: the encoder's normalisation is never trained or updated, and the
            decoder's, frozen at their initial values, are identities); the head's HFR keeps
            its BatchNorm1d.
        hfr_normalize: the hyperbolic head's HFR normalises each channel map over the pixels
            (HALO; ``False``: the ablation without it).
        decoder: a key of :data:`~halo.models.presets.DECODERS`: ``"smp"`` (smp's decoder) or
            ``"official"`` (DeepLabV3+ rebuilt as the official HALO code's:
            :mod:`halo.models.decoders`).
        **arch_options: further keyword arguments for the smp architecture.

    Returns:
        The segmenter (training mode, on CPU, float32).

    Raises:
        ValueError: unknown ``arch``, ``encoder`` or ``head`` (the message lists valid names), or
            an option the architecture does not take.
    """
    spec = ARCHITECTURES.lookup(arch)
    _check_encoder_name(encoder)
    HEADS.lookup(head)  # fail before the (slow) smp build
    rebuild = DECODERS.lookup(decoder)
    head_options = _head_options(head, hfr, embed_dim, curvature, precision, hfr_normalize)
    smp_options = _smp_options(spec, arch, arch_options, decoder_channels, encoder_output_stride)
    model = _smp_model(spec.smp_name, encoder, encoder_weights, num_classes, smp_options)
    in_channels = model.segmentation_head[0].in_channels
    head_module = build_head(head, in_channels, num_classes, **head_options)
    model.decoder = rebuild(model.decoder, head_module)
    if frozen_bn:  # the encoder's and the decoder's, as the official code (not the head's)
        freeze_batchnorm(model.encoder)
        freeze_batchnorm(model.decoder)
    return Segmenter(
        model.encoder,
        model.decoder,
        head_module,
        input_divisor=model.encoder.output_stride,
        head_name=head.lower(),
    )


def _smp_model(name: str, encoder: str, weights: str | None, num_classes: int, options: dict):
    """smp's model ``name`` (its encoder, decoder and segmentation head)."""
    import segmentation_models_pytorch as smp

    return smp.create_model(
        name, encoder_name=encoder, encoder_weights=weights, classes=num_classes, **options
    )


def _smp_options(spec, arch: str, options: dict, decoder_channels, output_stride) -> dict:
    """The smp architecture's keyword arguments: ``options`` plus its names for the decoder
    width and the encoder's output stride."""
    smp_options = dict(options)
    if decoder_channels is not None:
        smp_options[spec.decoder_channels_arg] = decoder_channels
    if output_stride is not None:
        if spec.output_stride_arg is None:
            raise ValueError(f"encoder_output_stride is not an option of architecture {arch!r}")
        smp_options[spec.output_stride_arg] = output_stride
    return smp_options


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
    options.update(dict(preset.decoder_options))
    options.update(overrides)
    return build_segmenter(preset.arch, preset.encoder, num_classes, **options)

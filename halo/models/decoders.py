"""Decoders: smp's as it builds them, or rebuilt to the official HALO code's layouts.

:data:`halo.models.presets.DECODERS` names them (``model.decoder`` in a config). Each entry takes
the decoder smp built and the head, and returns the decoder to use; ``official`` dispatches on
the decoder smp built (:func:`official`). For DeepLabV3+ it rebuilds smp's
``DeepLabV3PlusDecoder`` in place, as the official ``DepthwiseSeparableASPP(_Hyper)``
(``core/models/classifier.py``): the ASPP's dilated branches as depthwise-separable convolutions
with a BatchNorm and ReLU after each half, the branches fused by one 3×3 convolution (no 1×1
projection, no dropout, no extra separable convolution), the 48-channel low-level shortcut
kept, then two depthwise-separable 3×3 convolutions and ``Dropout2d(0.1)``; every convolution
initialised as the official ``_init_weight`` (Kaiming normal; BatchNorm weight 1, bias 0), and so
are the head's convolutions that the official classifier module holds (:func:`official_head_init`).
The widths are smp's ``decoder_channels`` (512 in the paper configs, as official).

For SegFormer (the official ``acdc`` branch, ``core/models/segformer.py:25-140``: Hugging Face's
``SegformerDecodeHead``) smp's decoder already has its layout — a linear layer per stage to the
decoder width, bilinear upsampling to 1/4, the stages concatenated deepest first, a bias-free 1×1
fusion, BatchNorm, ReLU — and gains the ``Dropout(0.1)`` after it (``classifier_dropout_prob``);
every linear and convolution of the decoder and of the head (the HFR's too) is initialised as
Hugging Face's ``_init_weights`` (normal, std 0.02, zero biases; BatchNorm 1 and 0). The hyperbolic head maps the decoder's features
into the ball as they are (no 1×1 reduction: ``model.embed_dim`` must equal the decoder width,
768 for MiT-B4), as the official ``HyperMLR(config.decoder_hidden_size, …)``.
"""

from __future__ import annotations

import math

from torch import nn

__all__ = [
    "depthwise_separable",
    "official",
    "official_deeplabv3plus",
    "official_head_init",
    "official_segformer",
    "smp_decoder",
]


def smp_decoder(decoder: nn.Module, head: nn.Module) -> nn.Module:
    """smp's decoder as built (the head keeps its own init)."""
    del head
    return decoder


def depthwise_separable(cin: int, cout: int, dilation: int = 1) -> nn.Sequential:
    """A 3×3 depthwise convolution, BatchNorm, ReLU, a 1×1 pointwise convolution, BatchNorm, ReLU
    (the official ``DepthwiseSeparableConv2d``; no biases). ``(N, cin, H, W) -> (N, cout, H, W)``."""
    return nn.Sequential(
        nn.Conv2d(cin, cin, 3, padding=dilation, dilation=dilation, groups=cin, bias=False),
        nn.BatchNorm2d(cin),
        nn.ReLU(),
        nn.Conv2d(cin, cout, 1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(),
    )


def _dilation(branch: nn.Module) -> int:
    """The dilation of an smp ASPP branch (its first dilated or 3×3 convolution)."""
    convs = [m for m in branch.modules() if isinstance(m, nn.Conv2d) and m.kernel_size != (1, 1)]
    return int(convs[0].dilation[0])


def official_deeplabv3plus(decoder: nn.Module, head: nn.Module) -> nn.Module:
    """smp's ``DeepLabV3PlusDecoder`` rebuilt as the official code's, and ``head``'s convolutions
    initialised as that code's classifier module initialises them (module docstring).

    Raises:
        ValueError: ``decoder`` is not a DeepLabV3+ decoder (the official layout is DeepLabV3+'s).
    """
    from segmentation_models_pytorch.decoders.deeplabv3.decoder import DeepLabV3PlusDecoder

    if not isinstance(decoder, DeepLabV3PlusDecoder):
        raise ValueError(
            f"decoder 'official' is DeepLabV3+'s; this backbone's decoder is "
            f"{type(decoder).__name__} (use decoder 'smp')"
        )
    aspp = decoder.aspp[0]
    first = aspp.convs[0][0]  # the 1x1 branch: its widths are the ASPP's
    cin, width = first.in_channels, first.out_channels
    for i in (1, 2, 3):
        aspp.convs[i] = depthwise_separable(cin, width, _dilation(aspp.convs[i]))
    aspp.project = nn.Sequential(
        nn.Conv2d(5 * width, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU()
    )
    decoder.aspp = nn.Sequential(aspp)  # no separable convolution after the fusion
    fused = decoder.block1[0].out_channels + width  # the low-level shortcut's 48 + the ASPP's
    decoder.block2 = nn.Sequential(
        depthwise_separable(fused, width), depthwise_separable(width, width), nn.Dropout2d(0.1)
    )
    for m in decoder.modules():  # the official _init_weight
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    official_head_init(head)
    return decoder


def official_head_init(head: nn.Module) -> nn.Module:
    """The official ``_init_weight`` on the head's convolutions that the official classifier
    module holds as ``Conv2d`` (the Euclidean head's ``classifier``, the hyperbolic head's
    ``reduce``): weights Kaiming normal, biases PyTorch's default (uniform in ±1/sqrt(fan_in)),
    which ``_init_weight`` leaves as they are. The HFR MLP (official ``nn.Linear``, untouched by
    ``_init_weight``) and the hyperbolic class parameters keep their own init."""
    for name in ("classifier", "reduce"):
        conv = getattr(head, name, None)
        if isinstance(conv, nn.Conv2d):
            nn.init.kaiming_normal_(conv.weight)
            if conv.bias is not None:
                bound = 1 / math.sqrt(conv.weight[0].numel())
                nn.init.uniform_(conv.bias, -bound, bound)
    return head


def official(decoder: nn.Module, head: nn.Module) -> nn.Module:
    """``model.decoder: official``: the official code's decoder for the one smp built —
    :func:`official_deeplabv3plus` or :func:`official_segformer`.

    Raises:
        ValueError: smp built another decoder (the official code has only these two).
    """
    from segmentation_models_pytorch.decoders.deeplabv3.decoder import DeepLabV3PlusDecoder
    from segmentation_models_pytorch.decoders.segformer.decoder import SegformerDecoder

    if isinstance(decoder, DeepLabV3PlusDecoder):
        return official_deeplabv3plus(decoder, head)
    if isinstance(decoder, SegformerDecoder):
        return official_segformer(decoder, head)
    raise ValueError(
        f"decoder 'official' is DeepLabV3+'s or SegFormer's; this backbone's decoder is "
        f"{type(decoder).__name__} (use decoder 'smp')"
    )


def official_segformer(decoder: nn.Module, head: nn.Module) -> nn.Module:
    """smp's ``SegformerDecoder`` as the official SegFormer decode head (module docstring): the
    fusion followed by ``Dropout(0.1)``, Hugging Face's initialisation of the decoder and of the
    head's convolutions, and the hyperbolic head without its 1×1 reduction.

    Raises:
        ValueError: the hyperbolic head's ball dimension is not the decoder width.
    """
    if hasattr(head, "reduce"):
        if head.embed_dim != head.in_channels:
            raise ValueError(
                f"decoder 'official' for SegFormer maps the {head.in_channels}-d decoder features "
                f"into the ball as they are: set model.embed_dim={head.in_channels} (got "
                f"{head.embed_dim})"
            )
        head.reduce = nn.Identity()
    decoder.fuse_stage = nn.Sequential(decoder.fuse_stage, nn.Dropout(0.1))
    for m in [*decoder.modules(), *head.modules()]:  # Hugging Face's _init_weights
        if isinstance(m, (nn.Linear, nn.Conv2d)):  # the HFR's too, as in the official head
            nn.init.normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    return decoder

"""The official DeepLabV3+ decoder (halo.models.decoders) against the official code's layout."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from halo.config import ConfigError, build_config, resolve
from halo.models.segmenter import build_backbone


def _official_parameters(cin: int, low: int, width: int) -> int:
    """Parameters of the official ``DepthwiseSeparableASPP(_Hyper)`` up to its decoder's dropout
    (core/models/classifier.py): 1x1 branch, three depthwise-separable dilated branches, image
    pooling, the 3x3 bottleneck, the 48-channel shortcut, two depthwise-separable convolutions."""
    bn = lambda c: 2 * c  # noqa: E731
    separable = lambda i, o: i * 9 + bn(i) + i * o + bn(o)  # noqa: E731
    aspp = 2 * (cin * width + bn(width)) + 3 * separable(cin, width)
    bottleneck = 5 * width * width * 9 + bn(width)
    shortcut = low * 48 + bn(48)
    return aspp + bottleneck + shortcut + separable(width + 48, width) + separable(width, width)


@pytest.mark.parametrize(
    ("backbone", "width", "cin", "low"),
    [("deeplabv3plus-r101", 512, 2048, 256), ("deeplabv3plus-r18", 256, 512, 64)],
)
def test_the_official_decoder_has_the_official_layers(backbone, width, cin, low):
    model = build_backbone(backbone, 19, decoder_channels=width, decoder="official")
    count = sum(p.numel() for p in model.decoder.parameters())
    assert count == _official_parameters(cin, low, width)
    dropouts = [m for m in model.decoder.modules() if isinstance(m, nn.Dropout | nn.Dropout2d)]
    assert [(type(m), m.p) for m in dropouts] == [(nn.Dropout2d, 0.1)]  # none in the ASPP
    smp = build_backbone(backbone, 19, decoder_channels=width)
    images = torch.randn(2, 3, 64, 96)
    out, ref = model.eval()(images), smp.eval()(images)
    assert out.logits.shape == ref.logits.shape and out.radius.shape == ref.radius.shape
    assert torch.isfinite(out.logits).all()
    twin = build_backbone(backbone, 19, decoder_channels=width, decoder="official")
    twin.load_state_dict(model.state_dict())  # a checkpoint restores into the same layout
    assert torch.equal(twin.eval()(images).logits, out.logits)


def test_the_official_decoder_is_deeplabv3plus_only_and_named_in_the_model_key():
    with pytest.raises(ValueError, match="DeepLabV3"):
        build_backbone("segformer-b0", 19, decoder="official", head="euclidean")
    with pytest.raises(ConfigError, match=r"model.decoder: 'official'.*use model.decoder=smp"):
        resolve(build_config({"backbone": "segformer-b0", "model": {"decoder": "official"}}))
    with pytest.raises(ConfigError, match=r"model.decoder: unknown name 'oficial'.*'official'"):
        resolve(build_config({"model": {"decoder": "oficial"}}))
    plain = resolve(build_config({}))
    official = resolve(build_config({"model": {"decoder": "official"}}))
    assert official.model_key == plain.model_key + "-officialdec"
    assert official.model_options["decoder"] == "official" and "decoder" not in plain.model_options


@pytest.mark.parametrize("head", ["euclidean", "hyperbolic"])
def test_the_official_decoder_initialises_the_head_convs_as_the_official_code(head):
    """Kaiming normal (std sqrt(2 / fan_in)) on the Euclidean classifier / the hyperbolic
    reduction, biases PyTorch's default; smp's build keeps the head's own init."""
    torch.manual_seed(0)
    official = build_backbone("deeplabv3plus-r18", 19, head=head, decoder="official").head
    torch.manual_seed(0)
    plain = build_backbone("deeplabv3plus-r18", 19, head=head).head
    name = "classifier" if head == "euclidean" else "reduce"
    conv, ref = getattr(official, name), getattr(plain, name)
    fan_in = conv.weight[0].numel()
    assert conv.weight.std().item() == pytest.approx((2 / fan_in) ** 0.5, rel=0.1)
    assert conv.bias.abs().max().item() <= 1 / fan_in**0.5 and conv.bias.abs().max().item() > 0
    assert torch.count_nonzero(ref.bias) == 0  # the project's own init: zero bias

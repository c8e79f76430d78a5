"""The official DeepLabV3+ and SegFormer decoders (halo.models.decoders) against the official
code's layouts."""

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


def test_the_official_decoder_is_named_in_the_model_key_and_checked_in_the_config():
    with pytest.raises(ConfigError, match=r"model.decoder: unknown name 'oficial'.*'official'"):
        resolve(build_config({"model": {"decoder": "oficial"}}))
    bad = {"backbone": "segformer-b0", "model": {"decoder": "official"}}  # ball 64, decoder 256
    with pytest.raises(ConfigError, match=r"model.embed_dim: .*256-d decoder.*expected 256"):
        resolve(build_config(bad))
    bad["model"]["embed_dim"] = 256
    assert resolve(build_config(bad)).model_options["decoder"] == "official"
    bad["method"] = "featnorm"  # the Euclidean head has no ball: any embed_dim
    bad["model"]["embed_dim"] = 64
    assert resolve(build_config(bad)).model_options["head"] == "euclidean"
    plain = resolve(build_config({}))
    official = resolve(build_config({"model": {"decoder": "official"}}))
    assert official.model_key == plain.model_key + "-officialdec"
    assert official.model_options["decoder"] == "official" and "decoder" not in plain.model_options


def test_the_official_segformer_head_is_hugging_faces():
    """Official SegFormer (acdc branch, core/models/segformer.py): the fusion, BatchNorm, ReLU,
    Dropout(0.1); the decoder features go into the ball without a reduction; every linear and
    convolution initialised normal(0, 0.02) with zero biases. It trains (a real backward)."""
    torch.manual_seed(0)
    model = build_backbone("segformer-b0", 19, decoder="official", embed_dim=256)
    assert isinstance(model.head.reduce, nn.Identity)
    dropouts = [m for m in model.decoder.modules() if isinstance(m, nn.Dropout | nn.Dropout2d)]
    assert [(type(m), m.p) for m in dropouts] == [(nn.Dropout, 0.1)]
    layers = [m for m in [*model.decoder.modules(), *model.head.modules()]]
    layers = [m for m in layers if isinstance(m, nn.Linear | nn.Conv2d)]
    assert len(layers) >= 5  # four stage projections and the fusion, at least
    for m in layers:
        assert m.weight.std().item() == pytest.approx(0.02, rel=0.15)
        assert m.bias is None or torch.count_nonzero(m.bias) == 0
    images = torch.randn(2, 3, 64, 96)
    out = model.train()(images)
    assert out.logits.shape == (2, 19, 64, 96) and torch.isfinite(out.logits).all()
    out.logits.logsumexp(1).mean().backward()
    assert model.decoder.mlp_stage[0].linear.weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match=r"set model.embed_dim=256 \(got 64\)"):
        build_backbone("segformer-b0", 19, decoder="official")


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

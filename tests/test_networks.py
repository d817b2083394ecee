"""The paper's CNN denoisers: receptive fields, sizes, conditioning, equivariance."""

from __future__ import annotations

import pytest
import torch

from ccdm_gui.core.networks import (
    ResNetDenoiser,
    UNetDenoiser,
    build_network,
    count_parameters,
    receptive_field,
)


@pytest.mark.parametrize("padding", ["zeros", "circular"])
def test_resnet_receptive_field_is_17(padding):
    # 8 convolutions of 3x3: 1 + 8 * 2 = 17. Width does not change it; 32 keeps it quick.
    torch.manual_seed(0)
    net = ResNetDenoiser(channels=1, width=32, blocks=6, padding=padding)
    assert receptive_field(net, channels=1) == (17, 17)


def test_resnet_receptive_field_follows_depth():
    torch.manual_seed(0)
    assert receptive_field(ResNetDenoiser(width=16, blocks=2), channels=1) == (9, 9)


def test_unet_receptive_field_covers_the_image():
    torch.manual_seed(0)
    net = UNetDenoiser(channels=1, width=16)
    assert receptive_field(net, channels=1, size=32) == (32, 32)
    # On a larger canvas the finite extent shows: about 44 (docs/design.md).
    assert receptive_field(net, channels=1, size=64) == (44, 44)


def test_parameter_counts_at_paper_widths():
    resnet = count_parameters(build_network("resnet", channels=1, width=256, blocks=6))
    unet = count_parameters(build_network("unet", channels=1, width=64))
    assert 3.8e6 < resnet < 4.1e6, resnet  # "about 4.0 M"
    assert 1.9e6 < unet < 2.1e6, unet  # "about 2.0 M"


@pytest.mark.parametrize("arch", ["resnet", "unet"])
def test_class_conditional_needs_and_uses_a_label(arch):
    torch.manual_seed(0)
    params = {"width": 8, "blocks": 2} if arch == "resnet" else {"width": 8}
    net = build_network(arch, channels=1, num_classes=3, **params).eval()
    x = torch.randn(2, 1, 16, 16)
    with pytest.raises(ValueError, match="class label is required"):
        net(x, 0.5)
    a = net(x, 0.5, torch.tensor([0, 0]))
    b = net(x, 0.5, torch.tensor([2, 2]))
    assert a.shape == x.shape
    assert not torch.allclose(a, b)


def test_circular_resnet_is_translation_equivariant():
    torch.manual_seed(0)
    net = ResNetDenoiser(channels=1, width=16, blocks=6, padding="circular").eval()
    x = torch.randn(2, 1, 16, 16)
    shift = dict(shifts=(5, -3), dims=(2, 3))
    with torch.no_grad():
        rolled_out = torch.roll(net(x, 0.4), **shift)
        out_rolled = net(torch.roll(x, **shift), 0.4)
    assert torch.allclose(out_rolled, rolled_out, atol=1e-5, rtol=0)
    # Zero padding breaks it near the borders: the property is not vacuous.
    zeros = ResNetDenoiser(channels=1, width=16, blocks=6, padding="zeros").eval()
    zeros.load_state_dict(net.state_dict())
    with torch.no_grad():
        gap = (zeros(torch.roll(x, **shift), 0.4) - torch.roll(zeros(x, 0.4), **shift)).abs()
    assert gap.max() > 1e-2


def test_unknown_architecture_and_padding():
    with pytest.raises(ValueError, match="unknown architecture"):
        build_network("vit")
    with pytest.raises(ValueError, match="padding"):
        ResNetDenoiser(padding="reflect")

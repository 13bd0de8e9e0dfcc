from __future__ import annotations

import pytest
import torch
from torch import nn

from evaluators.cifar.models import Scale, build_model


@pytest.mark.parametrize("arch", ["resnet9", "vit"])
def test_output_shape(arch: str) -> None:
    model = build_model(arch, num_classes=10).eval()  # type: ignore[arg-type]
    with torch.no_grad():
        out = model(torch.randn(3, 3, 32, 32).contiguous(memory_format=torch.channels_last))
    assert out.shape == (3, 10)


def test_resnet9_is_the_reference_network() -> None:
    model = build_model("resnet9")
    assert isinstance(model, nn.Sequential)
    assert sum(p.numel() for p in model.parameters()) == 2_274_880
    linear, scale = model[-2], model[-1]
    assert isinstance(linear, nn.Linear) and linear.bias is None and linear.in_features == 128
    assert isinstance(scale, Scale) and scale.weight == 0.2
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [64, 128, 128, 128, 256, 256, 256, 128]
    assert (convs[1].kernel_size, convs[1].stride) == ((5, 5), (2, 2))
    assert convs[-1].padding == (0, 0) and all(c.bias is None for c in convs)


def test_resnet9_logits_are_scaled_by_0_2() -> None:
    model = build_model("resnet9").eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        features = model[:-2](x)
        assert torch.allclose(model(x), 0.2 * model[-2](features))


def test_vit_matches_the_reference_size() -> None:
    model = build_model("vit")
    # lucidrains ViT(image_size=32, patch_size=4, dim=512, depth=6, heads=8, mlp_dim=512): 9,523,722
    assert sum(p.numel() for p in model.parameters()) == 9_523_722
    dropouts = [m.p for m in model.modules() if isinstance(m, nn.Dropout)]
    assert dropouts and all(p == 0.1 for p in dropouts)


def test_unknown_arch() -> None:
    with pytest.raises(ValueError, match="resnet9"):
        build_model("resnet18")  # type: ignore[arg-type]


def test_vit_attention_is_scaled_dot_product_attention() -> None:
    attention = build_model("vit").eval().layers[0].attention
    x = torch.randn(2, 65, 512)
    with torch.no_grad():
        q, k, v = attention.to_qkv(attention.norm(x)).reshape(2, 65, 3, 8, 64).permute(2, 0, 3, 1, 4)
        expected = attention.to_out(
            nn.functional.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(2, 65, 512)
        )
        torch.testing.assert_close(attention(x), expected, atol=1e-5, rtol=1e-5)

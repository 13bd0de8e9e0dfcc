"""The two CIFAR-10 networks of the reference code (arXiv 2312.04528, ``cifar/pipeline.py`` and ``cifar/vit.py``).

ResNet-9 is the reference's ``construct_resnet9`` layer for layer (itself from MadryLab/trak's CIFAR
quickstart), kept as an ``nn.Sequential`` so its state-dict keys match the reference's. The ViT is
lucidrains' ``vit-pytorch`` ViT as the reference vendors it, with its default CIFAR settings, written
without einops; on CUDA attention uses ``scaled_dot_product_attention`` (the same softmax(q k^T / sqrt(d)) v).
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["Residual", "Scale", "ViT", "build_model", "resnet9", "vit"]

Arch = Literal["resnet9", "vit"]


class Scale(nn.Module):
    """Multiplies by a fixed factor (the reference's ``Mul``)."""

    def __init__(self, weight: float) -> None:
        super().__init__()
        self.weight = weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.weight

    def extra_repr(self) -> str:
        return f"weight={self.weight}"


class Residual(nn.Module):
    """``x + module(x)``."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.module(x)
        return x + out


def _conv_bn(
    channels_in: int, channels_out: int, kernel_size: int = 3, stride: int = 1, padding: int = 1
) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(channels_in, channels_out, kernel_size, stride=stride, padding=padding, bias=False),
        nn.BatchNorm2d(channels_out),
        nn.ReLU(),
    )


def resnet9(num_classes: int = 10) -> nn.Sequential:
    """The reference ResNet-9: logits are ``0.2 * linear(max-pooled features)``, the linear without bias."""
    return nn.Sequential(
        _conv_bn(3, 64, kernel_size=3, stride=1, padding=1),
        _conv_bn(64, 128, kernel_size=5, stride=2, padding=2),
        Residual(nn.Sequential(_conv_bn(128, 128), _conv_bn(128, 128))),
        _conv_bn(128, 256, kernel_size=3, stride=1, padding=1),
        nn.MaxPool2d(2),
        Residual(nn.Sequential(_conv_bn(256, 256), _conv_bn(256, 256))),
        _conv_bn(256, 128, kernel_size=3, stride=1, padding=0),
        nn.AdaptiveMaxPool2d((1, 1)),
        nn.Flatten(),
        nn.Linear(128, num_classes, bias=False),
        Scale(0.2),
    )


class _Attention(nn.Module):
    """Pre-norm multi-head self-attention; q, k, v from one bias-free projection."""

    def __init__(self, dim: int, heads: int, dim_head: int, dropout: float) -> None:
        super().__init__()
        inner_dim = dim_head * heads
        self.heads = heads
        self.scale = dim_head**-0.5
        self.norm = nn.LayerNorm(dim)
        self.to_qkv = nn.Linear(dim, inner_dim * 3, bias=False)
        project_out = not (heads == 1 and dim_head == dim)
        self.to_out: nn.Module = (
            nn.Sequential(nn.Linear(inner_dim, dim), nn.Dropout(dropout)) if project_out else nn.Identity()
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, _ = x.shape
        qkv = self.to_qkv(self.norm(x)).reshape(b, n, 3, self.heads, -1).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        if x.is_cuda:
            out = F.scaled_dot_product_attention(q, k, v)  # fused kernels; the same math
        else:  # on CPU the explicit product measured faster (1.5x in bf16) for these 65 tokens
            out = torch.matmul((torch.matmul(q, k.transpose(-1, -2)) * self.scale).softmax(dim=-1), v)
        result: torch.Tensor = self.to_out(out.transpose(1, 2).reshape(b, n, -1))
        return result


class _FeedForward(nn.Module):
    def __init__(self, dim: int, hidden_dim: int, dropout: float) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.net = nn.Sequential(
            nn.Linear(dim, hidden_dim),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(hidden_dim, dim),
            nn.Dropout(dropout),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.net(self.norm(x))
        return out


class _Block(nn.Module):
    def __init__(self, dim: int, heads: int, dim_head: int, mlp_dim: int, dropout: float) -> None:
        super().__init__()
        self.attention = _Attention(dim, heads, dim_head, dropout)
        self.feed_forward = _FeedForward(dim, mlp_dim, dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.attention(x) + x
        out: torch.Tensor = self.feed_forward(x) + x
        return out


class ViT(nn.Module):
    """Vision transformer with a CLS token and learned position embeddings (lucidrains' ``ViT``)."""

    def __init__(
        self,
        *,
        image_size: int = 32,
        patch_size: int = 4,
        num_classes: int = 10,
        dim: int = 512,
        depth: int = 6,
        heads: int = 8,
        dim_head: int = 64,
        mlp_dim: int = 512,
        dropout: float = 0.1,
        emb_dropout: float = 0.1,
        channels: int = 3,
    ) -> None:
        super().__init__()
        if image_size % patch_size:
            raise ValueError(f"image_size {image_size} is not divisible by patch_size {patch_size}")
        self.patch_size = patch_size
        num_patches = (image_size // patch_size) ** 2
        self.to_patch_embedding = nn.Linear(channels * patch_size * patch_size, dim)
        self.pos_embedding = nn.Parameter(torch.randn(1, num_patches + 1, dim))
        self.cls_token = nn.Parameter(torch.randn(1, 1, dim))
        self.dropout = nn.Dropout(emb_dropout)
        self.layers = nn.ModuleList(_Block(dim, heads, dim_head, mlp_dim, dropout) for _ in range(depth))
        self.mlp_head = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, num_classes))

    def _patches(self, img: torch.Tensor) -> torch.Tensor:
        # 'b c (h p1) (w p2) -> b (h w) (p1 p2 c)', as the reference's einops Rearrange
        b, c, height, width = img.shape
        p = self.patch_size
        x = img.reshape(b, c, height // p, p, width // p, p).permute(0, 2, 4, 3, 5, 1)
        return x.reshape(b, (height // p) * (width // p), p * p * c)

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        x = self.to_patch_embedding(self._patches(img))
        b, n, _ = x.shape
        x = torch.cat((self.cls_token.expand(b, -1, -1), x), dim=1)
        x = self.dropout(x + self.pos_embedding[:, : n + 1])
        for block in self.layers:
            x = block(x)
        out: torch.Tensor = self.mlp_head(x[:, 0])
        return out


def vit(num_classes: int = 10) -> ViT:
    """The reference's default CIFAR ViT: patch 4, dim 512, depth 6, 8 heads of 64, MLP 512, dropout 0.1."""
    return ViT(
        image_size=32,
        patch_size=4,
        num_classes=num_classes,
        dim=512,
        depth=6,
        heads=8,
        dim_head=64,
        mlp_dim=512,
        dropout=0.1,
        emb_dropout=0.1,
    )


def build_model(arch: Arch, num_classes: int = 10) -> nn.Module:
    """A freshly initialised network; ``arch`` is ``"resnet9"`` or ``"vit"``."""
    if arch == "resnet9":
        return resnet9(num_classes)
    if arch == "vit":
        return vit(num_classes)
    raise ValueError(f"unknown arch {arch!r}; choose one of 'resnet9', 'vit'")

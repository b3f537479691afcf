"""Pieces both stage-2 models share: the input (RGB or grey + page coordinates), the head that concatenates the
coordinates to the decoder output, and optional gradient checkpointing."""
from __future__ import annotations

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from stage0_keypoints.model import IMAGENET_MEAN, IMAGENET_STD, build_unet

N_OUT = 4      # one channel per printed row: 3 rows of 4 leads + the rhythm row


class PageInput(nn.Module):
    """uint8 RGB (B, 3, H, W) -> normalised RGB or grey; coordinates (page x, y in [0, 1]) to [-1, 1]."""

    def __init__(self, channels: str = "rgb"):
        super().__init__()
        if channels not in ("rgb", "grey"):
            raise ValueError(f"model.channels must be rgb or grey, got {channels!r}")
        self.grey = channels == "grey"
        mean, std = torch.tensor(IMAGENET_MEAN), torch.tensor(IMAGENET_STD)
        if self.grey:
            mean, std = mean.mean(0, keepdim=True), std.mean(0, keepdim=True)
        self.register_buffer("mean", mean.view(1, -1, 1, 1) * 255, persistent=False)
        self.register_buffer("std", std.view(1, -1, 1, 1) * 255, persistent=False)

    @property
    def channels(self) -> int:
        return 1 if self.grey else 3

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        x = image.float()
        if self.grey:
            x = x.mean(1, keepdim=True)
        return (x - self.mean) / self.std


class CoordHead(nn.Module):
    """Decoder output + 2 coordinate channels -> ``out`` logits at full resolution."""

    def __init__(self, in_channels: int, out: int):
        super().__init__()
        self.conv = nn.Sequential(nn.Conv2d(in_channels + 2, in_channels, 3, padding=1), nn.ReLU(inplace=True),
                                  nn.Conv2d(in_channels, out, 1))

    def forward(self, x: torch.Tensor, coords: torch.Tensor) -> torch.Tensor:
        return self.conv(torch.cat([x, coords.to(x.dtype) * 2 - 1], 1))


def unet_parts(m: dict, in_channels: int) -> nn.Module:
    """The smp U-Net whose encoder and decoder the models call themselves (its own head is dropped)."""
    if not m.get("decoder_channels"):
        raise ValueError("model.decoder_channels must be set for stage 2 (the head's width is its last entry)")
    net = build_unet(m["encoder"], 1, bool(m.get("pretrained")), m.get("weights_path"), in_channels=in_channels,
                     decoder_channels=m["decoder_channels"])
    net.segmentation_head = nn.Identity()      # unused; left in, DDP would complain about unused parameters
    return net


def maybe_checkpoint(fn, x, enabled: bool):
    """Recompute ``fn`` in the backward pass instead of storing its activations (very wide pages)."""
    if enabled and torch.is_grad_enabled():
        return checkpoint(fn, x, use_reentrant=False)
    return fn(x)

"""Pieces both stage-2 models share: the head that concatenates the page coordinates to the decoder output, the
smp U-Net whose parts they call, and optional gradient checkpointing (the input is ``pagekit.nets.ImageNorm``)."""
from __future__ import annotations

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from data import geometry as G
from pagekit.nets import build_unet

N_OUT = G.N_ROWS      # one channel per printed row: 3 rows of 4 leads + the rhythm row


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

"""Stage-1 model: a U-Net (timm encoder via segmentation-models-pytorch) over the stage-0 normalised page plus two
coordinate channels, predicting the grid-intersection heatmap and, per pixel, the index of the nearest vertical
and horizontal major line.  The coordinates tell the network where on the page a crop sits, which is most of
what it needs to count lines."""
from __future__ import annotations

import torch
from torch import nn

from stage0_keypoints.model import IMAGENET_MEAN, IMAGENET_STD, build_unet
from stage1_rectify.lattice import N_COLS, N_ROWS


class LatticeNet(nn.Module):
    def __init__(self, encoder: str = "tu-resnet18", pretrained: bool = False, weights_path: str | None = None,
                 decoder_channels=None):
        super().__init__()
        self.net = build_unet(encoder, 1 + N_COLS + N_ROWS, pretrained, weights_path, in_channels=5,
                              decoder_channels=decoder_channels)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1) * 255, persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1) * 255, persistent=False)

    def forward(self, batch: dict) -> dict:
        """batch["image"]: (B, 3, H, W) uint8 RGB; batch["coords"]: (B, 2, H, W) page x, y in [0, 1]."""
        x = (batch["image"].float() - self.mean) / self.std
        y = self.net(torch.cat([x, batch["coords"].to(x.dtype) * 2 - 1], 1))
        return {"heatmap": y[:, 0], "col": y[:, 1:1 + N_COLS], "row": y[:, 1 + N_COLS:]}

"""Stage-1 model: a U-Net (timm encoder via segmentation-models-pytorch) over the stage-0 normalised page plus two
coordinate channels, predicting the grid-intersection heatmap and, per pixel, the index of the nearest vertical
and horizontal major line.  The coordinates tell the network where on the page a crop sits, which is most of
what it needs to count lines."""
from __future__ import annotations

import torch
from torch import nn

from data import geometry as G
from pagekit.image import padded_page_size
from pagekit.nets import ImageNorm, build_unet
from pagekit.registry import register_model
from stage1_rectify.lattice import N_HLINES, N_VLINES


def page_input_size(input_size: int) -> tuple[float, tuple[int, int]]:
    """(page scale k, padded (w, h)) of the normalised page the network sees, ``input_size`` px wide."""
    k = input_size / G.PAGE_W
    return k, padded_page_size(k)


@register_model("lattice_unet")
class LatticeNet(nn.Module):
    def __init__(self, m: dict):
        super().__init__()
        self.net = build_unet(m.get("encoder", "tu-resnet18"), 1 + N_VLINES + N_HLINES, bool(m.get("pretrained")),
                              m.get("weights_path"), in_channels=5, decoder_channels=m.get("decoder_channels"))
        self.norm = ImageNorm()

    def forward(self, batch: dict) -> dict:
        """batch["image"]: (B, 3, H, W) uint8 RGB; batch["coords"]: (B, 2, H, W) page x, y in [0, 1]."""
        x = self.norm(batch["image"])
        y = self.net(torch.cat([x, batch["coords"].to(x.dtype) * 2 - 1], 1))
        return {"heatmap": y[:, 0], "col": y[:, 1:1 + N_VLINES], "row": y[:, 1 + N_VLINES:]}

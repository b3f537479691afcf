"""Stage-0 model: a U-Net (timm encoder via segmentation-models-pytorch) predicting one heatmap per keypoint,
with an orientation classifier (0/90/180/270 deg clockwise) on the pooled encoder features."""
from __future__ import annotations

import segmentation_models_pytorch as smp
import torch
from torch import nn

from stage0_keypoints.targets import N_KEYPOINTS

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def build_unet(encoder: str, classes: int, pretrained: bool = False, weights_path: str | None = None,
               aux_classes: int | None = None, in_channels: int = 3, decoder_channels=None) -> nn.Module:
    """smp U-Net with a timm encoder; pretrained weights only on request (offline by default) or from a file."""
    kw = {}
    if decoder_channels:
        kw["decoder_channels"] = list(decoder_channels)
        kw["encoder_depth"] = len(decoder_channels)
    if aux_classes:
        kw["aux_params"] = {"classes": aux_classes, "pooling": "avg", "dropout": 0.1}
    net = smp.Unet(encoder_name=encoder, encoder_weights="imagenet" if pretrained else None,
                   in_channels=in_channels, classes=classes, **kw)
    if weights_path:
        state = torch.load(weights_path, map_location="cpu", weights_only=True)
        missing, unexpected = net.encoder.load_state_dict(state.get("state_dict", state), strict=False)
        if len(missing) > len(net.encoder.state_dict()) // 2:
            raise ValueError(f"{weights_path}: most encoder weights did not match ({len(missing)} missing); "
                             f"is it a checkpoint of {encoder}?")
    return net


class KeypointNet(nn.Module):
    def __init__(self, encoder: str = "tu-resnet18", pretrained: bool = False, weights_path: str | None = None,
                 decoder_channels=None):
        super().__init__()
        self.net = build_unet(encoder, N_KEYPOINTS, pretrained, weights_path, aux_classes=4,
                              decoder_channels=decoder_channels)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1) * 255, persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1) * 255, persistent=False)

    def forward(self, batch: dict) -> dict:
        x = (batch["image"].float() - self.mean) / self.std   # uint8 RGB in, normalisation inside
        heatmap, orientation = self.net(x)
        return {"heatmap": heatmap, "orientation": orientation}

"""Network pieces every stage builds on: ImageNet normalisation inside the model (uint8 RGB in) and the smp U-Net
with a timm encoder, offline unless pretrained weights are asked for or given as a local file."""
from __future__ import annotations

import segmentation_models_pytorch as smp
import torch
from torch import nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class ImageNorm(nn.Module):
    """uint8 RGB (B, 3, H, W) -> ImageNet-normalised float RGB, or grey (the channel mean) with the mean statistics."""

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

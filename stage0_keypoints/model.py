"""Stage-0 model: a U-Net (timm encoder via segmentation-models-pytorch) predicting one heatmap per keypoint,
with an orientation classifier (0/90/180/270 deg clockwise) on the pooled encoder features."""
from __future__ import annotations

from torch import nn

from pagekit.nets import ImageNorm, build_unet
from pagekit.registry import register_model
from stage0_keypoints.targets import N_KEYPOINTS


@register_model("keypoint_unet")
class KeypointNet(nn.Module):
    def __init__(self, m: dict):
        super().__init__()
        self.net = build_unet(m.get("encoder", "tu-resnet18"), N_KEYPOINTS, bool(m.get("pretrained")),
                              m.get("weights_path"), aux_classes=4, decoder_channels=m.get("decoder_channels"))
        self.norm = ImageNorm()

    def forward(self, batch: dict) -> dict:
        heatmap, orientation = self.net(self.norm(batch["image"]))   # uint8 RGB in, normalisation inside
        return {"heatmap": heatmap, "orientation": orientation}

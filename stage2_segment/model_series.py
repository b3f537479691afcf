"""2.5D series model: the 4 row strips of the rectified page (± ``strip_mv`` around each baseline) go through one
shared encoder; at every skip level their features are fused across strips (``fusion``), the shared decoder and
head then give one trace channel per strip, pasted back onto the page.

Fusion choices (``model.fusion``), each residual and zero-initialised, so training starts from independent strips:
- ``conv2d``: one conv over the strips' channels stacked (B, R*C, h, w): every strip sees every other, position-aware;
- ``shared``: one conv shared by all strips over [own features, mean of the strips]: order-free, fewest weights;
- ``conv3d``: a 3x3x3 conv with the strips as the depth axis: neighbouring rows talk;
- ``none``: no fusion (the ablation baseline).
"""
from __future__ import annotations

import math

import torch
from torch import nn

from data import geometry as G
from pagekit.nets import ImageNorm
from pagekit.registry import register_model
from stage2_segment import strips
from stage2_segment.layers import CoordHead, maybe_checkpoint, unet_parts

FUSIONS = ("conv2d", "shared", "conv3d", "none")
OFF_STRIP_LOGIT = -30.0      # page rows outside a strip: probability 0


class Fusion(nn.Module):
    def __init__(self, kind: str, channels: int, n: int = G.N_ROWS):
        super().__init__()
        if kind not in FUSIONS:
            raise ValueError(f"model.fusion must be one of {FUSIONS}, got {kind!r}")
        self.kind, self.n = kind, n
        c = channels
        if kind == "conv2d":
            self.body = nn.Sequential(nn.Conv2d(n * c, c, 3, padding=1), nn.BatchNorm2d(c), nn.ReLU(inplace=True),
                                      nn.Conv2d(c, n * c, 1))
        elif kind == "shared":
            self.body = nn.Sequential(nn.Conv2d(2 * c, c, 3, padding=1), nn.BatchNorm2d(c), nn.ReLU(inplace=True),
                                      nn.Conv2d(c, c, 1))
        elif kind == "conv3d":
            self.body = nn.Sequential(nn.Conv3d(c, c, 3, padding=1), nn.BatchNorm3d(c), nn.ReLU(inplace=True),
                                      nn.Conv3d(c, c, 1))
        if kind != "none":
            nn.init.zeros_(self.body[-1].weight)
            nn.init.zeros_(self.body[-1].bias)

    def forward(self, f: torch.Tensor, n: int | None = None) -> torch.Tensor:
        """(B*R, C, h, w) -> same shape; ``n`` strips per page (default: the number it was built for; only
        ``conv2d`` is bound to it)."""
        if self.kind == "none":
            return f
        n = n or self.n
        if self.kind == "conv2d" and n != self.n:
            raise ValueError(f"model.fusion=conv2d reads exactly {self.n} rows, this page has {n}: only the "
                             f"order-free fusions (shared, conv3d, none) read other layouts")
        BR, c, h, w = f.shape
        g = f.view(BR // n, n, c, h, w)
        if self.kind == "conv2d":
            d = self.body(g.reshape(-1, n * c, h, w)).view_as(g)
        elif self.kind == "shared":
            mean = g.mean(1, keepdim=True).expand_as(g)
            d = self.body(torch.cat([g, mean], 2).view(BR, 2 * c, h, w)).view_as(g)
        else:
            d = self.body(g.transpose(1, 2)).transpose(1, 2)
        return (g + d).reshape(BR, c, h, w)


@register_model("series")
class SeriesNet(nn.Module):
    def __init__(self, m: dict):
        super().__init__()
        self.input = ImageNorm(m.get("channels", "rgb"))
        self.unet = unet_parts(m, self.input.channels + 2)
        self.head = CoordHead(m["decoder_channels"][-1], 1)
        _, self.ky = G.scales(m["page_k"])
        self.strip_mv = float(m.get("strip_mv", 3.0))
        self.bounds = strips.strip_bounds(self.ky, self.strip_mv)
        self.page_h = G.page_size(m["page_k"])[1]
        kind = m.get("fusion", "conv2d")         # level 0 is the input itself, which the decoder does not use
        self.fusion = nn.ModuleList(Fusion(kind if i else "none", c)
                                    for i, c in enumerate(self.unet.encoder.out_channels))
        self.grad_checkpointing = bool(m.get("grad_checkpointing"))

    def _strip_coords(self, coords: torch.Tensor, bounds) -> torch.Tensor:
        """(B, 2, H, W) page coordinates -> (B*R, 2, h, W): x as given, y of each strip row (beyond the page too)."""
        B, _, _, W = coords.shape
        h = bounds[0][1] - bounds[0][0]
        ys = torch.stack([torch.arange(a, b, device=coords.device, dtype=torch.float32) for a, b in bounds])
        y = (ys / self.page_h).view(1, -1, 1, h, 1).expand(B, -1, 1, h, W)
        x = coords[:, :1, :1].float().unsqueeze(1).expand(B, len(bounds), 1, h, W)
        return torch.cat([x, y], 2).reshape(-1, 2, h, W)

    def _bounds(self, baselines) -> list[tuple[int, int]]:
        """Strip rows of each baseline (canonical px); a NaN baseline (a padding row) gets a strip just above the
        page: white, and never pasted back."""
        pad = [math.isnan(float(b)) for b in baselines]
        bounds = strips.strip_bounds(self.ky, self.strip_mv, [0.0 if p else float(b) for b, p in zip(baselines, pad)])
        h = bounds[0][1] - bounds[0][0]
        return [(-h, 0) if p else ab for p, ab in zip(pad, bounds)]

    def forward(self, batch: dict) -> dict:
        """batch["image"] (B, 3, H, W) must be whole page columns (a crop in x only), y = 0 at the page top.
        ``batch["baselines"]`` (optional): the rows of another layout (canonical px), one list for the batch or a
        (B, R) tensor, one row of baselines per page (training items, NaN = padding): one strip and one output
        channel per row.  Each strip shows the model its row's trace among its neighbours', so a model trained on
        the competition's four rows reads other rows too (docs/layouts.md)."""
        image, coords = batch["image"], batch["coords"]
        B, _, H, W = image.shape
        bl = batch.get("baselines")
        if bl is None:
            per_page = [self.bounds] * B
        elif torch.is_tensor(bl) and bl.dim() == 2:
            per_page = [self._bounds(row) for row in bl.tolist()]
        else:
            per_page = [self._bounds(bl)] * B
        s = torch.cat([strips.cut(image[i:i + 1].float(), b, fill=255.0) for i, b in enumerate(per_page)])
        R, h = s.shape[1], s.shape[3]                                          # (B, R, 3, h, W), white off the page
        sc = torch.cat([self._strip_coords(coords[i:i + 1], b) for i, b in enumerate(per_page)])
        x = torch.cat([self.input(s.reshape(B * R, -1, h, W)), sc * 2 - 1], 1)

        def encode(x):
            return [fuse(f, R) for fuse, f in zip(self.fusion, self.unet.encoder(x))]

        feats = maybe_checkpoint(encode, x, self.grad_checkpointing)
        dec = maybe_checkpoint(self.unet.decoder, feats, self.grad_checkpointing)
        logits = self.head(dec, sc).view(B, R, h, W)
        pasted = [strips.paste(logits[i:i + 1], b, H, OFF_STRIP_LOGIT) for i, b in enumerate(per_page)]
        return {"logits": torch.cat([p for p, _ in pasted]),
                "weight": torch.stack([c for _, c in pasted])[:, :, :, None].expand(B, -1, -1, W)}

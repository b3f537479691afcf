"""Row strips of the rectified page for the 2.5D series model: one band of ``strip_mv`` mV either side of each
row's baseline, all the same height (a multiple of the U-Net's stride), cut from and pasted back
onto the whole page (zero-padded where a band leaves it)."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from data import geometry as G
from pagekit.image import STRIDE


def strip_bounds(ky: float, strip_mv: float, baselines=None) -> list[tuple[int, int]]:
    """[y0, y1) page rows of each printed row's strip at vertical scale ky (rows at ``baselines``, canonical px;
    default: the competition's page)."""
    half = -(-int(round(strip_mv * G.PX_PER_MV * ky)) // (STRIDE // 2)) * (STRIDE // 2)
    return [(int(round(b * ky)) - half, int(round(b * ky)) + half) for b in (baselines or G.BASELINES)]


def cut(x: torch.Tensor, bounds: list[tuple[int, int]], fill: float = 0.0) -> torch.Tensor:
    """(B, C, H, W) page -> (B, R, C, h, W) strips."""
    H = x.shape[2]
    lo, hi = min(b[0] for b in bounds), max(b[1] for b in bounds)
    pad_top, pad_bottom = max(0, -lo), max(0, hi - H)
    xp = F.pad(x, (0, 0, pad_top, pad_bottom), value=fill)
    return torch.stack([xp[:, :, a + pad_top:b + pad_top] for a, b in bounds], 1)


def paste(strips: torch.Tensor, bounds: list[tuple[int, int]], height: int, fill: float = 0.0):
    """(B, R, h, W) one channel per strip -> (B, R, height, W) page channels, and the (R, height) mask of rows
    each strip covers."""
    B, R, _, W = strips.shape
    out = strips.new_full((B, R, height, W), fill)
    covered = torch.zeros(R, height, dtype=torch.bool, device=strips.device)
    for r, (a, b) in enumerate(bounds):
        lo, hi = max(a, 0), min(b, height)
        out[:, r, lo:hi] = strips[:, r, lo - a:hi - a]
        covered[r, lo:hi] = True
    return out, covered

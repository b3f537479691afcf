"""Stage 1 for inference: raw images + stage-0 homographies in, rectified pages (and their maps) out.

    from pagekit.registry import load_model
    model, cfg = load_model("runs/stage1/.../best.pt")
    rects = predict(model, cfg["model"], [raw], [stage0_result.H], k=2.0)     # 4400 x 3400 rectified page
    rects[0].page, rects[0].map_x, rects[0].map_y, rects[0].fallback
"""
from __future__ import annotations

import cv2
import numpy as np
import torch

from data import geometry as G
from pagekit.image import downscale, page_coords, warp_to_page
from stage1_rectify.model import page_input_size
from stage1_rectify.rectify import FitParams, Rectification, fit_from_outputs, rectify_image
from stage1_rectify.surface import identity_fit


def whole_image_homography(shape: tuple[int, ...]) -> np.ndarray:
    """Raw px -> canonical page assuming the image is the page: the last resort when stage 0 found no page."""
    h, w = shape[:2]
    src = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
    return cv2.getPerspectiveTransform(src, (G.page_corners() - 0.5).astype(np.float32))


def network_input(raw: np.ndarray, H: np.ndarray, input_size: int, cache_size: int):
    """The stage-0 normalised page the network sees (as in training: area-downscaled, then one warp)."""
    small, s = downscale(raw, cache_size)
    k, size = page_input_size(input_size)
    img = warp_to_page(small, np.diag([k, k, 1.0]) @ H @ np.diag([1 / s, 1 / s, 1.0]), size)
    return img, page_coords(size, k), k


@torch.no_grad()
def predict(model, model_cfg: dict, images: list[np.ndarray], homographies: list[np.ndarray | None],
            k: float | tuple[float, float] = 1.0, device=None, batch_size: int = 4,
            params: FitParams | None = None) -> list[Rectification]:
    """BGR (or grey) raw images and their stage-0 homographies (raw px -> canonical page; None where stage 0
    failed, which is flagged as a fallback).  Each image is warped once to the rectified page at scale k
    (or (kx, ky): (2, 1) gives 4400 x 1700)."""
    device = device or next(model.parameters()).device
    model.eval()
    params = params or FitParams.from_cfg(model_cfg)
    out: list[Rectification] = []
    for start in range(0, len(images), batch_size):
        raws = images[start:start + batch_size]
        Hs = [H if H is not None else whole_image_homography(r.shape) for H, r in
              zip(homographies[start:start + batch_size], raws)]
        inputs = [network_input(r, H, int(model_cfg["input_size"]), int(model_cfg["cache_size"]))
                  for r, H in zip(raws, Hs)]
        batch = {"image": torch.from_numpy(np.stack([i[0] for i in inputs])).permute(0, 3, 1, 2).to(device),
                 "coords": torch.from_numpy(np.stack([i[1] for i in inputs])).to(device)}
        pred = model(batch)
        heat = torch.sigmoid(pred["heatmap"].float()).cpu().numpy()
        col, row = pred["col"].float().cpu().numpy(), pred["row"].float().cpu().numpy()
        for j, (raw, H) in enumerate(zip(raws, Hs)):
            if homographies[start + j] is None:        # no page from stage 0: no lattice worth fitting either
                fit, fallback, pts = identity_fit(), True, None
            else:
                fit, fallback, pts = fit_from_outputs(heat[j], col[j], row[j], inputs[j][2], params)
            out.append(rectify_image(raw, H, fit, fallback, k, pts))
    return out

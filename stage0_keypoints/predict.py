"""Stage 0 for inference: raw images in, (orientation, homography, confidence) out, batched, optional TTA.

    from pagekit.registry import load_model
    model, cfg = load_model("runs/stage0/.../best.pt")
    results = predict(model, [cv2.imread(p) for p in paths], cfg["model"]["input_size"], tta=True)
    page = normalize_page(raw, results[0].H)          # stage0_keypoints.decode
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from pagekit.image import letterbox, rot90_points
from stage0_keypoints.decode import OUTSIDE_MM, decode_heatmaps, fit_page, outside_mm, peak_candidates


@dataclass
class Stage0Result:
    orientation: int             # quarter turns clockwise the page shows (0 = upright)
    H: np.ndarray | None         # 3x3, raw image px -> canonical page px (scale 1); None when the fit failed
    keypoints: np.ndarray        # (17, 2) raw image px
    confidence: np.ndarray       # (17,) heatmap peaks
    inliers: int
    reproj_mm: float
    ok: bool                     # a plausible page outline, on the image (decode.outside_mm)


@torch.no_grad()
def _forward(model, batch: np.ndarray, device) -> tuple[np.ndarray, np.ndarray]:
    x = torch.from_numpy(batch).permute(0, 3, 1, 2).to(device)
    out = model({"image": x})
    heat, orient = torch.sigmoid(out["heatmap"].float()), torch.softmax(out["orientation"].float(), 1)
    return heat.cpu().numpy(), orient.cpu().numpy()


def predict(model, images: list[np.ndarray], input_size: int, device=None, batch_size: int = 8,
            tta: bool = False) -> list[Stage0Result]:
    """BGR (or grey) images of any size.  TTA runs the four quarter turns: their heatmap peaks, mapped back, are
    pooled as candidates for one RANSAC fit, and their orientation probabilities are un-rotated and averaged."""
    device = device or next(model.parameters()).device
    model.eval()
    turns = (0, 1, 2, 3) if tta else (0,)
    results = []
    for start in range(0, len(images), batch_size):
        chunk = images[start:start + batch_size]
        boxed = [letterbox(im, input_size) for im in chunk]
        cands = [[] for _ in chunk]
        argmax = [[] for _ in chunk]
        orient = np.zeros((len(chunk), 4))
        for turn in turns:
            batch = np.stack([np.ascontiguousarray(np.rot90(b, -turn)) for b, _ in boxed])
            prob, op = _forward(model, batch, device)
            for j in range(len(chunk)):
                ks, pts, conf = peak_candidates(prob[j])
                cands[j].append((ks, rot90_points(pts, input_size, -turn % 4), conf))  # back to the unturned frame
                p, c = decode_heatmaps(prob[j])
                argmax[j].append((rot90_points(p, input_size, -turn % 4), c))
                orient[j] += np.roll(op[j], -turn)             # a turn adds itself to the orientation
        for j, (_, s) in enumerate(boxed):
            ks, pts, conf = (np.concatenate(a) for a in zip(*cands[j]))
            fit = fit_page(ks, pts.reshape(-1, 2) / s, conf)
            p = np.stack([a[0] for a in argmax[j]])
            c = np.stack([a[1] for a in argmax[j]])
            fallback = (p * c[..., None]).sum(0) / np.maximum(c.sum(0), 1e-9)[:, None] / s   # confidence-weighted
            kp = fit.keypoints if fit.keypoints is not None else fallback
            seen = fit.ok and outside_mm(fit.H, chunk[j].shape) <= OUTSIDE_MM      # not an outline guessed off it
            results.append(Stage0Result(int(orient[j].argmax()), fit.H, kp, c.mean(0), fit.inliers, fit.reproj_mm,
                                        seen))
    return results

"""Stage-0 targets from the generator's labels: 13 lead-name centres + 4 page corners, and orientation."""
from __future__ import annotations

import numpy as np

from data import geometry as G
from data.labels import PageLabel, keypoint_names

KEYPOINT_NAMES = keypoint_names() + ["corner_tl", "corner_tr", "corner_br", "corner_bl"]
N_KEYPOINTS = len(KEYPOINT_NAMES)


def canonical_keypoints() -> np.ndarray:
    """(17, 2) canonical page px (scale 1): where each keypoint belongs on the normalised page."""
    return np.concatenate([np.stack([G.lead_label_centre(s) for s in G.lead_slots()]), G.page_corners() - 0.5])


def image_keypoints(label: PageLabel) -> np.ndarray:
    """(17, 2) image px of the keypoints of one labelled image."""
    return np.concatenate([label.keypoints, label.corners])


def px_per_mm_jacobians(label: PageLabel) -> np.ndarray:
    """(17, 2, 2) inverse Jacobians d(canonical mm)/d(image px) at each keypoint, so an image-space error becomes
    an error in mm of the canonical page without inverting the dense map for every prediction."""
    canon = canonical_keypoints()
    eps = 5.0
    out = np.zeros((len(canon), 2, 2))
    for i, c in enumerate(canon):
        p = label.canon_to_image(np.array([c, c + [eps, 0], c + [0, eps]]))
        J = np.stack([(p[1] - p[0]) / eps, (p[2] - p[0]) / eps], -1) * G.PX_PER_MM   # image px per canonical mm
        out[i] = np.linalg.inv(J)
    return out


def heatmaps(points: np.ndarray, size: int, sigma: float) -> np.ndarray:
    """(K, size, size) Gaussian heatmaps, peak 1 at each point; points outside the frame give no peak."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    out = np.zeros((len(points), size, size), np.float32)
    for i, (x, y) in enumerate(points):
        if -3 * sigma <= x < size + 3 * sigma and -3 * sigma <= y < size + 3 * sigma:
            out[i] = np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * sigma ** 2))
    return out

"""Before/after picture of stage 1 on one image: the raw image with its detected lattice points, and zoomed crops of
the page rectified by the stage-0 homography alone and by the lattice warp, with the canonical 5 mm grid drawn over
both (where the paper's grid and the drawn one coincide, the page is where the geometry says).

    python scripts/figure_stage1.py STAGE1_CKPT IMAGE [stage0=STAGE0_CKPT] [out=docs/stage1_rectify.jpg]
        [zoom=x0,y0,x1,y1 in canonical mm] [model.KEY=VALUE ...  decoding overrides, e.g. model.index_from=position]

Without stage0 the stage-0 homography comes from the image's label (lead-name keypoints), as in the tests.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from data import cli  # noqa: E402
from data import geometry as G  # noqa: E402
from data.files import write_image  # noqa: E402
from data.labels import PageLabel, label_path  # noqa: E402
from pagekit.registry import load_model  # noqa: E402
from stage1_rectify.predict import predict  # noqa: E402
from stage1_rectify.rectify import rectify_image  # noqa: E402
from stage1_rectify.surface import identity_fit  # noqa: E402

K_ZOOM = 2.0   # rectified px per canonical px in the zoomed crops


def grid_overlay(img: np.ndarray, k: float, x0: float = 0, y0: float = 0) -> np.ndarray:
    """The canonical major grid (blue) and row baselines (green), 1 px, over a page crop starting at (x0, y0)."""
    out = img.copy()
    h, w = img.shape[:2]
    for x in np.arange(G.GRID_ORIGIN[0], G.PAGE_W, G.MAJOR_PX):
        xi = int(round(x * k - x0))
        cv2.line(out, (xi, 0), (xi, h), (255, 0, 0), 1)
    for y in np.arange(G.GRID_ORIGIN[1], G.PAGE_H, G.MAJOR_PX):
        yi = int(round(y * k - y0))
        cv2.line(out, (0, yi), (w, yi), (255, 0, 0), 1)
    for b in G.BASELINES:
        yi = int(round(b * k - y0))
        cv2.line(out, (0, yi), (w, yi), (0, 170, 0), 1)
    return out


def _title(img, text):
    cv2.putText(img, text, (10, 28), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (0, 0, 0), 4, cv2.LINE_AA)
    cv2.putText(img, text, (10, 28), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (255, 255, 255), 2, cv2.LINE_AA)
    return img


def _fit_width(img, w):
    return cv2.resize(img, (w, int(round(img.shape[0] * w / img.shape[1]))), interpolation=cv2.INTER_AREA)


def figure(stage1_ckpt, image_path, stage0_ckpt=None, zoom_mm=(215, 160, 272, 203), overrides=()) -> np.ndarray:
    raw = cv2.imread(str(image_path), cv2.IMREAD_COLOR)
    if stage0_ckpt:
        from stage0_keypoints.predict import predict as predict0
        m0, c0 = load_model(stage0_ckpt)
        H = predict0(m0, [raw], int(c0["model"]["input_size"]), tta=True)[0].H
    else:
        H = PageLabel.load(label_path(image_path)).homography("keypoints")
    model, cfg = load_model(stage1_ckpt, overrides=overrides)
    rect = predict(model, cfg["model"], [raw], [H], k=K_ZOOM)[0]
    plain = rectify_image(raw, H, identity_fit(), True, K_ZOOM)

    shown = raw.copy()
    r = max(2, raw.shape[1] // 600)
    inl = rect.fit.inliers if len(rect.fit.inliers) == len(rect.points) else np.zeros(len(rect.points), bool)
    for (x, y), ok in zip(rect.points, inl):
        cv2.circle(shown, (int(round(x)), int(round(y))), r, (0, 200, 0) if ok else (0, 0, 255), -1)
    x0, y0, x1, y1 = (int(round(v * G.PX_PER_MM * K_ZOOM)) for v in zoom_mm)
    crops = [grid_overlay(p.page[y0:y1, x0:x1], K_ZOOM, x0, y0) for p in (plain, rect)]
    width = 900
    left = _title(_fit_width(shown, width), f"raw + {int(inl.sum())} lattice points used"
                  f"{' (fallback)' if rect.fallback else ''}")
    full = _title(_fit_width(grid_overlay(rect.page, K_ZOOM), width), "stage 1 rectified page + canonical grid")
    z = [_fit_width(c, width) for c in crops]
    _title(z[0], f"zoom {zoom_mm[0]}-{zoom_mm[2]} mm: stage-0 homography only")
    _title(z[1], "zoom: lattice surface warp (one remap)")
    col1 = np.vstack([left, full])
    col2 = np.vstack([z[0], z[1]])
    h = max(col1.shape[0], col2.shape[0])
    pad = lambda c: np.vstack([c, np.full((h - c.shape[0], width, 3), 255, np.uint8)])  # noqa: E731
    return np.hstack([pad(col1), pad(col2)])


@dataclass
class Options:
    checkpoint: str
    image: str
    stage0: str | None = None
    zoom: list[float] = field(default_factory=lambda: [215, 160, 272, 203])
    out: str = "docs/stage1_rectify.jpg"
    overrides: dict = field(default_factory=dict)     # model.KEY=VALUE of the stage-1 checkpoint


def main(argv=None):
    opts = cli.parse(Options, argv, __doc__, positional=("checkpoint", "image"), rest="overrides")
    out = Path(opts.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    overrides = [f"{k}={v}" for k, v in opts.overrides.items()]
    pic = figure(opts.checkpoint, opts.image, opts.stage0, tuple(opts.zoom), overrides)
    write_image(out, pic, [cv2.IMWRITE_JPEG_QUALITY, 88])
    print(out)


if __name__ == "__main__":
    main()

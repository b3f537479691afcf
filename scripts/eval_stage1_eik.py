"""How stages 0 + 1 trained on data.synth rectify ECG-Image-Kit renders: ../shared/eik_dev, per type.

    python scripts/eval_stage1_eik.py STAGE1_CKPT STAGE0_CKPT [data_dir=../shared/eik_dev] [tta=true] [model.KEY=VALUE]

Ground truth: ECG-Image-Kit's JSON gives the plotted pixel of every sample on its page (2200 x 1700); the image
shows that page through a known transform T (identity for 0001/0015, a resize for 0004, the recorded homography for
0005; 0003's rotation is not recorded precisely, so 0003 is left out).  For 1024 trace samples per image, the
error is |T^-1(R(c)) - c| in mm, where c is the sample's page position and R the predicted canonical -> raw map:
how far from its page position each trace point lands on the rectified page.  Reported for the stage-0 homography
alone and with the stage-1 lattice warp.  The page positions are ECG-Image-Kit's, whose grid and rows sit a few
px from docs/design.md's, so a constant offset of that size is part of the figure.
"""
from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from data import cli  # noqa: E402
from data import geometry as G  # noqa: E402
from pagekit.image import read_image  # noqa: E402
from pagekit.registry import load_model  # noqa: E402
from stage0_keypoints.predict import predict as predict0  # noqa: E402
from stage1_rectify.predict import predict as predict1  # noqa: E402
from stage1_rectify.predict import whole_image_homography  # noqa: E402
from stage1_rectify.surface import identity_fit  # noqa: E402
from stage1_rectify.warp import canonical_to_raw  # noqa: E402


def page_to_image(doc: dict, image_type: str, image_shape) -> np.ndarray | None:
    """3x3 T: ECG-Image-Kit page px -> image px, or None where it is not recorded."""
    h, w = image_shape[:2]
    if image_type in ("0001", "0015"):
        return np.eye(3)
    if image_type == "0004":
        return np.diag([w / doc["width"], h / doc["height"], 1.0])
    if image_type == "0005" and "photo_postprocess" in doc:
        return np.asarray(doc["photo_postprocess"]["homography"], dtype=np.float64)
    return None


def trace_samples(doc: dict, n: int = 1024, seed: int = 0) -> np.ndarray:
    pts = np.concatenate([np.asarray(lead["plotted_pixels"], dtype=np.float64)[:, ::-1] for lead in doc["leads"]])
    return pts[np.random.default_rng(seed).choice(len(pts), min(n, len(pts)), replace=False)]


def errors_mm(fit, H, T, c) -> np.ndarray:
    raw = canonical_to_raw(fit, H, c)
    back = cv2.perspectiveTransform(raw.reshape(-1, 1, 2), np.linalg.inv(T)).reshape(-1, 2)
    return np.linalg.norm(back - c, axis=1) / G.PX_PER_MM


@dataclass
class Options:
    stage1: str
    stage0: str
    data_dir: str = str(Path(__file__).resolve().parents[2] / "shared" / "eik_dev")
    tta: bool = True
    overrides: dict = field(default_factory=dict)     # model.KEY=VALUE of the stage-1 checkpoint


def main(argv=None) -> None:
    opts = cli.parse(Options, argv, __doc__, positional=("stage1", "stage0"), rest="overrides")
    root, tta = Path(opts.data_dir), opts.tta
    m1, c1 = load_model(opts.stage1, overrides=[f"{k}={v}" for k, v in opts.overrides.items()])
    m0, c0 = load_model(opts.stage0)
    rows = []
    for png in tqdm(sorted((root / "train").glob("*/*-*.png")), desc="eik_dev"):
        image_type = png.stem.rsplit("-", 1)[1]
        doc = json.loads(png.with_suffix(".json").read_text())
        raw = read_image(png)
        T = page_to_image(doc, image_type, raw.shape)
        if T is None:
            continue
        c = trace_samples(doc)
        r0 = predict0(m0, [raw], int(c0["model"]["input_size"]), tta=tta)[0]
        H = r0.H if r0.H is not None else whole_image_homography(raw.shape)
        fit = predict1(m1, c1["model"], [raw], [r0.H], k=0.25)[0]
        rows.append({"type": image_type, "stage0": errors_mm(identity_fit(), H, T, c),
                     "stage01": errors_mm(fit.fit, H, T, c), "fallback": fit.fallback, "points": fit.fit.n_points})
    out = []
    for t, g in pd.DataFrame(rows).groupby("type"):
        e0, e1 = np.concatenate(list(g["stage0"])), np.concatenate(list(g["stage01"]))
        out.append({"type": t, "n": len(g), "H_only_median_mm": np.median(e0), "H_only_p95_mm": np.percentile(e0, 95),
                    "rect_median_mm": np.median(e1), "rect_p95_mm": np.percentile(e1, 95),
                    "node_off_rate": np.mean([np.median(x) > 2.5 for x in g["stage01"]]),
                    "fallback_rate": g["fallback"].mean(), "points": g["points"].mean()})
    print(pd.DataFrame(out).to_string(index=False, float_format=lambda v: f"{v:.3f}"))


if __name__ == "__main__":
    main()

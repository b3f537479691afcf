"""How a stage-0 model trained on data.synth transfers to ECG-Image-Kit renders: ../shared/eik_dev, per type.

    python scripts/eval_stage0_eik.py CHECKPOINT [data_dir=../shared/eik_dev] [tta=false]

Ground truth comes from ECG-Image-Kit's own JSON beside each image: the centre of each lead's printed name
(``text_bounding_box``) and, where the page geometry is known (types 0001/0004/0015 are the page itself, 0005
carries its homography), the page corners.  Errors are in mm at the page's 200 DPI.  A normalisation counts as
failed when the fitted homography maps the true keypoints more than 5 mm (median) away from where they belong.
"""
from __future__ import annotations

import json
import sys
from dataclasses import dataclass
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
from stage0_keypoints.metric import FAIL_MM  # noqa: E402
from stage0_keypoints.predict import predict  # noqa: E402
from stage0_keypoints.targets import KEYPOINT_NAMES, canonical_keypoints  # noqa: E402


def eik_keypoints(doc: dict, image_type: str) -> np.ndarray:
    """(17, 2) image px in KEYPOINT_NAMES order; NaN where unknown."""
    out = np.full((len(KEYPOINT_NAMES), 2), np.nan)
    n_full = max(lead["end_sample"] - lead["start_sample"] for lead in doc["leads"])
    for lead in doc["leads"]:
        name = lead["lead_name"] + ("_rhythm" if lead["end_sample"] - lead["start_sample"] == n_full else "")
        box = np.array([lead["text_bounding_box"][str(i)] for i in range(4)], dtype=np.float64)[:, ::-1]  # -> x, y
        out[KEYPOINT_NAMES.index(name)] = box.mean(0)
    w, h = doc["width"], doc["height"]
    corners = G.page_corners() * [w / G.PAGE_W, h / G.PAGE_H] - 0.5
    if image_type in ("0001", "0004", "0015"):
        out[13:] = corners
    elif image_type == "0005" and "photo_postprocess" in doc:
        Hm = np.asarray(doc["photo_postprocess"]["homography"], dtype=np.float64)
        out[13:] = cv2.perspectiveTransform(corners.reshape(-1, 1, 2), Hm).reshape(-1, 2)
    return out


@dataclass
class Options:
    checkpoint: str
    data_dir: str = str(Path(__file__).resolve().parents[2] / "shared" / "eik_dev")
    tta: bool = False


def main(argv=None) -> None:
    opts = cli.parse(Options, argv, __doc__, positional=("checkpoint",))
    root, tta = Path(opts.data_dir), opts.tta
    model, cfg = load_model(opts.checkpoint)
    rows = []
    for png in tqdm(sorted((root / "train").glob("*/*-*.png")), desc="eik_dev"):
        image_type = png.stem.rsplit("-", 1)[1]
        doc = json.loads(png.with_suffix(".json").read_text())
        truth = eik_keypoints(doc, image_type)
        res = predict(model, [read_image(png)], int(cfg["model"]["input_size"]), tta=tta)[0]
        known = np.isfinite(truth[:, 0])
        err_mm = np.linalg.norm(res.keypoints[known] - truth[known], axis=1) / G.PX_PER_MM
        failed = not res.ok
        if res.H is not None:
            mapped = cv2.perspectiveTransform(truth[known].reshape(-1, 1, 2), res.H).reshape(-1, 2)
            off_mm = np.median(np.linalg.norm(mapped - canonical_keypoints()[known], axis=1)) / G.PX_PER_MM
            failed = failed or off_mm > FAIL_MM
        rows.append({"type": image_type, "errors": err_mm, "failed": failed, "orient_ok": res.orientation == 0})
    table = pd.DataFrame([{"type": t, "n": len(g), "kp_median_mm": np.median(np.concatenate(list(g["errors"]))),
                           "kp_p95_mm": np.percentile(np.concatenate(list(g["errors"])), 95),
                           "orient_acc": g["orient_ok"].mean(), "fail_rate": g["failed"].mean()}
                          for t, g in pd.DataFrame(rows).groupby("type")])
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))


if __name__ == "__main__":
    main()

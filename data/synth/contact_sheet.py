"""Contact sheet of one record's images with their label geometry drawn on top, to see that labels match pixels.

    python -m data.synth.contact_sheet RECORD_DIR [out=contact_sheet.png] [tile=900]

Drawn per image: the traces (canonical trace points mapped through the label's dense map, cyan), the 5 mm
lattice (blue dots), the 13 lead-name keypoints (green circles) and the page corners (magenta, TL marked).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from data import cli
from data.competition import lead_window
from data.files import write_image
from data.geometry import trace_points
from data.labels import PageLabel, label_path


def overlay(img: np.ndarray, label: PageLabel, signals=None, fs: int | None = None) -> np.ndarray:
    out = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR) if img.ndim == 2 else img.copy()
    s = max(1, round(max(out.shape[:2]) / 1500))
    if signals is not None:
        for pts in trace_points(signals, fs).values():
            p = label.canon_to_image(pts[::2])
            cv2.polylines(out, [np.round(p).astype(np.int32).reshape(-1, 1, 2)], False, (255, 255, 0), s, cv2.LINE_AA)
    for x, y in label.lattice:
        cv2.circle(out, (int(round(x)), int(round(y))), 2 * s, (255, 0, 0), -1)
    for x, y in label.keypoints:
        cv2.circle(out, (int(round(x)), int(round(y))), 12 * s, (0, 200, 0), 2 * s)
    c = np.round(label.corners).astype(np.int32)
    cv2.polylines(out, [c.reshape(-1, 1, 2)], True, (255, 0, 255), 2 * s)
    cv2.circle(out, tuple(int(v) for v in c[0]), 20 * s, (255, 0, 255), -1)
    return out


def contact_sheet(record_dir: str | Path, tile: int = 900) -> np.ndarray:
    import pandas as pd

    record_dir = Path(record_dir)
    rid = record_dir.name
    csv = record_dir / f"{rid}.csv"
    frame = pd.read_csv(csv) if csv.is_file() else None
    fs = None
    if frame is not None:  # fs from the rhythm lead's length (10 s)
        fs = int(round(lead_window(frame["II"])[1].size / 10))
    tiles = []
    for png in sorted(record_dir.glob(f"{rid}-*.png")):
        lp = label_path(png)
        if not lp.is_file():
            continue
        img = cv2.imread(str(png), cv2.IMREAD_UNCHANGED)
        label = PageLabel.load(lp)
        drawn = overlay(img, label, frame, fs)
        scale = tile / max(drawn.shape[:2])
        drawn = cv2.resize(drawn, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        canvas = np.full((tile + 40, tile, 3), 255, np.uint8)
        canvas[40:40 + drawn.shape[0], :drawn.shape[1]] = drawn
        cv2.putText(canvas, f"{png.stem}  {img.shape[1]}x{img.shape[0]}  rot {label.orientation}", (8, 28),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.8, (0, 0, 0), 2, cv2.LINE_AA)
        tiles.append(canvas)
    if not tiles:
        raise FileNotFoundError(f"no labelled images in {record_dir}")
    cols = min(4, len(tiles))
    rows = -(-len(tiles) // cols)
    tiles += [np.full_like(tiles[0], 255)] * (rows * cols - len(tiles))
    return np.vstack([np.hstack(tiles[r * cols:(r + 1) * cols]) for r in range(rows)])


@dataclass
class Options:
    record_dir: str
    out: str = "contact_sheet.png"
    tile: int = 900


def main(argv=None) -> None:
    opts = cli.parse(Options, argv, __doc__, positional=("record_dir",))
    out = Path(opts.out)
    sheet = contact_sheet(opts.record_dir, opts.tile)
    write_image(out, sheet)
    print(f"wrote {out} ({sheet.shape[1]}x{sheet.shape[0]})")


if __name__ == "__main__":
    main()

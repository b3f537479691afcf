"""Every layout, end to end: ../shared/eik_layouts (ECG-Image-Kit renders of eik_dev's records in 3x4, 3x4+V1,
6x2, 6x2+II and 12x1, with exact truth) read by the pipeline, scored as that folder's README says.

    python scripts/eval_layouts.py [data_dir=../shared/eik_layouts] [layout=auto] [out=runs/eik_layouts.csv]
                                   [only=6x2,12x1] [checkpoints=[...]] [extract.<field>=...]
    python scripts/eval_layouts.py data_dir=../shared/eik_dev out=runs/eik_dev_auto.csv    # the competition's page
    python scripts/eval_layouts.py data_dir=../shared/eik_dev crop_mm=5 out=runs/eik_dev_crop.csv   # cut to the ECG

A folder without index.csv is read as eik_dev's: ``train/<id>/<id>-<type>.png`` pages of the competition's 3x4+II
(the type stands for the layout in the table).

Per image: every printed segment of its JSON (a lead printed twice is scored twice, from the same column), the
metric's alignment per segment (best shift within 0.2 s, offset removed), ratio = signal / noise over the segments
capped at 384; per layout 10*log10(mean ratio).  Prints per layout the dB, how many pages were read as their own
layout, and the verdicts; writes the per-image table to ``out``.  A page not read scores as all zeros.
``crop_mm``: each image first cut to the box of its plotted samples widened by that many mm (the crops are kept
beside ``out``), as real paper is mostly scanned.
Validation only: never train or tune per image on it.
"""
from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from data import cli  # noqa: E402
from data.files import write_image, write_table  # noqa: E402
from inference.pipeline import DigitizerOptions, leads_frame  # noqa: E402
from pagekit.metric import MAX_TIME_SHIFT_S, align_signals, lead_powers, snr_ratio, to_db  # noqa: E402

FS = 500


@dataclass(kw_only=True)
class Options(DigitizerOptions):
    data_dir: str = "../shared/eik_layouts"
    out: str = "runs/eik_layouts.csv"
    only: list[str] = field(default_factory=list)     # layouts to read (default: all)
    layout: str = "auto"
    crop_mm: float = -1.0                              # >= 0: each image cut to its traces + this margin (below)


def image_ratio(pred: pd.DataFrame | None, truth: pd.DataFrame, segments: list[dict]) -> float:
    """One page: signal and noise summed over its printed segments (missing prediction: zeros)."""
    sig = noise = 0.0
    for seg in segments:
        a, b, lead = seg["start_sample"], seg["end_sample"], seg["lead_name"]
        t = truth[lead].to_numpy()[a:b]
        p = np.zeros(b - a) if pred is None else np.nan_to_num(pred[lead].to_numpy()[a:b])
        s, n = lead_powers(t, align_signals(t, p, int(MAX_TIME_SHIFT_S * FS)))
        sig, noise = sig + s, noise + n
    return snr_ratio(sig, noise)


def cropped(image_path: Path, segments: list[dict], margin_mm: float, out_dir: Path) -> Path:
    """The image cut to the box of every plotted sample (its JSON) widened by ``margin_mm`` on each side: a page as
    a user crops it to its ECG, no paper margin, no page outline (mm: the image's long side is the page's 279.4)."""
    image = cv2.imread(str(image_path), cv2.IMREAD_COLOR)
    yx = np.concatenate([np.asarray(seg["plotted_pixels"], dtype=np.float64).reshape(-1, 2) for seg in segments])
    pad = margin_mm * max(image.shape[:2]) / 279.4
    y0, x0 = np.maximum(np.floor(yx.min(0) - pad).astype(int), 0)
    y1, x1 = np.ceil(yx.max(0) + pad).astype(int) + 1
    return write_image(out_dir / image_path.name, image[y0:y1, x0:x1])


def read_index(root: Path) -> pd.DataFrame:
    """image, id, layout, bw per page: eik_layouts' index.csv, or eik_dev's pages (layout 3x4+II, by type)."""
    if (root / "index.csv").is_file():
        return pd.read_csv(root / "index.csv")
    pages = sorted((root / "train").glob("*/*-*.png"))
    if not pages:
        raise FileNotFoundError(f"{root} holds neither index.csv nor train/<id>/<id>-<type>.png pages")
    return pd.DataFrame({"image": [str(p.relative_to(root)) for p in pages], "id": [p.parent.name for p in pages],
                         "layout": "3x4+II", "bw": [p.stem.split("-")[1] for p in pages]})


def main(argv=None) -> pd.DataFrame:
    opts = cli.parse(Options, argv, __doc__)
    root = Path(opts.data_dir)
    with cli.reported():
        index = read_index(root)
    if opts.only:
        index = index[index["layout"].isin(opts.only)]
    dig = opts.digitizer()
    rows = []
    for r in tqdm(list(index.itertuples()), desc="pages", unit="page"):
        segments = json.loads((root / r.image).with_suffix(".json").read_text())["leads"]
        image = root / r.image
        if opts.crop_mm >= 0:
            image = cropped(image, segments, opts.crop_mm, Path(opts.out).with_suffix("") / "crops")
        t0 = time.perf_counter()
        reading = dig.read(image, FS)
        seconds = time.perf_counter() - t0
        pred = None if reading.failure else leads_frame(reading.leads, FS, reading.layout)
        truth = pd.read_csv((root / r.image).parent / f"{r.id}.csv")
        rows.append({"image": r.image, "layout": r.layout, "bw": r.bw,
                     "read_as": reading.layout.name if reading.layout else "", "status": reading.status,
                     "reason": reading.failure or "; ".join(reading.doubts()),
                     "ratio": image_ratio(pred, truth, segments), "seconds": seconds})
    df = pd.DataFrame(rows)
    df["db"] = to_db(df["ratio"])
    write_table(Path(opts.out), df, index=False)
    print(f"{'layout':8s} {'pages':>5s} {'dB':>7s} {'read as itself':>15s}  verdicts")
    for name, g in list(df.groupby("layout")) + [("all", df)]:
        right = int((g["read_as"] == g["layout"]).sum())
        print(f"{name:8s} {len(g):5d} {float(to_db(g['ratio'].mean())):7.2f} {right:9d} of {len(g):<3d}  "
              f"{g['status'].value_counts().to_dict()}")
    print(f"seconds per page: median {df['seconds'].median():.1f}, max {df['seconds'].max():.1f}")
    print(dig.timing_report(len(df)))
    return df


if __name__ == "__main__":
    main()

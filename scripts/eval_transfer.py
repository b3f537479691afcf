"""How models trained on data.synth transfer to ECG-Image-Kit renders, stage by stage, per image type, next to the
digitizers without weights (the table every change to a model, the generator, rectification or extraction reports):

    python scripts/eval_transfer.py [checkpoints=[s0.pt,s1.pt,s2.pt]] [data_dir=../shared/eik_dev] [types=0001,0005]
                                    [limit=N] [stage0_tta=true] [tta_flip=false] [precision=auto|fp32|bf16]
                                    [register=true]
                                    [extract.<field>=...] [out=transfer.csv]

Ground truth comes from ECG-Image-Kit's JSON beside each image: ``plotted_pixels`` (the image pixel of every plotted
sample) and the lead-name boxes.  The exact page -> image map of each image is the homography fitted (least squares)
from every sample's canonical page position (``data.geometry``) to its plotted pixel; it holds for all of the set's
types (0003's rotation and 0005's perspective included; ECG-Image-Kit's wrinkles shade but do not move the page), to
the 2-5 px by which ECG-Image-Kit's rows sit lower, which the metric's offset removal absorbs.

Columns (per type; SNR as the competition averages, dB of the mean ratio):
- ``kp_median_mm``, ``s0_fail``: stage 0's lead-name keypoint error and its rate of failed pages (true keypoints more
  than 5 mm off after normalisation);
- ``rect_median_mm``, ``rect_p95_mm``: where 1024 trace samples land on the page stages 0 + 1 rectify, in mm;
- ``s2_exact_db``: stage 2 + extraction alone, on pages rectified by the exact map; ``s2_overlap_db`` and
  ``s2_other_db`` the same over the leads whose waves reach into a neighbouring row (beyond 1.8 mV, half the gap
  between rows, from their median) and over the others (signal and noise powers summed over those leads);
- ``e2e_db``: the three stages end to end;
- ``classical_db``, ``zero_db``: ``python -m inference.baseline method=classical`` and 0 mV.
Stage 0/1 columns are left empty without their checkpoints; stage-2 checkpoints are required with any.

Then the loss anatomy (``pagekit.anatomy``) of the exact pages and of end to end, per type: each zone's share of the
noise (``edge``: a lead's first and last 0.12 s, under its name or beside a separator; ``tip``: QRS and other peaks;
``flank``: the steepest 8 %; ``rest``), the dB each would add if read perfectly (``*_gain_db``), the median tip gain
(reading over truth at peaks of 0.5 mV or more) and the median time shift in samples (positive: read early);
written to ``out`` with ``_anatomy`` before the suffix.
"""
from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field, fields
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from data import cli  # noqa: E402
from data import geometry as G  # noqa: E402
from data.competition import Competition  # noqa: E402
from data.eik import sample_positions  # noqa: E402
from data.files import write_table  # noqa: E402
from engine.report import summarize_by_type  # noqa: E402
from pagekit.anatomy import page_anatomy, summarize  # noqa: E402
from inference.classical import ClassicalDigitizer  # noqa: E402
from inference.pipeline import Digitizer  # noqa: E402
from pagekit.extract import ExtractConfig  # noqa: E402
from pagekit.image import read_image, warp_to_page  # noqa: E402
from pagekit.metric import MAX_TIME_SHIFT_S, align_signals, image_ratio, lead_powers, to_db  # noqa: E402
from stage0_keypoints.metric import FAIL_MM  # noqa: E402
from stage0_keypoints.predict import predict as predict0  # noqa: E402
from stage0_keypoints.targets import KEYPOINT_NAMES, canonical_keypoints  # noqa: E402
from stage1_rectify.predict import predict as predict1  # noqa: E402
from stage1_rectify.warp import canonical_to_raw  # noqa: E402

EIK_DEV = str(Path(__file__).resolve().parents[2] / "shared" / "eik_dev")


def exact_homography(canon: np.ndarray, image: np.ndarray) -> np.ndarray:
    """3x3 canonical page px -> image px, least squares over every sample."""
    H, _ = cv2.findHomography(canon.astype(np.float32), image.astype(np.float32), 0)
    return H


def eik_keypoints(doc: dict, H_page: np.ndarray) -> np.ndarray:
    """(17, 2) image px in KEYPOINT_NAMES order: the lead-name box centres and the page corners through H_page."""
    out = np.full((len(KEYPOINT_NAMES), 2), np.nan)
    n_full = max(lead["end_sample"] - lead["start_sample"] for lead in doc["leads"])
    for lead in doc["leads"]:
        name = lead["lead_name"] + ("_rhythm" if lead["end_sample"] - lead["start_sample"] == n_full else "")
        box = np.array([lead["text_bounding_box"][str(i)] for i in range(4)], dtype=np.float64)[:, ::-1]
        out[KEYPOINT_NAMES.index(name)] = box.mean(0)
    out[13:] = cv2.perspectiveTransform((G.page_corners() - 0.5).reshape(-1, 1, 2), H_page).reshape(-1, 2)
    return out


def overlapping(leads: dict[str, np.ndarray]) -> set[str]:
    """Leads whose waves reach past half the gap between printed rows (1.8 mV from their median)."""
    half = (G.BASELINES[1] - G.BASELINES[0]) / 2 / G.PX_PER_MV
    return {lead for lead, v in leads.items() if np.max(np.abs(v - np.median(v))) > half}


def lead_split_powers(leads: dict, pred: dict, fs: int, group: set[str]) -> np.ndarray:
    """[[signal, noise] of the leads in group, [signal, noise] of the others], as the metric counts them."""
    out = np.zeros((2, 2))
    for lead, label in leads.items():
        s, n = lead_powers(label, align_signals(label, pred[lead], int(fs * MAX_TIME_SHIFT_S)))
        out[0 if lead in group else 1] += (s, n)
    return out


def to_canonical(H_page: np.ndarray, image_px: np.ndarray) -> np.ndarray:
    return cv2.perspectiveTransform(image_px.reshape(-1, 1, 2).astype(np.float64), np.linalg.inv(H_page)).reshape(-1, 2)


@dataclass
class Options:
    checkpoints: list[str] = field(default_factory=list)
    data_dir: str = EIK_DEV
    types: list[str] = field(default_factory=list)
    limit: int | None = None
    stage0_tta: bool = True
    tta_flip: bool = False
    precision: str = "auto"                               # stage 2's forward (inference.pipeline.Digitizer)
    register: bool = True                                 # rows moved back by the page's grid (pagekit.registration)
    extract: dict = field(default_factory=dict)           # extract.<field>=... over the stage-2 checkpoint's own
    out: str | None = None

    OPEN_KEYS = {"extract": [f.name for f in fields(ExtractConfig)]}


def evaluate_image(r, comp: Competition, dig: Digitizer | None, classical: ClassicalDigitizer, opts) -> dict:
    doc = json.loads(Path(r.path).with_suffix(".json").read_text())
    signals = comp.load_signals(r.id)
    leads = {lead: v for lead, (_, v) in comp.load_leads(r.id).items()}
    lengths = {lead: len(v) for lead, v in leads.items()}
    canon, image_px = sample_positions(doc, signals)
    H_page = exact_homography(canon, image_px)
    raw = read_image(r.path)
    row = {"type": r.type, "image": r.image_id,
           "zero": image_ratio(leads, {k: np.zeros(n) for k, n in lengths.items()}, r.fs),
           "classical": image_ratio(leads, classical.run([r.path], [r.fs], [lengths])[0].leads, r.fs)}
    if dig is None:
        return row
    stages = dig.stages
    if 0 in stages and 1 in stages:
        (m0, c0, _), (m1, c1, _) = stages[0], stages[1]
        s0 = predict0(m0, [raw], int(c0["model"]["input_size"]), dig.device, 1, opts.stage0_tta)[0]
        truth = eik_keypoints(doc, H_page)
        known = np.isfinite(truth[:, 0])
        scale = np.sqrt(abs(np.linalg.det(H_page[:2, :2])))          # image px per canonical px, about
        row["kp_mm"] = np.linalg.norm(s0.keypoints[known] - truth[known], axis=1) / scale / G.PX_PER_MM
        fail = not s0.ok
        if s0.H is not None:
            mapped = cv2.perspectiveTransform(truth[known].reshape(-1, 1, 2), s0.H).reshape(-1, 2)
            off_mm = np.median(np.linalg.norm(mapped - canonical_keypoints()[known], axis=1)) / G.PX_PER_MM
            fail = fail or off_mm > FAIL_MM
        row["s0_fail"] = float(fail)
        rect = predict1(m1, c1["model"], [raw], [s0.H if s0.ok else None], dig.k, dig.device, 1)[0]
        pick = np.random.default_rng(0).choice(len(canon), min(1024, len(canon)), replace=False)
        landed = to_canonical(H_page, canonical_to_raw(rect.fit, rect.H, canon[pick]))   # the map stage 1 used
        row["rect_mm"] = np.linalg.norm(landed - canon[pick], axis=1) / G.PX_PER_MM
        probs = dig.probabilities([rect.page])
        pred = dig.extract(probs[0], r.fs, lengths, G.PAGE_LAYOUT, page=rect.page)[0]
        row["e2e"] = image_ratio(leads, pred, r.fs)
        row["e2e_anatomy"] = page_anatomy(leads, pred, r.fs)
    kx, ky = dig.k              # a Digitizer always holds stage 2; image px -> page px: the exact map, one warp
    exact = warp_to_page(raw, np.diag([kx, ky, 1.0]) @ np.linalg.inv(H_page), G.page_size(dig.k))
    pred = dig.extract(dig.probabilities([exact])[0], r.fs, lengths, G.PAGE_LAYOUT, page=exact)[0]
    row["s2_exact"] = image_ratio(leads, pred, r.fs)
    row["s2_split"] = lead_split_powers(leads, pred, r.fs, overlapping(leads))
    row["s2_exact_anatomy"] = page_anatomy(leads, pred, r.fs)
    return row


def table(rows: list[dict]) -> pd.DataFrame:
    def stats(rs):
        out = {"n": len(rs)}
        for key, name in (("s2_exact", "s2_exact_db"), ("e2e", "e2e_db"), ("classical", "classical_db"),
                          ("zero", "zero_db")):
            if all(key in r for r in rs):
                out[name] = float(to_db(np.mean([r[key] for r in rs])))
        if all("kp_mm" in r for r in rs):
            out["kp_median_mm"] = float(np.median(np.concatenate([r["kp_mm"] for r in rs])))
            out["s0_fail"] = float(np.mean([r["s0_fail"] for r in rs]))
        split = [r["s2_split"] for r in rs if "s2_split" in r]
        if split:
            total = np.sum(split, 0)
            out["s2_overlap_db"], out["s2_other_db"] = (float(to_db(sig / max(noise, 1e-12))) if sig else np.nan
                                                        for sig, noise in total)
            out["overlap_leads"] = float(np.mean([(r["s2_split"][0, 0] > 0) for r in rs]))
        rect = [r["rect_mm"] for r in rs if "rect_mm" in r]
        if rect:
            out["rect_median_mm"] = float(np.median(np.concatenate(rect)))
            out["rect_p95_mm"] = float(np.percentile(np.concatenate(rect), 95))
        return out
    overall, per_type = summarize_by_type(rows, stats)
    return pd.concat([per_type, pd.DataFrame({"all": overall}).T])


def anatomy_table(rows: list[dict]) -> pd.DataFrame:
    """Per reading (exact pages, end to end) and type: ``pagekit.anatomy.summarize``."""
    parts = []
    for key in ("s2_exact", "e2e"):
        have = [r for r in rows if f"{key}_anatomy" in r]
        if have:
            overall, per_type = summarize_by_type(have, lambda rs, k=key: summarize([r[f"{k}_anatomy"] for r in rs]))
            parts.append(pd.concat([per_type, pd.DataFrame({"all": overall}).T]).assign(reading=key))
    return pd.concat(parts).rename_axis("type").reset_index() if parts else pd.DataFrame()


def main(argv=None) -> pd.DataFrame:
    opts = cli.parse(Options, argv, __doc__, open_keys=Options.OPEN_KEYS)
    with cli.reported():
        comp = Competition(opts.data_dir)
        images = comp.images(opts.types or None)
        dig = Digitizer(opts.checkpoints, rectify="gt", tta_flip=opts.tta_flip, stage0_tta=opts.stage0_tta,
                        extract=opts.extract, precision=opts.precision, register=opts.register
                        ) if opts.checkpoints else None
    images = images[[Path(p).with_suffix(".json").is_file() for p in images["path"]]]
    if opts.limit:
        images = images.head(opts.limit)
    classical = ClassicalDigitizer()
    rows = [evaluate_image(r, comp, dig, classical, opts) for r in tqdm(list(images.itertuples()), desc="transfer")]
    out = table(rows)
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(out.to_string(float_format=lambda v: f"{v:.2f}"))
    anatomy = anatomy_table(rows)
    if not anatomy.empty:
        with pd.option_context("display.width", 250, "display.max_columns", 30):
            print(anatomy.set_index(["reading", "type"]).to_string(float_format=lambda v: f"{v:.2f}"))
    if opts.out:
        write_table(opts.out, out.rename_axis("type").reset_index(), index=False)
        if not anatomy.empty:
            out_path = Path(opts.out)
            write_table(out_path.with_name(f"{out_path.stem}_anatomy{out_path.suffix}"), anatomy, index=False)
    return out


if __name__ == "__main__":
    main()

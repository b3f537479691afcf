"""How right are the automatic labels?  Label every image of a competition-layout folder that has the truth beside
it, and compare, per image type:

    python scripts/eval_autolabel.py [data_dir=runs/data/synth_mix_40_0] [types=0001,0005] [limit=N] [dense=true]
                                     [checkpoints=[stage0.pt]] [out=autolabel_eval.csv]
    python scripts/eval_autolabel.py data_dir=DIR truth_dir=TRUTH     # labels that inference.autolabel wrote

With ``truth_dir``, nothing is labelled again: the label files that ``python -m inference.autolabel`` left in
``data_dir`` (and its ``autolabel_summary.csv``: statuses, reasons, seconds) are scored against the truth of the same
images in ``truth_dir`` (e.g. a synthetic competition copied without its label files, then autolabelled).

Truth: the generator's label files (``*.label.json``, a synthetic competition) or ECG-Image-Kit's JSON
(``plotted_pixels``, ../shared/eik_dev).  The error is the distance between where each plotted sample of the
record lands through the automatic map and where the truth puts it, in mm of the page.  Columns: labelled,
rejected, accepted-but-wrong (p95 error > 1 mm), median and p95 error of the accepted labels, seconds per image.
"""
from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from data import cli  # noqa: E402
from data import geometry as G  # noqa: E402
from data.competition import Competition  # noqa: E402
from data.eik import sample_positions  # noqa: E402
from data.files import write_table  # noqa: E402
from data.labels import PageLabel, label_path  # noqa: E402
from inference.autolabel import Stage0Starts  # noqa: E402
from pagekit.autolabel import autolabel, image_scale  # noqa: E402
from pagekit.image import ink, read_image  # noqa: E402

WRONG_MM = 1.0


@dataclass
class Options:
    data_dir: str = "runs/data/synth_mix_40_0"
    types: list[str] = field(default_factory=list)
    limit: int | None = None
    dense: bool = True
    checkpoints: list[str] = field(default_factory=list)     # stage 0: its page as another start
    truth_dir: str | None = None
    out: str | None = None


def truth_points(path: Path, signals: pd.DataFrame, fs: int) -> tuple[np.ndarray, np.ndarray] | None:
    """(canonical px, true image px) of the record's plotted samples, from whichever truth sits beside the image."""
    eik = path.with_suffix(".json")
    doc = json.loads(eik.read_text()) if eik.is_file() else {}
    if "plotted_pixels" in (doc.get("leads") or [{}])[0]:
        return sample_positions(doc, signals)
    if label_path(path).is_file():
        canon = np.concatenate(list(G.trace_points(signals, fs).values()))
        return canon, PageLabel.load(label_path(path)).canon_to_image(canon)
    return None


def label_error(to_image, H: np.ndarray, canon: np.ndarray, true_px: np.ndarray) -> dict:
    """Median and p95 distance (mm of the page) between where a map puts the plotted samples and the truth."""
    err = np.linalg.norm(to_image(canon) - true_px, axis=1) / (image_scale(H) * G.PX_PER_MM)
    return {"err_median_mm": float(np.median(err)), "err_p95_mm": float(np.percentile(err, 95))}


def evaluate_record(comp: Competition, rows: pd.DataFrame, dense: bool, starts: Stage0Starts) -> list[dict]:
    signals = comp.load_signals(rows.iloc[0].id)
    out, reference = [], None
    for r in rows.sort_values("type").itertuples():       # 0001 first: the others register to it
        image = read_image(r.path)
        t0 = time.perf_counter()
        dark = ink(image)
        res = autolabel(dark, signals, int(r.fs), r.type, reference, dense, lambda: starts(image))
        row = {"type": r.type, "image": Path(r.path).stem, "accepted": res.accepted, "method": res.method,
               "on_ink": res.on_ink, "on_ink_steep": res.on_ink_steep, "p90_ink_mm": res.p90_mm, "ecc": res.ecc,
               "reason": res.reason, "seconds": time.perf_counter() - t0}
        truth = truth_points(Path(r.path), signals, int(r.fs))
        if truth is not None and res.H is not None:
            row |= label_error(res.to_image, res.H, *truth)
        if r.type == "0001" and res.accepted:
            reference = (dark, res.H)
        out.append(row)
    return out


def score_written(comp: Competition, truth: Competition, images: pd.DataFrame) -> pd.DataFrame:
    """Rows of ``evaluate_record`` for the labels ``python -m inference.autolabel`` wrote beside ``images``."""
    written = pd.read_csv(Path(comp.root) / "autolabel_summary.csv").set_index("image")
    rows, signals = [], {}
    for r in tqdm(list(images.itertuples()), desc="labels"):
        path = Path(r.path)
        done = written.loc[path.name] if path.name in written.index else None
        row = {"type": r.type, "image": path.stem, "accepted": label_path(path).is_file(),
               "reason": "" if done is None or pd.isna(done.reason) else done.reason,
               "seconds": np.nan if done is None else done.seconds}
        if row["accepted"]:
            if r.id not in signals:                        # once per record, not per image
                signals[r.id] = comp.load_signals(r.id)
            points = truth_points(Path(truth.root) / path.relative_to(comp.root), signals[r.id], int(r.fs))
            if points is not None:
                label = PageLabel.load(label_path(path))
                row |= label_error(label.canon_to_image, np.linalg.inv(label.homography()), *points)
        rows.append(row)
    return pd.DataFrame(rows)


def summary(df: pd.DataFrame) -> pd.DataFrame:
    def stats(g):
        acc = g[g.accepted]
        return pd.Series({"n": len(g), "accepted": int(g.accepted.sum()), "rejected": int((~g.accepted).sum()),
                          "wrong_accepted": int((acc.get("err_p95_mm", pd.Series(dtype=float)) > WRONG_MM).sum()),
                          "median_mm": acc["err_median_mm"].median() if "err_median_mm" in acc else np.nan,
                          "p95_mm": acc["err_p95_mm"].median() if "err_p95_mm" in acc else np.nan,
                          "s/image": g.seconds.mean()})
    per_type = df.groupby("type").apply(stats, include_groups=False)
    return pd.concat([per_type, stats(df).to_frame("all").T])


def main(argv=None) -> pd.DataFrame:
    opts = cli.parse(Options, argv, __doc__)
    with cli.reported():
        comp = Competition(opts.data_dir)
        images = comp.images(opts.types or None)
        truth = Competition(opts.truth_dir) if opts.truth_dir else None
    ids = list(dict.fromkeys(images["id"]))[:opts.limit] if opts.limit else list(dict.fromkeys(images["id"]))
    if truth is not None:
        df = score_written(comp, truth, images[images["id"].isin(ids)])
    else:
        rows, starts = [], Stage0Starts(opts.checkpoints, "cpu")
        for rid in tqdm(ids, desc="records"):
            rows += evaluate_record(comp, images[images["id"] == rid], opts.dense, starts)
        df = pd.DataFrame(rows)
    out = summary(df)
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(out.to_string(float_format=lambda v: f"{v:.3f}"))
        bad = df[~df.accepted]
        if len(bad):
            print(bad[["image", "reason"]].to_string(index=False))
    if opts.out:
        write_table(opts.out, df, index=False)
    return out


if __name__ == "__main__":
    main()

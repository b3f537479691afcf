"""How the generator's pages differ from ECG-Image-Kit's, in numbers: the same measurements on clean (0001) pages of
both, and on the signals they plot.

    python scripts/audit_style.py [eik=../shared/eik_dev] [synth=DIR] [n=8] [picture=docs/style_audit.jpg]

``synth`` defaults to a fresh ``data.synth`` set of n records (types 0001) in a temporary folder.  Printed, one row
per measurement (median over pages, [min, max] where it varies): trace stroke width across flat stretches, trace
colour, major/minor grid colour and line width, the lead names' height and offset from the lead start, the
calibration pulse's width and height, ink at the lead hand-overs (separator ticks), ink above the first row
(header), and the signals' share of power above 20 Hz and steepest slope.  The picture puts the same region of one
page of each side by side at 1:1.
"""
from __future__ import annotations

import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import scipy.signal

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from data import cli  # noqa: E402
from data import geometry as G  # noqa: E402
from data.competition import Competition  # noqa: E402
from data.files import write_image  # noqa: E402
from data.synth.generate import generate  # noqa: E402
from pagekit.image import ink, read_image  # noqa: E402

EIK_DEV = str(Path(__file__).resolve().parents[2] / "shared" / "eik_dev")


def stroke_width(dark: np.ndarray) -> float:
    """Median vertical run of ink (> 0.5) through the darkest pixel of columns where the trace is nearly flat."""
    runs = []
    for b in G.BASELINES:
        band = dark[int(b) - 120:int(b) + 120]
        for x in range(int(G.X_T0) + 10, G.PAGE_W - 20, 5):
            col = band[:, x]
            on = col > 0.5
            if not on.any():
                continue
            a = z = int(np.argmax(col))
            while a > 0 and on[a - 1]:
                a -= 1
            while z < len(on) - 1 and on[z + 1]:
                z += 1
            if z - a + 1 <= 6:                    # steeper columns are slope, not width
                runs.append(z - a + 1)
    return float(np.median(runs)) if runs else float("nan")


def trace_colour(page: np.ndarray, dark: np.ndarray) -> np.ndarray:
    """Median colour of the darkest 0.3 % of the page (trace, and text where it is darker)."""
    return np.median(page[dark >= np.percentile(dark, 99.7)], axis=0)


def grid_lines(page: np.ndarray, dark: np.ndarray) -> dict:
    """Colour and width of the major (5 mm) and minor (1 mm) vertical lines, read where no trace is near."""
    h, w = page.shape[:2]
    rows = np.r_[60:400]                            # above the first row: grid (and a header, masked by ink)
    paper = np.median(page[rows][:, ::3].reshape(-1, 3), axis=0)
    out = {}
    for name, step, offset in (("major", G.MAJOR_PX, 0.0), ("minor", G.MAJOR_PX / 5, G.MAJOR_PX / 5)):
        xs = np.arange(G.GRID_ORIGIN[0] + offset, w - 5, G.MAJOR_PX if name == "major" else G.MAJOR_PX)
        cols, widths = [], []
        for x in xs[1:-1]:
            xi = int(round(x))
            strip = page[rows, xi - 4:xi + 5].astype(np.float32)
            keep = dark[rows, xi - 4:xi + 5].max(1) < 0.3            # rows without text or trace
            if keep.sum() < 50:
                continue
            diff = np.abs(strip[keep] - paper).sum(-1).mean(0)     # (9,) contrast across the line
            cols.append(page[rows, xi][keep].mean(0))
            widths.append(float((diff > 0.5 * diff.max()).sum()) if diff.max() > 10 else 0.0)
        out[f"{name}_colour"] = np.median(cols, axis=0) if cols else np.full(3, np.nan)
        out[f"{name}_width"] = float(np.median(widths)) if widths else float("nan")
    out["paper"] = paper
    return out


def ink_boxes(dark: np.ndarray, box: tuple[int, int, int, int]) -> tuple[float, float, float, float] | None:
    """(x0, y0, x1, y1) of the ink inside box, or None."""
    x0, y0, x1, y1 = box
    sub = dark[y0:y1, x0:x1] > 0.5
    ys, xs = np.nonzero(sub)
    if not len(xs):
        return None
    return x0 + xs.min(), y0 + ys.min(), x0 + xs.max() + 1, y0 + ys.max() + 1


def layout(dark: np.ndarray) -> dict:
    """Lead-name height and offset, calibration pulse, hand-over ticks and header, from the ink."""
    out: dict = {}
    names, offsets = [], []
    for slot in G.lead_slots()[:12]:      # the name sits below-right of the lead start; rows with ink there
        x, b = int(G.time_to_x(slot.t0)), int(G.BASELINES[slot.row])
        box = dark[b + 22:b + 70, x + 5:x + 50] > 0.5
        rows = np.nonzero(box.sum(1) >= 2)[0]
        cols = np.nonzero(box.any(0))[0]
        if len(rows) and len(cols):
            names.append(rows.max() - rows.min() + 1)
            offsets.append((x + 5 + (cols.min() + cols.max()) / 2 - G.time_to_x(slot.t0),
                            b + 22 + (rows.min() + rows.max()) / 2 - G.BASELINES[slot.row]))
    out["name_height"] = float(np.median(names)) if names else float("nan")
    out["name_offset"] = np.median(offsets, axis=0) if offsets else np.full(2, np.nan)
    pulse = ink_boxes(dark, (int(G.CAL_X[0]) - 20, int(G.BASELINES[0]) - 110, int(G.CAL_X[1]) - 2,
                             int(G.BASELINES[0]) + 10))
    out["pulse_w"] = float(pulse[2] - pulse[0]) if pulse else float("nan")
    out["pulse_mv"] = float((G.BASELINES[0] - pulse[1]) / G.PX_PER_MV) if pulse else float("nan")
    ticks = []
    for slot in G.lead_slots()[:12]:
        if slot.col:
            x, b = int(round(G.time_to_x(slot.t0))), G.BASELINES[slot.row]
            ticks.append(float((dark[int(b) - 30:int(b) + 30, x - 1:x + 2] > 0.5).any(1).sum()))
    out["tick_px"] = float(np.median(ticks))
    top = 20                                       # page-edge shading aside
    header = np.nonzero((dark[top:int(G.BASELINES[0]) - 200] > 0.5).sum(1) > 20)[0] + top
    out["header_rows"] = (float(header.min()), float(header.max())) if len(header) else None
    return out


def signal_character(frame: pd.DataFrame, fs: int) -> dict:
    ii = frame["II"].to_numpy()
    f, p = scipy.signal.welch(ii - ii.mean(), fs=fs, nperseg=min(1024, len(ii)))
    return {"hf_share": float(p[f > 20].sum() / p.sum()), "max_slope": float(np.abs(np.diff(ii)).max() * fs),
            "max_abs_mv": float(np.nanmax(np.abs(frame.to_numpy())))}


def measure(root: Path, n: int) -> tuple[pd.DataFrame, np.ndarray]:
    comp = Competition(root)
    rows, first = [], None
    for r in list(comp.images(["0001"]).itertuples())[:n]:
        page = read_image(r.path)
        if page.shape[:2] != (G.PAGE_H, G.PAGE_W):
            page = cv2.resize(page, (G.PAGE_W, G.PAGE_H), interpolation=cv2.INTER_AREA)
        first = page if first is None else first
        dark = ink(page)
        row = {"stroke_px": stroke_width(dark), "darkest_ink_bgr": trace_colour(page, dark), **grid_lines(page, dark),
               **layout(dark), **signal_character(comp.load_signals(r.id), r.fs)}
        rows.append(row)
    return pd.DataFrame(rows), first


def summary(df: pd.DataFrame) -> dict[str, str]:
    def cell(col):
        v = df[col].dropna() if col in df else pd.Series(dtype=object)
        if not len(v):
            return "-"
        if isinstance(v.iloc[0], (tuple, list, np.ndarray)):
            return str(np.round(np.median(np.stack([np.asarray(x, dtype=float) for x in v]), 0), 1).tolist())
        return f"{v.median():.3g} [{v.min():.3g}, {v.max():.3g}]"
    out = {c: cell(c) for c in df.columns if c != "header_rows"}
    has = df["header_rows"].dropna() if "header_rows" in df else []
    out["header (pages with one; rows)"] = (f"{len(has)}/{len(df)}; " +
                                            (f"y {min(h[0] for h in has):.0f}-{max(h[1] for h in has):.0f}"
                                             if len(has) else "-"))
    return out


@dataclass
class Options:
    eik: str = EIK_DEV
    synth: str | None = None
    n: int = 8
    picture: str | None = None


def main(argv=None) -> pd.DataFrame:
    opts = cli.parse(Options, argv, __doc__)
    with tempfile.TemporaryDirectory() as tmp:
        synth = Path(opts.synth) if opts.synth else generate(Path(tmp) / "synth", n_records=opts.n, seed=0,
                                                             types=["0001"], n_test=0, workers=1, progress=False)
        eik, eik_page = measure(Path(opts.eik), opts.n)
        ours, our_page = measure(synth, opts.n)
    table = pd.DataFrame({"ECG-Image-Kit (eik_dev 0001)": summary(eik), "data.synth 0001": summary(ours)})
    with pd.option_context("display.width", 200, "display.max_colwidth", 60):
        print(table.to_string())
    if opts.picture:
        y0, y1, x0, x1 = int(G.BASELINES[0]) - 130, int(G.BASELINES[1]) + 60, 40, 760
        both = np.hstack([eik_page[y0:y1, x0:x1], np.full((y1 - y0, 12, 3), 255, np.uint8), our_page[y0:y1, x0:x1]])
        for text, x in (("ECG-Image-Kit", 10), ("data.synth", x1 - x0 + 22)):
            cv2.putText(both, text, (x, 28), cv2.FONT_HERSHEY_SIMPLEX, 0.9, (200, 0, 0), 2, cv2.LINE_AA)
        write_image(opts.picture, both, [cv2.IMWRITE_JPEG_QUALITY, 90])
        print(f"wrote {opts.picture}")
    return table


if __name__ == "__main__":
    main()

"""Render the canonical 0001 page (2200x1700 at scale 1) from a competition-layout signal frame.

Everything is placed by ``data.geometry``; traces are anti-aliased OpenCV polylines drawn with 1/16 px
fixed-point precision, so a trace drawn from a known signal reads back to well within a pixel.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import cv2
import numpy as np
import pandas as pd

from data import geometry as G

_SHIFT = 4                      # fixed-point bits for cv2 drawing: 1/16 px
_ONE = 1 << _SHIFT


@dataclass
class PageStyle:
    """Colours are BGR.  Defaults follow ECG-Image-Kit's red/pink grid and near-black trace."""
    paper: tuple = (255, 255, 255)
    major: tuple = (0, 0, 255)
    minor: tuple = (219, 223, 254)
    trace: tuple = (36, 36, 36)
    trace_width: float = 1.8     # px at scale 1
    major_width: int = 1
    font_scale: float = 1.0
    header: list[str] = field(default_factory=list)

    @classmethod
    def random(cls, rng: np.random.Generator, header_lines: list[str] | None = None) -> "PageStyle":
        style = cls(trace_width=float(rng.uniform(1.3, 2.4)), font_scale=float(rng.uniform(0.9, 1.1)),
                    major_width=int(rng.choice([1, 2], p=[0.7, 0.3])), header=header_lines or [])
        if rng.random() < 0.2:   # some printers use a paler or orange-ish grid
            style.major = (int(rng.integers(0, 90)), int(rng.integers(60, 150)), 255)
            style.minor = (int(rng.integers(180, 225)), int(rng.integers(200, 235)), 255)
        g = int(rng.integers(0, 60))
        style.trace = (g, g, g)
        return style


@lru_cache(maxsize=8)
def _grid(paper, major, minor, major_width) -> np.ndarray:
    img = np.empty((G.PAGE_H, G.PAGE_W, 3), np.uint8)
    img[:] = paper
    step = G.MAJOR_PX / 5
    ox, oy = G.GRID_ORIGIN
    for lines_major in (False, True):  # minor first so major lines are drawn on top
        colour, width = (major, major_width) if lines_major else (minor, 1)
        for axis, (origin, extent) in enumerate(((ox, G.PAGE_W), (oy, G.PAGE_H))):
            n0 = int(np.floor(-origin / step))
            for n in range(n0, int((extent - origin) / step) + 1):
                if (n % 5 == 0) != lines_major:
                    continue
                p = int(round((origin + n * step) * _ONE))
                if axis == 0:
                    cv2.line(img, (p, 0), (p, G.PAGE_H * _ONE), colour, width, cv2.LINE_AA, _SHIFT)
                else:
                    cv2.line(img, (0, p), (G.PAGE_W * _ONE, p), colour, width, cv2.LINE_AA, _SHIFT)
    img.setflags(write=False)
    return img


def _polyline(img, pts, colour, width):
    p = np.round(pts * _ONE).astype(np.int32).reshape(-1, 1, 2)
    cv2.polylines(img, [p], False, colour, max(1, int(round(width))), cv2.LINE_AA, _SHIFT)


def render_page(signals: pd.DataFrame, fs: int, style: PageStyle | None = None) -> np.ndarray:
    """The clean canonical page (BGR uint8, 1700x2200)."""
    style = style or PageStyle()
    img = _grid(style.paper, style.major, style.minor, style.major_width).copy()
    w = style.trace_width
    for row in range(G.N_ROWS):  # 1 mV calibration pulse before each row
        y0, y1 = G.BASELINES[row], G.mv_to_y(1.0, row)
        x0, x1 = G.CAL_X
        _polyline(img, np.array([[x0 - 8, y0], [x0, y0], [x0, y1], [x1, y1], [x1, y0]]), style.trace, w)
    for pts in G.trace_points(signals, fs).values():
        if len(pts) > 1:
            _polyline(img, pts, style.trace, w)
    for slot in G.lead_slots():
        if slot.col > 0:  # separator tick where one lead hands over to the next
            x = G.time_to_x(slot.t0)
            _polyline(img, np.array([[x, G.BASELINES[slot.row] - 25], [x, G.BASELINES[slot.row] + 25]]),
                      style.trace, w * 1.5)
        _text_centred(img, slot.lead, G.lead_label_centre(slot), style)
    for j, line in enumerate(style.header):
        cv2.putText(img, line, (120, 90 + 40 * j), cv2.FONT_HERSHEY_SIMPLEX, 0.9 * style.font_scale,
                    style.trace, 2, cv2.LINE_AA)
    return img


def _text_centred(img, text, centre, style: PageStyle):
    font, scale, thick = cv2.FONT_HERSHEY_SIMPLEX, 1.1 * style.font_scale, 1 + int(style.trace_width > 2.0)
    (tw, th), _ = cv2.getTextSize(text, font, scale, thick)
    org = (int(round(centre[0] - tw / 2)), int(round(centre[1] + th / 2)))
    cv2.putText(img, text, org, font, scale, style.trace, thick, cv2.LINE_AA)


def random_header(rng: np.random.Generator, record_id: str, fs: int) -> list[str]:
    sex = rng.choice(["M", "F"])
    day = f"{int(rng.integers(1, 29)):02d}/{int(rng.integers(1, 13)):02d}/{int(rng.integers(1990, 2025))}"
    return [f"ID: {record_id}   {day} {int(rng.integers(0, 24)):02d}:{int(rng.integers(0, 60)):02d}",
            f"Age: {int(rng.integers(18, 95))}   Sex: {sex}   {fs} Hz   25 mm/s   10 mm/mV"]

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


def _bgr(rgb: tuple[float, float, float]) -> tuple[int, int, int]:
    return tuple(int(round(255 * c)) for c in rgb[::-1])


# ECG-Image-Kit's grid styles (major, minor; RGB in [0, 1]): brown, pink, blue, green, red, and black-and-white
EIK_GRIDS = {
    "brown": ((0.4274, 0.196, 0.1843), (0.5882, 0.4196, 0.3960)),
    "pink": ((1.0, 0.796, 0.866), (0.996, 0.9294, 0.9725)),
    "blue": ((0.0, 0.0, 0.4), (0.0, 0.0, 0.7)),
    "green": ((0.0, 0.3, 0.0), (0.0, 0.8, 0.3)),
    "red": ((1.0, 0.0, 0.0), (0.996, 0.8745, 0.8588)),
    "bw": ((0.4, 0.4, 0.4), (0.75, 0.75, 0.75)),
}
FONTS = ("hershey", "dejavu")     # OpenCV's stroke font, or DejaVu Sans as ECG-Image-Kit prints (matplotlib's)


@dataclass
class PageStyle:
    """Colours are BGR.  Defaults follow ECG-Image-Kit's red/pink grid and near-black trace."""
    paper: tuple = (255, 255, 255)
    major: tuple = (0, 0, 255)
    minor: tuple = (219, 223, 254)
    trace: tuple = (36, 36, 36)
    trace_width: float = 1.8     # px at scale 1; below 1.5 a 1-px anti-aliased stroke (ECG-Image-Kit's 0.75 pt)
    major_width: int = 1
    font_scale: float = 1.0
    font: str = "hershey"        # hershey | dejavu
    font_px: int = 30            # DejaVu size in px (11 pt at 200 dpi is 30.6)
    header: list[str] = field(default_factory=list)

    @classmethod
    def random(cls, rng: np.random.Generator, header_lines: list[str] | None = None) -> "PageStyle":
        style = cls(trace_width=float(rng.uniform(0.8, 2.4)), font_scale=float(rng.uniform(0.9, 1.1)),
                    major_width=int(rng.choice([1, 2], p=[0.7, 0.3])), header=header_lines or [],
                    font=str(rng.choice(FONTS, p=[0.4, 0.6])), font_px=int(rng.integers(24, 38)))
        grid = rng.random()
        if grid < 0.45:          # one of ECG-Image-Kit's styles
            major, minor = EIK_GRIDS[str(rng.choice(list(EIK_GRIDS), p=[0.15, 0.15, 0.15, 0.15, 0.3, 0.1]))]
            style.major, style.minor = _bgr(major), _bgr(minor)
        elif grid < 0.6:         # some printers use a paler or orange-ish grid
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


def render_page(signals: pd.DataFrame, fs: int, style: PageStyle | None = None, layout=None) -> np.ndarray:
    """The clean canonical page (BGR uint8, 1700x2200) in ``layout`` (default: the competition's 3x4+II)."""
    style = style or PageStyle()
    layout = G.as_layout(layout)
    img = _grid(style.paper, style.major, style.minor, style.major_width).copy()
    w = style.trace_width
    for row, y0 in enumerate(layout.baselines):  # 1 mV calibration pulse before each row
        y1 = G.mv_to_y(1.0, row, layout=layout)
        x0, x1 = G.CAL_X
        _polyline(img, np.array([[x0 - 8, y0], [x0, y0], [x0, y1], [x1, y1], [x1, y0]]), style.trace, w)
    for pts in G.ink_points(signals, fs, layout).values():
        if len(pts) > 1:
            _polyline(img, pts, style.trace, w)
    texts = []
    for slot in layout.slots():
        if slot.col > 0:  # separator tick where one lead hands over to the next
            x, b = G.time_to_x(slot.t0), layout.baselines[slot.row]
            _polyline(img, np.array([[x, b - 25], [x, b + 25]]), style.trace, w * 1.5)
        texts.append((slot.lead, G.lead_label_centre(slot, layout=layout), 1.0))
    texts += [(line, None, 0.8) for line in style.header]
    (_draw_dejavu if style.font == "dejavu" else _draw_hershey)(img, texts, style)
    return img


def _draw_hershey(img, texts, style: PageStyle):
    font, thick = cv2.FONT_HERSHEY_SIMPLEX, 1 + int(style.trace_width > 2.0)
    for j, (text, centre, size) in enumerate(texts):
        scale = 1.1 * size * style.font_scale
        if centre is None:         # a header line, left-aligned above the first row
            cv2.putText(img, text, (120, 90 + 40 * (j - 13)), font, scale, style.trace, 2, cv2.LINE_AA)
            continue
        dx, dy = _hershey_centre(text, round(scale, 3), thick)
        org = (int(round(centre[0] - dx)), int(round(centre[1] - dy)))
        cv2.putText(img, text, org, font, scale, style.trace, thick, cv2.LINE_AA)


@lru_cache(maxsize=256)
def _hershey_centre(text: str, scale: float, thick: int) -> tuple[float, float]:
    """Centre of the ink's bounding box relative to putText's origin: getTextSize's box leaves out the stroke
    width and sits 3 px off the glyphs, so the label is measured once as drawn."""
    pad = 100
    canvas = np.zeros((2 * pad, 4 * pad), np.uint8)
    cv2.putText(canvas, text, (pad, pad), cv2.FONT_HERSHEY_SIMPLEX, scale, 255, thick, cv2.LINE_AA)
    ys, xs = np.nonzero(canvas > 127)
    return (xs.min() + xs.max()) / 2 - pad, (ys.min() + ys.max()) / 2 - pad


@lru_cache(maxsize=16)
def _dejavu(px: int):
    from matplotlib import font_manager
    from PIL import ImageFont

    return ImageFont.truetype(font_manager.findfont("DejaVu Sans"), px)


def _draw_dejavu(img, texts, style: PageStyle):
    """TrueType text with PIL (OpenCV draws only its stroke fonts), centred on the label keypoints."""
    from PIL import Image, ImageDraw

    pil = Image.fromarray(img[..., ::-1])
    draw = ImageDraw.Draw(pil)
    colour = tuple(int(c) for c in style.trace[::-1])
    for j, (text, centre, size) in enumerate(texts):
        font = _dejavu(int(round(style.font_px * size)))
        if centre is None:
            draw.text((120, 60 + 40 * (j - 13)), text, font=font, fill=colour)
            continue
        left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
        draw.text((centre[0] - (left + right) / 2, centre[1] - (top + bottom) / 2), text, font=font, fill=colour)
    img[:] = np.asarray(pil)[..., ::-1]


def random_header(rng: np.random.Generator, record_id: str, fs: int) -> list[str]:
    sex = rng.choice(["M", "F"])
    day = f"{int(rng.integers(1, 29)):02d}/{int(rng.integers(1, 13)):02d}/{int(rng.integers(1990, 2025))}"
    return [f"ID: {record_id}   {day} {int(rng.integers(0, 24)):02d}:{int(rng.integers(0, 60)):02d}",
            f"Age: {int(rng.integers(18, 95))}   Sex: {sex}   {fs} Hz   25 mm/s   10 mm/mV"]

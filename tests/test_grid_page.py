"""Pages with no outline (cropped to the grid): the 5 mm grid gives the millimetres (pagekit.grid), the rows of ink
give the layout and its baselines, the traces give t = 0 (pagekit.page_fit), and the pipeline reads such a page
with its leads on their own rows (inference.pipeline, ``grid_page``)."""
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from data import geometry as G
from data.layout import get_layout
from pagekit import page_fit as F
from pagekit.grid import find_grid, grid_homography
from pagekit.layout_match import Row

PAPER, MINOR, MAJOR = (255, 255, 255), (200, 180, 255), (120, 90, 235)


def _paper(px_mm: float, deg: float, w: int = 1000, h: int = 560, trace: bool = True) -> np.ndarray:
    """A pink 1 mm / 5 mm grid at ``px_mm`` px per mm, a black wavy trace across it, turned ``deg`` degrees
    counter-clockwise and cut to w x h."""
    big = np.full((3 * h, 3 * w, 3), PAPER, np.uint8)
    for i in range(int(3 * w / px_mm) + 1):
        pos = int(round(i * px_mm))
        colour, width = (MAJOR, 2) if i % 5 == 0 else (MINOR, 1)
        cv2.line(big, (pos, 0), (pos, 3 * h), colour, width)
        cv2.line(big, (0, pos), (3 * w, pos), colour, width)
    if trace:
        x = np.arange(3 * w)
        y = 1.5 * h + 6 * px_mm * np.sin(x / (8 * px_mm))
        cv2.polylines(big, [np.stack([x, y], 1).astype(np.int32)], False, (20, 20, 20), 2)
    turn = cv2.getRotationMatrix2D((1.5 * w, 1.5 * h), deg, 1.0)
    return cv2.warpAffine(big, turn, (3 * w, 3 * h), borderValue=PAPER)[h:2 * h, w:2 * w]


@pytest.mark.parametrize("px_mm,deg", [(4.0, 0.0), (3.3, 2.0), (5.2, -3.0)])
def test_the_grid_gives_the_millimetres_and_the_direction(px_mm, deg):
    img = _paper(px_mm, deg)
    grid = find_grid(img)
    assert grid is not None
    assert grid.pitch == pytest.approx((5 * px_mm, 5 * px_mm), rel=0.005)
    assert np.degrees(grid.angle) == pytest.approx((-deg, deg), abs=0.3)
    H = grid_homography(img, grid)
    a = np.radians(deg)
    start = np.array([200.0, 300.0])
    along = start + 100 * px_mm * np.array([np.cos(a), -np.sin(a)])   # 100 mm along a line of the grid
    down = start + 40 * px_mm * np.array([np.sin(a), np.cos(a)])      # 40 mm across them
    p = cv2.perspectiveTransform(np.float64([[start, along, down]]), H)[0]
    assert p[1] - p[0] == pytest.approx([100 * G.PX_PER_MM, 0.0], abs=0.006 * 100 * G.PX_PER_MM)
    assert p[2] - p[0] == pytest.approx([0.0, 40 * G.PX_PER_MM], abs=0.006 * 100 * G.PX_PER_MM)
    # on the page, the major lines lie on the canonical lattice, and the image's centre near the page's centre
    page = cv2.warpPerspective(img, H, (G.PAGE_W, G.PAGE_H), flags=cv2.INTER_LINEAR, borderValue=PAPER)
    sat = page.max(2).astype(float) - page.min(2)
    mid = sat[G.PAGE_H // 2 - 150:G.PAGE_H // 2 + 150, G.PAGE_W // 2 - 300:G.PAGE_W // 2 + 300]
    for profile, origin in ((mid.mean(0), G.GRID_ORIGIN[0] - (G.PAGE_W // 2 - 300)),
                            (mid.mean(1), G.GRID_ORIGIN[1] - (G.PAGE_H // 2 - 150))):
        on = np.round(origin + G.MAJOR_PX * np.arange(-60, 60)).astype(int)
        on = on[(on >= 0) & (on < len(profile))]
        between = (on + int(round(2.5 * G.PX_PER_MM))) % len(profile)          # half way between minor lines
        assert profile[on].mean() > 1.5 * profile[between].mean()
    centre = cv2.perspectiveTransform(np.float64([[[img.shape[1] / 2, img.shape[0] / 2]]]), H)[0, 0]
    assert np.all(np.abs(centre - [G.PAGE_W / 2, G.PAGE_H / 2]) <= G.MAJOR_PX)


def test_no_grid_is_seen_where_there_is_none():
    rng = np.random.default_rng(0)
    assert find_grid(np.full((400, 700, 3), 250, np.uint8)) is None
    assert find_grid(rng.integers(0, 255, (400, 700, 3), dtype=np.uint8)) is None
    assert find_grid(_paper(4.0, 0.0)[..., ::-1].mean(2).astype(np.uint8)) is not None     # a grey scan's grid


def _rows(ys, strength=1.0, cover=0.9):
    return [Row(float(y), strength, cover) for y in ys]


def test_rows_anywhere_give_the_structure_and_the_baselines():
    mm = G.PX_PER_MM
    lay, why = F.match_free(_rows([300, 300 + 36 * mm, 300 + 72 * mm, 300 + 105 * mm]))
    assert why == "" and lay.name == "3x4+II" and lay.baselines == pytest.approx((300, 300 + 36 * mm,
                                                                                   300 + 72 * mm, 300 + 105 * mm))
    header = [Row(100.0, 1.2, 0.3), Row(180.0, 0.3, 0.9)]          # text lit in patches, a weak line
    assert F.match_free(header + _rows([400, 400 + 30 * mm, 400 + 60 * mm]))[0].name == "3x4"
    six = F.match_free(_rows(200 + 25 * mm * np.arange(6)))[0]       # 3x4 and three strips (or 6x2: refused later)
    assert six.name == "3x4+II,II,II" and len(six.strips) == 3
    assert F.match_free(_rows(200 + 20 * mm * np.arange(12)))[0].name == "12x1"
    lay, why = F.match_free(_rows([300, 300 + 30 * mm, 300 + 48 * mm]))
    assert lay is None and "not evenly spaced" in why
    lay, why = F.match_free(_rows([300, 300 + 30 * mm, 300 + 60 * mm, 300 + 110 * mm]))
    assert lay is None and "strips of 3x4+II are not spaced like its rows" in why
    lay, why = F.match_free(_rows([300, 300 + 8 * mm, 300 + 16 * mm]))
    assert lay is None and "not rows of a paper ECG" in why
    lay, why = F.match_free(_rows([300, 600]))
    assert lay is None and why.startswith("2 trace rows found (y = 300, 600 px") and "layout=NAME" in why


def _trace(width: int, a: int, b: int, pulse: tuple[int, int] | None = None):
    """A row's path (mV per column) and its probability: trace over columns a..b, a 1 mV pulse over ``pulse``."""
    x = np.arange(width)
    mv = 0.3 * np.sin(x / 40.0)
    p = np.where((x >= a) & (x <= b), 0.9, 0.0)
    if pulse:
        mv[pulse[0]:pulse[1]] = 1.0
    return mv, p


@pytest.mark.parametrize("case", ["whole", "pulse", "pulse_right", "unrecognised", "cut_right", "cut_left",
                                  "pulse_cut_right"])
def test_time_origin_from_where_the_traces_run(case):
    kx, mm = 1.0, G.PX_PER_MM
    span, width, image = int(250 * mm), 2400, (10, 2390)
    a = 150
    pulse = {"pulse": (a, a + int(5 * mm)), "pulse_right": (a + span, a + span + int(5 * mm)),
             "pulse_cut_right": (a, a + int(5 * mm))}.get(case)
    b = a + span + (int(5 * mm) if case in ("pulse", "pulse_right") else int(12 * mm) if case == "unrecognised"
                    else -int(30 * mm) if case.startswith("cut") else 0)
    if case in ("cut_right", "pulse_cut_right"):
        image = (10, b + 5)
    if case == "cut_left":
        a, image = 140 + int(30 * mm), (130 + int(30 * mm), 2190)
    rows = [_trace(width, a, b, pulse) for _ in range(4)]
    x0, how = F.time_origin([r[0] for r in rows], [r[1] for r in rows], kx, image)
    want = {"whole": a, "pulse": a + int(5 * mm), "pulse_right": a, "unrecognised": b - span,
            "cut_right": a, "cut_left": b - span, "pulse_cut_right": a + int(5 * mm)}[case]
    assert x0 == pytest.approx(want, abs=2), how
    assert F.time_origin([np.zeros(width)], [np.zeros(width)], kx, image) == (None, "no trace")


def test_the_rows_of_ink_of_a_page_are_its_printed_rows():
    from data.synth import signals
    from data.synth.render import PageStyle, render_page

    full = pd.DataFrame(signals.simulate(500, np.random.default_rng(1)))
    page = render_page(full, 500, PageStyle())
    rows = [r for r in F.ink_rows(page) if r.strength >= F.ROW_STRENGTH and r.cover >= F.ROW_COVER]
    assert [r.y for r in rows] == pytest.approx(G.BASELINES, abs=1.5 * G.PX_PER_MM)
    lay, why = F.match_free(F.ink_rows(page))
    assert lay is not None and lay.name == "3x4+II", why


SHIPPED = Path(__file__).resolve().parents[1] / "weights"


@pytest.mark.skipif(not list(SHIPPED.glob("*.pt")), reason="no weights ship in this checkout")
def test_the_shipped_models_read_a_page_cropped_to_its_grid(tmp_path):
    """Our generator's page cut to the grid around its three rows of leads (no paper margin: stage 0 finds no page,
    and the rows sit where no template puts them), at another scale and a little turned: placed from its grid, its
    rows found where they are, every lead read from its own row and its own seconds."""
    from data.synth import signals
    from data.synth.render import PageStyle, render_page
    from inference.pipeline import Digitizer, leads_frame

    fs = 500
    full = pd.DataFrame(signals.simulate(fs, np.random.default_rng(5)))
    full *= 1.2 / full.abs().max().max()
    page = render_page(full, fs, PageStyle())
    crop = page[int(G.BASELINES[0] - 160):int(G.BASELINES[2] + 140), 60:2150]
    turn = cv2.getRotationMatrix2D((crop.shape[1] / 2, crop.shape[0] / 2), 1.0, 0.7)
    turn[:, 2] -= 0.15 * np.array([crop.shape[1], crop.shape[0]])      # the centre to the centre of the smaller image
    image = cv2.warpAffine(crop, turn, (int(crop.shape[1] * 0.7), int(crop.shape[0] * 0.7)),
                           flags=cv2.INTER_AREA, borderValue=(255, 255, 255))
    cv2.imwrite(str(tmp_path / "crop.png"), image)
    reading = Digitizer([], device="cpu", layout="auto", stage0_tta=False).read(tmp_path / "crop.png", fs)
    assert reading.failure == "" and reading.flags.get("grid_page"), (reading.failure, reading.flags)
    assert reading.layout.name == "3x4" and reading.layout.rows == G.LAYOUT and reading.status == "check"
    assert any(d.startswith("no page outline: placed from its 5 mm grid") for d in reading.doubts())
    frame = leads_frame(reading.leads, fs, reading.layout)
    for lead in G.LEADS:
        a, b = reading.layout.lead_samples(lead, G.sig_len(fs))
        got = frame[lead].to_numpy()[a:b]
        own = np.corrcoef(full[lead].to_numpy()[a:b], got)[0, 1]
        other = max(np.corrcoef(full[o].to_numpy()[a:b], got)[0, 1] for o in G.LEADS if o != lead)
        assert own > 0.9 and own > other, (lead, own, other)


def test_limb_leads_that_break_einthoven_and_goldberger_are_told():
    from pagekit import layout_match as M
    from pagekit.extract import ExtractConfig, read_rows
    from test_layouts_read import K, _probs

    structure = get_layout("3x4+II")
    rows_mv, _ = read_rows(_probs("3x4+II"), K, ExtractConfig(), structure)
    assert M.limb_agreement_db(rows_mv, structure, K[0]) > 20
    swapped = [rows_mv[1], rows_mv[2], rows_mv[0], rows_mv[3]]          # every row read one row off
    assert M.limb_agreement_db(swapped, structure, K[0]) < 3
    six, _ = read_rows(_probs("6x2"), K, ExtractConfig(), get_layout("6x2"))
    assert M.limb_agreement_db(six, get_layout("6x2"), K[0]) > 20
    assert M.limb_agreement_db(six, get_layout("3x4+II,II,II"), K[0]) < 3   # a 6x2 page read as 3x4


class _TruePage:
    """Stage 2 on a page that prints ``truth`` (a layout) at ``baselines``: whatever layout it is asked to read
    with those baselines, each channel lights the trace the page prints on that row."""

    def __init__(self, truth: str, baselines):
        from data.layout import Layout
        t = get_layout(truth)
        self.truth = Layout(truth, t.rows, t.strips, tuple(baselines))

    def __call__(self, pages, layout=None, columns=None, timer="stage2"):
        from test_layouts_read import K, _probs

        if columns is not None:                  # the dense stack of the templates' search: no rows where they look
            return np.zeros((1, layout.n_rows, G.page_size(K)[1], columns[1] - columns[0]), np.float32)
        assert layout.baselines == self.truth.baselines
        return _probs(self.truth, K)[None]


def _free_digitizer(monkeypatch, truth: str, baselines):
    from engine.device import Timer
    from inference import pipeline
    from pagekit.extract import ExtractConfig
    from test_layouts_read import K

    dig = object.__new__(pipeline.Digitizer)
    dig.k, dig.timer, dig.extract_cfg, dig.layout, dig.register = K, Timer(), ExtractConfig(), "auto", True
    monkeypatch.setattr(dig, "probabilities", _TruePage(truth, baselines))
    monkeypatch.setattr(F, "ink_rows", lambda page: _rows(baselines))
    page = np.full((G.page_size(K)[1], G.page_size(K)[0], 3), 255, np.uint8)
    monkeypatch.setattr(dig, "_grid_page", lambda image: (page, (0, page.shape[1])))
    return dig, page


def test_six_rows_whose_strips_repeat_nothing_are_read_as_6x2_when_their_limb_leads_agree(monkeypatch):
    from data.layout import get_layout as layout_of
    from test_layouts_read import FS, _lead_db, _signal
    from inference.pipeline import leads_frame

    baselines = tuple(200 + 25 * G.PX_PER_MM * np.arange(6))
    dig, page = _free_digitizer(monkeypatch, "6x2", baselines)
    reading = dig.read_auto(page, page, {"no_page": True}, FS, None)
    assert reading.layout.name == "6x2" and reading.flags["grid_page"] and reading.status == "check"
    assert any("read as 6x2" in n for n in reading.notes)
    frame = leads_frame(reading.leads, FS, reading.layout)
    for lead in G.LEADS:
        a, b = layout_of("6x2").lead_samples(lead, G.sig_len(FS))
        assert _lead_db(_signal(lead)(np.arange(a, b) / FS), frame[lead].to_numpy()[a:b]) > 20, lead
    # a 3x4 page whose strips print leads no machine prints as strips: neither they nor 6x2's limb leads hold
    dig, page = _free_digitizer(monkeypatch, "3x4+V2,V3,V4", baselines)
    reading = dig.read_auto(page, page, {"no_page": True}, FS, None)
    assert reading.status == "failed" and reading.leads == {}
    assert reading.failure.startswith("none of the 3 rhythm strips of 3x4+3 repeats a lead")
    # ... and with its strips of II, V1, V5 it is read as what it is
    dig, page = _free_digitizer(monkeypatch, "3x4+V1,II,V5", baselines)
    reading = dig.read_auto(page, page, {"no_page": True}, FS, None)
    assert reading.layout.name == "3x4+V1,II,V5" and reading.flags["grid_page"]


def test_a_template_reading_whose_strip_repeats_nothing_yields_to_the_rows_the_image_holds(monkeypatch):
    """Stage 0 misplaced a 6x2 page so that four of its rows fit 3x4+II's template (on eik_layouts): the strip then
    repeats no lead, the image's grid page holds six rows of trace, and the page is read from its grid."""
    from test_layouts_read import FS, K, _lines, _probs

    free = tuple(200 + 25 * G.PX_PER_MM * np.arange(6))
    dig, page = _free_digitizer(monkeypatch, "6x2", free)
    grid_page = _TruePage("6x2", free)

    def stage2(pages, layout=None, columns=None, timer="stage2"):
        if columns is not None:                                     # the templates' search: 3x4+II's rows
            return _lines(G.BASELINES, K, columns[1] - columns[0])[None, None]
        if layout.baselines == G.BASELINES:                          # read as 3x4+II: a strip of V3
            return _probs("3x4+V3", K)[None]
        return grid_page(pages, layout, columns, timer)

    monkeypatch.setattr(dig, "probabilities", stage2)
    reading = dig.read_auto(page, page, {"no_page": False}, FS, None)
    assert reading.layout.name == "6x2" and reading.flags.get("grid_page")
    # where the image holds no more rows than the template read, the template's reading stands (strip unnamed)
    monkeypatch.setattr(F, "ink_rows", lambda p: _rows(G.BASELINES))
    reading = dig.read_auto(page, page, {"no_page": False}, FS, None)
    assert reading.layout.name == "3x4+?" and not reading.flags.get("grid_page") and reading.status == "check"


def test_a_page_cut_at_one_side_is_written_only_where_it_is_printed(monkeypatch):
    """An image that ends 7 s into the rows: the seconds it does not show are NaN, not the trace held flat."""
    from inference.pipeline import leads_frame
    from test_layouts_read import FS, K, _lead_db, _signal

    baselines = tuple(200 + 25 * G.PX_PER_MM * np.arange(6))
    dig, page = _free_digitizer(monkeypatch, "3x4+V1,II,V5", baselines)
    cut = int(G.time_to_x(7.0, K[0]))
    monkeypatch.setattr(dig, "_grid_page", lambda image: (page, (0, cut)))
    reading = dig.read_auto(page, page, {"no_page": True}, FS, None)
    assert reading.layout.name == "3x4+V1,II,V5"
    frame = leads_frame(reading.leads, FS, reading.layout)
    n7, px = int(7.0 * FS), int(np.ceil(FS / (G.PX_PER_S * K[0])))    # samples per page column
    for lead in ("V1", "II", "V5"):                                   # the strips: printed up to 7 s
        v = frame[lead].to_numpy()
        assert np.isnan(v[n7 + px:]).all() and np.isfinite(v[:n7 - px]).all(), lead
        assert _lead_db(_signal(lead)(np.arange(n7 - px) / FS), v[:n7 - px]) > 20, lead
    assert frame[["V4", "V6"]].isna().all().all()                       # 7.5-10 s: not on the image
    assert frame["aVR"].iloc[int(2.5 * FS):int(5 * FS)].notna().all()

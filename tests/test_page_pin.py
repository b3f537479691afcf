"""The competition's page pinned from outside our code: an ECG-Image-Kit render's own record of where it plotted
each sample (``fixtures/eik_pin_3x4+II.json``, cut by ``scripts/make_layout_pin.py``) and the competition's layout
written out by hand.  Every other test takes its slots from ``data.geometry``; these fail when a lead, a window,
a baseline or a scale moves there."""
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from data import geometry as G

PIN = json.loads((Path(__file__).parent / "fixtures" / "eik_pin_3x4+II.json").read_text())

# The competition's page, by hand (docs/design.md, "Page geometry"): rows top to bottom, the time window of each
# column, the zero-mV baselines measured on the competition's 0001 images.
BY_HAND_ROWS = [["I", "aVR", "V1", "V4"], ["II", "aVL", "V2", "V5"], ["III", "aVF", "V3", "V6"], ["II"]]
BY_HAND_BASELINES = [703.5, 987.5, 1271.5, 1531.5]
BY_HAND_WINDOWS_500 = {"I": (0, 1250), "II": (0, 5000), "III": (0, 1250), "aVR": (1250, 2500), "aVL": (1250, 2500),
                       "aVF": (1250, 2500), "V1": (2500, 3750), "V2": (2500, 3750), "V3": (2500, 3750),
                       "V4": (3750, 5000), "V5": (3750, 5000), "V6": (3750, 5000)}
# ECG-Image-Kit's stock renderer puts the rows 3-5 px lower than the competition's pages (708.3, 991.7, 1275.0,
# 1534.7 against the baselines above): a constant per row, which the metric's offset removal takes back.
EIK_ROW_DROP_PX = (2.5, 5.5)


def _slot_of(trace: dict) -> int:
    """Index (order of lead_slots) of the one slot that prints this lead over exactly these samples."""
    fs = int(PIN["fs"])
    hits = [i for i, s in enumerate(G.lead_slots())
            if s.lead == trace["lead"] and G.slot_sample_window(s, fs) == (trace["start_sample"], trace["end_sample"])]
    assert len(hits) == 1, f"{trace['lead']} over samples {trace['start_sample']}..{trace['end_sample']}: slots {hits}"
    return hits[0]


def test_every_printed_trace_is_one_slot_of_ours_and_every_slot_is_printed():
    assert (PIN["width"], PIN["height"]) == G.page_size() and PIN["dpi"] == G.DPI
    slots = [_slot_of(t) for t in PIN["traces"]]
    assert sorted(slots) == list(range(len(G.lead_slots())))


def test_every_sample_lands_where_ecg_image_kit_plotted_it():
    """trace_points (the renderer's and every target's geometry) against the pixel ECG-Image-Kit drew: time to
    x exactly, mV to y up to the one constant drop per row."""
    fs = int(PIN["fs"])
    record = pd.DataFrame(np.nan, index=range(G.sig_len(fs)), columns=list(G.LEADS))
    for t in PIN["traces"]:
        s = np.asarray(t["samples"])
        record.loc[s[:, 0].astype(int), t["lead"]] = s[:, 1]
    ours = G.trace_points(record, fs)
    drops = {}
    for t in PIN["traces"]:
        slot = _slot_of(t)
        s = np.asarray(t["samples"])
        a, b = G.slot_sample_window(G.lead_slots()[slot], fs)
        shown = a + np.flatnonzero(record[t["lead"]].iloc[a:b].notna())    # II's two traces share the column
        mine = ours[slot][np.isin(shown, s[:, 0])]
        assert mine.shape == (len(s), 2), t["lead"]
        np.testing.assert_allclose(mine[:, 0], s[:, 2], atol=0.02, err_msg=f"x of {t['lead']}")
        drop = s[:, 3] - mine[:, 1]
        # one constant per trace, so the scale (78.74 px/mV) holds over the trace's whole range, extremes included
        assert np.ptp(drop) < 0.05, f"{t['lead']}: y off by {drop.min():.2f}..{drop.max():.2f} px"
        drops.setdefault(G.lead_slots()[slot].row, []).append(drop.mean())
    for row, d in drops.items():
        assert np.ptp(d) < 0.05 and EIK_ROW_DROP_PX[0] < np.mean(d) < EIK_ROW_DROP_PX[1], (row, d)


def test_lead_name_keypoints_sit_on_the_names_ecg_image_kit_printed():
    """ECG-Image-Kit starts each name at its trace's first x, below the baseline; our keypoint (stage 0's target)
    lies within a name's width (<= 25 px: 'aVR') right of that start, between the name box's top and bottom."""
    for t in PIN["traces"]:
        x0, y0, x1, y1 = t["label_box_xyxy"]
        cx, cy = G.lead_label_centre(G.lead_slots()[_slot_of(t)])
        assert x0 - 2 <= cx <= x0 + 25 and y0 <= cy <= y1, (t["lead"], (cx, cy), t["label_box_xyxy"])


def test_the_layout_as_the_competition_describes_it():
    rows = {}
    for s in G.lead_slots():
        rows.setdefault(s.row, []).append((s.col, s.lead))
    assert [[lead for _, lead in sorted(r)] for _, r in sorted(rows.items())] == BY_HAND_ROWS
    assert [G.slot_sample_window(s, 500) for s in G.lead_slots()] == \
        [(1250 * col, 1250 * (col + 1)) for _ in BY_HAND_ROWS[:3] for col in range(4)] + [(0, 5000)]
    assert {lead: G.lead_sample_window(lead, 500) for lead in G.LEADS} == BY_HAND_WINDOWS_500
    for row, y in enumerate(BY_HAND_BASELINES):
        assert G.mv_to_y(0.0, row) == pytest.approx(y) and G.mv_to_y(1.0, row) == pytest.approx(y - 200 / 2.54)
    assert G.time_to_x(0.0) == pytest.approx(15 * 200 / 25.4) and G.time_to_x(1.0) - G.time_to_x(0.0) == \
        pytest.approx(25 * 200 / 25.4)
    assert G.time_to_x([0.0, 10.0], k=2) == pytest.approx([236.22, 236.22 + 3937.0], abs=0.01)
    assert G.y_to_mv(G.mv_to_y(1.3, 2, k=1.5), 2, k=1.5) == pytest.approx(1.3)


@pytest.mark.parametrize("fs, quarters", [(250, (0, 625, 1250, 1875, 2500)), (256, (0, 640, 1280, 1920, 2560)),
                                          (1025, (0, 2562, 5125, 7687, 10250))])
def test_short_lead_windows_tile_the_record_at_every_fs(fs, quarters):
    """Column j's leads show samples quarters[j]..quarters[j+1] (by hand: 10*fs split in four, floored)."""
    for col, row_leads in enumerate(zip(*BY_HAND_ROWS[:3])):
        for lead in set(row_leads) - {"II"}:
            assert G.lead_sample_window(lead, fs) == (quarters[col], quarters[col + 1]), lead
    assert G.lead_sample_window("II", fs) == (0, 10 * fs)

"""The generator's layout, its canonical page, and that label geometry matches pixels."""
import cv2
import numpy as np
import pandas as pd
import pytest

from data import geometry as G
from data.competition import Competition
from data.geometry import trace_points
from data.labels import PageLabel, label_path
from data.synth import signals
from data.synth.generate import generate, render_image
from data.synth.render import PageStyle, render_page


@pytest.fixture(scope="module")
def frame():
    rng = np.random.default_rng(7)
    return signals.to_competition_frame(signals.simulate(500, rng), 500)


def test_layout_round_trip(smoke_data):
    comp = Competition(smoke_data)
    assert len(comp.records()) == 4
    images = comp.images()
    assert sorted(images["type"].unique()) == ["0001", "0003", "0015"] and len(images) == 12
    for rec in comp.records():
        sig = comp.load_signals(rec.id)
        assert len(sig) == rec.sig_len == G.sig_len(rec.fs)
        for lead, (start, values) in comp.load_leads(rec.id).items():
            assert (start, start + values.size) == G.lead_sample_window(lead, rec.fs)
        assert all(label_path(rec.image(t)).is_file() for t in rec.image_types())
    test = comp.test_meta
    assert test["id"].nunique() == 2 and set(test["lead"]) == set(G.LEADS)
    sol = pd.read_parquet(smoke_data / "solution.parquet")
    assert len(sol) == test["number_of_rows"].sum()
    assert all(comp.test_image(i).is_file() for i in test["id"].unique())


@pytest.mark.parametrize("fs", G.FS_VALUES)
def test_windows_and_number_of_rows(fs):
    frame = signals.to_competition_frame(signals.simulate(fs, np.random.default_rng(fs)), fs)
    assert len(frame) == 10 * fs
    counts = frame.notna().sum()
    assert counts["II"] == 10 * fs
    short = [counts[lead] for lead in G.LEADS if lead != "II"]
    assert all(abs(c - 2.5 * fs) <= 0.5 for c in short)      # 1025 Hz: 2562 or 2563 rows
    # the four columns tile the record exactly
    assert sum(counts[row[c]] for row in G.LAYOUT[:1] for c in range(4)) == 10 * fs


def test_simulated_leads_obey_einthoven_and_goldberger(frame):
    full = frame.to_numpy()
    idx = {lead: i for i, lead in enumerate(G.LEADS)}
    a, b = G.lead_sample_window("I", 500)
    assert np.allclose(full[a:b, idx["I"]] + full[a:b, idx["III"]], full[a:b, idx["II"]], atol=2e-3)


def _dark(img):
    g = img if img.ndim == 2 else cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
    return g.astype(np.float32)


def test_trace_reads_back_within_a_pixel():
    t = np.arange(5000) / 500
    known = {lead: 0.8 * np.sin(2 * np.pi * 1.3 * t + i) for i, lead in enumerate(G.LEADS)}
    smooth = signals.to_competition_frame(known, 500)
    img = render_page(smooth, 500, PageStyle())[..., 2].astype(np.float32)  # red channel: the grid vanishes
    pts = trace_points(smooth, 500)[12]  # the rhythm strip
    errors = []
    for x in range(int(pts[0, 0]) + 2, int(pts[-1, 0]) - 2):
        y_true = np.interp(x, pts[:, 0], pts[:, 1])
        y0 = int(round(y_true))
        band = np.clip(250 - img[y0 - 6:y0 + 7, x], 0, None)
        if np.abs(np.diff(np.interp([x - 1, x + 1], pts[:, 0], pts[:, 1]))) > 2:  # steep: a column sees a segment
            continue
        errors.append((np.arange(y0 - 6, y0 + 7) * band).sum() / band.sum() - y_true)
    errors = np.abs(errors)
    assert len(errors) > 300
    assert np.median(errors) < 0.3 and np.percentile(errors, 95) < 1.0


def test_a_trace_is_drawn_half_a_pixel_left_of_its_samples_as_ecg_image_kit_draws_it():
    """The renderer's ink against the page's time axis: ECG-Image-Kit's traces lie ``G.INK_DX`` (-0.5 px) left of
    the positions its JSON records (and our ``trace_points``), and ours lie there too, so stage 2 learns the time
    axis of the pages it will read.  A symmetric 2 mV spike in lead I: the centroid of its ink above 1.5 mV."""
    fs, at = 500, 600
    frame = signals.to_competition_frame({lead: np.zeros(5000) for lead in G.LEADS}, fs)
    frame.loc[at - 5:at + 5, "I"] = 2.0 * (1 - np.abs(np.arange(-5, 6)) / 5)
    img = render_page(frame, fs, PageStyle(trace_width=1.5))[..., 2].astype(np.float64)   # red: the grid vanishes
    top = int(G.mv_to_y(1.5, 0))
    x0 = int(G.time_to_x(at / fs)) - 15
    dark = np.clip(250 - img[top - 40:top, x0:x0 + 30], 0, None)
    centroid = x0 + (dark.sum(0) * np.arange(30)).sum() / dark.sum()
    assert centroid == pytest.approx(G.time_to_x(at / fs) + G.INK_DX, abs=0.15)


def _fraction_on_ink(img, label, frame, fs):
    g = _dark(img)
    paper = cv2.dilate(g, np.ones((25, 25), np.uint8))           # local paper brightness
    ink = cv2.erode(g, np.ones((5, 5), np.uint8))                 # darkest pixel in 5x5
    hits, n = 0, 0
    for pts in trace_points(frame, fs).values():
        p = np.round(label.canon_to_image(pts[::5])).astype(int)
        ok = (p[:, 0] >= 0) & (p[:, 1] >= 0) & (p[:, 0] < g.shape[1]) & (p[:, 1] < g.shape[0])
        p = p[ok]
        hits += int((ink[p[:, 1], p[:, 0]] < 0.75 * paper[p[:, 1], p[:, 0]]).sum())
        n += len(p)
    return hits / n


@pytest.mark.parametrize("image_type", ["0001", "0003", "0004", "0005", "0006", "0011", "0015"])
def test_label_geometry_matches_pixels(frame, image_type):
    rng = np.random.default_rng(11)
    img, label = render_image(frame, 500, image_type, rng, "123")
    assert label.image_size == (img.shape[1], img.shape[0])
    assert _fraction_on_ink(img, label, frame, 500) > 0.97
    # keypoints sit on the printed lead names: ink close to each keypoint
    g = _dark(img)
    local_scale = np.linalg.norm(label.canon_to_image(np.array([[1100, 850], [1110, 850]]))[1]
                                 - label.canon_to_image(np.array([[1100, 850]]))[0]) / 10
    r = max(3, int(round(8 * local_scale)))
    for x, y in np.round(label.keypoints).astype(int):
        patch = g[max(y - r, 0):y + r + 1, max(x - r, 0):x + r + 1]
        around = g[max(y - 4 * r, 0):y + 4 * r + 1, max(x - 4 * r, 0):x + 4 * r + 1]
        assert patch.min() < 0.75 * np.percentile(around, 90), (image_type, x, y)


def test_label_round_trip_and_inverse(tmp_path, frame):
    img, label = render_image(frame, 500, "0005", np.random.default_rng(5), "9")
    p = tmp_path / "x.label.json"
    label.save(p)
    back = PageLabel.load(p)
    np.testing.assert_allclose(back.keypoints, label.keypoints, atol=1e-3)
    canon = np.array([[300.0, 400.0], [1500.0, 1200.0]])
    np.testing.assert_allclose(back.image_to_canon(back.canon_to_image(canon)), canon, atol=0.5)


def test_orientation_quarter_turn_moves_the_top_left_corner():
    from data.synth import distort as D
    pts = {"p": np.array([[0.0, 0.0], [10.0, 0.0]])}
    img = np.zeros((20, 30, 3), np.uint8)
    img[0, 0] = 255
    out, tracked = D.run(img, [D.Rot90(1)], pts)
    assert out.shape[:2] == (30, 20)
    x, y = np.round(tracked["p"][0]).astype(int)
    assert out[y, x].max() == 255 and (x, y) == (19, 0)


def test_sources_csv_and_wfdb_re_render_real_signals(tmp_path, smoke_data):
    import wfdb

    # csv: the signals of an existing competition-layout dir come back unchanged in the new one
    out = generate(tmp_path / "from_csv", n_records=1, seed=0, types=["0001"], n_test=0, workers=1,
                   progress=False, source=f"csv:{smoke_data}")
    src, new = Competition(smoke_data), Competition(out)
    rec_src, rec_new = src.records()[0], new.records()[0]   # record i re-renders source record i
    assert rec_new.fs == rec_src.fs
    pd.testing.assert_frame_equal(new.load_signals(rec_new.id), src.load_signals(rec_src.id), atol=1e-3)

    # wfdb: a 12-lead record at 400 Hz (uV) is windowed, resampled to a competition fs and converted to mV
    t = np.arange(12 * 400) / 400
    sig = np.stack([1000 * np.sin(2 * np.pi * (1 + i / 10) * t) for i in range(12)], -1)
    names = [n.upper() if n.startswith("a") else n for n in G.LEADS]   # e.g. "AVR", as PTB-XL spells them
    wdir = tmp_path / "wfdb"
    wdir.mkdir()
    wfdb.wrsamp("r1", fs=400, units=["uV"] * 12, sig_name=names, p_signal=sig, fmt=["16"] * 12,
                adc_gain=[1.0] * 12, baseline=[0] * 12, write_dir=str(wdir))
    out = generate(tmp_path / "from_wfdb", n_records=1, seed=0, types=["0001"], n_test=0, workers=1,
                   progress=False, source=f"wfdb:{wdir}")
    rec = Competition(out).records()[0]
    ii = Competition(out).load_signals(rec.id)["II"]
    assert rec.fs in G.FS_VALUES and len(ii) == 10 * rec.fs
    assert 0.9 < ii.abs().max() <= 1.01                       # 1000 uV peaks -> 1 mV

    # mix: every record real at fraction 1 (its gain drawn from 0.8-1.6), every one simulated at fraction 0 (the
    # simulator obeys Einthoven, I + III = II, the unrelated sines of the WFDB record do not)
    for fraction in (1.0, 0.0):
        out = generate(tmp_path / f"mix{fraction}", n_records=3, seed=1, types=["0001"], n_test=0, workers=1,
                       progress=False, source=f"mix:{wdir}:{fraction}")
        comp = Competition(out)
        frames = [comp.load_signals(r.id) for r in comp.records()]
        einthoven = [np.nanmax(np.abs(f["I"] + f["III"] - f["II"])) < 3e-3 for f in frames]
        if fraction:
            peaks = [f["II"].abs().max() for f in frames]
            assert not any(einthoven) and all(0.75 < p <= 1.62 for p in peaks) and len(set(np.round(peaks, 3))) == 3
        else:
            assert all(einthoven)


def test_hold_tail_flattens_the_record_end_and_leaves_the_rest_of_the_seed_as_it_was(tmp_path):
    """hold_tail=1: every record ends on a flat run of 0.05-0.15 s in the leads printed to the end (last column and
    rhythm), the same records up to it; hold_tail=0 (the default) writes what it always wrote."""
    kw = dict(n_records=2, seed=3, types=["0001"], n_test=0, workers=1, progress=False)
    plain = Competition(generate(tmp_path / "plain", **kw))
    held = Competition(generate(tmp_path / "held", hold_tail=1.0, **kw))
    for rp, rh in zip(plain.records(), held.records()):
        assert (rp.id, rp.fs) == (rh.id, rh.fs)
        fp, fh = plain.load_signals(rp.id), held.load_signals(rh.id)
        for lead in ("II", "V4", "V5", "V6"):
            a, b = fp[lead].to_numpy(), fh[lead].to_numpy()
            run = len(b) - np.flatnonzero(np.abs(np.diff(b)) > 1e-9).max() - 1
            assert 0.05 * rh.fs - 1 <= run <= 0.15 * rh.fs + 1, (lead, run)
            assert np.array_equal(a[:-run], b[:-run], equal_nan=True) and np.ptp(a[-run:]) > 0   # only the tail
        for lead in ("I", "V1"):                                  # leads whose window ends earlier: untouched
            pd.testing.assert_series_equal(fp[lead], fh[lead])


def _qrs_times(full: dict, fs: int) -> np.ndarray:
    """Times (s) of the steepest moments summed over the 12 leads: one per QRS."""
    import scipy.signal

    slope = sum(np.abs(np.diff(np.asarray(full[lead], float))) for lead in G.LEADS)
    peaks, _ = scipy.signal.find_peaks(slope, height=0.4 * slope.max(), distance=int(0.25 * fs))
    return peaks / fs


@pytest.mark.parametrize("at", [0.1, 2.55, 5.0, 7.68])
def test_a_simulated_rhythm_can_be_moved_to_put_a_qrs_where_asked(at):
    """beat_at puts a QRS there (within its own width) and the record stays covered by beats end to end."""
    for seed in range(3):
        plain = _qrs_times(signals.simulate(500, np.random.default_rng(seed)), 500)
        qrs = _qrs_times(signals.simulate(500, np.random.default_rng(seed), beat_at=at), 500)
        assert np.min(np.abs(qrs - at)) < 0.03, (seed, qrs)
        assert qrs.min() < 2.0 and qrs.max() > G.DURATION_S - 2.0 and np.diff(qrs).max() < 2.0
        assert len(qrs) >= len(plain) - 1


def test_beat_at_column_prints_a_qrs_after_a_column_start_and_leaves_the_rest_of_the_seed(tmp_path):
    """beat_at_column=1: every simulated record has a QRS 0-0.2 s after one of its page's column starts (under
    the lead name); the ids, rates and the pages' other draws are those of the seed without it."""
    kw = dict(n_records=3, seed=5, types=["0001"], n_test=0, workers=1, progress=False)
    plain = Competition(generate(tmp_path / "plain", **kw))
    moved = Competition(generate(tmp_path / "moved", beat_at_column=1.0, **kw))
    starts = np.array([0.0, 2.5, 5.0, 7.5])
    for rp, rm in zip(plain.records(), moved.records()):
        assert (rp.id, rp.fs) == (rm.id, rm.fs)
        fm = moved.load_signals(rm.id)
        assert not np.allclose(plain.load_signals(rp.id)["II"], fm["II"])
        qrs = _qrs_times({lead: fm["II"].to_numpy() for lead in G.LEADS}, rm.fs)   # the 10 s strip
        after = qrs[:, None] - starts[None, :]
        assert ((after > -0.03) & (after < 0.23)).any(), qrs


def test_simulated_records_cross_into_the_next_row_and_carry_noise_and_ectopy():
    """Overlaps must be common in training: the share of simulated records with a wave beyond half the gap between
    rows (1.8 mV from the median), and records with mains hum or muscle noise above 20 Hz."""
    import scipy.signal

    half = (G.BASELINES[1] - G.BASELINES[0]) / 2 / G.PX_PER_MV
    over, hf = [], []
    for seed in range(40):
        full = signals.simulate(500, np.random.default_rng(seed))
        over.append(any(np.max(np.abs(full[lead] - np.median(full[lead]))) > half for lead in G.LEADS))
        f, p = scipy.signal.welch(full["V2"], fs=500, nperseg=1024)
        hf.append(p[f > 20].sum() / p.sum())
    assert 0.5 <= np.mean(over) < 1.0
    assert np.max(hf) > 5 * np.median(hf)          # some records are noisy well beyond the typical one


def test_cli_rejects_unknown_type(tmp_path):
    from data.synth.generate import main

    with pytest.raises(SystemExit, match=r"unknown image types \['0002'\]; known: 0001, 0003"):
        main([f"out={tmp_path}", "n_records=1", "types=2"])            # zero-padded, as the types are named
    assert not (tmp_path / "train.csv").exists()


@pytest.mark.parametrize("font", ["hershey", "dejavu"])
def test_lead_names_are_printed_centred_on_their_keypoints(frame, font):
    """The keypoints stage 0 learns are the centres of the printed names, in either font."""
    from data.synth.render import PageStyle

    page = render_page(frame * 0, 500, PageStyle(font=font, trace_width=1.0))     # flat traces: names stand alone
    dark = 255 - page.max(axis=2).astype(np.float32)          # the red grid is bright in one channel
    for slot in [s for s in G.lead_slots() if s.col == 0]:      # no hand-over tick reaching into the box
        cx, cy = G.lead_label_centre(slot)
        box = dark[int(cy) - 18:int(cy) + 19, int(cx) - 40:int(cx) + 41] > 100
        ys, xs = np.nonzero(box)
        centre = np.array([(xs.min() + xs.max()) / 2, (ys.min() + ys.max()) / 2])     # of the ink's bounding box
        assert np.abs(centre - [40, 18]).max() <= 1.5, (slot.lead, centre)


def test_records_in_other_layouts_keep_every_lead_are_drawn_where_their_layout_says_and_name_it(tmp_path):
    """layouts=: a record printed in 12x1 keeps its leads over the whole record (the same values where the
    competition's CSV has them), its label names the layout, and its page shows every row's trace on the y the
    layout gives it (and stage 0, which learns the 3x4+II names, refuses it); layouts=[3x4+II] writes what the
    default writes, byte for byte."""
    from stage2_segment.targets import row_columns

    kw = dict(n_records=2, seed=4, types=["0001"], n_test=0, workers=1, progress=False)
    plain = Competition(generate(tmp_path / "plain", **kw))
    same = Competition(generate(tmp_path / "same", layouts=["3x4+II"], **kw))
    tall = Competition(generate(tmp_path / "tall", layouts=["12x1"], **kw))
    for rp, rs, rt in zip(plain.records(), same.records(), tall.records()):
        assert rp.id == rs.id == rt.id and rp.fs == rs.fs == rt.fs
        assert rp.image("0001").read_bytes() == rs.image("0001").read_bytes()
        fp, ft = plain.load_signals(rp.id), tall.load_signals(rt.id)
        pd.testing.assert_frame_equal(fp, same.load_signals(rs.id))
        assert np.isfinite(ft.to_numpy()).all() and len(ft) == G.sig_len(rt.fs)
        known = np.isfinite(fp.to_numpy())
        assert np.array_equal(fp.to_numpy()[known], ft.to_numpy()[known])
        label = PageLabel.load(label_path(rt.image("0001")))
        assert label.layout == "12x1" and PageLabel.load(label_path(rp.image("0001"))).layout == "3x4+II"
        page = cv2.cvtColor(label.rectify(cv2.imread(str(rt.image("0001"))), 1.0), cv2.COLOR_BGR2GRAY).astype(float)
        ycols = row_columns(ft, rt.fs, 1.0, "12x1")
        assert ycols.shape[0] == 12
        paper = np.median(page)
        for r, y in enumerate(ycols):
            x = np.flatnonzero(np.isfinite(y))[::7]
            yi = np.round(y[x]).astype(int)
            ink = np.min([page[np.clip(yi + d, 0, page.shape[0] - 1), x] for d in (-1, 0, 1)], 0)
            assert np.median(ink) < paper - 80, (r, np.median(ink), paper)
    from stage0_keypoints.dataset import cache_item          # its keypoints are the 3x4+II names: not for stage 0
    with pytest.raises(ValueError, match="12x1 page"):
        cache_item(rt.image("0001"), tmp_path / "cache0", 64)


def test_unknown_layouts_and_a_csv_source_in_another_layout_are_refused(tmp_path):
    from data.layout import LayoutError

    with pytest.raises(LayoutError):
        generate(tmp_path / "x", n_records=1, types=["0001"], n_test=0, workers=1, progress=False, layouts=["5x5"])
    with pytest.raises(ValueError, match="csv: source"):
        generate(tmp_path / "y", n_records=1, types=["0001"], n_test=0, workers=1, progress=False,
                 layouts=["6x2"], source=f"csv:{tmp_path}")

import numpy as np
import pandas as pd
import pytest

from pagekit.metric import MetricError, align_signals, per_image_ratios, score, snr_ratio

SHORT = ["I", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"]
VALUES = [0.1, 0.3, 0.4, 0.6, 0.6, 0.4, 0.2, 0.3, 0.4, 0.5, 0.2, 0.7, 0.2, 0.3, 0.4, 0.8, 0.6, 0.7, 0.2, 0.3, -0.1,
          0.5, 0.6, 0.7, 0.2, 0.9, 0.4, 0.5, 0.6, 0.7, 0.1, 0.3, 0.4, 0.6, 0.6, 0.4, 0.2, 0.3, 0.4, 0.5, 0.2, 0.7,
          0.2, 0.3, 0.4]


@pytest.fixture
def solution():
    ids = [f"343_{r}_{lead}" for lead in SHORT for r in range(3)] + [f"343_{r}_II" for r in range(12)]
    return pd.DataFrame({"id": ids, "fs": 1, "value": VALUES})


def test_reference_values(solution):
    sub = solution[["id", "value"]].copy()
    assert round(score(solution, sub), 4) == 25.8433
    sub.loc[0, "value"] = 0.9
    assert round(score(solution, sub), 4) == 13.6291
    sub.loc[4, "value"] = 0.3
    assert round(score(solution, sub), 4) == 13.0576


def test_all_zero_label_floors_at_minus_384(solution):
    zero = solution.assign(value=0.0)
    assert score(zero, solution[["id", "value"]]) == -384
    assert round(score(zero, zero[["id", "value"]]), 4) == 25.8433


def test_vertical_offset_removed():
    label = np.array([0, 1, 2, 1, 0.0])
    np.testing.assert_allclose(align_signals(label, label + 10), label, atol=1e-6)


def test_shift_within_window_corrected():
    label = np.array([0, 0, 1, 2, 1, 0.0, 0])
    pred = np.array([1, 2, 1, 0, 0, 0, 0.0])
    np.testing.assert_allclose(align_signals(label, pred), [np.nan, np.nan, 1, 2, 1, 0, 0], atol=1e-6)


def test_shift_beyond_window_not_corrected():
    label = np.array([0, 0, 0, 0, 1, 2, 1.0])
    pred = np.array([1, 2, 1, 0, 0, 0, 0.0])
    full = align_signals(label, pred, max_shift=10)
    np.testing.assert_allclose(full, [np.nan] * 4 + [1, 2, 1], atol=1e-6)
    limited = align_signals(label, pred, max_shift=1)
    assert np.isnan(limited).sum() <= 1                      # moved by at most one sample
    assert np.nanargmax(limited) != 5                        # so the peak is not where the label's is


def test_tie_goes_to_smallest_lag():
    """Zero-mean integer series, so the correlations are exact: 6 at lags -1 and 0 (-5, -3, 0 at -2, +1, +2).
    Lag 0 must win although lag -1 comes first; lag -1 would leave the last sample shifted out (NaN)."""
    label = np.array([2, -3, 0, -1, -1, 1, 2.0])
    pred = np.array([2, 0, -2, 0, -1, 1, 0.0])
    corr = np.array([np.dot(label[:-1], pred[1:]), np.dot(label, pred)])
    assert corr[0] == corr[1] == 6.0                                   # the tie is real
    aligned = align_signals(label, pred, max_shift=2)
    assert not np.isnan(aligned).any()
    np.testing.assert_allclose(aligned - aligned.mean(), pred - pred.mean(), atol=1e-9)


def test_nan_submission_rejected(solution):
    sub = solution[["id", "value"]].copy()
    sub.loc[3, "value"] = np.nan
    with pytest.raises(MetricError, match="NaN"):
        score(solution, sub)


def test_missing_id_rejected(solution):
    with pytest.raises(MetricError, match="misses 1"):
        score(solution, solution[["id", "value"]].iloc[1:])


# --- score() over whole images at the competition's rates, against values derived by hand and against an
# independent implementation written here from the rules (explicit lag loop, closed-form offset) ----------------

LEADS = ["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"]


def _lengths(fs):
    return {lead: 10 * fs if lead == "II" else 10 * fs // 4 for lead in LEADS}


def _frames(images):
    """images: [(image_id, fs, {lead: truth}, {lead: prediction})] -> (solution, submission) frames."""
    sol, sub = [], []
    for image_id, fs, truth, pred in images:
        for lead in LEADS:
            ids = [f"{image_id}_{r}_{lead}" for r in range(len(truth[lead]))]
            sol.append(pd.DataFrame({"id": ids, "fs": fs, "value": truth[lead]}))
            sub.append(pd.DataFrame({"id": ids, "value": pred[lead]}))
    return pd.concat(sol, ignore_index=True), pd.concat(sub, ignore_index=True).sample(frac=1, random_state=0)


def _ecg_like(n, fs, rng):
    """Zero-mean beats on a wandering baseline: sharp enough that the correlation peak is unambiguous."""
    t = np.arange(n) / fs
    beats = sum(np.exp(-((t - c) / 0.015) ** 2) for c in np.arange(rng.uniform(0, 0.8), t[-1] + 1, 0.8))
    v = rng.uniform(0.5, 2) * beats + 0.2 * np.sin(2 * np.pi * rng.uniform(0.2, 1) * t) + rng.normal(0, .02, n)
    return v - v.mean()


def _reference_ratio(truth, pred, fs):
    signal = noise = 0.0
    for lead in LEADS:
        label, p = np.asarray(truth[lead], float), np.asarray(pred[lead], float)
        lc, pc, n = label - label.mean(), p - p.mean(), len(label)
        best, best_lag = -np.inf, 0
        for lag in sorted(range(-int(0.2 * fs), int(0.2 * fs) + 1), key=abs):   # strict > keeps the smallest |lag|
            c = np.dot(lc[lag:], pc[:n - lag]) if lag >= 0 else np.dot(lc[:lag], pc[-lag:])
            if c > best:
                best, best_lag = c, lag
        aligned = np.full(n, np.nan)
        if best_lag >= 0:
            aligned[best_lag:] = p[:n - best_lag]
        else:
            aligned[:best_lag] = p[-best_lag:]
        ok = np.isfinite(aligned)
        aligned = aligned - np.mean(aligned[ok] - label[ok])        # the offset that minimises the squared error
        signal += np.sum(label ** 2)
        noise += np.sum(np.where(ok, label - aligned, label) ** 2)   # shifted-out samples count as 0 mV
    return 384.0 if noise == 0 else 0.0 if signal == 0 else min(signal / noise, 384.0)


def _distorted_images():
    """Three images at 250, 500 and 1000 Hz: per lead a time shift inside the allowed window (some to its edge),
    a vertical offset, a gain and noise of different sizes; the third nearly perfect (above the cap)."""
    rng = np.random.default_rng(7)
    images = []
    for image_id, fs, noise_mv in (("101", 250, 0.15), ("202", 500, 0.05), ("303", 1000, 0.0005)):
        truth, pred = {}, {}
        for lead, n in _lengths(fs).items():
            label = _ecg_like(n, fs, rng)
            nearly_perfect = noise_mv < 0.001
            shift = 0 if nearly_perfect else int(rng.integers(-int(0.2 * fs), int(0.2 * fs) + 1))
            gain = 1.0 if nearly_perfect else rng.uniform(0.8, 1.0)
            p = np.roll(label, -shift) * gain + rng.uniform(-1, 1) + rng.normal(0, noise_mv, n)
            truth[lead], pred[lead] = label, p
        images.append((image_id, fs, truth, pred))
    return images


def test_score_of_several_images_at_250_500_1000_hz_matches_an_independent_implementation():
    images = _distorted_images()
    ratios = [_reference_ratio(t, p, fs) for _, fs, t, p in images]
    assert ratios[2] == 384.0 and ratios[0] < ratios[1] < 384          # one capped, two not, all different
    sol, sub = _frames(images)
    assert score(sol, sub) == pytest.approx(10 * np.log10(np.mean(ratios)), abs=1e-6)


def test_the_score_is_the_db_of_the_mean_ratio_not_the_mean_of_db():
    """Zero-mean truth read at half and at three quarters of its size: ratios 4 and 16 by hand (no shift, no
    offset), so 10*log10(10) = 10 dB; the mean of the dB would be 9.03."""
    rng = np.random.default_rng(1)
    images = []
    for image_id, fs, gain in (("1", 500, 0.5), ("2", 250, 0.75)):
        truth = {lead: _ecg_like(n, fs, rng) for lead, n in _lengths(fs).items()}
        images.append((image_id, fs, truth, {lead: gain * v for lead, v in truth.items()}))
    assert score(*_frames(images)) == pytest.approx(10.0, abs=1e-6)


def test_a_shift_inside_the_window_is_free_and_shifted_out_samples_count_as_zero_mv():
    """Every lead read exactly but 0.1 s late, at 500 Hz: the alignment takes the shift back and the 50 samples it
    pushes out of the window count as 0 mV, so the noise is exactly the truth's power over those samples."""
    fs, d = 500, 50
    rng = np.random.default_rng(3)
    truth, pred, noise = {}, {}, 0.0
    for lead, n in _lengths(fs).items():
        label = _ecg_like(n, fs, rng) + 0.3                       # not zero where it is shifted out
        truth[lead], pred[lead] = label, np.r_[np.zeros(d), label[:-d]]
        noise += np.sum(label[-d:] ** 2)
    signal = sum(np.sum(v ** 2) for v in truth.values())
    assert score(*_frames([("9", fs, truth, pred)])) == pytest.approx(10 * np.log10(signal / noise), abs=1e-3)


def test_a_shift_beyond_the_window_is_not_taken_back():
    fs = 250
    rng = np.random.default_rng(4)
    truth = {lead: _ecg_like(n, fs, rng) for lead, n in _lengths(fs).items()}
    late = {lead: np.roll(v, int(0.3 * fs)) for lead, v in truth.items()}        # 0.3 s > the 0.2 s allowed
    inside = {lead: np.roll(v, int(0.15 * fs)) for lead, v in truth.items()}
    assert score(*_frames([("5", fs, truth, late)])) < 0 < 8 < score(*_frames([("5", fs, truth, inside)]))


def test_per_image_table_names_each_image_its_fs_ratio_and_db_in_image_order():
    images = _distorted_images()
    sol, sub = _frames(images[::-1])                                   # given in reverse: the table sorts
    table = per_image_ratios(sol, sub)
    assert list(table.columns) == ["image_id", "fs", "ratio", "snr_db"]
    assert table["image_id"].tolist() == ["101", "202", "303"] and table["fs"].tolist() == [250, 500, 1000]
    want = [_reference_ratio(t, p, fs) for _, fs, t, p in images]
    np.testing.assert_allclose(table["ratio"], want, rtol=1e-6)
    np.testing.assert_allclose(table["snr_db"], 10 * np.log10(want), rtol=1e-6)


@pytest.mark.parametrize("signal, noise, ratio", [(0.0, 0.0, 384.0), (0.0, 1.0, 0.0), (1.0, 0.5, 2.0),
                                                  (1.0, 1.0, 1.0), (1000.0, 1.0, 384.0)])
def test_snr_ratio_caps_and_edges(signal, noise, ratio):
    assert snr_ratio(signal, noise) == ratio


def test_inputs_the_official_metric_rejects_raise_a_metric_error(solution):
    sub = solution[["id", "value"]].copy()
    with pytest.raises(MetricError, match="submission needs columns 'id' and 'value'"):
        score(solution, sub[["id"]])
    with pytest.raises(MetricError, match="non-numeric values in submission, first at id 343_2_I"):
        score(solution, sub.assign(value=sub["value"].astype(object).where(sub.index != 2, "abc")))
    no_v6 = solution[~solution["id"].str.endswith("_V6")]
    with pytest.raises(MetricError, match=r"image 343: no rows for leads \['V6'\]"):
        score(no_v6, sub[~sub["id"].str.endswith("_V6")])
    with pytest.raises(MetricError, match="fs differs between rows"):
        score(solution.assign(fs=np.where(solution.index == 0, 2, 1)), sub)


def test_rejections_and_warnings_name_the_frame_and_the_first_id(solution):
    sub = solution[["id", "value"]].copy()
    with pytest.raises(MetricError, match="^label values must all be finite"):
        align_signals(np.array([0.0, np.nan]), np.array([0.0, 1.0]))
    with pytest.raises(MetricError, match="^prediction has no finite value"):
        align_signals(np.array([0.0, 1.0]), np.array([np.nan, np.nan]))
    with pytest.raises(MetricError, match="^2 duplicate ids in solution, first 343_1_I"):
        score(pd.concat([solution, solution.iloc[[1, 1]]]), sub)
    with pytest.raises(MetricError, match="^solution needs columns 'id' and 'value'"):
        score(solution[["id", "fs"]], sub)
    with pytest.raises(MetricError, match=r"^ids must look like '\{image\}_\{row\}_\{lead\}'"):
        score(solution.assign(id=solution["id"].str.replace("_", "-")), sub.assign(id=sub["id"].str.replace("_", "-")))
    with pytest.raises(MetricError, match=r"^image 343: lead II must hold fs\*10 rows"):
        score(solution.assign(fs=2), sub)
    extra = pd.concat([sub, pd.DataFrame({"id": ["9_0_I", "9_1_I"], "value": [0.0, 0.0]})])
    with pytest.warns(UserWarning, match="^submission has 2 ids the solution does not, e.g. 9_0_I; they are not"):
        assert round(score(solution, extra), 4) == 25.8433

"""How well ``expected_snr_db`` predicts the SNR each lead is read at, and the fit of its calibration:

    python scripts/eval_confidence.py data_dir=DIR [fit=weights/confidence.json] [calibration=PATH]
                                      [types=0001,0005] [limit=N] [rows=CSV,...] [out=CSV] [layout=auto]

Reads every image of a competition-layout DIR (a ``python -m data.synth`` output, or ../shared/eik_dev) with the
shipped models (``layout=auto``, as the folder CLI), and per lead takes the figures ``pagekit.confidence`` reads
and the SNR the competition's metric gives that lead against the record's CSV (aligned as the metric aligns; a lead
read over other samples than the CSV holds is left out).  ``out=CSV`` keeps that table, ``rows=CSV`` starts from
them (several: one table) instead of reading the images again.
- ``fit=PATH``: fits the calibration on these leads (least squares), sets ``check_below_db`` to the highest
  threshold that flags at most ``false_alarm`` (10 %) of the leads read at ``good_db`` (10 dB) or more, and writes
  it to PATH for the stage-2 checkpoint in use.  Fit it on synthetic pages only (our generator, a seed no model
  was trained on): eik_dev and the real pages are validation.  A 5-fold cross-validation by record is printed with
  it: what the fit does on records it has not seen.
- otherwise the calibration at ``calibration`` (default: the shipped one) is measured: Spearman's rank correlation
  with the true per-lead SNR, the share of the leads below ``good_db`` it flags (``expected_snr_db`` <
  ``check_below_db``) and the share of the others it flags (false alarms), per image type and overall.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import spearmanr
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from data import cli  # noqa: E402
from data.competition import Competition  # noqa: E402
from data.files import sha256, write_table  # noqa: E402
from inference.pipeline import DigitizerOptions  # noqa: E402
from pagekit.confidence import FEATURES, Calibration, lead_features  # noqa: E402
from pagekit.metric import MAX_TIME_SHIFT_S, align_signals, lead_powers  # noqa: E402
from pagekit.weights import CALIBRATION, WEIGHTS_DIR  # noqa: E402


@dataclass
class Options:
    data_dir: str = ""
    fit: str = ""                  # write a calibration fitted on these leads here
    calibration: str = ""          # measure this one (default: the shipped one)
    types: list[str] | None = None
    limit: int = 0                 # images at most (0: all)
    rows: list[str] | None = None  # start from these tables (out= of earlier runs), concatenated
    out: str = ""
    layout: str = "auto"
    good_db: float = 10.0
    false_alarm: float = 0.10
    folds: int = 5


def lead_snr_db(label: np.ndarray, pred: np.ndarray, fs: int) -> float:
    """One lead's SNR in dB as the metric computes it (its shift and offset removed)."""
    s, n = lead_powers(label, align_signals(label, pred, int(fs * MAX_TIME_SHIFT_S)))
    return float(10 * np.log10(max(s, 1e-12) / max(n, 1e-12)))


def collect(opts: Options) -> pd.DataFrame:
    comp = Competition(opts.data_dir)
    images = comp.images(opts.types)
    if opts.limit:
        images = images.head(opts.limit)
    dig = DigitizerOptions(layout=opts.layout).digitizer()
    rows = []
    for im in tqdm(images.itertuples(index=False), total=len(images), desc="read"):
        reading = dig.read(im.path, int(im.fs))
        if reading.failure:
            continue
        truth = comp.load_signals(im.id)
        feats = lead_features(reading.leads, reading.confidence, reading.flags, int(im.fs), reading.layout.strips)
        for lead, f in feats.items():
            a = reading.layout.lead_samples(lead, len(truth))[0]
            pred = reading.leads[lead]
            label = truth[lead].to_numpy()[a:a + len(pred)]
            if len(label) < len(pred) or not np.isfinite(label).all() or not np.isfinite(pred).any():
                continue
            pred = np.where(np.isfinite(pred), pred, np.nanmedian(pred))
            rows.append({"image_id": im.image_id, "id": im.id, "type": im.type, "layout": reading.layout.name,
                         "lead": lead, **f, "snr_db": lead_snr_db(label, pred, int(im.fs))})
    return pd.DataFrame(rows)


def flags_of(expected: np.ndarray, threshold: float) -> np.ndarray:
    return expected < threshold


def threshold_for(expected: np.ndarray, truth: np.ndarray, good_db: float, false_alarm: float) -> float:
    """The highest threshold that flags at most ``false_alarm`` of the leads read at ``good_db`` or more."""
    good = np.sort(expected[truth >= good_db])
    if not len(good):
        return good_db
    k = int(np.floor(false_alarm * len(good)))         # at most k good leads strictly below the threshold
    return float(good[k]) if k < len(good) else float(good[-1]) + 1e-6


def measure(table: pd.DataFrame, expected: np.ndarray, threshold: float, good_db: float) -> pd.DataFrame:
    out = []
    for name, idx in [*table.groupby("type").indices.items(), ("all", np.arange(len(table)))]:
        t, e = table["snr_db"].to_numpy()[idx], expected[idx]
        bad = t < good_db
        flagged = flags_of(e, threshold)
        out.append({"type": name, "leads": len(idx), "below_good": int(bad.sum()),
                    "spearman": spearmanr(e, t).statistic if len(idx) > 2 else np.nan,
                    "caught": flagged[bad].mean() if bad.any() else np.nan,
                    "false_alarms": flagged[~bad].mean() if (~bad).any() else np.nan,
                    "median_abs_err_db": float(np.median(np.abs(e - np.clip(t, -10, 35))))})
    return pd.DataFrame(out)


def cross_validate(table: pd.DataFrame, opts: Options) -> np.ndarray:
    """Each lead's expectation from a fit on the records of the other folds."""
    ids = table["id"].unique()
    fold = dict(zip(ids, np.arange(len(ids)) % opts.folds))
    f = table["id"].map(fold).to_numpy()
    expected = np.zeros(len(table))
    records = table[list(FEATURES)].to_dict("records")
    for k in range(opts.folds):
        train = f != k
        cal = Calibration.fit([r for r, m in zip(records, train) if m], table["snr_db"][train], 0.0)
        expected[~train] = cal.predict([r for r, m in zip(records, ~train) if m])
    return expected


def main(argv=None) -> pd.DataFrame:
    opts = cli.parse(Options, argv, __doc__)
    if opts.rows:
        table = pd.concat([pd.read_csv(p, dtype={"id": str, "type": str}) for p in opts.rows], ignore_index=True)
    else:
        table = collect(opts)
        if opts.out:
            write_table(opts.out, table, index=False)
    records = table[list(FEATURES)].to_dict("records")
    truth = table["snr_db"].to_numpy()
    if opts.fit:
        cv = cross_validate(table, opts)
        th = threshold_for(cv, truth, opts.good_db, opts.false_alarm)
        print(f"cross-validated by record ({opts.folds} folds), threshold {th:.2f} dB:")
        print(measure(table, cv, th, opts.good_db).to_string(index=False, float_format="%.3f"))
        cal = Calibration.fit(records, truth, 0.0)
        cal.check_below_db = threshold_for(cal.predict(records), truth, opts.good_db, opts.false_alarm)
        cal.stage2 = sha256(WEIGHTS_DIR / "stage2.pt")
        cal.fitted_on = (f"{opts.data_dir or ', '.join(opts.rows)}: {table['image_id'].nunique()} images, {len(table)} leads; "
                         f"threshold: at most {opts.false_alarm:.0%} of the leads read at {opts.good_db:g} dB flagged")
        cal.save(opts.fit)
        print(f"wrote {opts.fit}: " + ", ".join(f"{k} {v:+.2f}" for k, v in cal.coef.items())
              + f", intercept {cal.intercept:+.2f}; check below {cal.check_below_db:.2f} dB")
        return table
    cal = Calibration.load(opts.calibration or CALIBRATION)
    res = measure(table, cal.predict(records), cal.check_below_db, opts.good_db)
    print(f"expected_snr_db against the true per-lead SNR (check below {cal.check_below_db:.2f} dB, "
          f"leads below {opts.good_db:g} dB):")
    print(res.to_string(index=False, float_format="%.3f"))
    return res


if __name__ == "__main__":
    main()

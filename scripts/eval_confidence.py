"""How well ``expected_snr_db`` predicts the SNR each lead is read at, and the fit of its calibration:

    python scripts/eval_confidence.py data_dir=DIR[,DIR...] [fit=weights/confidence.json] [calibration=PATH]
                                      [types=0001,0005] [limit=N] [reads=runs/confidence_reads] [layout=auto]

Reads every image of competition-layout DIRs (``python -m data.synth`` outputs, or ../shared/eik_dev) with the
shipped models (``layout=auto``, as the folder CLI), and per lead takes the figures ``pagekit.confidence`` reads
and the SNR the competition's metric gives that lead against the record's CSV (aligned as the metric aligns; a lead
read over other samples than the CSV holds is left out).  Each image's reading is kept under ``reads`` (one .npz
per image, by DIR): a second run, e.g. with other features, reads no image again.
- ``fit=PATH``: fits the calibration on these leads (least squares) and writes it to PATH for weights/stage2.pt, with
  ``check_below_db`` (10): a lead expected below it is a doubt, and the page's status ``check``.  Fit it on
  synthetic pages only (our generator, a seed no model was trained on): eik_dev and the real pages are validation.
  A cross-validation by record is printed with it: what the fit does on records it has not seen.
- otherwise the calibration at ``calibration`` (default: the shipped one) is measured.
Both print, per image type and overall: Spearman's rank correlation with the true per-lead SNR, the share of the
leads below ``good_db`` (10 dB) that ``check_below_db`` flags and the share of the others it flags (false alarms),
the share the threshold that flags ``false_alarm`` (10 %) of the others would catch, and the pages with a lead
below ``good_db``, flagged or not.
"""
from __future__ import annotations

import json
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
from data.files import atomic_path, sha256, write_table  # noqa: E402
from data import geometry as G  # noqa: E402
from inference.pipeline import DigitizerOptions  # noqa: E402
from pagekit.confidence import FEATURES, Calibration, lead_features  # noqa: E402
from pagekit.metric import MAX_TIME_SHIFT_S, align_signals, lead_powers  # noqa: E402
from pagekit.weights import CALIBRATION, WEIGHTS_DIR  # noqa: E402


@dataclass
class Options:
    data_dir: list[str] | None = None
    fit: str = ""                  # write a calibration fitted on these leads here
    calibration: str = ""          # measure this one (default: the shipped one)
    types: list[str] | None = None
    limit: int = 0                 # images at most per DIR (0: all)
    reads: str = "runs/confidence_reads"
    out: str = ""                  # the per-lead table
    layout: str = "auto"
    check_below_db: float = 10.0   # fit: a lead expected below this is a doubt
    good_db: float = 10.0          # a lead read below this is one to catch
    false_alarm: float = 0.10
    folds: int = 5


def lead_snr_db(label: np.ndarray, pred: np.ndarray, fs: int) -> float:
    """One lead's SNR in dB as the metric computes it (its shift and offset removed)."""
    s, n = lead_powers(label, align_signals(label, pred, int(fs * MAX_TIME_SHIFT_S)))
    return float(10 * np.log10(max(s, 1e-12) / max(n, 1e-12)))


def readings(data_dir: str, opts: Options):
    """(image row, Reading as saved: leads, confidence, flags, layout name, strips, failure) per image, read once."""
    comp = Competition(data_dir)
    images = comp.images(opts.types)
    images = images.head(opts.limit) if opts.limit else images
    cache = Path(opts.reads) / Path(data_dir).resolve().name
    cache.mkdir(parents=True, exist_ok=True)
    dig = None
    for im in tqdm(images.itertuples(index=False), total=len(images), desc=Path(data_dir).name):
        path = cache / f"{im.image_id}.npz"
        if not path.is_file():
            dig = dig or DigitizerOptions(layout=opts.layout).digitizer()
            r = dig.read(im.path, int(im.fs))
            n = G.sig_len(int(im.fs))
            meta = {"confidence": r.confidence, "flags": r.flags, "failure": r.failure,
                    "layout": r.layout.name if r.layout else "", "strips": list(r.layout.strips) if r.layout else [],
                    "starts": {lead: int(r.layout.lead_samples(lead, n)[0]) for lead in r.leads}}
            with atomic_path(path) as tmp, open(tmp, "wb") as f:
                np.savez_compressed(f, meta=json.dumps(meta, default=bool), **r.leads)
        with np.load(path) as z:
            yield comp, im, json.loads(str(z["meta"])), {k: z[k] for k in z.files if k != "meta"}


def collect(opts: Options) -> pd.DataFrame:
    rows = []
    for data_dir in opts.data_dir:
        for comp, im, meta, leads in readings(data_dir, opts):
            if meta["failure"]:
                continue
            truth = comp.load_signals(im.id)
            feats = lead_features(leads, meta["confidence"], meta["flags"], int(im.fs), meta["strips"])
            for lead, f in feats.items():
                a, pred = meta["starts"][lead], leads[lead]
                label = truth[lead].to_numpy()[a:a + len(pred)]
                if len(label) < len(pred) or not np.isfinite(label).all() or not np.isfinite(pred).any():
                    continue
                pred = np.where(np.isfinite(pred), pred, np.nanmedian(pred))
                rows.append({"image_id": im.image_id, "id": im.id, "type": im.type, "layout": meta["layout"],
                             "lead": lead, **f, "snr_db": lead_snr_db(label, pred, int(im.fs))})
    return pd.DataFrame(rows)


def threshold_for(expected: np.ndarray, truth: np.ndarray, good_db: float, false_alarm: float) -> float:
    """The highest threshold that flags at most ``false_alarm`` of the leads read at ``good_db`` or more."""
    good = np.sort(expected[truth >= good_db])
    if not len(good):
        return good_db
    k = int(np.floor(false_alarm * len(good)))         # at most k good leads strictly below the threshold
    return float(good[k]) if k < len(good) else float(good[-1]) + 1e-6


def measure(table: pd.DataFrame, expected: np.ndarray, threshold: float, opts: Options) -> pd.DataFrame:
    out = []
    for name, idx in [*table.groupby("type").indices.items(), ("all", np.arange(len(table)))]:
        t, e = table["snr_db"].to_numpy()[idx], expected[idx]
        bad, flagged = t < opts.good_db, e < threshold
        at_fa = e < threshold_for(e, t, opts.good_db, opts.false_alarm)
        pages = pd.DataFrame({"page": table["image_id"].to_numpy()[idx], "bad": bad, "flagged": flagged})
        pages = pages.groupby("page").any()
        out.append({"type": name, "leads": len(idx), "below_good": int(bad.sum()),
                    "spearman": spearmanr(e, t).statistic if len(idx) > 2 else np.nan,
                    "caught": flagged[bad].mean() if bad.any() else np.nan,
                    "false_alarms": flagged[~bad].mean() if (~bad).any() else np.nan,
                    f"caught_at_{opts.false_alarm:.0%}_fa": at_fa[bad].mean() if bad.any() else np.nan,
                    "median_abs_err_db": float(np.median(np.abs(e - np.clip(t, -10, 35)))),
                    "pages": len(pages), "pages_bad": int(pages["bad"].sum()),
                    "bad_flagged": int((pages["bad"] & pages["flagged"]).sum()),
                    "good_flagged": int((~pages["bad"] & pages["flagged"]).sum())})
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
    if not opts.data_dir:
        raise SystemExit("data_dir=DIR[,DIR...] is required (a python -m data.synth output, or ../shared/eik_dev)")
    table = collect(opts)
    if opts.out:
        write_table(opts.out, table, index=False)
    records = table[list(FEATURES)].to_dict("records")
    truth = table["snr_db"].to_numpy()
    if opts.fit:
        cv = cross_validate(table, opts)
        print(f"cross-validated by record ({opts.folds} folds):")
        print(measure(table, cv, opts.check_below_db, opts).to_string(index=False, float_format="%.3f"))
        cal = Calibration.fit(records, truth, opts.check_below_db, stage2=sha256(WEIGHTS_DIR / "stage2.pt"),
                              fitted_on=(f"{', '.join(opts.data_dir)}: {table['image_id'].nunique()} images, "
                                         f"{len(table)} leads"))
        cal.save(opts.fit)
        print(f"wrote {opts.fit}: " + ", ".join(f"{k} {v:+.2f}" for k, v in cal.coef.items())
              + f", intercept {cal.intercept:+.2f}; check below {cal.check_below_db:.2f} dB")
        return table
    cal = Calibration.load(opts.calibration or CALIBRATION)
    res = measure(table, cal.predict(records), cal.check_below_db, opts)
    print(f"expected_snr_db against the true per-lead SNR (check below {cal.check_below_db:.2f} dB, "
          f"leads below {opts.good_db:g} dB):")
    print(res.to_string(index=False, float_format="%.3f"))
    return res


if __name__ == "__main__":
    main()

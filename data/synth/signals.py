"""12-lead signal sources for the generator, all returning the competition CSV layout.

A source yields a DataFrame with columns I..V6 and 10*fs rows in mV: lead II complete, every other lead NaN outside
its 2.5 s window (``geometry.lead_sample_window``).  Three sources:
- ``simulate``: a rotating cardiac dipole (sum of Gaussian P/Q/R/S/T waves per beat) projected onto electrode
  positions; leads are electrode differences, so Einthoven (I+III=II) and Goldberger hold exactly.
- ``csv``: the competition's (or eik_dev's) own train CSVs, to re-render real signals with new distortions.
- ``wfdb``: any WFDB directory (e.g. PTB-XL), a random 10 s window resampled to the drawn fs.

Real pages are hard where real ECGs are: tall precordial waves that cross into the neighbouring row, ectopic and
paced beats, muscle and mains noise.  The simulator draws all of these often enough to be learnt (``simulate``), and
``mix:DIR[:FRACTION]`` in the generator takes a real WFDB window with that probability, its gain drawn too.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import scipy.signal

from data.geometry import DURATION_S, FS_VALUES, LEADS, lead_sample_window, sig_len


def to_competition_frame(full: dict[str, np.ndarray], fs: int) -> pd.DataFrame:
    """Full-length leads -> the CSV layout (NaN outside each short lead's window), rounded to 1 uV."""
    n = sig_len(fs)
    out = {}
    for lead in LEADS:
        col = np.full(n, np.nan)
        a, b = lead_sample_window(lead, fs)
        col[a:b] = np.round(np.asarray(full[lead][:n], dtype=np.float64)[a:b], 3)
        out[lead] = col
    return pd.DataFrame(out)


def to_full_frame(full: dict[str, np.ndarray], fs: int) -> pd.DataFrame:
    """Full-length leads -> every lead over the whole record (the truth of any page layout), rounded to 1 uV."""
    n = sig_len(fs)
    return pd.DataFrame({lead: np.round(np.asarray(full[lead][:n], dtype=np.float64), 3) for lead in LEADS})


def hold_tail(frame: pd.DataFrame, fs: int, rng: np.random.Generator, seconds=(0.05, 0.15)) -> pd.DataFrame:
    """The record's last 0.05-0.15 s held at one value, as some exported records end (ECG-Image-Kit prints that
    run as a flat line after the last beat, at the end of the last column's leads and the rhythm lead)."""
    n = int(round(rng.uniform(*seconds) * fs))
    out = frame.copy()
    held = out.iloc[-n - 1]
    out.iloc[-n:] = np.where(np.isfinite(out.iloc[-n:].to_numpy()), held.to_numpy()[None], np.nan)
    return out


# ---- simulated ECG ---------------------------------------------------------------------------------------------
# Electrode directions in a body frame (x: patient's left, y: feet, z: anterior).  Limb electrodes sit so that
# lead I points at 0 deg, II at 60 deg, III at 120 deg in the frontal plane; chest electrodes sweep from V1
# (right-anterior) to V6 (left-lateral) and sit closer to the heart, hence the larger gain.
_LIMB = {"RA": (-np.cos(np.pi / 6), -0.5, 0.0), "LA": (np.cos(np.pi / 6), -0.5, 0.0), "LL": (0.0, 1.0, 0.0)}
_CHEST_DEG = (115, 95, 75, 55, 30, 5)


def _unit(v):
    v = np.asarray(v, dtype=np.float64)
    return v / np.linalg.norm(v)


def _wave_dirs(rng: np.random.Generator, axis_deg: float) -> dict[str, np.ndarray]:
    a = np.deg2rad(axis_deg)
    jitter = lambda v, s=0.15: _unit(np.asarray(v) + rng.normal(0, s, 3))  # noqa: E731
    return {
        "P": jitter((np.cos(np.deg2rad(50)), np.sin(np.deg2rad(50)), 0.1)),
        "Q": jitter((-0.5, 0.1, 0.8)),
        "R": jitter((np.cos(a), np.sin(a), -0.45)),
        "S": jitter((-0.4, -0.6, -0.6)),
        "ST": jitter((np.cos(a), np.sin(a), rng.uniform(-0.8, 0.8)), 0.3),
        "T": jitter((np.cos(a + 0.3), np.sin(a + 0.3), 0.2), 0.25),
    }


def simulate(fs: int, rng: np.random.Generator, duration: float = DURATION_S,
             beat_at: float | None = None) -> dict[str, np.ndarray]:
    """A plausible, varied 12-lead ECG (mV), full length for every lead.  ``beat_at`` (s): move the rhythm so that
    a QRS peaks there (see :func:`align_beats`)."""
    t = np.arange(int(round(duration * fs))) / fs
    hr = rng.uniform(45, 150)
    rr_mean = 60.0 / hr
    af = rng.random() < 0.12                                   # atrial fibrillation: irregular RR, no P wave
    jitter = rng.uniform(0.1, 0.25) if af else rng.uniform(0.0, 0.05)
    beats, tb = [], rng.uniform(-rr_mean, 0)
    while tb < duration + rr_mean:
        beats.append(tb)
        tb += rr_mean * (1 + rng.normal(0, jitter))
        tb = max(tb, beats[-1] + 0.3)
    if beat_at is not None:
        beats = align_beats(beats, beat_at, rr_mean, duration)
    dirs = _wave_dirs(rng, rng.uniform(-30, 100))
    # a quarter of the records are high-voltage: their precordial waves cross into the next row (overlaps)
    r_amp = rng.uniform(2.0, 3.0) if rng.random() < 0.25 else rng.uniform(0.8, 2.2)
    qrs_w = rng.uniform(0.8, 1.5)                              # >1 widens QRS (bundle-branch-like)
    paced = rng.random() < 0.04                                # ventricular pacing: spike, then a wide QRS
    if paced:
        qrs_w = rng.uniform(1.8, 2.5)
    ectopic_p = rng.uniform(0.05, 0.25) if rng.random() < 0.2 else 0.0   # share of PVCs in PVC records
    pvc_dir = _unit(rng.normal(size=3))
    amp = {"P": 0 if af else rng.uniform(0.08, 0.25), "Q": rng.uniform(0.05, 0.25), "R": r_amp,
           "S": rng.uniform(0.1, 0.6), "ST": rng.choice([0.0, rng.uniform(-0.25, 0.3)], p=[0.6, 0.4]),
           "T": rng.uniform(0.15, 0.6) * rng.choice([1, -1], p=[0.85, 0.15])}
    heart = np.zeros((t.size, 3))
    for b in beats:
        rr = rr_mean
        qt = 0.4 * np.sqrt(rr)
        if ectopic_p and rng.random() < ectopic_p:             # a PVC: early, wide, tall, no P, discordant T
            b = b - rng.uniform(0.1, 0.25) * rr
            for mu, sigma, a, d in ((0.0, 0.04, rng.uniform(1.0, 1.6) * min(r_amp, 2.2), pvc_dir),
                                    (0.32, 0.07, rng.uniform(0.3, 0.8), -pvc_dir)):
                heart += a * np.exp(-0.5 * ((t - b - mu) / sigma) ** 2)[:, None] * d
            continue
        waves = {"P": (-0.18, 0.025), "Q": (-0.03 * qrs_w, 0.01 * qrs_w), "R": (0.0, 0.012 * qrs_w),
                 "S": (0.03 * qrs_w, 0.013 * qrs_w), "ST": (0.5 * qt, 0.07), "T": (0.75 * qt, 0.055 * np.sqrt(rr))}
        for name, (mu, sigma) in waves.items():
            if amp[name] == 0:
                continue
            g = np.exp(-0.5 * ((t - b - mu) / sigma) ** 2)
            heart += amp[name] * g[:, None] * dirs[name]
        if paced:                                              # a 1.5 ms pacing spike 40 ms before the QRS
            heart += rng.uniform(1.5, 3.0) * np.exp(-0.5 * ((t - b + 0.04) / 0.0015) ** 2)[:, None] * dirs["R"]
    if af:  # fibrillatory baseline
        f = rng.uniform(4, 8)
        heart += 0.04 * np.sin(2 * np.pi * f * t + rng.uniform(0, 6))[:, None] * _unit(rng.normal(size=3))

    chest_gain = rng.uniform(1.1, 1.8)
    electrodes = {k: heart @ _unit(v) for k, v in _LIMB.items()}
    for i, deg in enumerate(_CHEST_DEG):
        d = np.deg2rad(deg)
        electrodes[f"V{i + 1}"] = chest_gain * heart @ _unit((np.cos(d), 0.15, np.sin(d)))
    # Electrode-level noise and baseline wander keep the lead relations exact.
    mains = rng.choice([50.0, 60.0]) if rng.random() < 0.3 else 0.0
    muscle = rng.random() < 0.3
    for k in electrodes:
        wander = sum(rng.uniform(0, 0.08) * np.sin(2 * np.pi * rng.uniform(0.05, 0.5) * t + rng.uniform(0, 6))
                     for _ in range(2))
        electrodes[k] = electrodes[k] + wander + rng.normal(0, rng.uniform(0.002, 0.015), t.size)
        if mains:
            electrodes[k] += rng.uniform(0.005, 0.03) * np.sin(2 * np.pi * mains * t + rng.uniform(0, 6))
        if muscle:
            electrodes[k] += _muscle_noise(t, fs, rng)
    ra, la, ll = electrodes["RA"], electrodes["LA"], electrodes["LL"]
    wct = (ra + la + ll) / 3
    leads = {"I": la - ra, "II": ll - ra, "III": ll - la,
             "aVR": ra - (la + ll) / 2, "aVL": la - (ra + ll) / 2, "aVF": ll - (ra + la) / 2}
    leads.update({f"V{i}": electrodes[f"V{i}"] - wct for i in range(1, 7)})
    return leads


def align_beats(beats: list[float], at: float, rr: float, duration: float) -> list[float]:
    """The beat times moved together so that the one nearest ``at`` falls on it, with beats added at either end
    so the record stays covered.  Used to print a QRS right under a lead name or a column separator, where
    ECG-Image-Kit's pages and real printouts often have one and stage 2 learns to tell the wave from the text."""
    b = np.asarray(beats, float)
    b = b + (at - b[np.argmin(np.abs(b - at))])
    out = list(b)
    while out[0] > 0:
        out.insert(0, out[0] - rr)
    while out[-1] < duration:
        out.append(out[-1] + rr)
    return out


def _muscle_noise(t: np.ndarray, fs: int, rng: np.random.Generator) -> np.ndarray:
    """EMG-like bursts: noise above 20 Hz (up to what fs carries) in 1-3 stretches of 0.5-2 s."""
    out = np.zeros(t.size)
    sos = scipy.signal.butter(2, 20.0, "highpass", fs=fs, output="sos")
    noise = scipy.signal.sosfilt(sos, rng.normal(0, 1, t.size))
    for _ in range(int(rng.integers(1, 4))):
        a = rng.uniform(0, t[-1])
        inside = (t >= a) & (t < a + rng.uniform(0.5, 2.0))
        out[inside] += rng.uniform(0.01, 0.06) * noise[inside] / max(noise.std(), 1e-9)
    return out


# ---- real signals ----------------------------------------------------------------------------------------------
def from_csv(path: str | Path) -> pd.DataFrame:
    """A competition train CSV, as is (its fs is the record's)."""
    df = pd.read_csv(path)
    return df[list(LEADS)].astype(np.float64)


_WFDB_NAMES = {name.upper(): name for name in LEADS}


def from_wfdb(record_path: str | Path, fs: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """A random 10 s window of a WFDB record, resampled to fs, in mV."""
    import wfdb

    rec = wfdb.rdrecord(str(record_path))
    names = [_WFDB_NAMES.get(n.strip().upper()) for n in rec.sig_name]
    if not set(LEADS) <= set(names):
        raise ValueError(f"{record_path}: needs all 12 standard leads, has {rec.sig_name}")
    sig = rec.p_signal.astype(np.float64)
    units = [u.lower() for u in rec.units]
    sig = sig * np.array([1e-3 if u in ("uv", "µv") else 1.0 for u in units])
    n_src = int(round(DURATION_S * rec.fs))
    if sig.shape[0] < n_src:
        raise ValueError(f"{record_path}: shorter than {DURATION_S} s")
    start = int(rng.integers(0, sig.shape[0] - n_src + 1))
    window = np.nan_to_num(sig[start:start + n_src])
    out = scipy.signal.resample(window, sig_len(fs), axis=0) if int(rec.fs) != fs else window
    return {lead: out[:, names.index(lead)] for lead in LEADS}


def draw_fs(rng: np.random.Generator) -> int:
    return int(rng.choice(FS_VALUES))

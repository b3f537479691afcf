"""Digitizers without weights: the floors every model must beat, and the fallback when no model is at hand.

- ``ClassicalDigitizer``: the page is taken as it lies (no rectification: the image is resized to the canonical
  page), ink darkness stands in for the trace probability (the printed layout's pulses, hand-over strokes and lead
  names masked out), and the models' extraction follows: per column the darkest pixel within ``band_mv`` of the
  row's baseline (ties to the nearer trace), px -> mV, gaps filled, read at the sample times.  Good on clean,
  upright pages; it clips waves beyond the band, cannot separate overlapping traces and does not follow a tilted
  or photographed page.  Its settings were chosen on data.synth pages (real signals, types 0001 and 0015), not on
  eik_dev.
- ``ZeroDigitizer``: 0 mV everywhere, without reading the images (the score of knowing nothing).
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from data import geometry as G
from engine.device import Timer
from inference.pipeline import BaseDigitizer, Reading, full_lengths
from pagekit.extract import ExtractConfig, extract_with_confidence
from pagekit.image import ink, read_image

# band 3 mV + Viterbi: tall waves are not clipped (argmax within 1.8 mV was 0.7 dB better on data.synth pages, whose
# waves are smaller, and clips every QRS beyond the band); one pass per row, as the reference row was measured
CLASSICAL_EXTRACT = {"method": "viterbi", "subpixel": "none", "band_mv": 3.0, "min_prob": 0.1, "exclusive": 0.0}


def row_maps(dark: np.ndarray, k, tie_break: float = 0.3) -> np.ndarray:
    """(4, H, W): the ink map once per printed row, weighted down by up to ``tie_break`` at 3 mV from the row's
    baseline, so that where two traces are equally dark (a neighbour's tall wave in the band) the nearer one wins."""
    _, ky = G.scales(k)
    y = np.arange(dark.shape[0], dtype=np.float32)[:, None]
    return np.stack([dark * (1 - tie_break * np.abs(y - b * ky) / (3 * G.PX_PER_MV * ky)) for b in G.BASELINES])


def layout_mask(k, edge_px: float = 3.0) -> np.ndarray:
    """(H, W) True where the page prints ink that is not a trace: the calibration pulses (left of t = 0), the
    vertical strokes where one lead hands over to the next, and the lead names.  Masked columns become gaps that
    the extraction fills from their neighbours."""
    kx, ky = G.scales(k)
    w, h = G.page_size(k)
    mask = np.zeros((h, w), bool)
    mask[:, :int(np.ceil((G.X_T0 + edge_px) * kx))] = True
    for slot in G.lead_slots():
        x = G.time_to_x(slot.t0)
        if slot.col > 0:
            mask[:, int((x - edge_px) * kx):int(np.ceil((x + edge_px) * kx))] = True
        cx, cy = G.lead_label_centre(slot)
        mask[int((cy - 18) * ky):int(np.ceil((cy + 18) * ky)), int((cx - 30) * kx):int(np.ceil((cx + 30) * kx))] = True
    return mask


class ClassicalDigitizer(BaseDigitizer):
    def __init__(self, k=(1.0, 0.5), extract: dict | None = None):
        self.k = G.scales(k)
        self.timer = Timer()
        self.extract_cfg = ExtractConfig(**{**CLASSICAL_EXTRACT, **(extract or {})})
        self.mask = layout_mask(self.k)

    def run(self, paths: list[Path], fs: list[int], lengths: list[dict[str, int] | None]) -> list[Reading]:
        """The competition's page only (3x4+II): the rows are cut at its baselines."""
        out = []
        for path, f, n in zip(paths, fs, lengths):
            with self.timer("read"):
                image = read_image(path)
            with self.timer("ink"):
                page = cv2.resize(image, G.page_size(self.k), interpolation=cv2.INTER_AREA)
                dark = np.where(self.mask, 0.0, ink(page)).astype(np.float32)
            with self.timer("extract"):       # confidence: ink darkness at the traced pixel
                leads, confidence = extract_with_confidence(row_maps(dark, self.k), n or full_lengths(f), f, self.k,
                                                             self.extract_cfg)
            out.append(Reading(leads, page, confidence))
        return out


class ZeroDigitizer(BaseDigitizer):
    def __init__(self):
        self.k = G.scales(1.0)
        self.timer = Timer()

    def run(self, paths: list[Path], fs: list[int], lengths: list[dict[str, int] | None]) -> list[Reading]:
        with self.timer("zeros"):                  # no page: nothing was read
            return [Reading({lead: np.zeros(m) for lead, m in (n or full_lengths(f)).items()})
                    for f, n in zip(fs, lengths)]

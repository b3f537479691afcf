"""Extraction settings compared on one clean synthetic page of trace probabilities (the page of
tests/test_extract.py: band-limited test leads drawn as Gaussian profiles, sigma 1.2 px, at scale k).

    python scripts/bench_extract.py [k=1.0]

Prints the uncapped SNR (dB, the metric's alignment and offset) and the time per page for each setting.
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from test_extract import FS, _render, _snr_db  # noqa: E402

from data import cli  # noqa: E402
from pagekit.extract import ExtractConfig, extract_leads  # noqa: E402

SETTINGS = {"argmax + parabola": ExtractConfig(), "argmax + soft": ExtractConfig(subpixel="soft"),
            "argmax, integer": ExtractConfig(subpixel="none"), "viterbi + parabola": ExtractConfig(method="viterbi"),
            "argmax + parabola + einthoven 0.5": ExtractConfig(einthoven=0.5)}


@dataclass
class Options:
    k: float = 1.0


def main(argv=None):
    k = cli.parse(Options, argv, __doc__).k
    probs, truth = _render(k)
    lengths = {lead: len(v) for lead, v in truth.items()}
    print(f"page {probs.shape[2]}x{probs.shape[1]} (k={k}), fs={FS}")
    for name, cfg in SETTINGS.items():
        t = time.perf_counter()
        pred = extract_leads(probs, lengths, FS, k, cfg)
        dt = time.perf_counter() - t
        print(f"  {name:36s} {_snr_db(truth, pred):6.2f} dB  {dt:5.2f} s")


if __name__ == "__main__":
    main()

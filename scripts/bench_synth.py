"""Generator speed on one core: images/s for the clean page (0001) and a full-size phone photo (0005, 4032x3024).

    python scripts/bench_synth.py [n=10]

Times the whole per-image work of the generator (render, distort, PNG write, label write), single process, so the
figure is per core; ``data.synth`` runs one such process per worker.
"""
from __future__ import annotations

import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from data import cli  # noqa: E402
from data.synth import recipes, signals  # noqa: E402
from data.synth.generate import PNG_FLAGS, render_image  # noqa: E402


def bench(image_type: str, n: int, tmp: Path) -> float:
    rng = np.random.default_rng(0)
    frames = [(signals.to_competition_frame(signals.simulate(fs, rng), fs), fs)
              for fs in rng.choice([250, 500, 1000], n)]
    t0 = time.perf_counter()
    for i, (frame, fs) in enumerate(frames):
        img, label = render_image(frame, int(fs), image_type, rng, str(i))
        cv2.imwrite(str(tmp / f"{i}.png"), img, PNG_FLAGS)
        label.save(tmp / f"{i}.label.json")
    return n / (time.perf_counter() - t0)


@dataclass
class Options:
    n: int = 10


def main(argv=None) -> None:
    n = cli.parse(Options, argv, __doc__).n
    cv2.setNumThreads(1)  # per-core figure
    recipes.PHOTO_SIZES = ((4032, 3024),)  # full-size photos only
    with tempfile.TemporaryDirectory() as d:
        for t in ("0001", "0005"):
            print(f"type {t}: {bench(t, n, Path(d)):.2f} images/s/core")


if __name__ == "__main__":
    main()

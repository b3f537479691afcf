"""Label the competition's train images automatically, so that stages 0 and 1 (and 2) can learn from them:

    python -m inference.autolabel data_dir=DIR [types=0001,0005] [workers=N] [dense=true] [overwrite=false]
                                  [checkpoints=[stage0.pt]] [summary=DIR/autolabel_summary.csv]

For every train image without a label file, ``<image stem>.label.json`` + ``.map.npz`` beside it, in the
generator's format (keypoints, corners, lattice with indices, orientation, dense map), with the evidence in its
``recipe`` (method, share of the record's samples on ink and of its steep samples, their 90th-percentile distance to
ink, trace correlation).
Each record's 0001 page is labelled first and the record's other images are registered to it (SIFT + RANSAC),
else the whole image is taken as the page in each quarter turn, or stage 0's page (``checkpoints=``) is the
start; the map is then refined on the record's own trace and verified with it (``pagekit/autolabel.py``).
An image that fails verification gets no label and a reason; so does an unreadable image, an image whose record
CSV is missing or holds no values, or an image of another record (its trace does not meet the signal).
Resumable: labelled images are skipped (``overwrite=true`` labels them again).  Then
``python train.py stage=0 data=competition data.dir=DIR`` (stages 1 and 2 likewise) trains on the labels.
Pseudo-labelling round: run it again with ``checkpoints=[that stage 0]``; only the images still without a label
are tried, now from the stage 0 that learned the accepted ones, and verified as before.

It sits in the inference layer, not ``data``, because it may start from stage 0's model; ``data`` imports nothing
above itself.
"""
from __future__ import annotations

import os
import re
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from data import cli
from data.competition import Competition
from data.files import write_table
from data.labels import PageLabel, label_path
from pagekit.autolabel import autolabel
from pagekit.image import ink, read_image

SUMMARY_COLUMNS = ["image", "type", "status", "method", "on_ink", "on_ink_steep", "p90_mm", "ecc", "reason", "seconds"]


@dataclass
class Options:
    data_dir: str = ""
    types: list[str] = field(default_factory=list)
    workers: int = 1
    dense: bool = True
    overwrite: bool = False
    checkpoints: list[str] = field(default_factory=list)     # a stage-0 checkpoint: its page as another start
    device: str = "cpu"
    summary: str | None = None


def usable_signals(comp: Competition, record_id: str) -> pd.DataFrame:
    """The record's 12 leads; a lead without any value is left out of the trace (named in the error only when no
    lead is left)."""
    signals = comp.load_signals(record_id)
    if not np.isfinite(signals.to_numpy(dtype=float)).any():
        raise ValueError(f"record {record_id}: its CSV holds no value in any lead")
    return signals


class Stage0Starts:
    """Stage 0's page (H canonical -> image) of an image, when a stage-0 checkpoint is given."""

    def __init__(self, checkpoints: list[str], device: str):
        self.model = None
        if checkpoints:
            from pagekit.registry import load_model
            self.model, self.cfg = load_model(checkpoints[0])
            if self.cfg["stage"]["id"] != 0:
                raise ValueError(f"checkpoints=[{checkpoints[0]}]: a stage-{self.cfg['stage']['id']} checkpoint; "
                                 f"autolabel starts from stage 0's page only")
            self.device = device

    def __call__(self, image: np.ndarray) -> list[np.ndarray]:
        if self.model is None:
            return []
        from stage0_keypoints.predict import predict
        r = predict(self.model, [image], int(self.cfg["model"]["input_size"]), self.device, 1, True)[0]
        return [np.linalg.inv(r.H)] if r.H is not None else []


def label_record(comp: Competition, record_id: str, rows: pd.DataFrame, opts: Options,
                 starts: Stage0Starts) -> list[dict]:
    """Label one record's images (0001 first); returns one summary row per image."""
    out, reference = [], None
    try:
        signals = usable_signals(comp, record_id)
    except Exception as e:                                # noqa: BLE001 - a bad record must not stop the rest
        return [{"image": Path(r.path).name, "type": r.type, "status": "failed", "reason": f"signal: {e}"}
                for r in rows.itertuples()]
    for r in rows.sort_values("type").itertuples():
        t0, path = time.perf_counter(), Path(r.path)
        row = {"image": path.name, "type": r.type}
        try:
            image = read_image(path)
            if label_path(path).is_file() and not opts.overwrite:
                if r.type == "0001":                     # an existing 0001 label still serves as the reference
                    reference = (ink(image), np.linalg.inv(PageLabel.load(label_path(path)).homography()))
                out.append({**row, "status": "skipped", "reason": "already labelled"})
                continue
            dark = ink(image)                              # not for the skipped: resuming stays cheap
            res = autolabel(dark, signals, int(r.fs), r.type, reference, opts.dense, lambda: starts(image))
            row |= {"method": res.method, "on_ink": res.on_ink, "on_ink_steep": res.on_ink_steep,
                    "p90_mm": res.p90_mm, "ecc": res.ecc, "seconds": time.perf_counter() - t0}
            if not res.accepted:
                out.append({**row, "status": "rejected", "reason": res.reason})
                continue
            res.label.save(label_path(path))
            if r.type == "0001":
                reference = (dark, res.H)
            out.append({**row, "status": "labelled", "reason": ""})
        except Exception as e:                            # noqa: BLE001 - one bad image must not stop the rest
            out.append({**row, "status": "failed", "reason": f"{getattr(e, 'kind', type(e).__name__)}: {e}",
                        "seconds": time.perf_counter() - t0})
    return out


_WORKER: dict = {}


def _init_worker(opts: Options, threads: int | None = None) -> None:
    if threads:                                          # workers share the cores
        import cv2
        import torch
        cv2.setNumThreads(threads)
        torch.set_num_threads(threads)
    _WORKER["opts"], _WORKER["starts"] = opts, Stage0Starts(opts.checkpoints, opts.device)
    _WORKER["comp"] = Competition(opts.data_dir)


def _work(record_id: str, rows: pd.DataFrame) -> list[dict]:
    return label_record(_WORKER["comp"], record_id, rows, _WORKER["opts"], _WORKER["starts"])


def run(opts: Options) -> pd.DataFrame:
    with cli.reported():
        if not opts.data_dir:
            raise ValueError("data_dir=... is required: the unzipped competition (train.csv + train/)")
        comp = Competition(opts.data_dir)
        images = comp.images(opts.types or None)
        if images.empty:
            kinds = f" of types {','.join(opts.types)}" if opts.types else ""
            raise FileNotFoundError(f"{opts.data_dir}: no train image{kinds} (train.csv + train/<id>/<id>-<type>.png)")
    groups = list(images.groupby("id", sort=False))
    rows: list[dict] = []
    bar = tqdm(total=len(images), desc="autolabel", unit="img")
    if opts.workers <= 1:
        _init_worker(opts)
        for rid, g in groups:
            rows += _work(rid, g)
            bar.update(len(g))
    else:
        import multiprocessing as mp
        threads = max(1, (os.cpu_count() or 1) // opts.workers)
        with ProcessPoolExecutor(opts.workers, mp_context=mp.get_context("spawn"), initializer=_init_worker,
                                 initargs=(opts, threads)) as pool:
            futures = {pool.submit(_work, rid, g): len(g) for rid, g in groups}
            for f in as_completed(futures):
                rows += f.result()
                bar.update(futures[f])
    bar.close()
    df = pd.DataFrame(rows, columns=SUMMARY_COLUMNS)
    write_table(opts.summary or Path(opts.data_dir) / "autolabel_summary.csv", df, index=False)
    report(df)
    return df


def report(df: pd.DataFrame) -> None:
    """Counts per type and status, then the reasons: failures by kind, rejections by the check that failed."""
    print(df.pivot_table(index="type", columns="status", values="image", aggfunc="count", fill_value=0).to_string())
    bad = df[df.status.isin(["rejected", "failed"])]
    kinds = Counter(r.split(":")[0] if s == "failed" else re.sub(r"[\d.]+ ?%?", "N", r.split(";")[0])
                    for r, s in zip(bad.reason, bad.status))
    for kind, n in kinds.most_common():
        print(f"{n:5d}  {kind}")


def main(argv=None) -> pd.DataFrame:
    return run(cli.parse(Options, argv, __doc__))


if __name__ == "__main__":
    main()

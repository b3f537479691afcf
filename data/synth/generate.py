"""Write a synthetic competition: the competition's layout plus a label file beside every image.

    python -m data.synth out=DIR n_records=N seed=S [types=0001,0003,...] [n_test=K] [source=simulate]
                         [hold_tail=0.2] [beat_at_column=0.5] [layouts=3x4+II:2,6x2+II,12x1] [workers=2]

source: ``simulate`` (default), ``csv:DIR`` (re-render the signals of a competition-layout DIR, e.g. the real train
set), ``wfdb:DIR`` (every record under DIR with the 12 standard leads, e.g. PTB-XL), or ``mix:DIR[:FRACTION]``
(a random real WFDB window under DIR, its gain drawn from 0.8-1.6, with probability FRACTION (0.5), else simulated;
e.g. ``mix:../shared/real_signals:0.5``).
beat_at_column: the probability that a simulated record's rhythm is moved so that a QRS peaks 0-0.2 s after the start
of one of its page's columns, under the lead name and across the separator (``signals.align_beats``; 0 = off, the
default, which leaves the records of a seed as they were; real WFDB windows are printed as recorded).
hold_tail: the probability that a record's last 0.05-0.15 s are held at one value (``signals.hold_tail``; 0 = off,
the default, which leaves the records of a seed as they were).
layouts: the page layouts of the train records (``data.layout`` names, each with an optional weight after ``:``), one
drawn per record for all its images; empty (the default) = the competition's 3x4+II, the records of a seed as they
were.  A record in another layout keeps every lead over the whole 10 s in its CSV (the truth of any layout; the
label file names the layout); the test split is always the competition's page.
Output: train.csv, train/{id}/{id}.csv, train/{id}/{id}-{type}.png (+ .label.json, .map.npz), test.csv,
test/{id}.png, test_labels/{id}.label.json, solution.parquet (id, fs, value, type) for ``inference.score``.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
from tqdm import tqdm

from data import cli
from data.competition import lead_window, solution_frame
from data.files import write_image, write_table
from data.geometry import DEFAULT_LAYOUT, LEADS
from data.layout import get_layout
from data.labels import PageLabel, canonical_points
from data.synth import distort, recipes, signals
from data.synth.render import PageStyle, random_header, render_page

PNG_FLAGS = [cv2.IMWRITE_PNG_COMPRESSION, 1]  # fast; the images are large and written once


@dataclass
class Job:
    index: int
    record_id: str
    seed: int
    types: tuple[str, ...]
    out: Path
    split: str          # "train" | "test"
    source: str
    hold_tail: float = 0.0
    layouts: tuple[tuple[str, float], ...] = ()      # (name, weight); empty: the competition's page
    beat_at_column: float = 0.0


def parse_layouts(specs) -> tuple[tuple[str, float], ...]:
    """``["3x4+II:2", "12x1"]`` -> ((name, weight), ...), every name checked against ``data.layout``."""
    out = []
    for spec in specs:
        name, _, weight = str(spec).partition(":")
        get_layout(name)                                  # LayoutError names the layouts there are
        out.append((name, float(weight or 1.0)))
    if any(w <= 0 for _, w in out):
        raise ValueError(f"layout weights must be > 0, got {list(specs)}")
    return tuple(out)


def draw_layout(job: Job) -> str:
    """The record's layout, from its own random stream (a seed's signals and pages stay as they were)."""
    if not job.layouts or job.split != "train":
        return DEFAULT_LAYOUT
    names, weights = zip(*job.layouts)
    p = np.asarray(weights) / np.sum(weights)
    return names[int(np.random.default_rng([job.seed, 2]).choice(len(names), p=p))]


def render_image(frame: pd.DataFrame, fs: int, image_type: str, rng: np.random.Generator, record_id: str,
                 layout: str = DEFAULT_LAYOUT):
    """One image of one type: (BGR image, PageLabel)."""
    header = random_header(rng, record_id, fs) if rng.random() < 0.4 else []
    page = render_page(frame, fs, PageStyle.random(rng, header), layout)
    steps = recipes.recipe(image_type, rng)
    img, tracked = distort.run(page, steps, canonical_points(), seed=int(rng.integers(2**31)))
    label = PageLabel.from_tracked(tracked, (img.shape[1], img.shape[0]), image_type,
                                   recipes.orientation(steps), distort.describe(steps), layout)
    if image_type in ("0004", "0012"):
        img = img[..., 0]  # B/W scans are single-channel files
    return img, label


def _signal_frame(job: Job, rng: np.random.Generator, layout: str = DEFAULT_LAYOUT) -> tuple[pd.DataFrame, int]:
    """The record's CSV frame: the competition's layout (NaN outside each short lead's window) for its page, every
    lead over the whole record for another layout (a ``csv:`` source has only what its CSVs hold)."""
    kind, _, arg = job.source.partition(":")
    frame = signals.to_competition_frame if layout == DEFAULT_LAYOUT else signals.to_full_frame
    beat_at = _beat_at(job, layout)
    if kind == "simulate":
        fs = signals.draw_fs(rng)
        return frame(signals.simulate(fs, rng, beat_at=beat_at), fs), fs
    if kind == "csv":
        from data.competition import Competition
        comp = Competition(arg)
        recs = comp.records()
        rec = recs[job.index % len(recs)]
        return signals.from_csv(rec.csv), rec.fs
    if kind == "wfdb":
        fs = signals.draw_fs(rng)
        full = signals.from_wfdb(_wfdb_records(arg)[job.index % len(_wfdb_records(arg))], fs, rng)
        return frame(full, fs), fs
    if kind == "mix":        # mix:DIR[:FRACTION]: a real window (random record, gain) with that probability
        folder, _, fraction = arg.partition(":")
        fs = signals.draw_fs(rng)
        if rng.random() < float(fraction or 0.5):
            records = _wfdb_records(folder)
            full = signals.from_wfdb(records[int(rng.integers(len(records)))], fs, rng)
            gain = rng.uniform(0.8, 1.6)
            full = {lead: gain * v for lead, v in full.items()}
        else:
            full = signals.simulate(fs, rng, beat_at=beat_at)
        return frame(full, fs), fs
    raise ValueError(f"source must be simulate, csv:DIR, wfdb:DIR or mix:DIR[:FRACTION], got {job.source!r}")


def _beat_at(job: Job, layout: str) -> float | None:
    """Where a simulated record's QRS is put (s), or None: from the record's own stream, so that a seed's signals
    and pages stay as they were when ``beat_at_column`` is 0."""
    align_rng = np.random.default_rng([job.seed, 3])
    if not align_rng.random() < job.beat_at_column:
        return None
    starts = sorted({slot.t0 for slot in get_layout(layout).slots()})
    return float(align_rng.choice(starts) + align_rng.uniform(0.0, 0.2))


def _wfdb_records(folder: str) -> list[Path]:
    heads = sorted(Path(folder).rglob("*.hea"))
    if not heads:
        raise FileNotFoundError(f"no WFDB header (*.hea) under {folder}")
    return [h.with_suffix("") for h in heads]


def make_record(job: Job) -> dict:
    rng = np.random.default_rng(job.seed)
    layout = draw_layout(job)
    frame, fs = _signal_frame(job, rng, layout)
    tail_rng = np.random.default_rng([job.seed, 1])    # its own stream: the pages of a seed stay as they were
    if tail_rng.random() < job.hold_tail:
        frame = signals.hold_tail(frame, fs, tail_rng)
    rid = job.record_id
    out = {"id": rid, "fs": fs, "sig_len": len(frame), "images": []}
    if job.split == "train":
        d = job.out / "train" / rid
        d.mkdir(parents=True, exist_ok=True)
        write_table(d / f"{rid}.csv", frame, index=False, float_format="%.3f")
        for t in job.types:
            img, label = render_image(frame, fs, t, rng, rid, layout)
            write_image(d / f"{rid}-{t}.png", img, PNG_FLAGS)
            label.save(d / f"{rid}-{t}.label.json")
            out["images"].append(t)
    else:
        t = job.types[int(rng.integers(len(job.types)))]
        img, label = render_image(frame, fs, t, rng, rid)
        write_image(job.out / "test" / f"{rid}.png", img, PNG_FLAGS)
        label.save(job.out / "test_labels" / f"{rid}.label.json")
        leads = {lead: lead_window(frame[lead])[1] for lead in LEADS}
        out["images"].append(t)
        out["solution"] = solution_frame(rid, fs, leads, t)
        out["lead_table"] = pd.DataFrame({"id": rid, "lead": list(LEADS), "fs": fs,
                                          "number_of_rows": [leads[lead].size for lead in LEADS]})
    return out


def generate(out: str | Path, n_records: int = 8, seed: int = 0, types=recipes.TYPES, n_test: int | None = None,
             source: str = "simulate", hold_tail: float = 0.0, workers: int | None = None,
             progress: bool = True, layouts=(), beat_at_column: float = 0.0) -> Path:
    out = Path(out)
    for sub in ("train", "test", "test_labels"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    types = tuple(types)
    unknown = set(types) - set(recipes.TYPES)
    if unknown:
        raise ValueError(f"unknown image types {sorted(unknown)}; known: {list(recipes.TYPES)}")
    n_test = max(1, n_records // 4) if n_test is None else n_test
    layouts = parse_layouts(layouts)
    if source.startswith("csv:") and any(name != DEFAULT_LAYOUT for name, _ in layouts):
        raise ValueError("a csv: source holds the competition page's windows only: it renders no other layout")
    ss = np.random.SeedSequence(seed)
    children = ss.spawn(n_records + n_test)
    ids = np.random.default_rng(ss.generate_state(1)).choice(10**9, n_records + n_test, replace=False) + 10**8
    jobs = [Job(i, str(int(ids[i])), int(children[i].generate_state(1)[0]), types, out,
                "train" if i < n_records else "test", source, hold_tail, layouts, beat_at_column)
            for i in range(n_records + n_test)]
    workers = workers or min(len(jobs), os.cpu_count() or 1)
    if workers > 1:
        with get_context("spawn").Pool(workers) as pool:
            results = list(tqdm(pool.imap(make_record, jobs), total=len(jobs), desc="synth", disable=not progress))
    else:
        results = [make_record(j) for j in tqdm(jobs, desc="synth", disable=not progress)]
    train = [r for r in results if "solution" not in r]
    test = [r for r in results if "solution" in r]
    meta = pd.DataFrame([{k: r[k] for k in ("id", "fs", "sig_len")} for r in train])
    write_table(out / "train.csv", meta, index=False)
    cols = ["id", "lead", "fs", "number_of_rows"]
    lead_table = pd.concat([r["lead_table"] for r in test], ignore_index=True) if test else pd.DataFrame(columns=cols)
    write_table(out / "test.csv", lead_table, index=False)
    if test:
        write_table(out / "solution.parquet", pd.concat([r["solution"] for r in test], ignore_index=True), index=False)
    return out


@dataclass
class Options:
    out: str
    n_records: int = 8
    seed: int = 0
    types: list[str] = field(default_factory=lambda: list(recipes.TYPES))
    n_test: int | None = None            # default: n_records // 4
    source: str = "simulate"
    hold_tail: float = 0.0               # probability of a held (flat) record end
    beat_at_column: float = 0.0          # probability of a simulated QRS right after a column's start
    layouts: list[str] = field(default_factory=list)   # e.g. 3x4+II:2,6x2+II,12x1 (empty: the competition's page)
    workers: int | None = None           # default: all cores


def main(argv=None) -> None:
    opts = cli.parse(Options, argv, __doc__)
    types = [t.zfill(4) for t in opts.types]
    unknown = sorted(set(types) - set(recipes.TYPES))
    if unknown:
        raise cli.UsageError(f"unknown image types {unknown}; known: {', '.join(recipes.TYPES)}")
    path = generate(opts.out, n_records=opts.n_records, seed=opts.seed, types=types, n_test=opts.n_test,
                    source=opts.source, hold_tail=opts.hold_tail, workers=opts.workers, layouts=opts.layouts,
                    beat_at_column=opts.beat_at_column)
    print(f"wrote {path}: {opts.n_records} train records, test split, solution.parquet")

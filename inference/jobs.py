"""The images of a data dir to digitize and the loop over them, shared by every command that writes a submission
(``python -m inference``, ``python -m inference.baseline``): the work list of a split, the batched loop in which a
failing image costs only itself, and writing + scoring the result."""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from data import cli
from data.competition import Competition
from data.folds import load_folds
from data.submission import read_table, write_submission
from inference.score import print_scores, score_table


@dataclass(kw_only=True)
class DataOptions:
    """Where the images are and where the submission goes."""
    data_dir: str
    out: str = "submission.parquet"
    split: str = "test"                  # test | train | val
    fold: int = 0
    n_folds: int = 5
    types: list[str] = field(default_factory=list)
    limit: int | None = None
    batch_size: int = 2


def work_list(comp: Competition, split: str, fold: int, n_folds: int, types: list[str] | None):
    """(lead table in test.csv layout, {image id: image path}, solution or None)."""
    if split == "test":
        table = comp.test_meta
        paths = {i: comp.test_image(i) for i in table["id"].astype(str).unique()}
        sol_path = comp.root / "solution.parquet"
        sol = read_table(sol_path) if sol_path.is_file() else None
        return table, paths, sol
    if split not in ("train", "val"):
        raise SystemExit(f"split must be test, train or val, got {split!r}")
    records = None
    if split == "val":
        folds = load_folds(comp.root, n_folds)
        records = folds["id"][folds["fold"] == fold].tolist()
    images = comp.images(types)
    if records is not None:
        images = images[images["id"].isin(records)]
    table = comp.lead_table(records, types)
    return table, dict(zip(images["image_id"], images["path"])), comp.solution(records, types)


def digitize_all(dig, table: pd.DataFrame, paths: dict, batch_size: int) -> tuple[dict, list[str]]:
    """{image id: {lead: values}} for every image of the table; failures get 0 mV and are listed."""
    meta = {i: (int(g["fs"].iloc[0]), dict(zip(g["lead"], g["number_of_rows"].astype(int))))
            for i, g in table.assign(id=table["id"].astype(str)).groupby("id", sort=False)}
    ids, preds, failed = list(meta), {}, []

    def zeros(i, why: str):
        failed.append(f"{i} ({paths.get(i)}): {why}")
        preds[i] = {lead: np.zeros(n) for lead, n in meta[i][1].items()}

    def take(i, reading):                                 # a page looked at and not read counts as failed
        if reading.failure:
            zeros(i, f"not read: {reading.failure}")
        else:
            preds[i] = reading.leads

    def one_by_one(chunk):
        for i in chunk:
            try:
                take(i, dig.run([paths[i]], [meta[i][0]], [meta[i][1]])[0])
            except Exception as e:                        # noqa: BLE001 - any failure: report, 0 mV, go on
                zeros(i, f"{type(e).__name__}: {e}")

    with tqdm(total=len(ids), desc="digitize", unit="img") as bar:
        for a in range(0, len(ids), batch_size):
            chunk = ids[a:a + batch_size]
            try:
                readings = dig.run([paths[i] for i in chunk], [meta[i][0] for i in chunk],
                                   [meta[i][1] for i in chunk])
            except Exception:                             # noqa: BLE001 - find the bad image, keep the rest
                one_by_one(chunk)
            else:
                for i, r in zip(chunk, readings):
                    take(i, r)
            bar.update(len(chunk))
    return preds, failed


def load_work(opts: DataOptions):
    """(lead table, {image id: path}, solution or None) of the options' split, test.csv checked row by row; a
    bad table or data dir ends the command with one message before any image is read."""
    with cli.reported():
        comp = Competition(opts.data_dir)
        table, paths, sol = work_list(comp, opts.split, opts.fold, opts.n_folds, opts.types or None)
    if opts.limit is not None:
        keep = list(paths)[:opts.limit]
        paths = {i: paths[i] for i in keep}
        table = table[table["id"].astype(str).isin(keep)]
    return table, paths, sol


def submit(dig, opts: DataOptions, table: pd.DataFrame, paths: dict, sol) -> float | None:
    """Digitize every image of the work list with ``dig``, write the submission, report failures and timing, and
    print the score per type when a solution is known; returns the score (dB) or None."""
    absent = [i for i, p in paths.items() if not Path(p).is_file()]
    if absent:
        warnings.warn(f"{len(absent)} images of the table are missing and will be given 0 mV: "
                      + ", ".join(str(paths[i]) for i in absent[:10]) + (" ..." if len(absent) > 10 else ""),
                      stacklevel=2)
    preds, failed = digitize_all(dig, table, paths, opts.batch_size)
    out = Path(opts.out)
    sub = write_submission(out, preds, table)
    print(f"wrote {out} ({len(sub)} rows, {len(paths)} images)")
    if failed:
        warnings.warn(f"{len(failed)} images failed and were given 0 mV:\n" + "\n".join(failed), stacklevel=2)
    print(dig.timing_report(len(paths)))
    if sol is None:
        return None
    sol = sol[sol["id"].str.split("_").str[0].isin(set(paths))]
    return print_scores(score_table(sub, sol), per_image=False)

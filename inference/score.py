"""Score a submission: ``python -m inference.score SUBMISSION SOLUTION`` (parquet or csv).

Prints one line per image (SNR in dB, image type where the solution has a ``type`` column), a per-type summary,
and, as the last line, ``score_db <value>``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from data import cli
from data.submission import read_table
from engine.report import summarize_by_type
from pagekit.metric import per_image_ratios, to_db


def score_table(submission: pd.DataFrame, solution: pd.DataFrame) -> pd.DataFrame:
    """Per-image table: image_id, fs, ratio, snr_db (+ type if known)."""
    table = per_image_ratios(solution, submission)
    if "type" in solution:
        types = solution.assign(image_id=solution["id"].str.split("_").str[0]).groupby("image_id")["type"].first()
        table["type"] = table["image_id"].map(types)
    return table


def per_type(table: pd.DataFrame) -> pd.DataFrame:
    """Score (dB of the mean ratio, as the competition averages) for each image type."""
    stats = lambda rows: {"n": len(rows), "score_db": float(to_db(np.mean([r["ratio"] for r in rows])))}  # noqa: E731
    return summarize_by_type(table.to_dict("records"), stats)[1].astype({"n": int})


def print_scores(table: pd.DataFrame, per_image: bool = True) -> float:
    """Print the per-image table (optionally), the per-type summary and ``score_db``; return the score."""
    with pd.option_context("display.max_rows", None, "display.width", 120):
        if per_image:
            print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
        if "type" in table:
            print("\nper type:")
            print(per_type(table).to_string(float_format=lambda v: f"{v:.3f}"))
    total = float(to_db(table["ratio"].mean()))
    print(f"score_db {total:.4f}")
    return total


@dataclass
class Options:
    submission: str
    solution: str


def main(argv=None) -> float:
    opts = cli.parse(Options, argv, __doc__, positional=("submission", "solution"))
    with cli.reported():
        table = score_table(read_table(opts.submission), read_table(opts.solution))
    return print_scores(table)


if __name__ == "__main__":
    main()

"""The floor every model must beat: 0 mV for every row of test.csv, written as a validated submission.

    python -m inference.baseline data_dir=DIR [out=submission.parquet]
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from data import cli
from data.competition import Competition
from data.submission import write_submission


def zero_predictions(lead_table) -> dict:
    """0 mV for every row of a test.csv-style lead table, as {image_id: {lead: values}}."""
    return {str(i): {r.lead: np.zeros(int(r.number_of_rows)) for r in g.itertuples()}
            for i, g in lead_table.groupby("id")}


def zeros_submission(data_dir, out):
    table = Competition(data_dir).test_meta
    return write_submission(out, zero_predictions(table), table)


@dataclass
class Options:
    data_dir: str
    out: str = "submission.parquet"


def main(argv=None) -> None:
    opts = cli.parse(Options, argv, __doc__)
    with cli.reported():
        sub = zeros_submission(opts.data_dir, opts.out)
    print(f"wrote {opts.out} ({len(sub)} rows)")


if __name__ == "__main__":
    main()

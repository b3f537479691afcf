"""The floor every model must beat: 0 mV for every row of test.csv, written as a validated submission.

    python -m inference.baseline data_dir=DIR [out=submission.parquet]
"""
from __future__ import annotations

import sys

import numpy as np

from data.competition import Competition
from data.submission import write_submission
from data.synth.generate import parse_overrides


def zero_predictions(lead_table) -> dict:
    """0 mV for every row of a test.csv-style lead table, as {image_id: {lead: values}}."""
    return {str(i): {r.lead: np.zeros(int(r.number_of_rows)) for r in g.itertuples()}
            for i, g in lead_table.groupby("id")}


def zeros_submission(data_dir, out):
    table = Competition(data_dir).test_meta
    return write_submission(out, zero_predictions(table), table)


def main(argv=None) -> None:
    opts = parse_overrides(sys.argv[1:] if argv is None else argv)
    if "data_dir" not in opts:
        raise SystemExit(__doc__)
    out = opts.get("out", "submission.parquet")
    sub = zeros_submission(opts["data_dir"], out)
    print(f"wrote {out} ({len(sub)} rows)")


if __name__ == "__main__":
    main()

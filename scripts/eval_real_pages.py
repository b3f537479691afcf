"""Do the verdicts tell good readings from bad on real paper?  The folder CLI on ../shared/real_pages (real scans,
photos and exports, no signals), its per-page status against the by-eye verdicts in the folder's annotations.csv.

    python scripts/eval_real_pages.py [data_dir=../shared/real_pages] [out=runs/real_pages] [verdict=verdict_2026_12]

Prints status x verdict counts, the pages a wrong reading passed as ``ok`` or wrote at all (``check``: both numbers
must be 0), and the layout read beside the annotated one for every page read.  The
verdicts judge the digitizer of their date: after a change that moves the readings, judge the new pictures in
``out`` again by the folder's rules before trusting the table.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from data import cli  # noqa: E402
from inference.digitize import main as digitize  # noqa: E402

BAD = ("rows_shifted", "wrong")


@dataclass
class Options:
    data_dir: str = "../shared/real_pages"
    out: str = "runs/real_pages"
    verdict: str = "verdict_2026_12"


def main(argv=None) -> pd.DataFrame:
    opts = cli.parse(Options, argv, __doc__)
    with cli.reported():
        notes = pd.read_csv(Path(opts.data_dir) / "annotations.csv")
    summary = digitize([opts.data_dir, f"out={opts.out}", "plot=true"])
    status = summary.drop_duplicates("name").set_index("name")["status"]
    table = notes.assign(status=notes["image"].map(status).fillna("missing"))
    print(pd.crosstab(table[opts.verdict], table["status"], margins=True).to_string())
    passed = table[table[opts.verdict].isin(BAD) & (table["status"] == "ok")]
    print(f"wrong readings passed as ok: {len(passed)}" + (f" ({', '.join(passed['image'])})" if len(passed) else ""))
    written = table[table[opts.verdict].isin(BAD) & (table["status"] != "failed")]
    print(f"wrong readings written at all (ok or check): {len(written)}"
          + (f" ({', '.join(written['image'])})" if len(written) else ""))
    read = summary.drop_duplicates("name").set_index("name")["layout"]
    table["layout_read"] = table["image"].map(read)
    shown = table[table["status"] != "failed"][["image", "layout", "layout_read", opts.verdict, "status"]]
    print("pages read, their annotated layout and the layout read (judge their pictures again by eye):")
    print(shown.to_string(index=False))
    return table


if __name__ == "__main__":
    main()

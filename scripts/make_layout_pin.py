"""Cut an independent pin of a page layout out of one ECG-Image-Kit render: for every printed trace, its lead name,
the samples it prints, its lead-name box and a few dozen of its samples with the exact pixel ECG-Image-Kit plotted
them at.  The truth comes from ECG-Image-Kit's JSON (``--store_config 2``) and the record it rendered, never from
``data.geometry``, so tests that compare the two catch a moved lead, window, baseline or scale.

    python scripts/make_layout_pin.py RENDER.json RECORD.csv OUT.json [layout=3x4+II] [per_trace=24]

``tests/fixtures/eik_pin_3x4+II.json`` was made from ``../shared/eik_dev/train/2180036053/2180036053-0001.json``.
"""
from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from data import cli  # noqa: E402
from data.files import write_text  # noqa: E402


def pin(render: dict, record: pd.DataFrame, per_trace: int) -> list[dict]:
    traces = []
    for lead in render["leads"]:
        a, b = int(lead["start_sample"]), int(lead["end_sample"])
        yx = np.asarray(lead["plotted_pixels"], dtype=np.float64)          # EIK writes [y, x] per sample
        values = record[lead["lead_name"]].to_numpy()[a:b]
        if len(yx) != b - a or not np.isfinite(values).all():
            raise ValueError(f"lead {lead['lead_name']}: {len(yx)} plotted pixels for samples {a}..{b}, or NaN values")
        # evenly spread samples plus both extremes, so that the scale in mV is pinned over the trace's whole range
        pick = np.unique(np.r_[np.linspace(0, b - a - 1, per_trace).round().astype(int),
                               np.argmax(values), np.argmin(values)])
        box = np.asarray(list(lead["text_bounding_box"].values()), dtype=np.float64)   # corners as [y, x]
        traces.append({"lead": lead["lead_name"], "start_sample": a, "end_sample": b,
                       "label_box_xyxy": [box[:, 1].min(), box[:, 0].min(), box[:, 1].max(), box[:, 0].max()],
                       "samples": [[int(a + i), float(values[i]), round(float(yx[i, 1]), 3), round(float(yx[i, 0]), 3)]
                                   for i in pick]})
    return traces


@dataclass
class Options:
    render: str
    record: str
    out: str
    layout: str = "3x4+II"
    per_trace: int = 24


def main(argv=None) -> None:
    opts = cli.parse(Options, argv, __doc__, positional=("render", "record", "out"))
    with cli.reported(FileNotFoundError, KeyError, ValueError):
        render = json.loads(Path(opts.render).read_text())
        doc = {"layout": opts.layout, "source": f"ECG-Image-Kit render {Path(opts.render).name}",
               "fs": render["sampling_frequency"], "width": render["width"], "height": render["height"],
               "dpi": render["resolution"], "sample_columns": ["sample", "mV", "x_px", "y_px"],
               "traces": pin(render, pd.read_csv(opts.record), opts.per_trace)}
    write_text(opts.out, json.dumps(doc, separators=(",", ":")) + "\n")
    print(f"{opts.out}: {len(doc['traces'])} traces")


if __name__ == "__main__":
    main()

"""One paper ECG -> a CSV of its 12 leads (and optionally a picture of them over the rectified page):

    python -m inference.digitize IMAGE checkpoints=[s0.pt,s1.pt,s2.pt] [fs=500] [out=IMAGE.csv] [plot=IMAGE.png]

The CSV has the layout of the competition's train CSVs: columns I..V6 in mV, 10 s at fs, each short lead only in
its own 2.5 s window (NaN elsewhere), lead II over the whole rhythm strip.  Other options as ``python -m inference``
(tta_flip=true, stage0_tta=true, extract.<field>=..., stageN.model.<key>=..., device=cpu).
"""
from __future__ import annotations

import sys
from pathlib import Path

from data.synth.generate import parse_overrides
from inference.__main__ import digitizer_from_opts


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if not argv or "=" in argv[0]:
        raise SystemExit(__doc__)
    image, opts = Path(argv[0]), parse_overrides(argv[1:])
    if "checkpoints" not in opts:
        raise SystemExit(__doc__)
    dig = digitizer_from_opts(opts)
    plot = opts.get("plot")
    res = dig.digitize(image, int(opts.get("fs", 500)), plot=bool(plot))
    df, fig = res if plot else (res, None)
    out = Path(opts.get("out", image.with_suffix(".csv")))
    df.to_csv(out, index=False, float_format="%.4f")
    print(f"wrote {out} ({len(df)} samples x 12 leads)")
    if fig is not None:
        fig.savefig(plot, dpi=120)
        print(f"wrote {plot}")
    return df


if __name__ == "__main__":
    main()

"""Score the 0 mV baseline on ../shared/eik_dev per image type: the floor a model's per-type figures compare to.

    python scripts/score_eik_dev.py [data_dir=../shared/eik_dev]
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from data.competition import Competition  # noqa: E402
from data.submission import build_submission  # noqa: E402
from inference.baseline import zero_predictions  # noqa: E402
from inference.score import per_type, score_table  # noqa: E402


def main() -> None:
    opts = dict(a.split("=", 1) for a in sys.argv[1:])
    comp = Competition(opts.get("data_dir", Path(__file__).resolve().parents[2] / "shared" / "eik_dev"))
    table, solution = comp.lead_table(), comp.solution()
    scores = score_table(build_submission(zero_predictions(table), table), solution)
    print(per_type(scores).to_string(float_format=lambda v: f"{v:.3f}"))


if __name__ == "__main__":
    main()

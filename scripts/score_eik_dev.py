"""Score the 0 mV baseline on ../shared/eik_dev per image type: the floor a model's per-type figures compare to.

    python scripts/score_eik_dev.py [data_dir=../shared/eik_dev]
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from data import cli  # noqa: E402
from data.competition import Competition  # noqa: E402
from data.submission import build_submission  # noqa: E402
from inference.baseline import zero_predictions  # noqa: E402
from inference.score import per_type, score_table  # noqa: E402


@dataclass
class Options:
    data_dir: str = str(Path(__file__).resolve().parents[2] / "shared" / "eik_dev")


def main(argv=None) -> None:
    comp = Competition(cli.parse(Options, argv, __doc__).data_dir)
    table, solution = comp.lead_table(), comp.solution()
    scores = score_table(build_submission(zero_predictions(table), table), solution)
    print(per_type(scores).to_string(float_format=lambda v: f"{v:.3f}"))


if __name__ == "__main__":
    main()

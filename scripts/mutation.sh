#!/usr/bin/env bash
# Mutation testing (mutmut 3) of the files that decide where every value lands: pagekit/metric.py,
# data/submission.py, pagekit/extract.py, data/geometry.py, inference/digitize.py ([tool.mutmut] in pyproject.toml).
# Survivors and why each is harmless: docs/testing.md.  about 1.5 h on 2 cores; rerun to resume.
#   bash scripts/mutation.sh            # then: .venv/bin/mutmut show <mutant>
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/python -m pip install -q "mutmut==3.8.1"
export HF_HUB_OFFLINE=1 WANDB_MODE=disabled
# the tests' synthetic competition, made once (not once per mutant): tests/conftest.py reads it from here
export ECG_SMOKE_DATA=${ECG_SMOKE_DATA:-$PWD/runs/mutation/smoke}
[ -f "$ECG_SMOKE_DATA/train.csv" ] || .venv/bin/python -c "
import sys; sys.path.insert(0, 'tests')
from conftest import SMOKE_SET
from data.synth.generate import generate
generate('$ECG_SMOKE_DATA', workers=1, progress=False, **SMOKE_SET)"
.venv/bin/mutmut run --max-children "${JOBS:-2}" "$@"
.venv/bin/mutmut results
